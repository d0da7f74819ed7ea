//! The objects the kind tier applies before the platform chart: the reference webhook and its
//! registration (with the run's CA), the Kerberos material it mounts (krb5.conf and a keytab
//! per namespace), and the ingress's TLS secret. Every object comes from `kube::manifests`, the
//! code the API server tier applies to a real kube-apiserver, so the two tiers cannot drift.
//!
//! Files holding a private key or a keytab are written 0600 and never printed; the plan names
//! them and says where their secret part comes from.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::kube::manifests::{self, Target};
use crate::kube::pki::Pki;

/// The ingress's certificate Secret, as the values the plan writes name it (`global.tlsSecret`).
pub const INGRESS_TLS_SECRET: &str = "astronomer-tls";
/// The run's CA as the platform is told to trust it (`global.privateCaCerts`): components that
/// call each other through the ingress check its certificate against it.
pub const PRIVATE_CA_SECRET: &str = "private-root-ca";

/// The DNS names the API server dials the webhook's Service by; its certificate holds them.
pub fn webhook_service_names() -> Vec<String> {
    let (n, ns) = (manifests::WEBHOOK_NAME, manifests::WEBHOOK_NAMESPACE);
    vec![
        format!("{n}.{ns}.svc"),
        format!("{n}.{ns}.svc.cluster.local"),
    ]
}

/// The webhook's own objects (namespace, ServiceAccount, configuration, TLS Secret, Deployment,
/// Service) and its MutatingWebhookConfiguration by Service, with the run's CA as caBundle.
pub fn webhook(cfg: &kerberos_webhook::Config, pki: &Pki, image: &str) -> Result<Vec<Value>> {
    let names = webhook_service_names();
    let sans: Vec<&str> = names.iter().map(String::as_str).collect();
    let cert = pki.serving("webhook", &sans)?;
    let mut v = manifests::webhook_objects(cfg, &cert.cert_pem, &cert.key_pem, image);
    v.push(manifests::mutating_webhook_configuration(
        cfg,
        &pki.ca_pem,
        &Target::Service,
    ));
    Ok(v)
}

/// The names the ingress answers for: the base domain and every host below it (houston.,
/// app., deployments., registry.).
pub fn ingress_names(base_domain: &str) -> Vec<String> {
    vec![base_domain.to_string(), format!("*.{base_domain}")]
}

/// The platform's namespace with the ingress's TLS Secret (a certificate of the run's CA for
/// the base domain) and the CA itself, both before the chart that mounts them.
pub fn ingress(namespace: &str, base_domain: &str, pki: &Pki) -> Result<Vec<Value>> {
    let names = ingress_names(base_domain);
    let sans: Vec<&str> = names.iter().map(String::as_str).collect();
    let cert = pki.serving(INGRESS_TLS_SECRET, &sans)?;
    Ok(vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": INGRESS_TLS_SECRET, "namespace": namespace},
            "data": {"tls.crt": b64(cert.cert_pem.as_bytes()), "tls.key": b64(cert.key_pem.as_bytes())}}),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": PRIVATE_CA_SECRET, "namespace": namespace},
            "data": {"cert.pem": b64(pki.ca_pem.as_bytes())}}),
    ])
}

/// Which principal's keytab the PgBouncer pods of one namespace are given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub namespace: String,
    pub principal: String,
    /// Where the realm step leaves that principal's keytab (harness side, 0600).
    pub keytab: PathBuf,
}

/// krb5.conf ConfigMap and keytab Secret for each namespace, from the realm's krb5.conf (the
/// KDC as pods dial it) and the keytabs the KDC exported. A missing keytab names the step
/// that makes it.
pub fn credentials(krb5_conf: &str, creds: &[Credential]) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for c in creds {
        let keytab = std::fs::read(&c.keytab).with_context(|| {
            format!(
                "the keytab of {} ({}) is missing: the realm step exports it from the KDC",
                c.principal,
                c.keytab.display()
            )
        })?;
        if keytab.first() != Some(&0x05) {
            bail!(
                "{} is not a keytab (MIT keytabs start with byte 0x05): re-export it with kadmin.local ktadd",
                c.keytab.display()
            );
        }
        out.extend(manifests::credential_objects(
            &c.namespace,
            krb5_conf,
            &keytab,
        ));
    }
    Ok(out)
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Writes objects as one multi-document YAML file, mode 0600: these files hold private keys or
/// keytabs.
pub fn write_objects(path: &Path, objects: &[Value]) -> Result<()> {
    let mut text = String::new();
    for o in objects {
        text += "---\n";
        text += &serde_yaml::to_string(o).context("serialising an object")?;
    }
    crate::secret::write_private(path, text.as_bytes())
}

