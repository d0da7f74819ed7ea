//! The Celery broker: Debian's `redis-server` in its own place, with a private directory, no
//! persistence, and a per-run password (in a 0600 config file, never on a command line).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::component::{Readiness, RunAs, Spec};
use crate::secret::Secret;
use crate::substrate::{Endpoint, Running, Substrate};

pub struct Redis {
    pub log: PathBuf,
    /// Where Airflow's components dial it.
    at: Endpoint,
    password: Secret,
    process: Option<Box<dyn Running>>,
}

impl Redis {
    pub async fn start(substrate: &dyn Substrate, dir: &Path) -> Result<Redis> {
        let place = substrate.place("redis", dir, RunAs::Invoker)?;
        let port = substrate.listen_port(&place, "redis", 6379)?;
        let password = Secret::generate();
        let text = format!(
            "port {port}\nbind {}\nprotected-mode yes\ndaemonize no\ndir {}\nsave \"\"\nappendonly no\nlogfile \"\"\nrequirepass {}\n",
            place.bind,
            place.dir.display(),
            password.expose()
        );
        let mut spec = Spec::new("redis", substrate.program(&place, "redis-server")?)
            .arg(place.path_str("redis.conf")?)
            .file("redis.conf", text, 0o600)
            .port("redis", port)
            .ready_when(
                Readiness::LogLine("Ready to accept connections".into()),
                Duration::from_secs(15),
            );
        spec.stop_grace = Duration::from_secs(2);
        let process = substrate.start(&place, spec).await?;
        Ok(Redis {
            log: process.log_file(),
            at: process.peer_endpoint("redis")?,
            password,
            process: Some(process),
        })
    }

    /// The Celery broker URL (`AIRFLOW__CELERY__BROKER_URL`).
    pub fn url(&self) -> String {
        format!("redis://:{}@{}/0", self.password.expose(), self.at)
    }

    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.is_running())
    }

    pub async fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop().await;
        }
    }
}
