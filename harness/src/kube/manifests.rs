//! The Kubernetes objects the harness renders for the Kubernetes tiers: the reference
//! webhook's Deployment, Service, ServiceAccount, configuration and TLS Secret, its
//! MutatingWebhookConfiguration (with the CA bundle), the credentials it mounts, and the
//! KDC/PostgreSQL Services that name the customer's external hosts. Rendered as JSON for
//! server-side apply; every one is applied to the real API server by features/apiserver.feature.

use harness_config::LabelSelector;
use kerberos_webhook::{Config, Selector};
use serde_json::{json, Value};

/// Names of the webhook's objects, one place.
pub const WEBHOOK_NAME: &str = "kerberos-webhook";
pub const WEBHOOK_NAMESPACE: &str = "kerberos-webhook";
/// The ConfigMap and Secret the webhook mounts into PgBouncer pods (in their namespace).
pub const KRB5_CONFIG_MAP: &str = "pgbouncer-krb5-conf";
pub const KEYTAB_SECRET: &str = "pgbouncer-keytab";
/// The image name customers give their build of kind/webhook (no registry is named here);
/// the kind tier uses the tag `cargo xtask images` gave it.
pub const WEBHOOK_IMAGE: &str = "kerberos-webhook:latest";
const WEBHOOK_PORT: u16 = 8443;
/// The KDC's host name outside the cluster in the reference environment (the docker tier's
/// container name); the database host comes from the deployment's connection.
pub const REFERENCE_KDC_HOST: &str = "kdc.example.test";

/// The webhook's configuration for the injector's selectors (values `harness.injector.selectors`).
pub fn webhook_config(selectors: &[LabelSelector]) -> Config {
    Config {
        selectors: selectors
            .iter()
            .map(|s| Selector {
                match_labels: s.match_labels.0.clone(),
            })
            .collect(),
        krb5_config_map: KRB5_CONFIG_MAP.into(),
        krb5_config_map_key: "krb5.conf".into(),
        keytab_secret: KEYTAB_SECRET.into(),
        keytab_secret_key: "krb5.keytab".into(),
        fs_group: kerberos_webhook::config::DEFAULT_FS_GROUP,
        containers: vec!["pgbouncer".into()],
    }
}

/// How the API server reaches the webhook.
pub enum Target<'a> {
    /// In a cluster: the webhook's Service.
    Service,
    /// The API server tier: the webhook runs on loopback, registered by URL.
    Url(&'a str),
}

fn b64(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// One webhook entry per selector: Kubernetes' objectSelector is a single LabelSelector (an
/// AND), and the injector's selectors are alternatives (an OR).
///
/// failurePolicy `Fail`: when the webhook is down, a selected PgBouncer pod is refused rather
/// than created without credentials (it would start and fail every login with "No credentials
/// were supplied"); the ReplicaSet retries, so the pod appears once the webhook is back. Pods
/// the selectors do not match are never sent, so the webhook being down never blocks them.
pub fn mutating_webhook_configuration(cfg: &Config, ca_pem: &str, target: &Target) -> Value {
    let client_config = match target {
        Target::Service => json!({
            "service": {"namespace": WEBHOOK_NAMESPACE, "name": WEBHOOK_NAME, "path": "/mutate", "port": 443},
            "caBundle": b64(ca_pem.as_bytes()),
        }),
        Target::Url(u) => json!({"url": u, "caBundle": b64(ca_pem.as_bytes())}),
    };
    let webhooks: Vec<Value> = cfg
        .selectors
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({
                "name": format!("selector-{i}.kerberos-webhook.astronomer.io"),
                "clientConfig": client_config,
                "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"], "scope": "Namespaced"}],
                "objectSelector": {"matchLabels": s.match_labels},
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 5,
                // The patch is idempotent, so being called again after another webhook's change is safe.
                "reinvocationPolicy": "IfNeeded",
            })
        })
        .collect();
    json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": WEBHOOK_NAME},
        "webhooks": webhooks,
    })
}

