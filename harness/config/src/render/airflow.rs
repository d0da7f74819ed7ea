//! Airflow's connections to its PgBouncer: database aliases, not real databases, and the
//! password is the users.txt one (PgBouncer does Kerberos on the other side). The URLs are
//! written the way the subchart's connection Secrets write them (Sprig's `urlJoin` over
//! `urlquery`-escaped user and password), byte for byte.

use super::pgbouncer::{release, required, DEFAULT_METADATA_SSLMODE};
use super::{missing, RenderError};
use crate::model::{Connection, Deployment};

/// PgBouncer's port in the deployment chart (`ports.pgbouncer`).
pub const PGBOUNCER_PORT: u16 = 6543;

/// Where Airflow reaches PgBouncer in the harness: a loopback port. `sslmode` overrides the
/// connection's own when set; `None` keeps what the chart writes (the connection's `sslmode`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgbouncerEndpoint {
    pub host: String,
    pub port: u16,
    pub sslmode: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AirflowUrls {
    /// `AIRFLOW__DATABASE__SQL_ALCHEMY_CONN` (the Secret `<release>-metadata`).
    pub metadata: String,
    /// `AIRFLOW__CELERY__RESULT_BACKEND` (the Secret `<release>-result-backend`, Celery only).
    pub result_backend: String,
}

/// The user or password as it ends up in the chart's URL. The chart escapes it with Go's
/// `QueryEscape` and `urlJoin` parses that back and re-escapes it as userinfo: `@ / ? :` and
/// everything outside ASCII letters, digits and `-._~$&+,;=` become `%XX`, and a space becomes
/// a literal `+` (which a URL parser reads as `+`, not as a space: see rule KRB027).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'$'
            | b'&'
            | b'+'
            | b','
            | b';'
            | b'=' => out.push(b as char),
            _ => out += &format!("%{b:02X}"),
        }
    }
    out
}

fn url(
    scheme: &str,
    c: &Connection,
    field: &str,
    host: &str,
    port: u16,
    alias: &str,
    sslmode: &str,
) -> Result<String, RenderError> {
    let user = c
        .user
        .as_deref()
        .ok_or_else(|| missing(&format!("{field}.user"), "not set"))?;
    let pass = c
        .pass
        .as_deref()
        .ok_or_else(|| missing(&format!("{field}.pass"), "not set"))?;
    Ok(format!(
        "{scheme}://{}:{}@{host}:{port}/{alias}?sslmode={sslmode}",
        encode(user),
        encode(pass),
    ))
}

/// The two connections and each one's `sslmode` as the chart reads them: the result backend
/// falls back to the metadata connection; a metadata connection without `sslmode` gets the
/// subchart's default `disable`; the result backend's is required by the subchart's schema.
fn connections(d: &Deployment) -> Result<[(&Connection, &'static str, String); 2], RenderError> {
    let meta = required(d.metadata(), "metadataConnectionJson")?;
    let meta_mode = meta
        .sslmode
        .clone()
        .unwrap_or_else(|| DEFAULT_METADATA_SSLMODE.into());
    let rb = match d.result_backend() {
        Some(rb) => {
            let mode = rb.sslmode.clone().ok_or_else(|| {
                missing(
                    "resultBackendConnectionJson.sslmode",
                    "required by the deployment chart's schema",
                )
            })?;
            (rb, "resultBackendConnectionJson", mode)
        }
        None => (meta, "metadataConnectionJson", meta_mode.clone()),
    };
    Ok([(meta, "metadataConnectionJson", meta_mode), rb])
}

/// Airflow's URLs at a PgBouncer the harness runs.
pub fn airflow_urls(d: &Deployment, ep: &PgbouncerEndpoint) -> Result<AirflowUrls, RenderError> {
    let release = release(d)?;
    let [(meta, mf, mm), (rb, rf, rm)] = connections(d)?;
    let mode = |own: &str| ep.sslmode.clone().unwrap_or_else(|| own.to_string());
    Ok(AirflowUrls {
        metadata: url(
            "postgresql",
            meta,
            mf,
            &ep.host,
            ep.port,
            &format!("{release}-metadata"),
            &mode(&mm),
        )?,
        result_backend: url(
            "db+postgresql",
            rb,
            rf,
            &ep.host,
            ep.port,
            &format!("{release}-result-backend"),
            &mode(&rm),
        )?,
    })
}

/// The deployment's namespace: `namespace`, else Houston's `astronomer-<release>`.
pub fn namespace(d: &Deployment) -> Result<String, RenderError> {
    match &d.namespace {
        Some(ns) => Ok(ns.clone()),
        None => Ok(format!("astronomer-{}", release(d)?)),
    }
}

/// The URLs exactly as the chart's Secrets hold them: the metadata URL names the service with
/// its namespace, the result-backend URL without (`<release>-pgbouncer`).
pub fn chart_urls(d: &Deployment) -> Result<AirflowUrls, RenderError> {
    let release = release(d)?;
    let ns = namespace(d)?;
    let [(meta, mf, mm), (rb, rf, rm)] = connections(d)?;
    Ok(AirflowUrls {
        metadata: url(
            "postgresql",
            meta,
            mf,
            &format!("{release}-pgbouncer.{ns}"),
            PGBOUNCER_PORT,
            &format!("{release}-metadata"),
            &mm,
        )?,
        result_backend: url(
            "db+postgresql",
            rb,
            rf,
            &format!("{release}-pgbouncer"),
            PGBOUNCER_PORT,
            &format!("{release}-result-backend"),
            &rm,
        )?,
    })
}
