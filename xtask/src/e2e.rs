//! `cargo xtask e2e`, `test` and `bench`: make sure the machine has what the tier needs, build
//! the harness, then run the Gherkin runner (harness/tests/e2e.rs) with the run's settings in
//! its environment (E2E_*), so `cargo test --test e2e` alone behaves the same with defaults.
//! The settings are parsed here once, from the flags and the `E2E_AIRFLOW_*` variables, by
//! `harness_config::settings` (which holds every default); a bad value stops the run before
//! anything is built.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use harness_config::settings::{self as run_settings, Replay, Settings};

use crate::apiserver;
use crate::cargo;
use crate::deps::{self, Need};

const ALL_NEEDS: &[Need] = &[Need::Build, Need::PgbouncerBuild, Need::Run, Need::Airflow];

#[derive(Args, Debug)]
pub struct E2eArgs {
    /// Where components run: local (processes on loopback), docker (containers), kind, or auto
    /// (each scenario on docker where it runs there and a Docker engine answers, else local).
    #[arg(long, default_value = run_settings::DEFAULT_TIER, value_parser = ["auto", "local", "docker", "kind"])]
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
    /// Airflow major version for @airflow scenarios that do not name one [default: 3].
    #[arg(long, env = "E2E_AIRFLOW")]
    pub airflow: Option<String>,
    /// Scenarios run at once, each with its own realm, database and ports [default: 4].
    #[arg(long, env = "E2E_CONCURRENCY")]
    pub concurrency: Option<String>,
    /// Limit for the whole run, in minutes; everything started is stopped when it is reached
    /// [default: 60].
    #[arg(long, env = "E2E_RUN_TIMEOUT_MIN")]
    pub timeout_min: Option<String>,
    /// The docker tier: run PgBouncer from this image instead of the project's build (e.g.
    /// `quay.io/astronomer/ap-pgbouncer-krb:1.25.0-2`, where it can be pulled or is loaded).
    #[arg(long)]
    pub pgbouncer_image: Option<String>,
    #[command(flatten)]
    pub kind: crate::kind::KindArgs,
    /// An already built scenario runner (what `soak` passes, so a run times the flow and not
    /// a rebuild when the tree changes under it).
    #[arg(long, hide = true)]
    pub runner: Option<PathBuf>,
    /// Write into this run directory instead of a new one under target/e2e/ (what `hygiene`
    /// passes, so it knows each run's directory and id even when the run is interrupted).
    #[arg(long, hide = true)]
    pub run_dir: Option<PathBuf>,
}

/// The `E2E_AIRFLOW_*` knobs, which have no flag: read from xtask's own environment and
/// checked here, so a bad one stops the run at once.
const KNOB_VARS: &[&str] = &[
    "E2E_AIRFLOW_CONCURRENCY",
    "E2E_AIRFLOW_NICE",
    "E2E_AIRFLOW_FORKSERVER",
    "E2E_AIRFLOW_TEMPLATE",
    "E2E_AIRFLOW_FAST_API",
    // Test-only: `cargo xtask hygiene` plants it in every secret the run generates.
    "E2E_CANARY",
    // The kind tier's scenarios: the kind cluster (made from kind/cluster.yaml) they run on.
    "E2E_KUBECONFIG",
];

/// The flag that sets a variable, for error messages.
fn flag_of(var: &str) -> Option<&'static str> {
    Some(match var {
        "E2E_AIRFLOW" => "--airflow",
        "E2E_CONCURRENCY" => "--concurrency",
        "E2E_RUN_TIMEOUT_MIN" => "--timeout-min",
        _ => return None,
    })
}

