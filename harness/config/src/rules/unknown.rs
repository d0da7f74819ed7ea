//! Fields the model does not know. In an object the model covers completely an unknown key is
//! probably a typo (warning); in the open sections of values.yaml it is just not our business
//! (info). Either way it is reported, never dropped.

use super::catalog::*;
use crate::finding::{Rule, Sink};
use crate::model::{Deployment, Extra, Values};

fn report(sink: &mut Sink, rule: &'static Rule, prefix: &str, extra: &Extra) {
    for key in extra.keys() {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let msg = match rule.severity {
            crate::Severity::Warning => format!("unknown field `{key}`"),
            _ => format!("`{path}` is not checked by this linter"),
        };
        sink.add(rule, path, msg);
    }
}

pub(super) fn check_deployment(sink: &mut Sink, d: &Deployment) {
    let generic = crate::model::deployment_generic_fields();
    for key in d.extra.keys().filter(|k| !generic.contains(&k.as_str())) {
        let known = crate::model::deployment_known_fields();
        let hint = super::closest(key, &known)
            .map(|c| format!(" (did you mean `{c}`?)"))
            .unwrap_or_default();
        sink.add(
            &UNKNOWN_FIELD,
            key.clone(),
            format!("unknown field `{key}`{hint}"),
        );
    }
    // Unknown keys of the connections and of pgbouncerConfig are the chart schema's to judge
    // (chart_schema.rs): Helm refuses them, so they are errors there, not warnings here.
}

pub(super) fn check_values(sink: &mut Sink, v: &Values) {
    report(sink, &UNMODELLED_FIELD, "", &v.extra);
    if let Some(g) = &v.global {
        report(sink, &UNMODELLED_FIELD, "global", &g.extra);
        if let Some(p) = &g.pgbouncer {
            report(sink, &UNKNOWN_FIELD, "global.pgbouncer", &p.extra);
        }
    }
    if let Some(a) = &v.astronomer {
        report(sink, &UNMODELLED_FIELD, "astronomer", &a.extra);
        if let Some(h) = &a.houston {
            report(sink, &UNMODELLED_FIELD, "astronomer.houston", &h.extra);
            if let Some(c) = &h.backend_connection {
                report(
                    sink,
                    &UNKNOWN_FIELD,
                    "astronomer.houston.backendConnection",
                    &c.extra,
                );
            }
            if let Some(c) = &h.config {
                report(
                    sink,
                    &UNMODELLED_FIELD,
                    "astronomer.houston.config",
                    &c.extra,
                );
                if let Some(db) = &c.database {
                    report(
                        sink,
                        &UNMODELLED_FIELD,
                        "astronomer.houston.config.database",
                        &db.extra,
                    );
                }
                if let Some(dep) = &c.deployments {
                    report(
                        sink,
                        &UNMODELLED_FIELD,
                        "astronomer.houston.config.deployments",
                        &dep.extra,
                    );
                    if let Some(m) = &dep.manual_connection_strings {
                        report(
                            sink,
                            &UNKNOWN_FIELD,
                            "astronomer.houston.config.deployments.manualConnectionStrings",
                            &m.extra,
                        );
                    }
                }
            }
        }
    }
    if let Some(p) = &v.pgbouncer {
        report(sink, &UNMODELLED_FIELD, "pgbouncer", &p.extra);
        if let Some(i) = &p.image {
            report(sink, &UNKNOWN_FIELD, "pgbouncer.image", &i.extra);
        }
    }
    if let Some(h) = &v.harness {
        report(sink, &UNKNOWN_FIELD, "harness", &h.extra);
        if let Some(i) = &h.injector {
            report(sink, &UNKNOWN_FIELD, "harness.injector", &i.extra);
            for (n, s) in i.selectors.iter().enumerate() {
                report(
                    sink,
                    &UNKNOWN_FIELD,
                    &format!("harness.injector.selectors[{n}]"),
                    &s.extra,
                );
            }
        }
        if let Some(x) = &h.houston {
            report(sink, &UNKNOWN_FIELD, "harness.houston", &x.extra);
            if let Some(d) = &x.database {
                report(sink, &UNKNOWN_FIELD, "harness.houston.database", &d.extra);
            }
        }
        if let Some(x) = &h.platform {
            report(sink, &UNKNOWN_FIELD, "harness.platform", &x.extra);
        }
    }
}
