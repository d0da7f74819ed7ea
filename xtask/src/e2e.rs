//! `cargo xtask e2e`, `test` and `bench`: make sure the machine has what the tier needs, build
//! the harness, then run the Gherkin runner (harness/tests/e2e.rs) with the run's settings in
//! its environment (E2E_*), so `cargo test --test e2e` alone behaves the same with defaults.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::apiserver;
use crate::cargo;
use crate::deps::{self, Need};

const ALL_NEEDS: &[Need] = &[Need::Build, Need::PgbouncerBuild, Need::Run, Need::Airflow];

#[derive(Args, Debug)]
pub struct E2eArgs {
    /// Where components run: local (processes on loopback), docker, kind.
    #[arg(long, default_value = "local", value_parser = ["local", "docker", "kind"])]
    pub tier: String,
    /// A cucumber tag expression narrowing the scenarios, e.g. `@pgbouncer and not @airflow`.
    #[arg(long)]
    pub tags: Option<String>,
    /// A regex on scenario names, e.g. to rerun the one that failed.
    #[arg(long)]
    pub name: Option<String>,
    /// Keep keytabs, the KDC database and PostgreSQL's data directory in the artifacts.
    #[arg(long)]
    pub keep: bool,
    /// Never install anything (apt, pip); fail naming what is missing.
    #[arg(long)]
    pub offline: bool,
    /// Replay a deployment file (the `variables` of Houston's mutation): the environment adopts
    /// its realm, principal, database host and names.
    #[arg(long)]
    pub deployment: Option<PathBuf>,
    /// The control plane's values.yaml that goes with --deployment.
    #[arg(long)]
    pub values: Option<PathBuf>,
    /// Build the replayed environment from the file as written, lint errors included, to watch
    /// it fail the way the platform would (only for errors the local tier can reproduce).
    #[arg(long, requires = "deployment")]
    pub reproduce: bool,
    /// Airflow major version for @airflow scenarios that do not name one.
    #[arg(long, default_value = "3", value_parser = ["2", "3"])]
    pub airflow: String,
    /// Scenarios run at once (each has its own realm, database and ports).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Limit for the whole run, in minutes; everything started is stopped when it is reached.
    #[arg(long, default_value_t = 60)]
    pub timeout_min: u64,
}

fn absolute(flag: &str, p: &Path) -> Result<PathBuf> {
    if !p.exists() {
        bail!("{flag} {}: no such file; give the path of a deployment file such as fixtures/deployments/kerberos.yaml", p.display());
    }
    std::fs::canonicalize(p).with_context(|| format!("{flag} {}", p.display()))
}

pub fn run(a: &E2eArgs) -> Result<i32> {
    if a.tier != "local" {
        bail!(
            "the {} tier is not implemented yet: only `--tier local` runs on this machine (README.md, \"Tiers\", says what each tier needs)",
            a.tier
        );
    }
    if a.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let deployment = a
        .deployment
        .as_deref()
        .map(|p| absolute("--deployment", p))
        .transpose()?;
    let values = a
        .values
        .as_deref()
        .map(|p| absolute("--values", p))
        .transpose()?;
    if values.is_some() && deployment.is_none() {
        bail!("--values needs --deployment: the environment is shaped by the deployment file, the values only add the control plane's checks");
    }
    deps::ensure(ALL_NEEDS, a.offline)?;
    scenarios(a, deployment.as_deref(), values.as_deref())
}

