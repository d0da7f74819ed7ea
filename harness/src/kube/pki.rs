//! The run's own certificate authority for the Kubernetes pieces: the API server's serving
//! certificate, the webhook's (which the API server checks against the registered caBundle),
//! and the service-account signing key. Generated per scenario, keys written 0600.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::secret::write_private;

pub struct Pki {
    pub dir: PathBuf,
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A serving certificate and its key, as PEM, and where they were written.
pub struct ServingCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl Pki {
    pub fn create(dir: &Path) -> Result<Pki> {
        std::fs::create_dir_all(dir)?;
        let key = KeyPair::generate().context("generating the CA key")?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "harness per-run Kubernetes CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).context("signing the CA")?;
        let ca_pem = cert.pem();
        std::fs::write(dir.join("ca.crt"), &ca_pem)?;
        Ok(Pki {
            dir: dir.to_path_buf(),
            ca_pem,
            issuer: Issuer::new(params, key),
        })
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// A serving certificate for `sans` (DNS names or IP addresses), written as `<name>.crt`
    /// and `<name>.key`.
    pub fn serving(&self, name: &str, sans: &[&str]) -> Result<ServingCert> {
        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.issuer)
            .with_context(|| format!("signing the {name} certificate"))?;
        let s = ServingCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_file: self.dir.join(format!("{name}.crt")),
            key_file: self.dir.join(format!("{name}.key")),
        };
        std::fs::write(&s.cert_file, &s.cert_pem)?;
        write_private(&s.key_file, s.key_pem.as_bytes())?;
        Ok(s)
    }

    /// The key service-account tokens are signed with (the API server wants it even when no
    /// controller issues tokens). Returns the paths of the private key (for signing) and of
    /// the public key (for verifying: the API server reads no public key out of a PKCS#8 file).
    pub fn service_account_key(&self) -> Result<(PathBuf, PathBuf)> {
        let key = KeyPair::generate()?;
        let private = self.dir.join("sa.key");
        write_private(&private, key.serialize_pem().as_bytes())?;
        let public = self.dir.join("sa.pub");
        std::fs::write(&public, key.public_key_pem())?;
        Ok((private, public))
    }
}
