//! etcd, the API server's store: Debian's `etcd-server`, started through the run's substrate
//! (its client and peer ports are the substrate's to choose) with its data in its place.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::component::{Readiness, RunAs, Spec};
use crate::substrate::{Running, Substrate};

pub const ETCD: &str = "/usr/bin/etcd";

pub struct Etcd {
    /// The client URL as the API server dials it.
    pub client_url: String,
    pub running: Box<dyn Running>,
}

impl Etcd {
    pub async fn start(substrate: &Arc<dyn Substrate>, dir: &Path) -> Result<Etcd> {
        let place = substrate.place("etcd", dir, RunAs::Invoker)?;
        let client = substrate.listen_port(&place, "client", 2379)?;
        let peer = substrate.listen_port(&place, "peer", 2380)?;
        let listen = |port: u16| format!("http://{}:{port}", place.bind);
        let advertise = |port: u16| format!("http://{}:{port}", place.host);
        let spec = Spec::new("etcd", ETCD)
            .args([
                "--name=harness".to_string(),
                format!("--data-dir={}", place.path_str("data")?),
                format!("--listen-client-urls={}", listen(client)),
                format!("--advertise-client-urls={}", advertise(client)),
                format!("--listen-peer-urls={}", listen(peer)),
                format!("--initial-advertise-peer-urls={}", advertise(peer)),
                format!("--initial-cluster=harness={}", advertise(peer)),
                "--log-level=warn".to_string(),
            ])
            .port("client", client)
            .port("peer", peer)
            .ready_when(Readiness::Port("client".into()), Duration::from_secs(30));
        let running = substrate.start(&place, spec).await?;
        let client_url = format!("http://{}", running.peer_endpoint("client")?);
        Ok(Etcd {
            client_url,
            running,
        })
    }
}