/// Builds and runs the scenario runner. It is run directly, not through `cargo test`, so its
/// summary line (`e2e: N passed, N failed, N skipped`) stays the last line printed even when a
/// scenario fails (cargo would add its own error lines after it).
fn scenarios(a: &E2eArgs, deployment: Option<&Path>, values: Option<&Path>) -> Result<i32> {
    // The API server is built only when its scenarios may run: its first build takes minutes.
    let kube_apiserver = if apiserver::selected(a.tags.as_deref()) {
        deps::ensure(&[Need::Apiserver], a.offline)?;
        Some(apiserver::ensure_built(a.offline)?)
    } else {
        None
    };
    let runner = cargo::test_binary(
        "building the harness and its scenario runner",
        "harness",
        "e2e",
    )?;
    let mut cmd = std::process::Command::new(&runner);
    cmd.current_dir(cargo::root().join("harness"))
        .env("E2E_TIER", &a.tier)
        .env("E2E_KEEP", if a.keep { "1" } else { "0" })
        .env("E2E_OFFLINE", if a.offline { "1" } else { "0" })
        .env("E2E_AIRFLOW", &a.airflow)
        .env(
            "E2E_REPLAY",
            if a.reproduce { "reproduce" } else { "refuse" },
        )
        .env("E2E_CONCURRENCY", a.concurrency.to_string())
        .env("E2E_RUN_TIMEOUT_MIN", a.timeout_min.to_string());
    let optional = [
        ("E2E_TAGS", a.tags.as_deref().map(std::ffi::OsStr::new)),
        ("E2E_NAME", a.name.as_deref().map(std::ffi::OsStr::new)),
        ("E2E_DEPLOYMENT", deployment.map(Path::as_os_str)),
        ("E2E_VALUES", values.map(Path::as_os_str)),
        (
            apiserver::ENV,
            kube_apiserver.as_deref().map(Path::as_os_str),
        ),
    ];
    for (k, v) in optional {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    eprintln!("xtask: running the scenarios (tier {})", a.tier);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start the scenario runner {}", runner.display()))?;
    // The runner owns Ctrl-C: it stops every component it started, then exits. xtask only waits
    // for it, so the summary line stays the last thing printed.
    ignore_interrupts();
    let status = child.wait().context("waiting for the scenario runner")?;
    Ok(status.code().unwrap_or(130))
}

/// `cargo xtask test`: what CI runs. Unit tests, the configuration fixtures, then every scenario
/// exactly as `cargo xtask e2e` runs them.
pub fn test(offline: bool) -> Result<i32> {
    deps::ensure(ALL_NEEDS, offline)?;
    cargo::run(
        "running the unit and fixture tests of xtask and harness-config",
        &["test", "--workspace", "--exclude", "harness", "--quiet"],
    )?;
    cargo::run(
        "running the harness's unit tests",
        &["test", "-p", "harness", "--lib", "--bins", "--quiet"],
    )?;
    let all = E2eArgs {
        tier: "local".into(),
        tags: None,
        name: None,
        keep: false,
        offline,
        deployment: None,
        values: None,
        reproduce: false,
        airflow: "3".into(),
        concurrency: 4,
        timeout_min: 60,
    };
    scenarios(&all, None, None)
}

pub fn bench(
    runs: usize,
    out: Option<PathBuf>,
    offline: bool,
    airflow: Option<&str>,
) -> Result<i32> {
    deps::ensure(ALL_NEEDS, offline)?;
    let runs_s = runs.to_string();
    let mut args = vec![
        "run", "--quiet", "-p", "harness", "--bin", "harness", "--", "bench", "--runs", &runs_s,
    ];
    let out_s;
    if let Some(o) = &out {
        out_s = o.display().to_string();
        args.extend(["--out", &out_s]);
    }
    let env: Vec<(&str, &str)> = airflow.map(|v| ("E2E_AIRFLOW", v)).into_iter().collect();
    cargo::run_with_env("benchmarking", &args, &env)?;
    Ok(0)
}

/// SIGINT reaches the whole foreground process group. The child handles it (stopping every
/// component it started); xtask ignores it so it does not exit before the child has cleaned up
/// and printed its summary. Called after spawning, so the child keeps the default disposition.
pub fn ignore_interrupts() {
    // SAFETY: installing SIG_IGN has no handler code to race with.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
}
