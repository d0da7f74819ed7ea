//! Tickets that expire, and the ways PgBouncer gets new ones: the injected keytab (MIT fetches
//! a new TGT itself once the old one expires), a ticket cache put into the pod once (the doc's
//! "other injection methods": nothing renews it), and a refresh sidecar beside PgBouncer that
//! renews that cache from a keytab in a loop.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::component::{File, Readiness, RunAs, Spec};
use crate::environment::Environment;
use crate::pgbouncer::TICKET_CACHE;
use crate::tools;

/// The sidecar's component name (its log is `pgbouncer/krb5-refresh.log`).
pub const REFRESH_SIDECAR: &str = "krb5-refresh";

/// Caps the lifetime of every ticket the KDC issues to `principal` (`modprinc -maxlife`); the
/// service tickets fetched with its TGT end with it.
pub async fn limit_lifetime(env: &Environment, principal: &str, secs: u64) -> Result<()> {
    env.stack()
        .realm
        .kadmin(&[format!("modprinc -maxlife \"{secs} seconds\" {principal}")])
        .await
        .map(drop)
}

/// What an injector that hands out ticket caches does: `kinit` from the client keytab outside
/// the pod, the cache copied into PgBouncer's place (0600) where its KRB5CCNAME points. PgBouncer
/// must run without a keytab for this to be the only credential it has.
pub async fn inject_ticket_cache(env: &Environment) -> Result<()> {
    let stack = env.stack();
    let pgb = stack
        .pgbouncer
        .as_ref()
        .context("PgBouncer is not running: start it before injecting its ticket cache")?;
    let who = "injector";
    let cache: PathBuf = stack
        .realm
        .client_env(who, None)
        .into_iter()
        .find(|(k, _)| k == "KRB5CCNAME")
        .and_then(|(_, v)| v.strip_prefix("FILE:").map(PathBuf::from))
        .context("internal: the client environment names no FILE ticket cache")?;
    let principal = &stack.shape.names.client_principal;
    stack
        .realm
        .kinit(who, principal, &stack.client_keytab)
        .await?;
    let bytes = std::fs::read(&cache).with_context(|| format!("reading {}", cache.display()));
    // The harness's copy is a credential too: only PgBouncer's stays.
    let _ = std::fs::remove_file(&cache);
    pgb.put_file(File::new(TICKET_CACHE, bytes?, 0o600)).await
}

/// The refresh-sidecar pattern, started as its own component in PgBouncer's place (the pod's
/// shared volume): every `every_secs` it runs `kinit -k -t` from a keytab of its own into a new
/// cache and renames it over PgBouncer's, so PgBouncer never reads a half-written cache. Ready
/// once the first cache is in place; stopped by [`Environment::down`] before PgBouncer.
pub async fn start_refresh_sidecar(env: &mut Environment, every_secs: u64) -> Result<()> {
    let stack = env.stack();
    let pgb = stack
        .pgbouncer
        .as_ref()
        .context("PgBouncer is not running: start it before its sidecar")?;
    let place = pgb.placed().clone();
    let keytab = std::fs::read(&stack.client_keytab).with_context(|| {
        format!(
            "the client keytab {} is missing",
            stack.client_keytab.display()
        )
    })?;
    let kinit = tools::path("kinit")?;
    let script = r#"while :; do
  if "$3" -k -t refresh.keytab -c FILE:krb5cc.new "$1" 2>&1; then
    /bin/mv -f krb5cc.new krb5cc && echo "krb5-refresh: renewed the ticket cache of $1"
  fi
  /bin/sleep "$2"
done"#;
    let spec = Spec::new(REFRESH_SIDECAR, "/bin/sh")
        .args([
            "-c".to_string(),
            script.to_string(),
            REFRESH_SIDECAR.to_string(),
            stack.shape.names.client_principal.clone(),
            every_secs.to_string(),
            kinit.display().to_string(),
        ])
        .file("refresh.keytab", keytab, 0o600)
        .env("KRB5_CONFIG", place.path_str("krb5.conf")?)
        .run_as(RunAs::ServiceUser)
        .ready_when(
            Readiness::LogLine("krb5-refresh: renewed".into()),
            Duration::from_secs(10),
        );
    let running = stack.substrate.start(&place, spec).await?;
    env.adopt(running);
    Ok(())
}
