//! The patch logic over AdmissionReview JSON tables: what comes back for selected, unselected,
//! already injected and malformed reviews, with the patch applied the way the API server does.

use std::path::Path;

use kerberos_webhook::{review, Config};
use rstest::rstest;
use serde_json::{json, Value};

fn cfg() -> Config {
    Config::parse(
        Path::new("test.yaml"),
        "selectors:\n  - matchLabels: {krb-inject: enabled}\n  - matchLabels: {krb_inject: enabled}\n\
         krb5ConfigMap: kerberos-krb5\nkeytabSecret: pgbouncer-keytab\n",
    )
    .unwrap()
}

fn pgbouncer_pod(labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "pgb", "namespace": "astro", "labels": labels},
        "spec": {
            "securityContext": {"runAsUser": 65534},
            "containers": [{
                "name": "pgbouncer", "image": "ap-pgbouncer-krb",
                "securityContext": {"readOnlyRootFilesystem": true, "runAsUser": 65534},
                "env": [{"name": "KERBEROS_USER", "value": "astro_user@EXAMPLE.TEST"}],
                "volumeMounts": [{"name": "pgbouncer-config", "mountPath": "/etc/pgbouncer", "readOnly": true}]
            }],
            "volumes": [{"name": "pgbouncer-config", "secret": {"secretName": "pgb-config"}}]
        }
    })
}

fn review_of(op: &str, kind: Value, object: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": kind,
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "astro", "operation": op, "name": "",
            "userInfo": {"username": "admin"},
            "object": object, "oldObject": null, "dryRun": false
        }
    })
}

fn pod_kind() -> Value {
    json!({"group": "", "version": "v1", "kind": "Pod"})
}

struct Answer {
    status: u16,
    review: Value,
}

