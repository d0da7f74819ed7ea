//! The Kubernetes objects the platform creates for the Kerberos flow, as the charts render
//! them: the deployment chart's PgBouncer config Secret, the two connection Secrets and the
//! PgBouncer Deployment (whose pod the credential injector mutates), and Houston's own
//! PgBouncer Deployment from the platform chart. Plain JSON objects (`serde_json::Value`), so a
//! caller can apply them as they are or read them into `k8s-openapi` types.
//!
//! Left out on purpose: the subchart's metrics-exporter sidecar and its stats Secret, the
//! Service, ServiceAccount, NetworkPolicy and the `checksum/*` pod annotations; none of them
//! is read by the injector or by PgBouncer.

use super::airflow::{chart_urls, namespace, PGBOUNCER_PORT};
use super::pgbouncer::{release, render_chart_users_txt, render_for_platform};
use super::RenderError;
use crate::model::{Deployment, StringMap, Values};
use crate::platform::{ImageRef, Platform};
use base64::Engine as _;
use serde_json::{json, Map, Value};

/// The subchart runs PgBouncer as `nobody`; a mounted keytab must be readable by this uid.
pub const PGBOUNCER_UID: u64 = 65534;
/// `pgbouncer.command` of the subchart.
pub const PGBOUNCER_COMMAND: &[&str] =
    &["pgbouncer", "-u", "nobody", "/etc/pgbouncer/pgbouncer.ini"];
/// `heritage` of every object Helm renders.
const HERITAGE: &str = "Helm";
/// The platform chart's `pgbouncer` subchart: name and version (0.0.1 in 0.37.7 and 1.1.0).
const HOUSTON_PGBOUNCER_CHART: &str = "pgbouncer-0.0.1";
const HOUSTON_PGBOUNCER_CHART_VERSION: &str = "0.0.1";

/// Everything the deployment chart renders for the PgBouncer of one deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentObjects {
    /// `<release>-pgbouncer-config`: `pgbouncer.ini` and `users.txt`.
    pub config_secret: Value,
    /// `<release>-metadata`: Airflow's metadata URL.
    pub metadata_secret: Value,
    /// `<release>-result-backend`: Celery's result-backend URL.
    pub result_backend_secret: Value,
    /// `<release>-pgbouncer`.
    pub pgbouncer_deployment: Value,
}

impl DeploymentObjects {
    pub fn all(&self) -> [&Value; 4] {
        [
            &self.config_secret,
            &self.metadata_secret,
            &self.result_backend_secret,
            &self.pgbouncer_deployment,
        ]
    }

    /// The pod template the credential injector sees (`spec.template`).
    pub fn pgbouncer_pod_template(&self) -> &Value {
        &self.pgbouncer_deployment["spec"]["template"]
    }
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn base_labels(release: &str, chart: String) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("tier".into(), "airflow".into());
    m.insert("release".into(), release.into());
    m.insert("chart".into(), chart.into());
    m.insert("heritage".into(), HERITAGE.into());
    m
}

fn secret(name: String, ns: &str, labels: Map<String, Value>, data: Map<String, Value>) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "type": "Opaque",
        "data": data,
    })
}

