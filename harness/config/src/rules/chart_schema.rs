//! What the deployment chart's `values.schema.json` (Astronomer's `airflow` subchart, enforced
//! by Helm) accepts of the values Houston builds from the deployment file. Judged on the file
//! as written, before the model's tolerant parsing: the model reads `port: "5432"`, a label
//! `inject: true` or `env` as a map, the chart's schema does not.

use super::catalog::CHART_SCHEMA;
use super::{closest, EXTRA_INI, METADATA, RESULT_BACKEND};
use crate::finding::Sink;
use serde_json::Value;

/// The keys the subchart's schema allows under `pgbouncer` (`additionalProperties: false`);
/// the same in apc-airflow 1.15.6-astro and 1.17.3-astro.
pub const PGBOUNCER_KEYS: &[&str] = &[
    "affinity",
    "annotations",
    "args",
    "auth_file",
    "auth_type",
    "certificatesSecretAnnotations",
    "ciphers",
    "command",
    "configSecretAnnotations",
    "configSecretName",
    "containerLifecycleHooks",
    "enabled",
    "env",
    "extraContainers",
    "extraIni",
    "extraIniMetadata",
    "extraIniResultBackend",
    "extraNetworkPolicies",
    "extraVolumeMounts",
    "extraVolumes",
    "labels",
    "logConnections",
    "logDisconnections",
    "maxClientConn",
    "metadataPoolSize",
    "metricsExporterSidecar",
    "mountConfigSecret",
    "nodeSelector",
    "podAnnotations",
    "podDisruptionBudget",
    "priorityClassName",
    "replicas",
    "resources",
    "resultBackendPoolSize",
    "revisionHistoryLimit",
    "securityContexts",
    "service",
    "serviceAccount",
    "ssl",
    "sslmode",
    "tolerations",
    "topologySpreadConstraints",
    "uid",
    "verbose",
];

/// A connection object's keys (Houston adds `protocol`).
pub const CONNECTION_KEYS: &[&str] = &["user", "pass", "protocol", "host", "port", "db", "sslmode"];

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

pub(crate) fn check(sink: &mut Sink, raw: &Value) {
    for field in [METADATA, RESULT_BACKEND] {
        let conn = match raw.get(field) {
            Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
                Ok(v) => v,
                Err(_) => continue, // the loader already refused it
            },
            Some(v) => v.clone(),
            None => continue,
        };
        let Value::Object(conn) = conn else { continue };
        for key in conn
            .keys()
            .filter(|k| !CONNECTION_KEYS.contains(&k.as_str()))
        {
            let hint = closest(key, CONNECTION_KEYS)
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            sink.add(
                &CHART_SCHEMA,
                format!("{field}.{key}"),
                format!(
                    "the chart's schema allows only {} in a connection, not `{key}`{hint}",
                    CONNECTION_KEYS.join(", ")
                ),
            );
        }
        if let Some(Value::String(p)) = conn.get("port") {
            if p.trim().parse::<u16>().is_ok_and(|n| n > 0) {
                sink.add_fix(
                    &CHART_SCHEMA,
                    format!("{field}.port"),
                    format!("`port` is the string \"{p}\"; the chart's schema requires an integer"),
                    format!("Write `port: {}` without quotes.", p.trim()),
                );
            }
        }
        for key in ["user", "pass", "host", "db", "sslmode"] {
            if let Some(v) = conn.get(key).filter(|v| !v.is_string() && !v.is_null()) {
                sink.add(
                    &CHART_SCHEMA,
                    format!("{field}.{key}"),
                    format!(
                        "`{key}` is {}; the chart's schema requires a string",
                        kind(v)
                    ),
                );
            }
        }
        if field == RESULT_BACKEND && conn.get("sslmode").is_none_or(Value::is_null) {
            sink.add_fix(
                &CHART_SCHEMA,
                format!("{field}.sslmode"),
                "the chart's schema requires `sslmode` in the result-backend connection",
                "Add `sslmode: prefer` (the same as the metadata connection).",
            );
        }
    }

    let Some(Value::Object(pg)) = raw.get("pgbouncerConfig") else {
        return;
    };
    for key in pg.keys().filter(|k| !PGBOUNCER_KEYS.contains(&k.as_str())) {
        let hint = closest(key, PGBOUNCER_KEYS)
            .map(|c| format!(" (did you mean `{c}`?)"))
            .unwrap_or_default();
        sink.add(
            &CHART_SCHEMA,
            format!("pgbouncerConfig.{key}"),
            format!("`{key}` is not a key of the chart's `pgbouncer` block{hint}"),
        );
    }
    if let Some(Value::Object(labels)) = pg.get("labels") {
        for (k, v) in labels.iter().filter(|(_, v)| !v.is_string()) {
            sink.add_fix(
                &CHART_SCHEMA,
                format!("pgbouncerConfig.labels.{k}"),
                format!(
                    "label `{k}` is {}; the chart's schema requires a string",
                    kind(v)
                ),
                format!(
                    "Quote the value: `{k}: \"{}\"`.",
                    crate::model::scalar_text(v).unwrap_or_default()
                ),
            );
        }
    }
    match pg.get("env") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, e) in list.iter().enumerate() {
                let path = format!("pgbouncerConfig.env[{i}]");
                let Value::Object(e) = e else {
                    sink.add(
                        &CHART_SCHEMA,
                        path,
                        format!("entry is {}, not {{name, value}}", kind(e)),
                    );
                    continue;
                };
                for key in e.keys().filter(|k| *k != "name" && *k != "value") {
                    sink.add(
                        &CHART_SCHEMA,
                        format!("{path}.{key}"),
                        format!("`{key}` is not allowed: each entry is exactly {{name, value}} (no `valueFrom`)"),
                    );
                }
                for key in ["name", "value"] {
                    match e.get(key) {
                        Some(Value::String(_)) => {}
                        Some(v) => sink.add(
                            &CHART_SCHEMA,
                            format!("{path}.{key}"),
                            format!("`{key}` is {}; the chart's schema requires a string", kind(v)),
                        ),
                        None => sink.add(
                            &CHART_SCHEMA,
                            format!("{path}.{key}"),
                            format!("`{key}` is missing; the chart's schema requires both `name` and `value`"),
                        ),
                    }
                }
            }
        }
        Some(v) => sink.add_fix(
            &CHART_SCHEMA,
            "pgbouncerConfig.env",
            format!(
                "`env` is {}; the chart's schema requires a list of {{name, value}}",
                kind(v)
            ),
            "Write `env` as a list: `- name: KERBEROS_USER` / `  value: ...`.",
        ),
    }
    if let Some(Value::String(mode)) = pg.get("sslmode") {
        if !super::connection::SSLMODES.contains(&mode.as_str()) {
            sink.add(
                &CHART_SCHEMA,
                "pgbouncerConfig.sslmode",
                format!(
                    "`{mode}` is not one of the chart's sslmodes {}",
                    super::connection::SSLMODES.join(", ")
                ),
            );
        }
    }
    for key in [
        "extraIni",
        "extraIniMetadata",
        "extraIniResultBackend",
        "sslmode",
    ] {
        if let Some(v) = pg.get(key).filter(|v| !v.is_string() && !v.is_null()) {
            let path = if key == "extraIni" {
                EXTRA_INI.to_string()
            } else {
                format!("pgbouncerConfig.{key}")
            };
            sink.add(
                &CHART_SCHEMA,
                path,
                format!(
                    "`{key}` is {}; the chart's schema requires a string",
                    kind(v)
                ),
            );
        }
    }
}
