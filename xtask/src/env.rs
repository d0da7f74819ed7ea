//! `cargo xtask env up|down|status|shell`: one long-lived environment per name under
//! `target/env/<name>/`, served by `harness env-serve` in its own process group so a Ctrl-C in the
//! terminal that started it does not take it down.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use crate::cargo;
use crate::deps::{self, Need};

#[derive(Subcommand)]
pub enum EnvCmd {
    /// Start a realm, a Kerberized PostgreSQL and PgBouncer, and leave them running.
    Up {
        #[arg(long, default_value = "default")]
        name: String,
        /// Shape the environment after a deployment file (realm, principal, host, names).
        #[arg(long)]
        deployment: Option<PathBuf>,
        /// The control plane's values that go with --deployment.
        #[arg(long, requires = "deployment")]
        values: Option<PathBuf>,
        /// Build a deployment file with lint errors as written (see `e2e --reproduce`).
        #[arg(long, requires = "deployment")]
        reproduce: bool,
        /// Also run Airflow (3 or 2) behind PgBouncer, with the CeleryExecutor, until its health
        /// report is all healthy; env status prints its URL, env shell has its admin password.
        #[arg(long, value_parser = ["2", "3"])]
        airflow: Option<String>,
        /// Where it runs: processes on loopback, or containers with host names on a network
        /// of their own (the docker tier's images, built where missing).
        #[arg(long, default_value = "local", value_parser = ["local", "docker"])]
        tier: String,
        #[arg(long)]
        offline: bool,
    },
    /// Stop the environment and everything it started.
    Down {
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// Is it running; its ports, principals and log files.
    Status {
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// A shell whose environment points at the running realm, database and PgBouncer.
    Shell {
        #[arg(long, default_value = "default")]
        name: String,
    },
}

fn env_dir(name: &str) -> Result<PathBuf> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("--name `{name}`: use letters, digits, `-` and `_` only");
    }
    Ok(cargo::root().join("target/env").join(name))
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
}

