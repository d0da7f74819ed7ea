//! Airflow's connections to its PgBouncer: database aliases, not real databases, and the
//! password is the users.txt one (PgBouncer does Kerberos on the other side).

use super::pgbouncer::{release, required};
use super::{missing, RenderError};
use crate::model::{Connection, Deployment};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986 unreserved characters; `@` in a principal must be `%40`.
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Where Airflow reaches PgBouncer. On the platform that is `<release>-pgbouncer.<ns>:6543`; in
/// the harness a loopback port. `sslmode` is left out of the URL when `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgbouncerEndpoint {
    pub host: String,
    pub port: u16,
    pub sslmode: Option<String>,
}

impl PgbouncerEndpoint {
    /// The in-cluster service of the deployment's PgBouncer.
    pub fn platform(d: &Deployment, sslmode: Option<&str>) -> Result<Self, RenderError> {
        let release = release(d)?;
        let ns = d
            .namespace
            .clone()
            .unwrap_or_else(|| format!("astronomer-{release}"));
        Ok(PgbouncerEndpoint {
            host: format!("{release}-pgbouncer.{ns}"),
            port: 6543,
            sslmode: sslmode.map(Into::into),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AirflowUrls {
    /// `AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`.
    pub metadata: String,
    /// `AIRFLOW__CELERY__RESULT_BACKEND` (Celery only).
    pub result_backend: String,
}

pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, USERINFO).to_string()
}

fn url(
    scheme: &str,
    c: &Connection,
    field: &str,
    ep: &PgbouncerEndpoint,
    alias: &str,
) -> Result<String, RenderError> {
    let user = c
        .user
        .as_deref()
        .ok_or_else(|| missing(&format!("{field}.user"), "not set"))?;
    let pass = c
        .pass
        .as_deref()
        .ok_or_else(|| missing(&format!("{field}.pass"), "not set"))?;
    let mut u = format!(
        "{scheme}://{}:{}@{}:{}/{alias}",
        encode(user),
        encode(pass),
        ep.host,
        ep.port
    );
    if let Some(mode) = &ep.sslmode {
        u += &format!("?sslmode={mode}");
    }
    Ok(u)
}

pub fn airflow_urls(d: &Deployment, ep: &PgbouncerEndpoint) -> Result<AirflowUrls, RenderError> {
    let release = release(d)?;
    let meta = required(d.metadata(), "metadataConnectionJson")?;
    let rb = required(d.result_backend(), "resultBackendConnectionJson")?;
    Ok(AirflowUrls {
        metadata: url(
            "postgresql",
            meta,
            "metadataConnectionJson",
            ep,
            &format!("{release}-metadata"),
        )?,
        result_backend: url(
            "db+postgresql",
            rb,
            "resultBackendConnectionJson",
            ep,
            &format!("{release}-result-backend"),
        )?,
    })
}
