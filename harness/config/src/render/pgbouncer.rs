//! The deployment PgBouncer's `pgbouncer.ini` and `users.txt`, as the deployment chart renders
//! them (Apache Airflow chart's `pgbouncer-config-secret`, which Astronomer's chart follows).

use super::{missing, RenderError};
use crate::model::{Connection, Deployment};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where PgBouncer should actually dial for a configured database host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    pub host: String,
    /// Overrides the configured port when set.
    pub port: Option<u16>,
}

/// Where the rendered PgBouncer lives on this machine. Only addresses and paths change; the
/// SPN stays the configured one (it comes from `extraIni`), so Kerberos sees the customer's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub listen_addr: String,
    pub listen_port: u16,
    pub auth_file: PathBuf,
    pub logfile: Option<PathBuf>,
    pub pidfile: Option<PathBuf>,
    pub unix_socket_dir: Option<PathBuf>,
    /// Further `key = value` lines the harness needs (admin console, log_connections = 1...).
    /// They go in the harness section, before `extraIni`.
    pub extra_lines: Vec<String>,
    /// Database host as written in the configuration → where to dial locally.
    pub host_map: BTreeMap<String, Dial>,
    pub chart: ChartSettings,
}

/// Pool and client limits of the deployment's PgBouncer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartSettings {
    pub metadata_pool_size: u32,
    pub result_backend_pool_size: u32,
    pub max_client_conn: u32,
}

impl ChartSettings {
    /// What the platform renders: airflow-chart's `values.yaml` sets the pools to 3 / 2 over the
    /// subchart's own 10 / 5 (airflow-chart 1.15.9 and 1.17.20 alike).
    pub const PLATFORM: ChartSettings = ChartSettings {
        metadata_pool_size: 3,
        result_backend_pool_size: 2,
        max_client_conn: 100,
    };
    /// The `airflow` subchart's own defaults, 10 / 5: what the local tier runs (RULES.md, "Where
    /// the harness differs on purpose": with 3 / 2, Airflow 3's UI waits on PgBouncer longer
    /// than the harness's health deadline on a loaded 2-core machine).
    pub const SUBCHART: ChartSettings = ChartSettings {
        metadata_pool_size: 10,
        result_backend_pool_size: 5,
        max_client_conn: 100,
    };

    /// The platform's settings with the deployment's own `pgbouncerConfig` values applied
    /// (`metadataPoolSize`, `resultBackendPoolSize`, `maxClientConn`).
    pub fn for_deployment(d: &Deployment) -> ChartSettings {
        let pg = d.pgbouncer();
        let base = ChartSettings::PLATFORM;
        ChartSettings {
            metadata_pool_size: pg
                .integer("metadataPoolSize")
                .unwrap_or(base.metadata_pool_size),
            result_backend_pool_size: pg
                .integer("resultBackendPoolSize")
                .unwrap_or(base.result_backend_pool_size),
            max_client_conn: pg.integer("maxClientConn").unwrap_or(base.max_client_conn),
        }
    }
}

/// The local tier's placement takes `Default`: the subchart's own pools (see
/// [`ChartSettings::SUBCHART`]); the platform's file uses [`ChartSettings::PLATFORM`].
impl Default for ChartSettings {
    fn default() -> Self {
        ChartSettings::SUBCHART
    }
}

impl Placement {
    /// What the chart uses in the pod.
    pub fn platform() -> Placement {
        Placement {
            listen_addr: "*".into(),
            listen_port: 6543,
            auth_file: PathBuf::from("/etc/pgbouncer/users.txt"),
            logfile: None,
            pidfile: None,
            unix_socket_dir: None,
            extra_lines: Vec::new(),
            host_map: BTreeMap::new(),
            chart: ChartSettings::PLATFORM,
        }
    }

    /// [`Placement::platform`] with the deployment's own pool settings.
    pub fn platform_for(d: &Deployment) -> Placement {
        Placement {
            chart: ChartSettings::for_deployment(d),
            ..Placement::platform()
        }
    }

    fn harness_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (key, path) in [
            ("logfile", &self.logfile),
            ("pidfile", &self.pidfile),
            ("unix_socket_dir", &self.unix_socket_dir),
        ] {
            if let Some(p) = path {
                lines.push(format!("{key} = {}", p.display()));
            }
        }
        lines.extend(self.extra_lines.iter().cloned());
        lines
    }
}

