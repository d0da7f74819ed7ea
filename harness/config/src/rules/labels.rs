//! Pod labels the credential injector selects on. Kubernetes matches labels exactly, and the
//! control plane's chart rewrites `-` to `_` in Houston's PgBouncer label keys, which is the
//! classic reason a pod starts without credentials.

use super::catalog::*;
use crate::finding::Sink;
use crate::model::{Deployment, LabelSelector, StringMap, Values};

fn describe(selectors: &[LabelSelector]) -> String {
    selectors
        .iter()
        .map(|s| {
            format!(
                "{{{}}}",
                s.match_labels
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

fn describe_labels(labels: &StringMap) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn check_deployment(
    sink: &mut Sink,
    d: &Deployment,
    selectors: Option<&[LabelSelector]>,
) {
    let path = "pgbouncerConfig.labels";
    let labels = d
        .pgbouncer_config
        .as_ref()
        .and_then(|p| p.labels.clone())
        .unwrap_or_default();
    if labels.is_empty() {
        sink.add(
            &LABELS_REQUIRED,
            path,
            "`pgbouncerConfig.labels` is missing or empty",
        );
        return;
    }
    let Some(selectors) = selectors.filter(|s| !s.is_empty()) else {
        return;
    };
    // The deployment chart's own pod labels are there too, and a selector may use them.
    let mut pod = labels.clone();
    for (k, v) in [("tier", "airflow"), ("component", "pgbouncer")] {
        pod.0.entry(k.to_string()).or_insert_with(|| v.to_string());
    }
    if let Some(release) = d.release_name.as_deref() {
        pod.0
            .entry("release".into())
            .or_insert_with(|| release.to_string());
    }
    if !selectors.iter().any(|s| s.matches(&pod)) {
        sink.add(
            &LABELS_SELECTOR,
            path,
            format!(
                "labels {{{}}} match none of the injector's selectors {}",
                describe_labels(&labels),
                describe(selectors)
            ),
        );
    }
}

pub(super) fn check_houston(sink: &mut Sink, v: &Values, selectors: Option<&[LabelSelector]>) {
    let Some(gp) = v.global_pgbouncer().filter(|g| g.enabled == Some(true)) else {
        return;
    };
    let path = "global.pgbouncer.extraLabels";
    let extra = gp.extra_labels.clone().unwrap_or_default();
    let rewritten = StringMap(
        extra
            .iter()
            .map(|(k, val)| (k.replace('-', "_"), val.clone()))
            .collect(),
    );
    match selectors.filter(|s| !s.is_empty()) {
        Some(selectors) => {
            let pod = crate::render::kube::houston_pgbouncer_pod_labels(v);
            if !selectors.iter().any(|s| s.matches(&pod)) {
                let rewrite_note = if extra.iter().any(|(k, _)| k.contains('-')) {
                    format!(
                        " (the chart renders them as {{{}}})",
                        describe_labels(&rewritten)
                    )
                } else {
                    String::new()
                };
                sink.add(
                    &HOUSTON_LABEL_SELECTOR,
                    path,
                    format!(
                        "Houston's PgBouncer labels {{{}}}{rewrite_note} match none of the injector's selectors {}",
                        describe_labels(&extra),
                        describe(selectors)
                    ),
                );
            }
        }
        None if extra.is_empty() => sink.add(
            &HOUSTON_PGBOUNCER_LABELS,
            path,
            "Houston's PgBouncer is enabled but has no extraLabels",
        ),
        None => {
            for (k, _) in extra.iter().filter(|(k, _)| k.contains('-')) {
                sink.add(
                    &HOUSTON_LABEL_REWRITE,
                    format!("{path}.{k}"),
                    format!(
                        "label key `{k}` is rendered as `{}` on Houston's PgBouncer pod",
                        k.replace('-', "_")
                    ),
                );
            }
        }
    }
}
