//! The Kubernetes objects and chart values, per platform, as the charts render them (checked
//! against `helm template` of Astronomer's charts with `cargo xtask chart-diff`).

use base64::Engine as _;
use harness_config::*;
use rstest::rstest;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn deployment() -> Deployment {
    load_deployment(&fixtures().join("deployments/kerberos.yaml"))
        .unwrap()
        .with_generated_secret("s3cret")
}

fn values(yaml: &str) -> Values {
    serde_yaml::from_str(yaml).unwrap()
}

fn decoded(secret: &Value, key: &str) -> String {
    let b = base64::engine::general_purpose::STANDARD
        .decode(secret["data"][key].as_str().unwrap())
        .unwrap();
    String::from_utf8(b).unwrap()
}

fn objects(p: Platform) -> DeploymentObjects {
    deployment_objects(&deployment(), p, &p.krb_pgbouncer_image()).unwrap()
}

#[rstest]
#[case(Platform::Software0377)]
#[case(Platform::Apc110)]
fn the_secrets_hold_the_rendered_files_and_urls(#[case] p: Platform) {
    let o = objects(p);
    let d = deployment();
    assert_eq!(
        decoded(&o.config_secret, "pgbouncer.ini"),
        render_for_platform(&d).unwrap()
    );
    assert_eq!(
        decoded(&o.config_secret, "users.txt"),
        render_chart_users_txt(&d).unwrap()
    );
    let urls = chart_urls(&d).unwrap();
    assert_eq!(decoded(&o.metadata_secret, "connection"), urls.metadata);
    assert_eq!(
        decoded(&o.result_backend_secret, "connection"),
        urls.result_backend
    );
    assert_eq!(
        o.config_secret["metadata"]["name"],
        "kerberos-demo-pgbouncer-config"
    );
    assert_eq!(
        o.config_secret["metadata"]["namespace"],
        "astronomer-kerberos-demo"
    );
}

#[test]
fn the_pod_runs_as_the_chart_runs_it() {
    let o = objects(Platform::Software0377);
    let pod = o.pgbouncer_pod_template();
    assert_eq!(
        pod["metadata"]["labels"],
        json!({"tier": "airflow", "component": "pgbouncer", "release": "kerberos-demo", "krb-inject": "enabled"})
    );
    assert_eq!(pod["spec"]["securityContext"], json!({"runAsUser": 65534}));
    let c = &pod["spec"]["containers"][0];
    assert_eq!(
        c["command"],
        json!(["pgbouncer", "-u", "nobody", "/etc/pgbouncer/pgbouncer.ini"])
    );
    assert_eq!(
        c["securityContext"],
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
    );
    assert_eq!(c["image"], "quay.io/astronomer/ap-pgbouncer-krb:1.25.0-2");
    assert_eq!(
        c["env"],
        json!([{"name": "KERBEROS_USER", "value": "astro_user@EXAMPLE.TEST"}])
    );
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert!(mounts.iter().all(|m| m["readOnly"] == true));
    assert_eq!(mounts.len(), 2);
    assert_eq!(
        o.pgbouncer_deployment["metadata"]["labels"]["chart"],
        "airflow-1.15.6-astro"
    );
    assert_eq!(o.config_secret["metadata"]["labels"]["chart"], "airflow");
}