impl Answer {
    fn response(&self) -> &Value {
        &self.review["response"]
    }
    fn allowed(&self) -> bool {
        self.response()["allowed"] == json!(true)
    }
    fn message(&self) -> String {
        self.response()["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    fn patch(&self) -> Option<json_patch::Patch> {
        // kube serialises the patch bytes as a JSON list of numbers (Go's decoder takes that
        // as well as base64 for a []byte).
        let bytes: Vec<u8> = self.response()["patch"]
            .as_array()?
            .iter()
            .map(|b| b.as_u64().expect("a byte") as u8)
            .collect();
        Some(serde_json::from_slice(&bytes).expect("the patch is a JSON patch"))
    }
}

fn ask(body: &[u8]) -> Answer {
    let r = review(&cfg(), body);
    Answer {
        status: r.status,
        review: serde_json::from_slice(&r.body).expect("the answer is JSON"),
    }
}

fn apply(pod: &Value, a: &Answer) -> Value {
    let mut p = pod.clone();
    if let Some(patch) = a.patch() {
        json_patch::patch(&mut p, &patch).unwrap();
    }
    p
}

fn env_of(pod: &Value, name: &str) -> Option<String> {
    pod["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str().map(String::from))
}

fn mount_of(pod: &Value, volume: &str) -> Option<String> {
    pod["spec"]["containers"][0]["volumeMounts"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == volume)
        .and_then(|m| m["mountPath"].as_str().map(String::from))
}

#[rstest]
#[case::deployment_labels(json!({"krb-inject": "enabled", "component": "pgbouncer"}))]
#[case::houston_rewritten_labels(json!({"krb_inject": "enabled", "tier": "astronomer"}))]
fn selected_pods_get_credentials(#[case] labels: Value) {
    let pod = pgbouncer_pod(labels);
    let a = ask(&serde_json::to_vec(&review_of("CREATE", pod_kind(), pod.clone())).unwrap());
    assert_eq!(a.status, 200);
    assert!(a.allowed(), "{:?}", a.review);
    assert_eq!(
        a.response()["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002",
        "uid copied"
    );
    assert_eq!(a.response()["patchType"], "JSONPatch");
    let out = apply(&pod, &a);
    assert_eq!(
        env_of(&out, "KRB5_CONFIG").as_deref(),
        Some("/etc/kerberos/conf/krb5.conf")
    );
    assert_eq!(
        env_of(&out, "KRB5_CLIENT_KTNAME").as_deref(),
        Some("FILE:/etc/kerberos/keytab/krb5.keytab")
    );
    assert_eq!(
        env_of(&out, "KRB5CCNAME").as_deref(),
        Some("FILE:/tmp/krb5cc_pgbouncer")
    );
    assert_eq!(
        env_of(&out, "KERBEROS_USER").as_deref(),
        Some("astro_user@EXAMPLE.TEST")
    );
    assert_eq!(
        mount_of(&out, "kerberos-krb5-conf").as_deref(),
        Some("/etc/kerberos/conf")
    );
    assert_eq!(
        mount_of(&out, "kerberos-keytab").as_deref(),
        Some("/etc/kerberos/keytab")
    );
    assert_eq!(mount_of(&out, "kerberos-tmp").as_deref(), Some("/tmp"));
    assert_eq!(
        mount_of(&out, "pgbouncer-config").as_deref(),
        Some("/etc/pgbouncer")
    );
    let vols = out["spec"]["volumes"].as_array().unwrap();
    let kt = vols
        .iter()
        .find(|v| v["name"] == "kerberos-keytab")
        .unwrap();
    assert_eq!(kt["secret"]["secretName"], "pgbouncer-keytab");
    assert_eq!(kt["secret"]["defaultMode"], 0o440);
    let cm = vols
        .iter()
        .find(|v| v["name"] == "kerberos-krb5-conf")
        .unwrap();
    assert_eq!(cm["configMap"]["name"], "kerberos-krb5");
    // The keytab is group-readable; the pod's fsGroup makes nobody's group its group.
    assert_eq!(out["spec"]["securityContext"]["fsGroup"], 65534);
    assert_eq!(out["spec"]["securityContext"]["runAsUser"], 65534, "kept");
}

#[rstest]
#[case::other_labels(json!({"kerberos-inject": "true"}))]
#[case::wrong_value(json!({"krb-inject": "disabled"}))]
#[case::no_labels(Value::Null)]
fn unselected_pods_are_untouched(#[case] labels: Value) {
    let pod = pgbouncer_pod(labels);
    let a = ask(&serde_json::to_vec(&review_of("CREATE", pod_kind(), pod.clone())).unwrap());
    assert!(a.allowed());
    assert!(
        a.patch().is_none(),
        "no patch for an unselected pod: {:?}",
        a.review
    );
    assert_eq!(apply(&pod, &a), pod);
}

#[test]
fn mutated_twice_is_mutated_once() {
    let pod = pgbouncer_pod(json!({"krb-inject": "enabled"}));
    let once = apply(
        &pod,
        &ask(&serde_json::to_vec(&review_of("CREATE", pod_kind(), pod.clone())).unwrap()),
    );
    let a = ask(&serde_json::to_vec(&review_of("CREATE", pod_kind(), once.clone())).unwrap());
    assert!(a.allowed());
    assert_eq!(a.patch().map(|p| p.0.len()), Some(0), "{:?}", a.review);
    assert_eq!(apply(&once, &a), once);
}

#[test]
fn a_pod_with_its_own_tmp_and_fs_group_keeps_them() {
    let mut pod = pgbouncer_pod(json!({"krb-inject": "enabled"}));
    pod["spec"]["securityContext"]["fsGroup"] = json!(2000);
    pod["spec"]["containers"][0]["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "scratch", "mountPath": "/tmp"}));
    let out = apply(
        &pod,
        &ask(&serde_json::to_vec(&review_of("CREATE", pod_kind(), pod.clone())).unwrap()),
    );
    assert_eq!(out["spec"]["securityContext"]["fsGroup"], 2000);
    assert_eq!(mount_of(&out, "kerberos-tmp"), None);
    assert!(!out["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["name"] == "kerberos-tmp"));
}

#[test]
fn a_stale_injection_is_corrected() {
    let mut pod = pgbouncer_pod(json!({"krb-inject": "enabled"}));
    pod["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "KRB5_CLIENT_KTNAME", "value": "/wrong"}));
    let out = apply(
        &pod,
        &ask(&serde_json::to_vec(&review_of("CREATE", pod_kind(), pod.clone())).unwrap()),
    );
    let n = out["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "KRB5_CLIENT_KTNAME")
        .count();
    assert_eq!(n, 1);
    assert_eq!(
        env_of(&out, "KRB5_CLIENT_KTNAME").as_deref(),
        Some("FILE:/etc/kerberos/keytab/krb5.keytab")
    );
}

#[rstest]
#[case::update("UPDATE")]
#[case::delete("DELETE")]
fn other_operations_pass_unchanged(#[case] op: &str) {
    let pod = pgbouncer_pod(json!({"krb-inject": "enabled"}));
    let a = ask(&serde_json::to_vec(&review_of(op, pod_kind(), pod)).unwrap());
    assert!(a.allowed());
    assert!(a.patch().is_none());
}

#[rstest]
#[case::not_json(b"{not json".to_vec(), 400, "not an AdmissionReview")]
#[case::empty(Vec::new(), 400, "not an AdmissionReview")]
#[case::no_request(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(), 400, "has no `request`")]
#[case::request_wrong_type(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":[]}"#.to_vec(), 400, "not an AdmissionReview")]
fn malformed_reviews_get_a_clear_status(
    #[case] body: Vec<u8>,
    #[case] status: u16,
    #[case] want: &str,
) {
    let a = ask(&body);
    assert_eq!(a.status, status);
    assert!(!a.allowed());
    assert!(a.message().contains(want), "{}", a.message());
}

#[rstest]
#[case::no_spec(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"krb-inject": "enabled"}}}), "`spec` is missing")]
#[case::containers_not_list(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"krb-inject": "enabled"}}, "spec": {"containers": {}}}), "`spec.containers` is not a list")]
#[case::env_not_list(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"krb-inject": "enabled"}}, "spec": {"containers": [{"name": "c", "env": "x"}]}}), "`spec.containers[0].env` is not a list")]
fn malformed_pods_are_denied_naming_the_field(#[case] pod: Value, #[case] want: &str) {
    let a = ask(&serde_json::to_vec(&review_of("CREATE", pod_kind(), pod)).unwrap());
    assert_eq!(a.status, 200);
    assert!(!a.allowed());
    assert_eq!(a.response()["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert!(a.message().contains(want), "{}", a.message());
}

#[test]
fn other_kinds_are_denied() {
    let a = ask(&serde_json::to_vec(&review_of(
        "CREATE",
        json!({"group": "apps", "version": "v1", "kind": "Deployment"}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}),
    ))
    .unwrap());
    assert!(!a.allowed());
    assert!(a.message().contains("pods only"), "{}", a.message());
}
