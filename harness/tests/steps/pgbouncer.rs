//! Steps for PgBouncer: the client side (password, users.txt) and its GSSAPI login to the server.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use cucumber::{given, then, when};
use harness::environment::Component;
use harness::probe::sql;
use harness::stack::PgbouncerOptions;
use harness::substrate::LogCursor;

use super::{within, Connect, World};

pub(super) async fn start(w: &mut World, edit: impl FnOnce(&mut PgbouncerOptions)) -> Result<()> {
    let s = w.env_mut()?;
    let mut opts = s.default_pgbouncer_options();
    edit(&mut opts);
    within(
        "starting PgBouncer",
        Duration::from_secs(120),
        s.start_pgbouncer(&opts),
    )
    .await?;
    w.pgbouncer_opts = Some(opts);
    Ok(())
}

#[given("PgBouncer is configured as the deployment renders it")]
async fn pgbouncer_default(w: &mut World) -> Result<()> {
    start(w, |_| {}).await
}

#[given("PgBouncer is started without Kerberos credentials")]
async fn pgbouncer_no_creds(w: &mut World) -> Result<()> {
    start(w, |o| o.keytab = None).await
}

#[given(expr = "PgBouncer is started with server_krb_spn {string}")]
async fn pgbouncer_spn(w: &mut World, spn: String) -> Result<()> {
    let spn = w.x(&spn);
    start(w, |o| o.spn = Some(spn)).await
}

#[given(
    expr = "PgBouncer is started with server_krb_spn {string} and the metadata database's server_krb_spn {string}"
)]
async fn pgbouncer_per_db_spn(w: &mut World, global: String, per_db: String) -> Result<()> {
    let (global, per_db) = (w.x(&global), w.x(&per_db));
    start(w, |o| {
        o.spn = Some(global);
        o.metadata_extra.push(format!("server_krb_spn={per_db}"));
    })
    .await
}

#[when(expr = "PgBouncer is started with the invalid server_gssauth_negotiate {string}")]
async fn pgbouncer_invalid_negotiate(w: &mut World, value: String) -> Result<()> {
    match start(w, |o| o.negotiate = Some(value.clone())).await {
        Ok(()) => bail!("PgBouncer started with server_gssauth_negotiate = {value}"),
        Err(e) => {
            w.pgbouncer_refused = Some(format!("{e:#}"));
            Ok(())
        }
    }
}

#[then(expr = "PgBouncer refuses to start, naming {string}")]
async fn pgbouncer_refused(w: &mut World, needle: String) -> Result<()> {
    let why = w
        .pgbouncer_refused
        .as_deref()
        .context("PgBouncer was not started expecting a refusal")?;
    ensure!(
        why.contains("exited during start-up") && why.contains(&needle),
        "PgBouncer did not refuse to start naming `{needle}`: {why}"
    );
    Ok(())
}

#[given(expr = "PgBouncer is started with server_gssauth_negotiate {string}")]
async fn pgbouncer_negotiate(w: &mut World, value: String) -> Result<()> {
    start(w, |o| o.negotiate = Some(value)).await
}

#[given(expr = "PgBouncer is started with the keytab of {string}")]
async fn pgbouncer_other_keytab(w: &mut World, principal: String) -> Result<()> {
    let principal = w.x(&principal);
    let kt = w
        .keytabs
        .get(&principal)
        .cloned()
        .with_context(|| format!("no keytab for {principal}"))?;
    start(w, |o| o.keytab = Some(kt)).await
}

async fn connect(w: &mut World, password: String) -> Result<()> {
    let target = w.env()?.metadata_target(&password)?;
    connect_as_user(w, &target).await
}