/// Parses `vars` (variable, value) with the knobs from the environment into the run's settings.
fn parse(vars: Vec<(&'static str, Option<String>)>) -> Result<Settings> {
    let mut all: std::collections::HashMap<&str, String> = vars
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect();
    for k in KNOB_VARS {
        if let Ok(v) = std::env::var(k) {
            all.insert(k, v);
        }
    }
    if let Ok(ci) = std::env::var("CI") {
        all.insert("CI", ci);
    }
    Settings::from_vars(|k| all.get(k).cloned()).map_err(|e| match flag_of(e.variable) {
        Some(flag) => anyhow::anyhow!("{flag} ({e})"),
        None => anyhow::anyhow!("{e}"),
    })
}

/// The knobs alone (for `bench` and `env up`), checked before anything is built.
pub fn knob_settings(airflow: Option<&str>, offline: bool) -> Result<Settings> {
    let airflow = airflow
        .map(str::to_string)
        .or_else(|| std::env::var("E2E_AIRFLOW").ok());
    parse(vec![
        ("E2E_AIRFLOW", airflow),
        ("E2E_OFFLINE", Some(if offline { "1" } else { "0" }.into())),
    ])
}

fn absolute(flag: &str, p: &Path) -> Result<PathBuf> {
    if !p.exists() {
        bail!("{flag} {}: no such file; give the path of a deployment file such as fixtures/deployments/kerberos.yaml", p.display());
    }
    std::fs::canonicalize(p).with_context(|| format!("{flag} {}", p.display()))
}

pub fn run(a: &E2eArgs) -> Result<i32> {
    // With a kind cluster named in E2E_KUBECONFIG, the kind tier runs the @kind scenarios on it
    // (the kind substrate); without, it carries out the platform plan, which makes its own.
    if a.tier == "kind" && std::env::var_os("E2E_KUBECONFIG").is_none() {
        return crate::kind::run(
            &a.kind,
            a.deployment.as_deref(),
            a.values.as_deref(),
            a.offline,
        );
    }
    if a.kind.dry_run && a.tier == "kind" {
        bail!("--dry-run prints the kind tier's platform plan, which runs without E2E_KUBECONFIG: unset it");
    }
    if a.kind.dry_run {
        bail!("--dry-run applies to the kind tier only (--tier kind)");
    }
    if a.kind.external_network.is_some() {
        bail!("--external-network applies to the kind tier's platform plan (--tier kind without E2E_KUBECONFIG)");
    }
    if a.pgbouncer_image.is_some() && a.tier != "docker" && a.tier != "kind" {
        bail!("--pgbouncer-image applies to the container tiers: add --tier docker (or --tier kind with E2E_KUBECONFIG)");
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
    let settings = parse(vec![
        ("E2E_TIER", Some(a.tier.clone())),
        ("E2E_TAGS", a.tags.clone()),
        ("E2E_NAME", a.name.clone()),
        ("E2E_KEEP", Some(if a.keep { "1" } else { "0" }.into())),
        (
            "E2E_OFFLINE",
            Some(if a.offline { "1" } else { "0" }.into()),
        ),
        (
            "E2E_REPLAY",
            Some(if a.reproduce { "reproduce" } else { "refuse" }.into()),
        ),
        ("E2E_AIRFLOW", a.airflow.clone()),
        ("E2E_CONCURRENCY", a.concurrency.clone()),
        ("E2E_RUN_TIMEOUT_MIN", a.timeout_min.clone()),
        ("E2E_PGBOUNCER_IMAGE", a.pgbouncer_image.clone()),
    ])?;
    let settings = Settings {
        deployment,
        values,
        run_dir: a.run_dir.clone(),
        ..settings
    };
    deps::ensure(ALL_NEEDS, settings.offline)?;
    let settings = choose_tier(settings)?;
    scenarios(&settings, a.runner.as_deref())
}

/// Resolves `auto` (and builds the docker tier's images when it will be used), saying which
/// tier each scenario gets and why.
fn choose_tier(settings: Settings) -> Result<Settings> {
    match settings.tier.as_str() {
        // The kind substrate gives the kind node the same images.
        "docker" | "kind" => {
            docker_images(&settings)?;
            Ok(settings)
        }
        "auto" => match crate::images::engine_answers() {
            Ok(()) => {
                eprintln!("xtask: tier auto: a Docker engine answers, so every scenario tagged @docker runs on containers and the rest (the KDC-stall and day-two faults, @apiserver) locally; --tier local or --tier docker picks one");
                docker_images(&settings)?;
                Ok(settings)
            }
            Err(e) => {
                eprintln!("xtask: tier auto: every scenario runs locally ({e:#})");
                Ok(Settings {
                    tier: "local".into(),
                    ..settings
                })
            }
        },
        _ => Ok(settings),
    }
}

/// The docker tier's images, built where missing (a no-op when they are there): the KDC,
/// PostgreSQL, the generic PgBouncer, the broker and both Airflows and, unless another image is
/// given, the project's PgBouncer.
pub(crate) fn docker_images(settings: &Settings) -> Result<()> {
    // The generic PgBouncer is the "generic image" scenarios' subject.
    let mut only: Vec<String> = ["kdc", "postgres", "pgbouncer-generic", "redis"]
        .map(String::from)
        .to_vec();
    only.extend(crate::images::airflow_images());
    if settings.pgbouncer_image.is_none() {
        only.push("pgbouncer".into());
    }
    crate::images::ensure(&crate::images::ImagesArgs {
        base: std::env::var("E2E_BASE_IMAGE").unwrap_or_else(|_| "debootstrap".into()),
        only,
        offline: settings.offline,
    })
    .map(drop)
}

/// Builds and runs the scenario runner. It is run directly, not through `cargo test`, so its
/// summary line (`e2e: N passed, N failed, N skipped`) stays the last line printed even when a
/// scenario fails (cargo would add its own error lines after it).
fn scenarios(settings: &Settings, runner: Option<&Path>) -> Result<i32> {
    // The API server is built only when its scenarios may run: its first build takes minutes.
    let mut settings = settings.clone();
    if settings.kube_apiserver.is_none() && apiserver::selected(settings.tags.as_deref()) {
        deps::ensure(&[Need::Apiserver], settings.offline)?;
        settings.kube_apiserver = Some(apiserver::ensure_built(settings.offline)?);
    }
    let runner = match runner {
        Some(r) => r.to_path_buf(),
        None => cargo::test_binary(
            "building the harness and its scenario runner",
            "harness",
            "e2e",
        )?,
    };
    let mut cmd = std::process::Command::new(&runner);
    cmd.current_dir(cargo::root().join("harness"));
    for (k, v) in settings.to_vars() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    eprintln!("xtask: running the scenarios (tier {})", settings.tier);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start the scenario runner {}", runner.display()))?;
    // The runner owns Ctrl-C: it stops every component it started, then exits. xtask only waits
    // for it, so the summary line stays the last thing printed.
    ignore_interrupts();
    let status = child.wait().context("waiting for the scenario runner")?;
    // Killed before its own handler was installed (or by another signal): say so, since the
    // runner could not.
    if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&status) {
        eprintln!("xtask: the scenario runner was stopped by signal {sig}");
        return Ok(128 + sig);
    }
    Ok(status.code().unwrap_or(130))
}

/// `cargo xtask test`: what CI runs. Unit tests, the configuration fixtures, then every scenario
/// exactly as `cargo xtask e2e` runs them.
pub fn test(offline: bool) -> Result<i32> {
    deps::ensure(ALL_NEEDS, offline)?;
    cargo::run(
        "running the unit and fixture tests of xtask and harness-config",
        &["test", "--workspace", "--exclude", "harness"],
    )?;
    crate::render::validate_reference(offline)?;
    crate::chart_diff::self_test(offline)?;
    cargo::run(
        "running the harness's unit tests",
        &["test", "-p", "harness", "--lib", "--bins"],
    )?;
    // Every scenario with the defaults (and the knobs the environment sets, checked).
    let all = Settings {
        tier: "local".into(),
        replay: Replay::Refuse,
        ..knob_settings(None, offline)?
    };
    let local = scenarios(&all, None)?;
    // Then every scenario that runs on containers, on the docker tier. CI has an engine; a
    // machine without one says so (and CI=true makes that a failure).
    let docker = match crate::images::engine_answers() {
        Ok(()) => {
            let on_docker = Settings {
                tier: "docker".into(),
                ..all.clone()
            };
            docker_images(&on_docker)?;
            scenarios(&on_docker, None)?
        }
        Err(e) if all.ci => bail!("the docker tier's scenarios cannot run: {e:#}"),
        Err(e) => {
            eprintln!("xtask: skipping the docker tier's scenarios: {e:#}");
            0
        }
    };
    // What runs leave behind, interrupted and side by side (about a minute).
    let hygiene = crate::hygiene::run(&crate::hygiene::HygieneArgs {
        points: crate::hygiene::DEFAULT_POINTS,
        offline,
    })?;
    Ok(local.max(docker).max(hygiene))
}

pub fn bench(
    runs: usize,
    out: Option<PathBuf>,
    offline: bool,
    airflow: Option<&str>,
    tier: &str,
    relogin_only: bool,
) -> Result<i32> {
    if relogin_only && tier != "local" {
        bail!("--relogin-only runs on the local tier: drop --tier {tier}");
    }
    let settings = Settings {
        tier: tier.into(),
        ..knob_settings(airflow, offline)?
    };
    deps::ensure(ALL_NEEDS, offline)?;
    if settings.tier == "docker" {
        docker_images(&settings)?;
    }
    let runs_s = runs.to_string();
    // Not --quiet: on a cold target cargo's `Compiling` lines are the progress of a build that
    // takes minutes.
    let mut args = vec![
        "run", "-p", "harness", "--bin", "harness", "--", "bench", "--runs", &runs_s,
    ];
    if relogin_only {
        args.push("--relogin-only");
    }
    let out_s;
    if let Some(o) = &out {
        out_s = o.display().to_string();
        args.extend(["--out", &out_s]);
    }
    let vars: Vec<(&str, String)> = settings
        .to_vars()
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect();
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
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
