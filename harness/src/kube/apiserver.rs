//! A real kube-apiserver (v1.20.2, built from Debian's `kubernetes` source by
//! kind/apiserver/build.sh via `cargo xtask`) on a free loopback port: its own CA and serving
//! certificate, a static token file for the harness's identity, RBAC authorization.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::component::{Readiness, RunAs, Spec};
use crate::logs::last_lines;
use crate::secret::Secret;
use crate::substrate::{LogCursor, Running, Substrate};

use super::pki::Pki;

/// The harness's user: in `system:masters`, which RBAC lets do everything.
pub const ADMIN_USER: &str = "harness-admin";

/// The binary `cargo xtask` built (the run's settings carry its path); a clear error when the
/// runner was started without it.
pub fn binary(configured: Option<&Path>) -> Result<PathBuf> {
    let p = configured.map(Path::to_path_buf).context(
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
    pub running: Box<dyn Running>,
    pub log: PathBuf,
}

impl Apiserver {
    pub async fn start(
        substrate: &Arc<dyn Substrate>,
        bin: &Path,
        dir: &Path,
        pki: &Pki,
        etcd_url: &str,
    ) -> Result<Apiserver> {
        let place = substrate.place("kube-apiserver", dir, RunAs::Invoker)?;
        let port = substrate.listen_port(&place, "https", 6443)?;
        let serving = pki.serving("apiserver", &[place.host.as_str()])?;
        let (sa_key, sa_pub) = pki.service_account_key()?;
        let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        let token = Secret::generate();
        let tokens = format!(
            "{},{ADMIN_USER},{ADMIN_USER},system:masters\n",
            token.expose()
        );
        let spec = Spec::new("kube-apiserver", bin)
            .file("tls.crt", serving.cert_pem.as_bytes(), 0o644)
            .file("tls.key", serving.key_pem.as_bytes(), 0o600)
            .file("ca.crt", pki.ca_pem.as_bytes(), 0o644)
            .file("sa.key", read(&sa_key)?, 0o600)
            .file("sa.pub", read(&sa_pub)?, 0o644)
            .file("tokens.csv", tokens.into_bytes(), 0o600)
            .args([
                format!("--bind-address={}", place.bind),
                format!("--advertise-address={}", place.host),
                format!("--secure-port={port}"),
                "--insecure-port=0".to_string(),
                format!("--etcd-servers={etcd_url}"),
                format!("--tls-cert-file={}", place.path_str("tls.crt")?),
                format!("--tls-private-key-file={}", place.path_str("tls.key")?),
                format!("--client-ca-file={}", place.path_str("ca.crt")?),
                format!("--token-auth-file={}", place.path_str("tokens.csv")?),
                "--authorization-mode=RBAC".to_string(),
                "--service-account-issuer=https://kubernetes.default.svc".to_string(),
                format!("--service-account-key-file={}", place.path_str("sa.pub")?),
                format!(
                    "--service-account-signing-key-file={}",
                    place.path_str("sa.key")?
                ),
                "--service-cluster-ip-range=10.96.0.0/16".to_string(),
                // Only one API server, and no controller-manager to maintain endpoints or
                // service-account tokens: the pods are admitted, never run.
                "--endpoint-reconciler-type=none".to_string(),
                "--disable-admission-plugins=ServiceAccount".to_string(),
                format!("--cert-dir={}", place.path_str("certs")?),
                "--v=1".to_string(),
            ])
            .port("https", port)
            .ready_when(Readiness::Port("https".into()), Duration::from_secs(60));
        let running = substrate.start(&place, spec).await?;
        Ok(Apiserver {
            url: format!("https://{}", running.endpoint("https")?),
            token,
            log: running.log_file(),
            running,
        })
    }

    /// Waits for `/readyz` (etcd reachable, bootstrap RBAC roles and priority classes in place).
    pub async fn wait_ready(&mut self, client: &::kube::Client, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        let mut last: String;
        loop {
            if !self.running.is_running() {
                bail!(
                    "kube-apiserver exited during start-up; last lines of {}:\n{}",
                    self.log.display(),
                    last_lines(&self.running.log_since(LogCursor(0)), 20)
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
                    last_lines(&self.running.log_since(LogCursor(0)), 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