/// The objects of a multi-document YAML file, in order.
pub fn read_objects(path: &Path) -> Result<Vec<Value>> {
    use serde::Deserialize;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v = Value::deserialize(doc).with_context(|| format!("{}: not YAML", path.display()))?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness_config::LabelSelector;

    fn config() -> kerberos_webhook::Config {
        let s: LabelSelector =
            serde_yaml::from_str("matchLabels:\n  krb-inject: enabled\n").unwrap();
        manifests::webhook_config(&[s])
    }

    #[test]
    fn the_webhook_is_registered_by_its_service_with_the_run_ca() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::create(dir.path()).unwrap();
        let objs = webhook(&config(), &pki, "e2e-harness/webhook:t").unwrap();
        let kinds: Vec<&str> = objs.iter().filter_map(|o| o["kind"].as_str()).collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ServiceAccount",
                "ConfigMap",
                "Secret",
                "Deployment",
                "Service",
                "MutatingWebhookConfiguration"
            ]
        );
        let mwc = objs.last().unwrap();
        let cc = &mwc["webhooks"][0]["clientConfig"];
        assert_eq!(cc["service"]["name"], manifests::WEBHOOK_NAME);
        assert_eq!(cc["caBundle"], b64(pki.ca_pem.as_bytes()));
        let dep = &objs[4];
        assert_eq!(
            dep["spec"]["template"]["spec"]["containers"][0]["image"],
            "e2e-harness/webhook:t"
        );
        // The webhook's key was written private.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("webhook.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn the_ingress_certificate_covers_every_platform_host() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::create(dir.path()).unwrap();
        let objs = ingress("astronomer", "astro.example.test", &pki).unwrap();
        assert_eq!(objs[1]["metadata"]["name"], INGRESS_TLS_SECRET);
        assert_eq!(objs[1]["type"], "kubernetes.io/tls");
        let crt = std::fs::read(dir.path().join(format!("{INGRESS_TLS_SECRET}.crt"))).unwrap();
        let crt = String::from_utf8(crt).unwrap();
        assert_eq!(objs[1]["data"]["tls.crt"], b64(crt.as_bytes()));
        assert_eq!(
            ingress_names("astro.example.test"),
            ["astro.example.test", "*.astro.example.test"]
        );
    }

    #[test]
    fn credentials_need_a_real_keytab_and_name_the_step_that_makes_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Credential {
            namespace: "astronomer".into(),
            principal: "houston@EXAMPLE.TEST".into(),
            keytab: dir.path().join("houston.keytab"),
        };
        let e = credentials("[libdefaults]\n", std::slice::from_ref(&missing))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("houston@EXAMPLE.TEST") && e.contains("realm step"),
            "{e}"
        );
        std::fs::write(&missing.keytab, b"not a keytab").unwrap();
        let e = credentials("", std::slice::from_ref(&missing))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a keytab"), "{e}");
        std::fs::write(&missing.keytab, [0x05, 0x02, 0, 0]).unwrap();
        let objs = credentials("[libdefaults]\n", &[missing]).unwrap();
        assert_eq!(objs[2]["data"]["krb5.keytab"], b64(&[0x05, 0x02, 0, 0]));
    }

    #[test]
    fn objects_round_trip_through_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.yaml");
        let objs = vec![
            json!({"kind": "A"}),
            json!({"kind": "B", "data": {"k": "v"}}),
        ];
        write_objects(&p, &objs).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_objects(&p).unwrap(), objs);
    }
}