#[test]
fn on_1_1_0_the_root_is_read_only_and_tmp_is_an_empty_dir() {
    let o = objects(Platform::Apc110);
    let spec = &o.pgbouncer_pod_template()["spec"];
    assert_eq!(
        spec["containers"][0]["securityContext"],
        json!({"readOnlyRootFilesystem": true})
    );
    assert!(spec["volumes"]
        .as_array()
        .unwrap()
        .contains(&json!({"emptyDir": {}, "name": "tmp"})));
    assert!(spec["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .contains(&json!({"mountPath": "/tmp", "name": "tmp"})));
    assert_eq!(
        o.config_secret["metadata"]["labels"]["chart"],
        "airflow-1.17.3-astro"
    );
}

const HOUSTON: &str = "
global:
  podLabels: {team: data}
  pgbouncer:
    enabled: true
    extraLabels: {example.com/krb-inject: enabled}
    extraEnv: {KERBEROS-USER: houston@EXAMPLE.TEST}
harness:
  platform: {releaseName: astro}
";

#[test]
fn houstons_pgbouncer_labels_rewrite_the_whole_key_and_keep_the_charts_own() {
    let v = values(HOUSTON);
    let labels = houston_pgbouncer_pod_labels(&v);
    for (k, want) in [
        ("example.com/krb_inject", "enabled"),
        ("team", "data"),
        ("app", "pgbouncer"),
        ("chart", "pgbouncer-0.0.1"),
        ("heritage", "Helm"),
        ("release", "astro"),
        ("component", "pgbouncer"),
        ("version", "0.0.1"),
        ("tier", "astronomer"),
    ] {
        assert_eq!(labels.get(k).map(String::as_str), Some(want), "{k}");
    }
    assert_eq!(labels.get("example.com/krb-inject"), None);
    let d = houston_pgbouncer_deployment(&v, Platform::Apc110).unwrap();
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "quay.io/astronomer/ap-pgbouncer-krb:1.25.0-3");
    assert_eq!(
        c["env"],
        json!([{"name": "KERBEROS_USER", "value": "houston@EXAMPLE.TEST"}])
    );
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert!(houston_pgbouncer_deployment(
        &values("global: {pgbouncer: {enabled: false}}"),
        Platform::Apc110
    )
    .is_none());
}

#[rstest]
#[case("{}", "quay.io/astronomer/ap-pgbouncer:1.24.1-2", None)]
#[case(
    "global: {airflow: {images: {pgbouncer: {repository: r/ap-pgbouncer-krb, tag: '1.25.0-2'}}}}",
    "r/ap-pgbouncer-krb:1.25.0-2",
    Some(model::GLOBAL_PGBOUNCER_IMAGE)
)]
#[case(
    "global: {airflow: {images: {pgbouncer: {repository: r/g, tag: t}}}}\nastronomer: {houston: {config: {deployments: {helm: {airflow: {images: {pgbouncer: {repository: r/h}}}}}}}}",
    "r/h:t",
    Some(model::HELM_PGBOUNCER_IMAGE)
)]
fn the_deployments_image_is_houstons_override_over_the_global_default(
    #[case] yaml: &str,
    #[case] want: &str,
    #[case] path: Option<&str>,
) {
    let c = values(yaml).deployment_pgbouncer_image(Platform::Software0377);
    assert_eq!((c.image.to_string().as_str(), c.path), (want, path));
}

#[test]
fn chart_values_are_what_houston_passes() {
    let v = load_values(&fixtures().join("values.yaml")).unwrap();
    let cv = chart_values(&deployment(), Some(&v), Platform::Software0377);
    assert_eq!(
        cv["airflow"]["data"]["metadataConnection"]["protocol"],
        "postgresql"
    );
    assert_eq!(
        cv["airflow"]["data"]["resultBackendConnection"]["port"],
        5432
    );
    assert_eq!(cv["airflow"]["pgbouncer"]["enabled"], true);
    assert_eq!(
        cv["airflow"]["pgbouncer"]["extraIniMetadata"],
        "user=astro_user@EXAMPLE.TEST"
    );
    assert_eq!(
        cv["airflow"]["images"]["pgbouncer"],
        json!({"repository": "quay.io/astronomer/ap-pgbouncer-krb", "tag": "1.25.0-2"})
    );
    assert_eq!(cv["airflow"]["executor"], "CeleryExecutor");
    assert!(cv.get("kerberosEnabled").is_none() && cv["airflow"].get("kerberosEnabled").is_none());
}

#[test]
fn the_bundle_names_every_file_and_marks_the_secret_ones() {
    let v = load_values(&fixtures().join("values.yaml")).unwrap();
    let files = render_bundle(&deployment(), Some(&v), Platform::Apc110).unwrap();
    let names: Vec<_> = files
        .iter()
        .map(|f| (f.name, f.secret, f.kubernetes))
        .collect();
    assert_eq!(
        names,
        [
            ("values.yaml", true, false),
            ("pgbouncer.ini", false, false),
            ("users.txt", true, false),
            ("metadata-url.txt", true, false),
            ("result-backend-url.txt", true, false),
            ("pgbouncer-config-secret.yaml", true, true),
            ("metadata-secret.yaml", true, true),
            ("result-backend-secret.yaml", true, true),
            ("pgbouncer-deployment.yaml", false, true),
            ("houston-pgbouncer-deployment.yaml", false, true),
        ]
    );
}
