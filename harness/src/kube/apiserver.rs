//! A real kube-apiserver (v1.20.2, built from Debian's `kubernetes` source by
//! kind/apiserver/build.sh via `cargo xtask`) on a free loopback port: its own CA and serving
//! certificate, a static token file for the harness's identity, RBAC authorization.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::component::{Readiness, Spec};
use crate::ports::free_port;
use crate::secret::{write_private, Secret};
use crate::substrate::local::{tail, Process};

use super::pki::Pki;

/// Where `cargo xtask` tells the runner the binary is (xtask/src/apiserver.rs sets it).
pub const BINARY_ENV: &str = "E2E_KUBE_APISERVER";

/// The harness's user: in `system:masters`, which RBAC lets do everything.
pub const ADMIN_USER: &str = "harness-admin";

pub fn binary() -> Result<PathBuf> {
    let p = std::env::var_os(BINARY_ENV).map(PathBuf::from).context(
        "no kube-apiserver: E2E_KUBE_APISERVER is not set; run the @apiserver scenarios with \
         `cargo xtask e2e --tags @apiserver`, which builds it from Debian's source (~5 min, once)",
    )?;
    if !p.exists() {
        bail!(
            "E2E_KUBE_APISERVER={} does not exist; `cargo xtask e2e --tags @apiserver` builds it",
            p.display()
        );
    }
    Ok(p)
}

pub struct Apiserver {
    pub url: String,
    pub token: Secret,
    pub process: Process,
    pub log: PathBuf,
}

impl Apiserver {
    pub async fn start(dir: &Path, pki: &Pki, etcd_url: &str) -> Result<Apiserver> {
        let bin = binary()?;
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        let serving = pki.serving("apiserver", &["127.0.0.1", "localhost"])?;
        let (sa_key, sa_pub) = pki.service_account_key()?;
        let token = Secret::generate();
        let tokens = dir.join("tokens.csv");
        write_private(
            &tokens,
            format!(
                "{},{ADMIN_USER},{ADMIN_USER},system:masters\n",
                token.expose()
            )
            .as_bytes(),
        )?;
        let spec = Spec::new("kube-apiserver", bin)
            .args([
                "--bind-address=127.0.0.1".to_string(),
                "--advertise-address=127.0.0.1".to_string(),
                format!("--secure-port={port}"),
                "--insecure-port=0".to_string(),
                format!("--etcd-servers={etcd_url}"),
                format!("--tls-cert-file={}", serving.cert_file.display()),
                format!("--tls-private-key-file={}", serving.key_file.display()),
                format!("--client-ca-file={}", pki.ca_file().display()),
                format!("--token-auth-file={}", tokens.display()),
                "--authorization-mode=RBAC".to_string(),
                "--service-account-issuer=https://kubernetes.default.svc".to_string(),
                format!("--service-account-key-file={}", sa_pub.display()),
                format!("--service-account-signing-key-file={}", sa_key.display()),
                "--service-cluster-ip-range=10.96.0.0/16".to_string(),
                // Only one API server, and no controller-manager to maintain endpoints or
                // service-account tokens: the pods are admitted, never run.
                "--endpoint-reconciler-type=none".to_string(),
                "--disable-admission-plugins=ServiceAccount".to_string(),
                format!("--cert-dir={}", dir.join("certs").display()),
                "--v=1".to_string(),
            ])
            .ready_when(Readiness::TcpPort(port), Duration::from_secs(60));
        let log = dir.join("kube-apiserver.log");
        let process = Process::start(&spec, &log).await?;
        Ok(Apiserver {
            url: format!("https://127.0.0.1:{port}"),
            token,
            process,
            log,
        })
    }

    /// Waits for `/readyz` (etcd reachable, bootstrap RBAC roles and priority classes in place).
    pub async fn wait_ready(&mut self, client: &::kube::Client, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        let mut last: String;
        loop {
            if !self.process.is_running() {
                bail!(
                    "kube-apiserver exited during start-up; last lines of {}:\n{}",
                    self.log.display(),
                    tail(&self.log, 20)
                );
            }
            let req = http::Request::get("/readyz").body(Vec::new())?;
            match client.request_text(req).await {
                Ok(t) if t.trim() == "ok" => return Ok(()),
                Ok(t) => last = t,
                Err(e) => last = e.to_string(),
            }
            if Instant::now() > deadline {
                bail!(
                    "kube-apiserver did not become ready within {limit:?} (last /readyz: {last}); last lines of {}:\n{}",
                    self.log.display(),
                    tail(&self.log, 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
