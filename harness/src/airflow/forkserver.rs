//! The fork server (airflow/config/harness_forkserver.py): Airflow imported once, every component
//! forked from it, at a lower CPU priority than Airflow 3's api-server starting beside it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::component::{Readiness, Spec};
use crate::substrate::{Place, Running, Substrate};

pub(super) async fn launch(
    substrate: &dyn Substrate,
    place: &Place,
    python: &Path,
    env: &[(String, String)],
    nice: Option<u8>,
) -> Result<(Box<dyn Running>, crate::scratch::Scratch, PathBuf)> {
    // Unix socket paths are limited to 107 bytes, too short for run directories.
    let tmp = crate::scratch::tempdir("airflow")?;
    let socket = tmp.path().join("forkserver.sock");
    let mut spec = Spec::new("forkserver", python)
        .args(["-m", "harness_forkserver", "serve"])
        .arg(socket.display().to_string())
        .envs(env)
        .ready_when(
            Readiness::LogLine("forkserver ready".into()),
            Duration::from_secs(120),
        );
    if let Some(level) = nice {
        // Airflow 3's api-server, importing Airflow and building its app beside the fork server,
        // is the last component to answer; the fork server's import and the scheduler,
        // dag-processor and triggerer it forks (they heartbeat after about 2 s of CPU) are not,
        // so they run at a lower priority and inherit it (the worker goes 10 lower still).
        spec.nice = Some(level.into());
    }
    // The fork server's environment is what every forked component starts from.
    spec.env_remove = super::NOT_INHERITED.iter().map(|s| s.to_string()).collect();
    spec.stop_grace = Duration::from_secs(2);
    let process = substrate.start(place, spec).await?;
    Ok((process, tmp, socket))
}