/// The deployment chart's PgBouncer objects for `d` on `platform`, with `image` as the
/// PgBouncer image (see [`Values::deployment_pgbouncer_image`]).
pub fn deployment_objects(
    d: &Deployment,
    platform: Platform,
    image: &ImageRef,
) -> Result<DeploymentObjects, RenderError> {
    let release = release(d)?.to_string();
    let ns = namespace(d)?;
    let urls = chart_urls(d)?;

    let mut cfg_labels = base_labels(&release, platform.secret_chart_label());
    cfg_labels.insert("component".into(), "pgbouncer".into());
    let mut cfg = Map::new();
    cfg.insert("pgbouncer.ini".into(), b64(&render_for_platform(d)?).into());
    cfg.insert("users.txt".into(), b64(&render_chart_users_txt(d)?).into());
    let config_secret = secret(format!("{release}-pgbouncer-config"), &ns, cfg_labels, cfg);
    let conn = |url: &str| {
        let mut m = Map::new();
        m.insert("connection".into(), b64(url).into());
        m
    };
    let metadata_secret = secret(
        format!("{release}-metadata"),
        &ns,
        base_labels(&release, platform.secret_chart_label()),
        conn(&urls.metadata),
    );
    let result_backend_secret = secret(
        format!("{release}-result-backend"),
        &ns,
        base_labels(&release, platform.secret_chart_label()),
        conn(&urls.result_backend),
    );

    let selector = json!({"tier": "airflow", "component": "pgbouncer", "release": release});
    let mut pod_labels = selector.as_object().cloned().unwrap_or_default();
    // mustMerge: the deployment's labels over the chart's.
    for (k, v) in d.pgbouncer().labels.unwrap_or_default().iter() {
        pod_labels.insert(k.clone(), v.clone().into());
    }
    let mut deploy_labels = base_labels(&release, platform.workload_chart_label());
    deploy_labels.insert("component".into(), "pgbouncer".into());

    let mut security = json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
    });
    if platform.read_only_root_filesystem() {
        security = json!({"readOnlyRootFilesystem": true});
    }
    let mut mounts = vec![
        json!({"name": "pgbouncer-config", "subPath": "pgbouncer.ini",
               "mountPath": "/etc/pgbouncer/pgbouncer.ini", "readOnly": true}),
        json!({"name": "pgbouncer-config", "subPath": "users.txt",
               "mountPath": "/etc/pgbouncer/users.txt", "readOnly": true}),
    ];
    let mut volumes = vec![json!({
        "name": "pgbouncer-config",
        "secret": {"secretName": format!("{release}-pgbouncer-config")},
    })];
    if platform.read_only_root_filesystem() {
        mounts.push(json!({"mountPath": "/tmp", "name": "tmp"}));
        volumes.push(json!({"emptyDir": {}, "name": "tmp"}));
    }
    let mut container = json!({
        "name": "pgbouncer",
        "image": image.to_string(),
        "imagePullPolicy": "IfNotPresent",
        "securityContext": security,
        "command": PGBOUNCER_COMMAND,
        "resources": {},
        "ports": [{"name": "pgbouncer", "containerPort": PGBOUNCER_PORT}],
        "livenessProbe": {"tcpSocket": {"port": PGBOUNCER_PORT}},
        "readinessProbe": {"tcpSocket": {"port": PGBOUNCER_PORT}},
        "volumeMounts": mounts,
        "lifecycle": {"preStop": {"exec": {
            "command": ["/bin/sh", "-c", "killall -INT pgbouncer && sleep 120"]}}},
    });
    if let Some(env) = d.pgbouncer().env.filter(|e| !e.0.is_empty()) {
        container["env"] = env
            .0
            .iter()
            .map(|e| json!({"name": e.name, "value": e.value}))
            .collect();
    }
    let pgbouncer_deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": format!("{release}-pgbouncer"), "namespace": ns, "labels": deploy_labels},
        "spec": {
            "replicas": 1,
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "nodeSelector": {},
                    "affinity": {},
                    "tolerations": [],
                    "topologySpreadConstraints": [],
                    "serviceAccountName": format!("{release}-airflow-pgbouncer"),
                    "securityContext": {"runAsUser": PGBOUNCER_UID},
                    "restartPolicy": "Always",
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    });
    Ok(DeploymentObjects {
        config_secret,
        metadata_secret,
        result_backend_secret,
        pgbouncer_deployment,
    })
}

/// The labels of Houston's PgBouncer pod: the platform chart's own (`app`, `chart`,
/// `heritage`, `release`, `component`, `version`, `tier`), `global.podLabels`, and
/// `global.pgbouncer.extraLabels` with `-` rewritten to `_` in the whole key (a prefix such as
/// `example.com/` included), last so they win.
pub fn houston_pgbouncer_pod_labels(v: &Values) -> StringMap {
    let mut m = StringMap::default();
    for (k, val) in [
        ("app", "pgbouncer"),
        ("chart", HOUSTON_PGBOUNCER_CHART),
        ("heritage", HERITAGE),
        ("release", v.platform_release()),
        ("component", "pgbouncer"),
        ("version", HOUSTON_PGBOUNCER_CHART_VERSION),
    ] {
        m.0.insert(k.into(), val.into());
    }
    if let Some(Value::Object(pod)) = v.global.as_ref().and_then(|g| g.extra.get("podLabels")) {
        for (k, val) in pod {
            if let Some(t) = crate::model::scalar_text(val) {
                m.0.insert(k.clone(), t);
            }
        }
    }
    m.0.insert("tier".into(), "astronomer".into());
    if let Some(extra) = v.global_pgbouncer().and_then(|g| g.extra_labels.as_ref()) {
        for (k, val) in extra.iter() {
            m.0.insert(k.replace('-', "_"), val.clone());
        }
    }
    m
}