/// A password login through PgBouncer as a user experiences it. PgBouncer accepts the client
/// before it logs in to the server: the server login happens on the first query, so a query is
/// part of "connecting".
pub(super) async fn connect_as_user(w: &mut World, target: &sql::Target) -> Result<()> {
    let started = Instant::now();
    let (client, error) = match sql::connect(target, Duration::from_secs(30)).await {
        Ok(c) => match c.simple_query("SELECT 1").await {
            Ok(_) => (Some(c), None),
            Err(e) => (None, Some(sql::error_text(&e))),
        },
        Err(e) => (None, Some(e)),
    };
    w.connect = Some(Connect {
        client,
        error,
        elapsed: started.elapsed(),
    });
    Ok(())
}

#[when("a client connects through PgBouncer to the metadata database")]
async fn client_connects(w: &mut World) -> Result<()> {
    let pw = w.env()?.client_password().to_string();
    connect(w, pw).await
}

#[when("a client connects through PgBouncer to the metadata database with a wrong password")]
async fn client_wrong_password(w: &mut World) -> Result<()> {
    let pw = format!("{}-wrong", w.env()?.client_password());
    connect(w, pw).await
}

#[then("the connection succeeds")]
async fn connection_succeeds(w: &mut World) -> Result<()> {
    let c = w.connect.as_ref().context("no client connected")?;
    if let Some(e) = &c.error {
        bail!("the client could not use the connection through PgBouncer: {e}");
    }
    Ok(())
}

#[then(expr = "the connection fails within {int} seconds with {string}")]
async fn connection_fails(w: &mut World, secs: u64, needle: String) -> Result<()> {
    let needle = w.x(&needle);
    let c = w.connect.as_ref().context("no client connected")?;
    let Some(e) = &c.error else {
        bail!("the client connected through PgBouncer, but it should have failed with `{needle}`");
    };
    ensure!(
        e.contains(&needle),
        "the client failed, but not with `{needle}`: {e}"
    );
    ensure!(
        c.elapsed <= Duration::from_secs(secs),
        "the client failed with the right message, but only after {:?} (limit {secs} s): clients must not wait for a timeout",
        c.elapsed
    );
    Ok(())
}

#[then(expr = "pg_stat_gssapi shows the client's session GSS-authenticated as {string}")]
async fn through_pgbouncer_gss(w: &mut World, principal: String) -> Result<()> {
    let principal = w.x(&principal);
    let c = w
        .connect
        .as_ref()
        .and_then(|c| c.client.as_ref())
        .context("no open client connection")?;
    let rows = sql::simple_rows(
        c,
        "SELECT principal, gss_authenticated::text AS gss, current_user AS role FROM pg_stat_gssapi WHERE pid = pg_backend_pid()",
    )
    .await?;
    let row = rows
        .first()
        .context("pg_stat_gssapi has no row for PgBouncer's server session")?;
    let (p, g, r) = (
        sql::cell(row, "principal"),
        sql::cell(row, "gss"),
        sql::cell(row, "role"),
    );
    ensure!(
        p == Some(principal.as_str()) && g == Some("true") && r == Some(principal.as_str()),
        "PgBouncer's server session: principal={p:?} gss_authenticated={g:?} role={r:?}; expected {principal}, true, {principal}"
    );
    Ok(())
}

#[then(expr = "the PgBouncer log says {string}")]
async fn pgbouncer_log_says(w: &mut World, needle: String) -> Result<()> {
    let needle = w.x(&needle);
    w.env()?
        .wait_log(
            Component::Pgbouncer,
            LogCursor::default(),
            &needle,
            Duration::from_secs(2),
        )
        .await
        .map(drop)
}

#[then("PostgreSQL saw no login attempt from PgBouncer")]
async fn no_server_login(w: &mut World) -> Result<()> {
    let s = w.env()?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = s.log_since(Component::Postgres, w.pg_log);
    let attempts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("connection received"))
        .collect();
    ensure!(
        attempts.is_empty(),
        "PostgreSQL received connections although the client was refused by PgBouncer: {}",
        attempts.join("\n")
    );
    Ok(())
}
