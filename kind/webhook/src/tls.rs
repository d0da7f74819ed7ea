//! The webhook's TLS identity: the API server only calls webhooks over HTTPS and checks the
//! certificate against the `caBundle` it was registered with, so the server certificate must
//! carry the name (or IP) the API server dials.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
/// Re-exported so callers build and pass the same rustls version.
pub use tokio_rustls::rustls::ServerConfig;

/// A rustls server configuration from a PEM certificate chain and a PEM private key.
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .context("the TLS certificate is not PEM")?;
    if certs.is_empty() {
        anyhow::bail!("the TLS certificate file holds no CERTIFICATE block");
    }
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).context("the TLS key is not a PEM private key")?;
    let mut cfg = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS key does not match the certificate")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The same from files, naming the file at fault.
pub fn server_config_from_files(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>> {
    let c = std::fs::read(cert).with_context(|| format!("TLS certificate {}", cert.display()))?;
    let k = std::fs::read(key).with_context(|| format!("TLS key {}", key.display()))?;
    server_config(&c, &k)
        .with_context(|| format!("TLS material {} / {}", cert.display(), key.display()))
}
