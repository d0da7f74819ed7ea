//! The facts a reference environment must reproduce to replay a customer's configuration:
//! realm, principal, database host and names, the two service principals, negotiation, labels;
//! and [`service_principal`], the one place a PostgreSQL service principal is built.

use super::pgbouncer::{release, required, DEFAULT_SSLMODE};
use super::{missing, RenderError};
use crate::ini;
use crate::model::{Deployment, StringMap};

/// The service principal of a PostgreSQL server at `host` in `realm`: `postgres/<host>@<REALM>`.
/// The server holds it; PgBouncer asks for it unless `server_krb_spn` names another.
pub fn service_principal(host: &str, realm: &str) -> String {
    format!("postgres/{host}@{realm}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Negotiate {
    Allow,
    Disable,
    /// Not set: the fork's default, `disable`.
    Absent,
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentShape {
    pub realm: String,
    /// `astro_user@EXAMPLE.TEST`: the Kerberos client and the PostgreSQL role.
    pub client_principal: String,
    /// `astro_user`.
    pub client_username: String,
    pub db_host: String,
    pub db_port: u16,
    pub metadata_db: String,
    pub result_backend_db: String,
    pub release_name: String,
    /// The service principal the database server holds: `postgres/<db_host>@<realm>`, because
    /// that is where the database is.
    pub server_spn: String,
    /// The service principal PgBouncer asks the KDC for: the metadata database's
    /// `server_krb_spn`, else the global one, else (as the fork does) `server_spn`. It differs
    /// from `server_spn` exactly when a customer's SPN is wrong.
    pub requested_spn: String,
    pub sslmode: String,
    pub labels: StringMap,
    pub negotiate: Negotiate,
}

impl EnvironmentShape {
    /// The host name a component other than the database has where components have host names
    /// (the docker tier): `<component>.<the database host's domain>` (`kdc.example.test`,
    /// `pgbouncer.example.test`), or under the realm's name in lower case when the database host
    /// is a single label. The database is `db_host` itself.
    pub fn component_host(&self, component: &str) -> String {
        let domain = match self.db_host.split_once('.') {
            Some((_, domain)) if !domain.is_empty() => domain.to_string(),
            _ => self.realm.to_lowercase(),
        };
        format!("{component}.{domain}")
    }

    /// Read the shape from the metadata connection (the result backend shares host and realm on
    /// every supported setup; lint reports when it does not).
    pub fn from_deployment(d: &Deployment) -> Result<EnvironmentShape, RenderError> {
        let field = "metadataConnectionJson";
        let meta = required(d.metadata(), field)?;
        let principal = meta
            .user
            .clone()
            .ok_or_else(|| missing("metadataConnectionJson.user", "not set"))?;
        let (username, realm) = principal
            .rsplit_once('@')
            .map(|(u, r)| (u.to_string(), r.to_string()))
            .ok_or_else(|| missing("metadataConnectionJson.user", "not <username>@<REALM>"))?;
        let db_host = meta
            .host
            .clone()
            .ok_or_else(|| missing("metadataConnectionJson.host", "not set"))?;
        let db_port = meta
            .port_number()
            .map_err(|why| missing("metadataConnectionJson.port", why))?;
        let metadata_db = meta
            .db
            .clone()
            .ok_or_else(|| missing("metadataConnectionJson.db", "not set"))?;
        let result_backend_db = d
            .result_backend()
            .and_then(|c| c.db.clone())
            .unwrap_or_else(|| metadata_db.clone());
        let pg = d.pgbouncer();
        let settings = pg
            .extra_ini
            .as_deref()
            .map(ini::settings)
            .unwrap_or_default();
        let per_db_spn = pg
            .extra_ini_metadata
            .as_deref()
            .and_then(|t| ini::parse_db_extras(t).ok())
            .and_then(|e| ini::last_setting(&e, "server_krb_spn").map(str::to_string));
        let server_spn = service_principal(&db_host, &realm);
        let requested_spn = per_db_spn
            .or_else(|| ini::last_setting(&settings, "server_krb_spn").map(str::to_string))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| server_spn.clone());
        let negotiate = match ini::last_setting(&settings, "server_gssauth_negotiate") {
            None => Negotiate::Absent,
            Some(v) if v.eq_ignore_ascii_case("allow") => Negotiate::Allow,
            Some(v) if v.eq_ignore_ascii_case("disable") => Negotiate::Disable,
            Some(v) => Negotiate::Other(v.to_string()),
        };
        Ok(EnvironmentShape {
            realm,
            client_principal: principal.clone(),
            client_username: username,
            db_host,
            db_port,
            metadata_db,
            result_backend_db,
            release_name: release(d)?.to_string(),
            server_spn,
            requested_spn,
            sslmode: meta
                .sslmode
                .clone()
                .unwrap_or_else(|| DEFAULT_SSLMODE.into()),
            labels: pg.labels.clone().unwrap_or_default(),
            negotiate,
        })
    }
}
