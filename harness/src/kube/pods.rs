//! The PgBouncer pod templates the platform creates, built from the configuration model: the
//! deployment's (labels `pgbouncerConfig.labels` as written) and Houston's (labels
//! `global.pgbouncer.extraLabels` with the chart's `-` -> `_` key rewrite), run as the charts
//! run them (uid 65534, read-only root filesystem).
//!
//! Stand-in until harness-config renders the charts' PgBouncer objects itself: this module is
//! the one place to swap for that render. The chart labels repeat the ones
//! harness-config's labels rule assumes (tier, component, release, app).

use harness_config::{Deployment, Values};
use serde_json::{json, Map, Value};

/// The user the platform's PgBouncer containers run as (`nobody`), as the charts render it.
pub const PGBOUNCER_UID: i64 = harness_config::render::kube::PGBOUNCER_UID as i64;

/// Where the charts mount PgBouncer's ini and users.txt.
const CONFIG_DIR: &str = "/etc/pgbouncer";

pub fn deployment_namespace(d: &Deployment) -> String {
    d.namespace.clone().unwrap_or_else(|| {
        format!(
            "astronomer-{}",
            d.release_name.as_deref().unwrap_or("deployment")
        )
    })
}

pub fn houston_namespace(v: &Values) -> String {
    v.harness
        .as_ref()
        .and_then(|h| h.platform.as_ref())
        .and_then(|p| p.namespace.clone())
        .unwrap_or_else(|| "astronomer".into())
}

fn image(v: &Values) -> String {
    match v.image() {
        Some(i) => format!(
            "{}:{}",
            i.repository.as_deref().unwrap_or("ap-pgbouncer-krb"),
            i.tag.as_deref().unwrap_or("latest")
        ),
        None => "ap-pgbouncer-krb:latest".into(),
    }
}

fn labels(pairs: impl IntoIterator<Item = (String, String)>) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect::<Map<_, _>>(),
    )
}

fn pod(
    name: &str,
    namespace: &str,
    labels: Value,
    image: &str,
    secret: &str,
    env: Vec<Value>,
) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "securityContext": {"runAsUser": PGBOUNCER_UID, "runAsNonRoot": true},
            "containers": [{
                "name": "pgbouncer",
                "image": image,
                "args": [format!("{CONFIG_DIR}/pgbouncer.ini")],
                "env": env,
                "ports": [{"name": "pgbouncer", "containerPort": 6543, "protocol": "TCP"}],
                "securityContext": {
                    "readOnlyRootFilesystem": true,
                    "allowPrivilegeEscalation": false,
                    "runAsUser": PGBOUNCER_UID,
                    "capabilities": {"drop": ["ALL"]}
                },
                "volumeMounts": [{"name": "pgbouncer-config", "mountPath": CONFIG_DIR, "readOnly": true}]
            }],
            "volumes": [{"name": "pgbouncer-config", "secret": {"secretName": secret}}]
        }
    })
}

/// The deployment's PgBouncer pod (the deployment chart's `pgbouncer` component).
pub fn deployment_pgbouncer(d: &Deployment, v: &Values) -> Value {
    let release = d.release_name.as_deref().unwrap_or("deployment");
    let cfg = d.pgbouncer();
    let mut l: Vec<(String, String)> = cfg
        .labels
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, val) in [
        ("tier", "airflow"),
        ("component", "pgbouncer"),
        ("release", release),
    ] {
        if !l.iter().any(|(x, _)| x == k) {
            l.push((k.into(), val.into()));
        }
    }
    let env = cfg
        .env
        .as_ref()
        .map(|e| {
            e.0.iter()
                .map(|e| json!({"name": e.name, "value": e.value}))
                .collect()
        })
        .unwrap_or_default();
    pod(
        &format!("{release}-pgbouncer"),
        &deployment_namespace(d),
        labels(l),
        &image(v),
        &format!("{release}-pgbouncer-config"),
        env,
    )
}

/// Houston's PgBouncer pod (the control plane's `pgbouncer` subchart).
pub fn houston_pgbouncer(v: &Values) -> Value {
    let release = v.platform_release();
    let gp = v.global_pgbouncer();
    let mut l: Vec<(String, String)> = gp
        .and_then(|g| g.extra_labels.clone())
        .unwrap_or_default()
        .iter()
        // The chart renders each key through `replace "-" "_"`.
        .map(|(k, v)| (k.replace('-', "_"), v.clone()))
        .collect();
    for (k, val) in [
        ("tier", "astronomer"),
        ("component", "pgbouncer"),
        ("app", "pgbouncer"),
        ("release", release),
    ] {
        if !l.iter().any(|(x, _)| x == k) {
            l.push((k.into(), val.into()));
        }
    }
    let env = gp
        .and_then(|g| g.extra_env.clone())
        .unwrap_or_default()
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let secret = v.pgbouncer_secret_name();
    pod(
        &format!("{release}-pgbouncer"),
        &houston_namespace(v),
        labels(l),
        &image(v),
        &secret,
        env,
    )
}

/// The same pod template inside an apps/v1 Deployment, as the charts ship it.
pub fn as_deployment(pod: &Value) -> Value {
    let meta = &pod["metadata"];
    let labels = meta["labels"].clone();
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod["spec"]}
        }
    })
}
