//! The fork server (airflow/config/harness_forkserver.py): Airflow imported once, every component
//! forked from it, at a lower CPU priority than Airflow 3's api-server starting beside it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::component::{Readiness, Spec};
use crate::substrate::local::Process;

/// The CPU priority of the fork server and what it forks while Airflow 3's api-server starts
/// beside it (E2E_AIRFLOW_NICE, 0-19; 5 unless set).
fn nice_level() -> Result<u8> {
    parse_nice(std::env::var("E2E_AIRFLOW_NICE").ok().as_deref())
}

fn parse_nice(value: Option<&str>) -> Result<u8> {
    match value.map(str::trim) {
        None | Some("") => Ok(5),
        Some(v) => v.parse::<u8>().ok().filter(|n| *n <= 19).with_context(|| {
            format!(
                "E2E_AIRFLOW_NICE is `{v}`: set it to a niceness from 0 to 19, or unset it for 5"
            )
        }),
    }
}

/// Runs `spec` under `nice -n level` (when /usr/bin/nice exists; without it, at normal priority).
pub(super) fn with_nice(spec: &mut Spec, level: u8) {
    let nice = Path::new("/usr/bin/nice");
    if nice.exists() {
        let mut args = vec![
            "-n".to_string(),
            level.to_string(),
            spec.program.display().to_string(),
        ];
        args.append(&mut spec.args);
        spec.args = args;
        spec.program = nice.to_path_buf();
    }
}

/// Whether components are forked from one process that imported Airflow (E2E_AIRFLOW_FORKSERVER,
/// on unless `0`): five imports of Airflow on two cores are most of the start-up time.
pub(super) fn enabled() -> bool {
    std::env::var("E2E_AIRFLOW_FORKSERVER").map_or(true, |v| v != "0" && v != "false")
}

pub(super) async fn launch(
    python: &Path,
    env: &[(String, String)],
    dir: &Path,
    lower_priority: bool,
) -> Result<(Process, tempfile::TempDir, PathBuf)> {
    // Unix socket paths are limited to 107 bytes, too short for run directories.
    let tmp = tempfile::Builder::new()
        .prefix("harness-airflow-")
        .tempdir_in("/tmp")?;
    let socket = tmp.path().join("forkserver.sock");
    let mut spec = Spec::new("airflow-forkserver", python)
        .args(["-m", "harness_forkserver", "serve"])
        .arg(socket.display().to_string())
        .envs(env)
        .ready_when(
            Readiness::LogLine("forkserver ready".into()),
            Duration::from_secs(120),
        );
    spec.cwd = Some(dir.to_path_buf());
    if lower_priority {
        // Airflow 3's api-server, importing Airflow and building its app beside the fork server,
        // is the last component to answer; the fork server's import and the scheduler,
        // dag-processor and triggerer it forks (they heartbeat after about 2 s of CPU) are not,
        // so they run at a lower priority and inherit it (the worker goes 10 lower still).
        with_nice(&mut spec, nice_level()?);
    }
    // The fork server's environment is what every forked component starts from.
    spec.env_remove = super::NOT_INHERITED.iter().map(|s| s.to_string()).collect();
    spec.stop_grace = Duration::from_secs(2);
    let process = Process::start(&spec, &dir.join("forkserver.log")).await?;
    Ok((process, tmp, socket))
}

#[cfg(test)]
mod tests {
    use super::parse_nice;

    #[test]
    fn niceness_defaults_to_5_and_rejects_what_nice_would_not_take() {
        assert_eq!(parse_nice(None).unwrap(), 5);
        assert_eq!(parse_nice(Some(" ")).unwrap(), 5);
        assert_eq!(parse_nice(Some("12")).unwrap(), 12);
        for bad in ["20", "-1", "high"] {
            let e = parse_nice(Some(bad)).unwrap_err().to_string();
            assert!(
                e.contains("E2E_AIRFLOW_NICE") && e.contains("0 to 19"),
                "{e}"
            );
        }
    }
}