/// The subchart's `pgbouncer.sslmode` default: PgBouncer's `server_tls_sslmode`.
pub const DEFAULT_SSLMODE: &str = "prefer";
/// The subchart's `data.metadataConnection.sslmode` default, which Houston's connection object
/// is merged over: a metadata connection without `sslmode` gets this in Airflow's URL.
pub const DEFAULT_METADATA_SSLMODE: &str = "disable";

/// `server_tls_sslmode`: `pgbouncerConfig.sslmode`, never the connections' `sslmode` (those go
/// into Airflow's URLs, the other hop).
pub fn server_tls_sslmode(d: &Deployment) -> String {
    d.pgbouncer()
        .sslmode()
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_SSLMODE)
        .to_string()
}

pub(crate) fn required<'a>(
    c: Option<&'a Connection>,
    field: &str,
) -> Result<&'a Connection, RenderError> {
    c.ok_or_else(|| missing(field, "the connection is not given"))
}

pub(crate) fn release(d: &Deployment) -> Result<&str, RenderError> {
    d.release_name
        .as_deref()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| missing("releaseName", "needed for the database aliases"))
}

fn database_line(
    alias: &str,
    c: &Connection,
    field: &str,
    pool_size: u32,
    extras: Option<&str>,
    p: &Placement,
) -> Result<String, RenderError> {
    let host = c
        .host
        .as_deref()
        .ok_or_else(|| missing(&format!("{field}.host"), "not set"))?;
    let db =
        c.db.as_deref()
            .ok_or_else(|| missing(&format!("{field}.db"), "not set"))?;
    let port = c
        .port_number()
        .map_err(|why| missing(&format!("{field}.port"), why))?;
    let (host, port) = match p.host_map.get(host) {
        Some(dial) => (dial.host.as_str(), dial.port.unwrap_or(port)),
        None => (host, port),
    };
    // The chart writes a space and then the extra (or nothing): a line without extras ends in
    // a space, and an extra is not trimmed.
    Ok(format!(
        "{alias} = host={host} dbname={db} port={port} pool_size={pool_size} {}",
        extras.unwrap_or("")
    ))
}

