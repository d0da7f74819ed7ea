//! What the whole run shares: the run directory, the tier, the configuration being exercised.
//! `cargo xtask e2e` passes these in the environment (E2E_*).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context as _, Result};
use harness::replay::Policy;
use harness::run::RunDir;
use harness::stack::Shape;
use harness::substrate::Tier;

pub struct Ctx {
    pub run: RunDir,
    pub tier: Tier,
    pub shape: Shape,
    pub keep: bool,
    pub ci: bool,
    pub concurrency: usize,
    pub run_timeout: Duration,
}

static CTX: OnceLock<Ctx> = OnceLock::new();

pub fn get() -> &'static Ctx {
    CTX.get().expect("the e2e context is initialised in main")
}

pub fn init() -> Result<&'static Ctx> {
    let base = harness::run::workspace_root().join("target/e2e");
    let run = match std::env::var_os("E2E_RUN_DIR") {
        Some(d) => RunDir::open(Path::new(&d))?,
        None => RunDir::create(&base)?,
    };
    let tier: Tier = std::env::var("E2E_TIER")
        .unwrap_or_else(|_| "local".into())
        .parse()
        .context("E2E_TIER")?;
    if tier != Tier::Local {
        anyhow::bail!(
            "tier `{tier}` cannot run on this machine yet: only the local tier is implemented (the docker and kind tiers are described in README.md)"
        );
    }
    // A replayed configuration: lint errors refuse the run unless E2E_REPLAY=reproduce asks to
    // run the breakage as written; E2E_VALUES supplies the injector's selectors.
    let values = std::env::var_os("E2E_VALUES").map(|v| from_workspace(v.into()));
    let shape = match std::env::var_os("E2E_DEPLOYMENT") {
        Some(f) => {
            let policy: Policy = std::env::var("E2E_REPLAY").unwrap_or_default().parse()?;
            let replay =
                harness::replay::load(&from_workspace(f.into()), values.as_deref(), policy)?;
            for e in replay.errors() {
                eprintln!(
                    "e2e: replaying {} as written, with {} {} at {}: {}",
                    replay.file.display(),
                    e.rule,
                    e.name,
                    e.path,
                    e.message
                );
            }
            replay.shape
        }
        None => {
            if let Some(v) = &values {
                anyhow::bail!("E2E_VALUES={} needs E2E_DEPLOYMENT: the values only add the injector's selectors to a replayed deployment", v.display());
            }
            Shape::default()
        }
    };
    let flag = |k: &str| {
        std::env::var(k)
            .map(|v| v == "1" || v == "true")
            .unwrap_or(false)
    };
    let concurrency = std::env::var("E2E_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let minutes: u64 = std::env::var("E2E_RUN_TIMEOUT_MIN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let ctx = Ctx {
        run,
        tier,
        shape,
        keep: flag("E2E_KEEP"),
        ci: flag("CI"),
        concurrency,
        run_timeout: Duration::from_secs(minutes * 60),
    };
    std::fs::write(
        ctx.run.root.join("run.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "run_id": ctx.run.id,
            "tier": ctx.tier.to_string(),
            "realm": ctx.shape.realm,
            "principal": ctx.shape.principal,
            "db_host": ctx.shape.db_host,
            "spn": ctx.shape.spn,
            "release": ctx.shape.release,
            "deployment": std::env::var("E2E_DEPLOYMENT").ok(),
            "values": std::env::var("E2E_VALUES").ok(),
            "replay": std::env::var("E2E_REPLAY").ok(),
        }))?,
    )?;
    Ok(CTX.get_or_init(|| ctx))
}

/// `cargo test` runs the runner in harness/, so a relative path typed at the workspace root
/// would not be found; xtask passes absolute paths.
fn from_workspace(p: PathBuf) -> PathBuf {
    if p.is_relative() && !p.exists() {
        harness::run::workspace_root().join(p)
    } else {
        p
    }
}

/// After a scenario: secret material and bulky state go unless `--keep` (keytabs, the KDC
/// database and PostgreSQL's data directory); logs, traces and rendered configs stay.
pub fn scrub(dir: &Path, keep: bool) {
    harness::redact::sweep(dir);
    if keep {
        return;
    }
    for sub in [
        "secrets",
        "kdc/kdc-db",
        "postgres/pgdata",
        "pgbouncer/injected.keytab",
        "postgres/server.keytab",
        "postgres/server.key",
    ] {
        let p: PathBuf = dir.join(sub);
        if p.is_dir() {
            let _ = std::fs::remove_dir_all(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
}

pub fn finish_run(ctx: &Ctx) {
    harness::redact::sweep(&ctx.run.root);
}

/// Which scenarios run: a cucumber tag expression and a scenario-name regex.
pub struct Selection {
    pub tags: Option<cucumber::gherkin::tagexpr::TagOperation>,
    pub name: Option<regex::Regex>,
}

impl Selection {
    pub fn from_env() -> Result<Selection> {
        let tags = match std::env::var("E2E_TAGS") {
            Ok(t) if !t.trim().is_empty() => Some(t.parse().map_err(|e| {
                anyhow::anyhow!("--tags `{t}` is not a tag expression ({e:?}); write e.g. `@pgbouncer and not @airflow`")
            })?),
            _ => None,
        };
        let name = match std::env::var("E2E_NAME") {
            Ok(n) if !n.is_empty() => Some(
                regex::Regex::new(&n)
                    .with_context(|| format!("--name `{n}` is not a valid regex"))?,
            ),
            _ => None,
        };
        Ok(Selection { tags, name })
    }
}