fn running_pid(dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(dir.join("serve.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    alive(pid).then_some(pid)
}

pub fn run(cmd: EnvCmd) -> Result<i32> {
    match cmd {
        EnvCmd::Up {
            name,
            deployment,
            values,
            reproduce,
            airflow,
            tier,
            offline,
        } => up(
            &name,
            Replay {
                deployment: deployment.as_deref(),
                values: values.as_deref(),
                reproduce,
            },
            airflow.as_deref(),
            &tier,
            offline,
        ),
        EnvCmd::Down { name } => down(&name),
        EnvCmd::Status { name } => status(&name),
        EnvCmd::Shell { name } => shell(&name),
    }
}

/// A customer's configuration to shape the environment after.
struct Replay<'a> {
    deployment: Option<&'a Path>,
    values: Option<&'a Path>,
    reproduce: bool,
}

fn up(name: &str, replay: Replay, airflow: Option<&str>, tier: &str, offline: bool) -> Result<i32> {
    let Replay {
        deployment,
        values,
        reproduce,
    } = replay;
    let dir = env_dir(name)?;
    if let Some(pid) = running_pid(&dir) {
        println!("env `{name}` is already running (pid {pid}); `cargo xtask env status --name {name}` shows it");
        return Ok(0);
    }
    let canonical = |flag: &str, p: Option<&Path>| -> Result<Option<PathBuf>> {
        p.map(|p| {
            std::fs::canonicalize(p)
                .with_context(|| format!("{flag} {}: no such file", p.display()))
        })
        .transpose()
    };
    let deployment = canonical("--deployment", deployment)?;
    let values = canonical("--values", values)?;
    let knobs = harness_config::settings::Settings {
        tier: tier.into(),
        ..crate::e2e::knob_settings(airflow, offline)?
    };
    let mut needs = vec![Need::Build, Need::PgbouncerBuild, Need::Run];
    if airflow.is_some() {
        needs.push(Need::Airflow);
    }
    deps::ensure(&needs, offline)?;
    if tier == "docker" {
        crate::e2e::docker_images(&knobs)?;
    }
    cargo::run(
        "building the harness",
        // Not --quiet: cargo's `Compiling` lines are the progress of a cold build.
        &["build", "-p", "harness", "--bin", "harness"],
    )?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let log = std::fs::File::create(dir.join("serve.log"))?;
    let bin = cargo::root().join("target/debug/harness");
    let mut cmd = Command::new(&bin);
    cmd.arg("env-serve").arg("--dir").arg(&dir);
    if let Some(d) = &deployment {
        cmd.arg("--deployment").arg(d);
    }
    if let Some(v) = &values {
        cmd.arg("--values").arg(v);
    }
    if let Some(v) = airflow {
        cmd.arg("--airflow").arg(v);
    }
    if reproduce {
        cmd.arg("--reproduce");
    }
    // The knobs env-serve reads (offline, the E2E_AIRFLOW_* variables), checked above.
    for (k, v) in knobs.to_vars() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .with_context(|| format!("could not start {}", bin.display()))?;
    std::fs::write(dir.join("serve.pid"), child.id().to_string())?;
    eprintln!("xtask: starting env `{name}` in {}", dir.display());
    let started = Instant::now();
    while !dir.join("env.json").exists() {
        if let Some(st) = child.try_wait()? {
            let log = std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
            bail!("the environment did not come up ({st}):\n{}", log.trim());
        }
        // Airflow's first start installs its venv and migrates its schema.
        let limit = Duration::from_secs(if airflow.is_some() { 600 } else { 180 });
        if started.elapsed() > limit {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            bail!(
                "the environment was not ready after {} s; see {}",
                limit.as_secs(),
                dir.join("serve.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "xtask: env `{name}` up in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    status(name)?;
    println!("\nnext: `cargo xtask env shell --name {name}` (psql, psql-direct, pgbouncer-admin, klist), `cargo xtask env down --name {name}`");
    if airflow.is_some() {
        println!("Airflow: open the `airflow.url` above and log in as `admin` with the password `echo $AIRFLOW_ADMIN_PASSWORD` shows inside `cargo xtask env shell --name {name}`");
    }
    Ok(0)
}

fn down(name: &str) -> Result<i32> {
    let dir = env_dir(name)?;
    let Some(pid) = running_pid(&dir) else {
        println!("env `{name}` is not running");
        return Ok(0);
    };
    Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()?;
    let started = Instant::now();
    while alive(pid) {
        if started.elapsed() > Duration::from_secs(30) {
            // The process group holds every component the server started.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .status();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = std::fs::remove_file(dir.join("serve.pid"));
    println!("env `{name}` stopped; its logs stay in {}", dir.display());
    Ok(0)
}

fn status(name: &str) -> Result<i32> {
    let dir = env_dir(name)?;
    match (
        running_pid(&dir),
        std::fs::read_to_string(dir.join("env.json")),
    ) {
        (Some(pid), Ok(json)) => {
            println!("env `{name}` running (pid {pid}):\n{json}");
            Ok(0)
        }
        (Some(pid), Err(_)) => {
            println!("env `{name}` is starting (pid {pid})");
            Ok(0)
        }
        (None, _) => {
            println!(
                "env `{name}` is not running; start it with `cargo xtask env up --name {name}`"
            );
            Ok(1)
        }
    }
}

fn shell(name: &str) -> Result<i32> {
    let dir = env_dir(name)?;
    if running_pid(&dir).is_none() || !dir.join("env.sh").exists() {
        bail!("env `{name}` is not running; start it with `cargo xtask env up --name {name}`");
    }
    eprintln!("xtask: a shell in env `{name}`; `exit` leaves it (the environment keeps running)");
    let status = Command::new("bash")
        .arg("--rcfile")
        .arg(dir.join("env.sh"))
        .arg("-i")
        .status()?;
    Ok(status.code().unwrap_or(0))
}