/// The webhook's own objects for a cluster. It needs no API permissions (it only answers the
/// API server), so its ServiceAccount has no role and no mounted token.
pub fn webhook_objects(
    cfg: &Config,
    tls_cert_pem: &str,
    tls_key_pem: &str,
    image: &str,
) -> Vec<Value> {
    let labels = json!({"app.kubernetes.io/name": WEBHOOK_NAME});
    let config_yaml = serde_yaml::to_string(cfg).expect("the config serialises");
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": WEBHOOK_NAMESPACE}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": WEBHOOK_NAME, "namespace": WEBHOOK_NAMESPACE},
            "automountServiceAccountToken": false}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": WEBHOOK_NAME, "namespace": WEBHOOK_NAMESPACE},
            "data": {"config.yaml": config_yaml}}),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": format!("{WEBHOOK_NAME}-tls"), "namespace": WEBHOOK_NAMESPACE},
            "data": {"tls.crt": b64(tls_cert_pem.as_bytes()), "tls.key": b64(tls_key_pem.as_bytes())}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": WEBHOOK_NAME, "namespace": WEBHOOK_NAMESPACE, "labels": labels},
        "spec": {
            // Two replicas: with failurePolicy Fail, one webhook pod down must not stop PgBouncer.
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": WEBHOOK_NAME,
                    "automountServiceAccountToken": false,
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65534, "runAsGroup": 65534},
                    "containers": [{
                        "name": "webhook",
                        "image": image,
                        // A kind node pulls nothing: the image is loaded into it.
                        "imagePullPolicy": "IfNotPresent",
                        "args": ["--config=/etc/kerberos-webhook/config.yaml",
                                 "--tls-cert=/etc/kerberos-webhook/tls/tls.crt",
                                 "--tls-key=/etc/kerberos-webhook/tls/tls.key",
                                 format!("--listen=0.0.0.0:{WEBHOOK_PORT}")],
                        "ports": [{"name": "https", "containerPort": WEBHOOK_PORT, "protocol": "TCP"}],
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": WEBHOOK_PORT, "scheme": "HTTPS"}},
                        "securityContext": {"readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                                            "capabilities": {"drop": ["ALL"]}},
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
                        "volumeMounts": [
                            {"name": "config", "mountPath": "/etc/kerberos-webhook", "readOnly": true},
                            {"name": "tls", "mountPath": "/etc/kerberos-webhook/tls", "readOnly": true}
                        ]
                    }],
                    "volumes": [
                        {"name": "config", "configMap": {"name": WEBHOOK_NAME}},
                        {"name": "tls", "secret": {"secretName": format!("{WEBHOOK_NAME}-tls")}}
                    ]
                }
            }
        }}),
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": WEBHOOK_NAME, "namespace": WEBHOOK_NAMESPACE},
            // `protocol` is a key of this list for server-side apply: 1.20 refuses the list without it.
            "spec": {"selector": labels, "ports": [{"name": "https", "port": 443, "targetPort": WEBHOOK_PORT, "protocol": "TCP"}]}}),
    ]
}

/// The credentials the webhook mounts: krb5.conf and the keytab, in the PgBouncer pod's
/// namespace (the keytab is a per-run secret: these objects are never written to disk).
pub fn credential_objects(namespace: &str, krb5_conf: &str, keytab: &[u8]) -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": KRB5_CONFIG_MAP, "namespace": namespace},
            "data": {"krb5.conf": krb5_conf}}),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": KEYTAB_SECRET, "namespace": namespace},
            "data": {"krb5.keytab": b64(keytab)}}),
    ]
}

/// The customer's KDC and PostgreSQL live outside the cluster: Services of type ExternalName
/// give pods stable in-cluster names for them.
pub fn external_services(namespace: &str, kdc_host: &str, db_host: &str) -> Vec<Value> {
    [("kdc", kdc_host), ("db", db_host)]
        .into_iter()
        .map(|(name, host)| {
            json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"type": "ExternalName", "externalName": host}})
        })
        .collect()
}