/// `pgbouncer.ini` for the given placement. With [`Placement::platform`] this is byte for byte
/// the chart's `pgbouncer_config`: three leading blank lines (its variable assignments), and
/// `extraIni` last, verbatim (the file ends with a newline only if `extraIni` does).
/// Otherwise a marked harness section precedes `extraIni`, which stays last, verbatim, with a
/// final newline.
pub fn render_pgbouncer_ini(d: &Deployment, p: &Placement) -> Result<String, RenderError> {
    let release = release(d)?;
    let meta = required(d.metadata(), "metadataConnectionJson")?;
    // The chart falls back to the metadata connection when there is no result backend one.
    let (rb, rb_field) = match d.result_backend() {
        Some(rb) => (rb, "resultBackendConnectionJson"),
        None => (meta, "metadataConnectionJson"),
    };
    let pg = d.pgbouncer();
    let sslmode = server_tls_sslmode(d);
    let stats_user = meta
        .user
        .as_deref()
        .ok_or_else(|| missing("metadataConnectionJson.user", "not set"))?;

    let mut out = String::from("\n\n\n[databases]\n");
    out += &database_line(
        &format!("{release}-metadata"),
        meta,
        "metadataConnectionJson",
        p.chart.metadata_pool_size,
        pg.extra_ini_metadata.as_deref(),
        p,
    )?;
    out.push('\n');
    out += &database_line(
        &format!("{release}-result-backend"),
        rb,
        rb_field,
        p.chart.result_backend_pool_size,
        pg.extra_ini_result_backend.as_deref(),
        p,
    )?;
    out.push_str("\n\n[pgbouncer]\n");
    out += &format!(
        "pool_mode = transaction\n\
         listen_port = {}\n\
         listen_addr = {}\n\
         auth_type = scram-sha-256\n\
         auth_file = {}\n\
         stats_users = {stats_user}\n\
         ignore_startup_parameters = extra_float_digits\n\
         max_client_conn = {}\n\
         verbose = 0\n\
         log_disconnections = 0\n\
         log_connections = 0\n\
         \n\
         server_tls_sslmode = {sslmode}\n\
         server_tls_ciphers = normal",
        p.listen_port,
        p.listen_addr,
        p.auth_file.display(),
        p.chart.max_client_conn,
    );
    let extra = pg.extra_ini.as_deref().filter(|e| !e.is_empty());
    let harness = p.harness_lines();
    if harness.is_empty() {
        if let Some(extra) = extra {
            out.push('\n');
            out.push_str(extra);
        }
        return Ok(out);
    }
    out.push_str("\n\n; ---- harness: local placement, not part of the platform's file ----\n");
    for l in harness {
        out.push_str(&l);
        out.push('\n');
    }
    out.push_str("; ---- pgbouncerConfig.extraIni, verbatim ----\n");
    if let Some(extra) = extra {
        out.push_str(extra);
        if !extra.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// The chart's own file: `listen_addr = *`, port 6543, `/etc/pgbouncer/users.txt`.
pub fn render_for_platform(d: &Deployment) -> Result<String, RenderError> {
    render_pgbouncer_ini(d, &Placement::platform_for(d))
}

/// `users.txt` as the chart writes it (`pgbouncer_users`): a leading blank line, then
/// `"user" "pass"` for the metadata and the result-backend connection (two lines even for one
/// user), no final newline. Both sides are Go-quoted (`quote`), so a `"` in a password becomes
/// `\"`, which PgBouncer does not read as an escape. The harness's own local users.txt differs
/// on purpose (SCRAM verifiers, one line per user): see [`render_users_txt`].
pub fn render_chart_users_txt(d: &Deployment) -> Result<String, RenderError> {
    let meta = required(d.metadata(), "metadataConnectionJson")?;
    let (rb, rb_field) = match d.result_backend() {
        Some(rb) => (rb, "resultBackendConnectionJson"),
        None => (meta, "metadataConnectionJson"),
    };
    let mut out = String::new();
    for (field, c) in [("metadataConnectionJson", meta), (rb_field, rb)] {
        let get = |v: &Option<String>, k: &str| {
            v.clone()
                .ok_or_else(|| missing(&format!("{field}.{k}"), "not set"))
        };
        out.push('\n');
        out += &format!(
            "{} {}",
            go_quote(&get(&c.user, "user")?),
            go_quote(&get(&c.pass, "pass")?)
        );
    }
    Ok(out)
}

/// Go's `%q` (Sprig's `quote`) for the text users.txt can hold: backslash escapes for `"`, `\`
/// and control characters; printable characters as they are.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out += &format!("\\x{:02x}", c as u32),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The harness's local `users.txt`: `"user" "secret"` for the metadata and result-backend
/// users (once if they are the same). Not the chart's file ([`render_chart_users_txt`]): the
/// harness writes SCRAM verifiers so no plain password sits on disk. `secret(user, pass)` turns a password into what is written: a SCRAM verifier from
/// the caller's postgres-protocol, or the password itself.
pub fn render_users_txt(
    d: &Deployment,
    secret: impl Fn(&str, &str) -> String,
) -> Result<String, RenderError> {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    let mut out = String::new();
    for (field, c) in [
        ("metadataConnectionJson", d.metadata()),
        ("resultBackendConnectionJson", d.result_backend()),
    ] {
        let c = required(c, field)?;
        let user = c
            .user
            .as_deref()
            .ok_or_else(|| missing(&format!("{field}.user"), "not set"))?;
        let pass = c
            .pass
            .as_deref()
            .ok_or_else(|| missing(&format!("{field}.pass"), "not set"))?;
        match seen.iter().find(|(u, _)| *u == user) {
            Some((_, p)) if *p == pass => continue,
            Some(_) => {
                return Err(RenderError::ConflictingPasswords {
                    user: user.to_string(),
                })
            }
            None => seen.push((user, pass)),
        }
        out += &format!("{} {}\n", quote(user), quote(&secret(user, pass)));
    }
    Ok(out)
}

/// users.txt quoting: double quotes, a `"` inside is doubled.
pub fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
