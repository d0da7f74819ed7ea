//! The deployment chart's values as Houston would pass them for one deployment. Houston's
//! mapping code is not public; this is the mapping the charts imply and the one the renders
//! against Astronomer's charts were made with (RULES.md, "Houston's mapping"):
//! `deployments.helm` from Houston's configuration first (with the deployments' PgBouncer
//! image), then `metadataConnectionJson` / `resultBackendConnectionJson` as
//! `airflow.data.metadataConnection` / `resultBackendConnection` with `protocol: postgresql`,
//! `pgbouncerConfig.*` as `airflow.pgbouncer.*` with `enabled: true`, and `executor`.

use crate::model::{Connection, Deployment, Values};
use crate::platform::Platform;
use serde_json::{json, Map, Value};

/// `protocol` Houston adds to each connection object.
pub const PROTOCOL: &str = "postgresql";

fn connection(c: &Connection) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("protocol".into(), PROTOCOL.into());
    }
    v
}

/// `b` merged into `a`, maps recursively, anything else replaced (Helm's value coalescing).
pub fn merge(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (a, b) => *a = b.clone(),
    }
}

pub fn chart_values(d: &Deployment, v: Option<&Values>, platform: Platform) -> Value {
    let mut out = v
        .and_then(|v| {
            v.houston()?
                .config
                .as_ref()?
                .deployments
                .as_ref()?
                .helm
                .clone()
        })
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    let image = v
        .map(|v| v.deployment_pgbouncer_image(platform).image)
        .unwrap_or_else(|| platform.deployment_pgbouncer_image());
    let mut airflow = Map::new();
    if let Some(e) = &d.executor {
        airflow.insert("executor".into(), e.clone().into());
    }
    airflow.insert(
        "images".into(),
        json!({"pgbouncer": {"repository": image.repository, "tag": image.tag}}),
    );
    let mut data = Map::new();
    if let Some(c) = d.metadata() {
        data.insert("metadataConnection".into(), connection(c));
    }
    if let Some(c) = d.result_backend() {
        data.insert("resultBackendConnection".into(), connection(c));
    }
    airflow.insert("data".into(), data.into());
    let mut pgbouncer = serde_json::to_value(d.pgbouncer()).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut pgbouncer {
        m.insert("enabled".into(), true.into());
    }
    airflow.insert("pgbouncer".into(), pgbouncer);
    merge(&mut out, &json!({ "airflow": airflow }));
    out
}
