//! Validation: the checks a support engineer would do by eye, each with a stable id
//! ([`catalog`]) and a fix.

pub mod catalog;
pub mod chart_schema;
mod connection;
mod control_plane;
mod database_line;
mod kerberos;
mod labels;
mod pgbouncer_ini;
mod release;
mod unknown;

use crate::finding::{Finding, Sink};
use crate::ini;
use crate::load::HoustonTemplates;
use crate::model::{Connection, Deployment, LabelSelector, Values};
use std::path::Path;

pub const METADATA: &str = "metadataConnectionJson";
pub const RESULT_BACKEND: &str = "resultBackendConnectionJson";
pub const EXTRA_INI: &str = "pgbouncerConfig.extraIni";
pub const EXTRA_METADATA: &str = "pgbouncerConfig.extraIniMetadata";
pub const EXTRA_RESULT_BACKEND: &str = "pgbouncerConfig.extraIniResultBackend";

/// One of the two databases a deployment's PgBouncer serves, with what the rules need of it.
pub(crate) struct Database<'a> {
    /// `metadataConnectionJson` or `resultBackendConnectionJson`.
    pub field: &'static str,
    /// The pgbouncerConfig field whose text is appended to this database's line.
    pub extras_field: &'static str,
    pub conn: Option<&'a Connection>,
    pub extras_text: Option<&'a str>,
    /// Parsed extras, when they parse.
    pub extras: Option<Vec<(String, String)>>,
}

impl Database<'_> {
    pub fn extra(&self, key: &str) -> Option<&str> {
        self.extras
            .as_deref()
            .and_then(|e| ini::last_setting(e, key))
    }
}

pub(crate) struct View<'a> {
    pub d: &'a Deployment,
    pub databases: [Database<'a>; 2],
    /// `extraIni` settings in order.
    pub ini: Vec<(String, String)>,
}

impl<'a> View<'a> {
    fn new(d: &'a Deployment) -> Self {
        let pg = d.pgbouncer_config.as_ref();
        let db = |field, extras_field, conn, text: Option<&'a String>| {
            let text = text.map(String::as_str);
            Database {
                field,
                extras_field,
                conn,
                extras_text: text,
                extras: text.and_then(|t| ini::parse_db_extras(t).ok()),
            }
        };
        View {
            d,
            databases: [
                db(
                    METADATA,
                    EXTRA_METADATA,
                    d.metadata(),
                    pg.and_then(|p| p.extra_ini_metadata.as_ref()),
                ),
                db(
                    RESULT_BACKEND,
                    EXTRA_RESULT_BACKEND,
                    d.result_backend(),
                    pg.and_then(|p| p.extra_ini_result_backend.as_ref()),
                ),
            ],
            ini: pg
                .and_then(|p| p.extra_ini.as_deref())
                .map(ini::settings)
                .unwrap_or_default(),
        }
    }
}

/// Findings for a deployment file. `selectors` are the injector's pod selectors, when known.
pub fn check_deployment(
    file: &Path,
    d: &Deployment,
    selectors: Option<&[LabelSelector]>,
) -> Vec<Finding> {
    let mut sink = Sink::new(file);
    let view = View::new(d);
    kerberos::check(&mut sink, &view);
    connection::check(&mut sink, &view);
    database_line::check(&mut sink, &view);
    pgbouncer_ini::check(&mut sink, &view);
    labels::check_deployment(&mut sink, d, selectors);
    release::check(&mut sink, d);
    unknown::check_deployment(&mut sink, d);
    dedupe(sink.out)
}

/// Findings the deployment chart's schema gives for the file as written (`raw` is the file
/// parsed as plain JSON/YAML).
pub fn check_deployment_raw(file: &Path, raw: &serde_json::Value) -> Vec<Finding> {
    let mut sink = Sink::new(file);
    chart_schema::check(&mut sink, raw);
    dedupe(sink.out)
}

/// Findings for a control-plane values file. `templates` are Houston's PgBouncer templates.
pub fn check_values(
    file: &Path,
    v: &Values,
    templates: Option<&HoustonTemplates>,
    selectors: Option<&[LabelSelector]>,
) -> Vec<Finding> {
    let mut sink = Sink::new(file);
    control_plane::check(&mut sink, v, templates);
    control_plane::check_deployments(&mut sink, v);
    labels::check_houston(&mut sink, v, selectors);
    unknown::check_values(&mut sink, v);
    dedupe(sink.out)
}

/// The same problem seen from both databases (one shared SPN, say) is reported once.
fn dedupe(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::with_capacity(findings.len());
    for f in findings {
        if !out
            .iter()
            .any(|o| o.rule == f.rule && o.path == f.path && o.message == f.message)
        {
            out.push(f);
        }
    }
    out
}

/// Levenshtein distance, for "did you mean" on misspelled keys.
pub(crate) fn closest<'k>(word: &str, candidates: &[&'k str]) -> Option<&'k str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let sub = prev[j] + usize::from(ca != *cb);
                cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|(d, _)| *d <= (word.len() / 3).clamp(1, 3))
        .min()
        .map(|(_, c)| c)
}
