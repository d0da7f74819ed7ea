//! The pod mutation itself: given a pod (as the API server sent it) and the configuration, the
//! pod as it must be admitted. Written as "ensure" steps on the JSON object, so applying it to
//! an already injected pod changes nothing (a pod mutated twice is mutated once); the JSON
//! patch is the difference. Working on the JSON, not a typed Pod, keeps every field the API
//! server sent, including ones newer than this crate's Kubernetes types.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::config::Config;

/// Volume names this webhook owns; a pod that already has them is given the webhook's version.
pub const KRB5_VOLUME: &str = "kerberos-krb5-conf";
pub const KEYTAB_VOLUME: &str = "kerberos-keytab";
pub const TMP_VOLUME: &str = "kerberos-tmp";

/// Where the credentials appear inside the containers.
pub const KRB5_DIR: &str = "/etc/kerberos/conf";
pub const KEYTAB_DIR: &str = "/etc/kerberos/keytab";
/// File names inside those directories (the ConfigMap/Secret keys are mapped onto them).
pub const KRB5_FILE: &str = "krb5.conf";
pub const KEYTAB_FILE: &str = "krb5.keytab";
/// The chart runs PgBouncer with a read-only root filesystem: the ticket cache MIT fills from
/// the keytab must live on the writable /tmp.
pub const CCACHE: &str = "FILE:/tmp/krb5cc_pgbouncer";

/// Owner and group read, nobody else: the file is owned by root and the pod's `fsGroup`, which
/// the kubelet adds to every container's groups.
const KEYTAB_MODE: i64 = 0o440;
const KRB5_MODE: i64 = 0o444;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InjectError {
    #[error("the admitted object is not a pod: `{field}` {problem}")]
    NotAPod { field: String, problem: String },
}

fn not_a_pod(field: &str, problem: &str) -> InjectError {
    InjectError::NotAPod {
        field: field.into(),
        problem: problem.into(),
    }
}

/// The pod's labels; a pod without `metadata.labels` has none.
pub fn labels(pod: &Value) -> Result<BTreeMap<String, String>, InjectError> {
    match pod.pointer("/metadata/labels") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(not_a_pod(
                    &format!("metadata.labels.{k}"),
                    "is not a string",
                )),
            })
            .collect(),
        Some(_) => Err(not_a_pod("metadata.labels", "is not an object")),
    }
}

pub fn is_selected(cfg: &Config, pod: &Value) -> Result<bool, InjectError> {
    let l = labels(pod)?;
    Ok(cfg.selectors.iter().any(|s| s.matches(&l)))
}

