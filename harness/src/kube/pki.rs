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

    /// What a browser pins for a serving key (`--ignore-certificate-errors-spki-list`): the
    /// base64 SHA-256 of its SubjectPublicKeyInfo, from the key file the run wrote.
    pub fn spki_pin(key_file: &Path) -> Result<String> {
        use base64::Engine as _;
        use rcgen::PublicKeyData as _;
        use sha2::Digest as _;
        let pem = std::fs::read_to_string(key_file).with_context(|| {
            format!(
                "{}: the serving key (the plan writes it)",
                key_file.display()
            )
        })?;
        let key = KeyPair::from_pem(&pem)
            .with_context(|| format!("{}: not a PEM private key", key_file.display()))?;
        Ok(base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(key.subject_public_key_info())))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The pin is Chromium's: what `openssl` computes from the certificate itself (the
    /// documented recipe for `--ignore-certificate-errors-spki-list`), not from our key file.
    #[test]
    fn the_browser_pin_is_the_certificate_s_spki_hash() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::create(dir.path()).unwrap();
        let cert = pki.serving("ingress", &["a.example.test"]).unwrap();
        let pin = Pki::spki_pin(&cert.key_file).unwrap();
        let cert_file = &cert.cert_file;
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl x509 -in {} -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | openssl enc -base64",
                cert_file.display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(pin, String::from_utf8_lossy(&out.stdout).trim());
        let other = pki.serving("other", &["b.example.test"]).unwrap();
        assert_ne!(Pki::spki_pin(&other.key_file).unwrap(), pin);
    }
}
