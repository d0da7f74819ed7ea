//! The Celery broker: Debian's `redis-server` on a free loopback port, with a private directory,
//! no persistence, and a per-run password (in a 0600 config file, never on a command line).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::component::{Readiness, Spec};
use crate::secret::{write_private, Secret};
use crate::substrate::local::Process;

pub struct Redis {
    pub port: u16,
    pub log: PathBuf,
    password: Secret,
    process: Option<Process>,
}

impl Redis {
    pub async fn start(dir: &Path) -> Result<Redis> {
        std::fs::create_dir_all(dir)?;
        let port = crate::ports::free_port()?;
        let password = Secret::generate();
        let conf = dir.join("redis.conf");
        let text = format!(
            "port {port}\nbind 127.0.0.1\nprotected-mode yes\ndaemonize no\ndir {}\nsave \"\"\nappendonly no\nlogfile \"\"\nrequirepass {}\n",
            dir.display(),
            password.expose()
        );
        write_private(&conf, text.as_bytes())?;
        let log = dir.join("redis.log");
        let mut spec = Spec::new("redis", crate::tools::path("redis-server")?)
            .arg(conf.display().to_string())
            .ready_when(
                Readiness::LogLine("Ready to accept connections".into()),
                Duration::from_secs(15),
            );
        spec.stop_grace = Duration::from_secs(2);
        let process = Process::start(&spec, &log).await?;
        Ok(Redis {
            port,
            log,
            password,
            process: Some(process),
        })
    }

    /// The Celery broker URL (`AIRFLOW__CELERY__BROKER_URL`).
    pub fn url(&self) -> String {
        format!(
            "redis://:{}@127.0.0.1:{}/0",
            self.password.expose(),
            self.port
        )
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