/// The pod as admitted. Not-selected pods come back unchanged.
pub fn mutate(cfg: &Config, pod: &Value) -> Result<Value, InjectError> {
    check_shape(pod)?;
    let mut out = pod.clone();
    if !is_selected(cfg, pod)? {
        return Ok(out);
    }
    let spec = out
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .expect("checked by check_shape");

    let volumes = array(spec, "volumes");
    put_named(
        volumes,
        json!({"name": KRB5_VOLUME, "configMap": {
            "name": cfg.krb5_config_map,
            "items": [{"key": cfg.krb5_config_map_key, "path": KRB5_FILE}],
            "defaultMode": KRB5_MODE,
        }}),
    );
    put_named(
        volumes,
        json!({"name": KEYTAB_VOLUME, "secret": {
            "secretName": cfg.keytab_secret,
            "items": [{"key": cfg.keytab_secret_key, "path": KEYTAB_FILE}],
            "defaultMode": KEYTAB_MODE,
        }}),
    );

    let mut needs_tmp = false;
    let containers = spec
        .get_mut("containers")
        .and_then(Value::as_array_mut)
        .expect("checked by check_shape");
    for c in containers.iter_mut().filter_map(Value::as_object_mut) {
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        if !cfg.containers.is_empty() && !cfg.containers.iter().any(|n| n == name) {
            continue;
        }
        let mounts = array(c, "volumeMounts");
        put_named(
            mounts,
            json!({"name": KRB5_VOLUME, "mountPath": KRB5_DIR, "readOnly": true}),
        );
        put_named(
            mounts,
            json!({"name": KEYTAB_VOLUME, "mountPath": KEYTAB_DIR, "readOnly": true}),
        );
        let has_tmp = mounts.iter().any(|m| {
            m.get("mountPath").and_then(Value::as_str) == Some("/tmp")
                && m.get("name").and_then(Value::as_str) != Some(TMP_VOLUME)
        });
        if !has_tmp {
            put_named(mounts, json!({"name": TMP_VOLUME, "mountPath": "/tmp"}));
            needs_tmp = true;
        }
        let env = array(c, "env");
        for (k, v) in [
            ("KRB5_CONFIG", format!("{KRB5_DIR}/{KRB5_FILE}")),
            (
                "KRB5_CLIENT_KTNAME",
                format!("FILE:{KEYTAB_DIR}/{KEYTAB_FILE}"),
            ),
            ("KRB5CCNAME", CCACHE.to_string()),
        ] {
            put_named(env, json!({"name": k, "value": v}));
        }
    }
    if needs_tmp {
        put_named(
            array(spec, "volumes"),
            json!({"name": TMP_VOLUME, "emptyDir": {"medium": "Memory"}}),
        );
    }

    let sc = spec.entry("securityContext").or_insert_with(|| json!({}));
    if let Some(sc) = sc.as_object_mut() {
        sc.entry("fsGroup").or_insert_with(|| json!(cfg.fs_group));
    }
    Ok(out)
}

/// What `mutate` relies on, so a malformed object is a clear error rather than a panic.
fn check_shape(pod: &Value) -> Result<(), InjectError> {
    if !pod.is_object() {
        return Err(not_a_pod("object", "is not a JSON object"));
    }
    let spec = pod
        .get("spec")
        .ok_or_else(|| not_a_pod("spec", "is missing"))?
        .as_object()
        .ok_or_else(|| not_a_pod("spec", "is not an object"))?;
    let containers = spec
        .get("containers")
        .ok_or_else(|| not_a_pod("spec.containers", "is missing"))?
        .as_array()
        .ok_or_else(|| not_a_pod("spec.containers", "is not a list"))?;
    for (field, v) in [
        ("spec.volumes", spec.get("volumes")),
        ("spec.securityContext", spec.get("securityContext")),
    ] {
        if let Some(v) = v {
            let ok = if field == "spec.volumes" {
                v.is_array() || v.is_null()
            } else {
                v.is_object() || v.is_null()
            };
            if !ok {
                return Err(not_a_pod(field, "has the wrong type"));
            }
        }
    }
    for (i, c) in containers.iter().enumerate() {
        let c = c
            .as_object()
            .ok_or_else(|| not_a_pod(&format!("spec.containers[{i}]"), "is not an object"))?;
        for k in ["env", "volumeMounts"] {
            if let Some(v) = c.get(k) {
                if !(v.is_array() || v.is_null()) {
                    return Err(not_a_pod(
                        &format!("spec.containers[{i}].{k}"),
                        "is not a list",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The list at `key`, created when absent or null.
fn array<'a>(obj: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let v = obj.entry(key).or_insert_with(|| json!([]));
    if v.is_null() {
        *v = json!([]);
    }
    v.as_array_mut().expect("checked by check_shape")
}

/// Replaces the element with the same `name`, or appends: the webhook's version wins, and
/// putting the same element twice leaves one. An element that already says everything `item`
/// says is left as it is, so fields the API server defaulted after the first admission do not
/// turn a second admission into a change.
fn put_named(list: &mut Vec<Value>, item: Value) {
    let name = item.get("name").cloned();
    match list.iter_mut().find(|e| e.get("name") == name.as_ref()) {
        Some(existing) if contains(existing, &item) => {}
        Some(existing) => *existing = item,
        None => list.push(item),
    }
}

/// `want` is `have`, or for objects every key of `want` is in `have` with a contained value.
fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| h.get(k).is_some_and(|hv| contains(hv, wv))),
        _ => have == want,
    }
}
