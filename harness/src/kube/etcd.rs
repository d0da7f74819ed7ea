//! etcd, the API server's store: Debian's `etcd-server`, on two free loopback ports with its
//! data in the scenario's directory.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::component::{Readiness, Spec};
use crate::ports::free_port;
use crate::substrate::local::Process;

pub const ETCD: &str = "/usr/bin/etcd";

pub struct Etcd {
    pub client_url: String,
    pub process: Process,
}

impl Etcd {
    pub async fn start(dir: &Path) -> Result<Etcd> {
        let client = free_port()?;
        let peer = free_port()?;
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        std::fs::create_dir_all(dir)?;
        let spec = Spec::new("etcd", ETCD)
            .args([
                "--name=harness".to_string(),
                format!("--data-dir={}", dir.join("data").display()),
                format!("--listen-client-urls={client_url}"),
                format!("--advertise-client-urls={client_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=harness={peer_url}"),
                "--log-level=warn".to_string(),
            ])
            .ready_when(
                Readiness::Http(format!("{client_url}/health")),
                Duration::from_secs(30),
            );
        let process = Process::start(&spec, &dir.join("etcd.log")).await?;
        Ok(Etcd {
            client_url,
            process,
        })
    }
}