/// Houston's PgBouncer Deployment (`<platform release>-pgbouncer`), or `None` when
/// `global.pgbouncer.enabled` is not `true`.
pub fn houston_pgbouncer_deployment(v: &Values, platform: Platform) -> Option<Value> {
    let gp = v.global_pgbouncer().filter(|g| g.enabled == Some(true))?;
    let release = v.platform_release();
    let ns = v
        .harness
        .as_ref()
        .and_then(|h| h.platform.as_ref()?.namespace.clone())
        .unwrap_or_else(|| release.to_string());
    let default = platform.houston_pgbouncer_image();
    let img = v.image();
    let image = ImageRef {
        repository: img
            .and_then(|i| i.repository.clone())
            .unwrap_or(default.repository),
        tag: img.and_then(|i| i.tag.clone()).unwrap_or(default.tag),
    };
    let secret_name = v.pgbouncer_secret_name();
    let env: Vec<Value> = gp
        .extra_env
        .as_ref()
        .map(|e| {
            e.iter()
                .map(|(k, val)| json!({"name": k.replace('-', "_"), "value": val}))
                .collect()
        })
        .unwrap_or_default();
    let labels: Map<String, Value> = houston_pgbouncer_pod_labels(v)
        .iter()
        .map(|(k, val)| (k.clone(), Value::from(val.as_str())))
        .collect();
    let config_volume = json!({"name": "pgbouncer-config", "secret": {
        "secretName": secret_name,
        "items": [{"key": "pgbouncer.ini", "path": "pgbouncer.ini"},
                  {"key": "users.txt", "path": "users.txt"}]}});
    let config_mount =
        json!({"name": "pgbouncer-config", "readOnly": true, "mountPath": "/etc/pgbouncer"});
    let mut container_security = json!({"runAsNonRoot": true});
    let (mut volumes, mut mounts) = (Vec::new(), Vec::new());
    // 1.1.0's platform chart hardens Houston's PgBouncer the same way: a read-only root and an
    // emptyDir at /tmp, listed first.
    if platform.read_only_root_filesystem() {
        container_security["readOnlyRootFilesystem"] = true.into();
        volumes.push(json!({"emptyDir": {}, "name": "tmp-workspace"}));
        mounts.push(json!({"mountPath": "/tmp", "name": "tmp-workspace"}));
    }
    volumes.push(config_volume);
    mounts.push(config_mount);
    let mut pod_spec = json!({
        "nodeSelector": {},
        "affinity": {},
        "tolerations": [],
        "restartPolicy": "Always",
        "serviceAccountName": format!("{release}-pgbouncer"),
        "volumes": volumes,
        "containers": [{
            "name": "pgbouncer",
            "image": image.to_string(),
            "securityContext": container_security,
            "imagePullPolicy": "IfNotPresent",
            "volumeMounts": mounts,
            "env": env,
            "resources": {"requests": {"memory": "256Mi", "cpu": "250m"},
                          "limits": {"memory": "256Mi", "cpu": "250m"}},
            "ports": [{"name": "pgbouncer", "containerPort": PGBOUNCER_PORT}],
            "livenessProbe": {"tcpSocket": {"port": PGBOUNCER_PORT}},
            "readinessProbe": {"tcpSocket": {"port": PGBOUNCER_PORT}},
            "lifecycle": {"preStop": {"exec": {
                "command": ["/bin/sh", "-c", "killall -INT pgbouncer && sleep 120"]}}},
        }],
    });
    if !platform.read_only_root_filesystem() {
        // 0.37.7 writes the (empty) `podSecurityContext`; 1.1.0 leaves the key out.
        pod_spec["securityContext"] = json!({});
    }
    Some(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": format!("{release}-pgbouncer"),
            "namespace": ns,
            "labels": {"tier": "astronomer", "component": "pgbouncer", "release": release,
                       "chart": HOUSTON_PGBOUNCER_CHART, "heritage": HERITAGE},
        },
        "spec": {
            "replicas": 1,
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "selector": {"matchLabels": {"app": "pgbouncer", "release": release, "component": "pgbouncer"}},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }))
}
