//! A private PostgreSQL cluster that admits the Kerberos user through GSSAPI only, over plain TCP
//! or TLS, in the place its substrate gives it, with the configuration from `postgres/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::component::{Exec, File, Readiness, RunAs, Spec};
use crate::substrate::{Endpoint, LogCursor, Place, Running, Substrate};
use crate::tools::{self, give_to_service_user};
use harness_config::render::fill;

const POSTGRESQL_CONF: &str = include_str!("../../postgres/postgresql.conf.tmpl");
const PG_HBA: &str = include_str!("../../postgres/pg_hba.conf.tmpl");
const INIT_SQL: &str = include_str!("../../postgres/init.sql.tmpl");
const DATABASE_SQL: &str = include_str!("../../postgres/database.sql.tmpl");

#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub realm: String,
    /// The database host name as clients know it; the TLS certificate is issued for it.
    pub host: String,
    /// The keytab holding `postgres/<host>@<REALM>` (harness side; placed beside the server).
    pub server_keytab: PathBuf,
    /// The login roles, each named exactly like a Kerberos principal.
    pub roles: Vec<String>,
    /// `(database, owner)`: each owned by the role of the connection that uses it.
    pub databases: Vec<(String, String)>,
    /// The krb5.conf the server uses (the KDC as components dial it).
    pub krb5_conf: String,
}

pub struct Cluster {
    pub spec: ClusterSpec,
    place: Place,
    substrate: Arc<dyn Substrate>,
    port: u16,
    socket_dir: PathBuf,
    server: Option<Box<dyn Running>>,
    /// What started the server, so a restart starts it the same way (port, data, keytab).
    server_spec: Spec,
    _socket_tmp: crate::scratch::Scratch,
}

impl Cluster {
    /// initdb, configuration, certificate, start, then the role and databases.
    pub async fn start(
        substrate: Arc<dyn Substrate>,
        dir: &Path,
        spec: ClusterSpec,
    ) -> Result<Cluster> {
        let place = substrate.place("postgres", dir, RunAs::ServiceUser)?;
        // Unix socket paths are limited to 107 bytes, too short for run directories: the socket
        // (the superuser's way in) lives in a private directory under /tmp, removed with the
        // cluster.
        let socket_tmp = crate::scratch::tempdir("pg")?;
        let socket_dir = socket_tmp.path().to_path_buf();
        crate::run::make_traversable(&socket_dir)?;
        give_to_service_user(&socket_dir)?;
        // Where the server sees that directory (the same path locally; a mount in a container).
        let socket_inside = substrate.share_dir(&place, &socket_dir)?;

        let (init, cert) = tokio::join!(
            initdb(substrate.as_ref(), &place),
            self_signed_cert(substrate.as_ref(), &place, &spec.host)
        );
        init?;
        cert?;

        let port = substrate.listen_port(&place, "postgres", 5432)?;
        let port_s = port.to_string();
        // The server reads its keytab as the service user; the harness keeps the original.
        let keytab = std::fs::read(&spec.server_keytab).with_context(|| {
            format!(
                "server keytab {} is missing or unreadable",
                spec.server_keytab.display()
            )
        })?;
        substrate
            .put_file(&place, File::new("server.keytab", keytab, 0o600))
            .await?;
        substrate
            .put_file(
                &place,
                File::new("krb5.conf", spec.krb5_conf.clone().into_bytes(), 0o644),
            )
            .await?;
        let vars = [
            ("bind", place.bind.clone()),
            ("clients", place.clients.clone()),
            ("port", port_s),
            ("socket_dir", socket_inside.clone()),
            ("keytab", place.path_str("server.keytab")?),
            ("tls_cert", place.path_str("server.crt")?),
            ("tls_key", place.path_str("server.key")?),
            ("realm", spec.realm.clone()),
        ];
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let conf = fill("postgres/postgresql.conf.tmpl", POSTGRESQL_CONF, &vars)?;
        let hba = fill("postgres/pg_hba.conf.tmpl", PG_HBA, &vars)?;
        let initdb_conf = substrate
            .read_file(&place, "pgdata/postgresql.conf")
            .await?;
        let mut full = String::from_utf8_lossy(&initdb_conf).into_owned();
        full += &format!("\n{conf}\n");
        substrate
            .put_file(
                &place,
                File::new("pgdata/postgresql.conf", full.into_bytes(), 0o600),
            )
            .await?;
        substrate
            .put_file(
                &place,
                File::new("pgdata/pg_hba.conf", hba.clone().into_bytes(), 0o600),
            )
            .await?;
        // Copies for people reading the artifacts.
        std::fs::write(place.artifacts.join("postgresql.conf.rendered"), &conf)?;
        std::fs::write(place.artifacts.join("pg_hba.conf.rendered"), &hba)?;
        // Created up front so the service user can write it.
        substrate
            .put_file(&place, File::new("trace-postgres.log", Vec::new(), 0o644))
            .await?;

        let server = Spec::new("postgres", substrate.program(&place, "postgres")?)
            .args(["-D".to_string(), place.path_str("pgdata")?])
            .env("KRB5_CONFIG", place.path_str("krb5.conf")?)
            .env("KRB5RCACHEDIR", socket_inside)
            .env("KRB5_TRACE", place.path_str("trace-postgres.log")?)
            .port("postgres", port)
            .run_as(RunAs::ServiceUser)
            .ready_when(
                Readiness::LogLine("database system is ready to accept connections".into()),
                Duration::from_secs(30),
            );
        let server_spec = server.clone();
        let server = substrate.start(&place, server).await?;

        let cluster = Cluster {
            spec,
            place,
            substrate,
            port,
            socket_dir,
            server: Some(server),
            server_spec,
            _socket_tmp: socket_tmp,
        };
        cluster
            .create_roles_and_databases(&cluster.spec.roles, &cluster.spec.databases)
            .await?;
        Ok(cluster)
    }

    /// A further database owned by `owner`, with the same setup as the spec's: the login role
    /// (named like its principal) unless the cluster already has it, the database, the grants.
    /// The kind tier's Houston database is one, beside the deployment's.
    pub async fn add_database(&mut self, db: &str, owner: &str) -> Result<()> {
        let roles: Vec<String> = if self.spec.roles.iter().any(|r| r == owner) {
            Vec::new()
        } else {
            vec![owner.to_string()]
        };
        let databases = [(db.to_string(), owner.to_string())];
        self.create_roles_and_databases(&roles, &databases).await?;
        self.spec.roles.extend(roles);
        self.spec.databases.extend(databases);
        Ok(())
    }

    async fn create_roles_and_databases(
        &self,
        roles: &[String],
        databases: &[(String, String)],
    ) -> Result<()> {
        let client = self.superuser("postgres").await?;
        let quote = |name: &str| name.replace('"', "\"\"");
        let mut sql = String::new();
        for role in roles {
            let role = quote(role);
            sql += &fill("postgres/init.sql.tmpl", INIT_SQL, &[("role", &role)])?;
        }
        for (db, owner) in databases {
            let (db, role) = (quote(db), quote(owner));
            sql += &fill(
                "postgres/database.sql.tmpl",
                DATABASE_SQL,
                &[("db", &db), ("role", &role)],
            )?;
        }
        // CREATE DATABASE cannot run inside the implicit transaction of a multi-statement query.
        for stmt in sql.split(";\n").map(str::trim).filter(|s| !s.is_empty()) {
            let stmt = strip_comments(stmt);
            if stmt.is_empty() {
                continue;
            }
            client.batch_execute(&stmt).await.map_err(|e| {
                anyhow::anyhow!(
                    "PostgreSQL setup failed at `{stmt}`: {}",
                    crate::probe::sql::error_text(&e)
                )
            })?;
        }
        Ok(())
    }

    fn server(&self) -> Result<&dyn Running> {
        self.server.as_deref().context("PostgreSQL is not running")
    }

    /// The server as the harness dials it.
    pub fn endpoint(&self) -> Result<Endpoint> {
        self.server()?.endpoint("postgres")
    }

    /// The server as PgBouncer dials it.
    pub fn peer_endpoint(&self) -> Result<Endpoint> {
        self.server()?.peer_endpoint("postgres")
    }

    /// A superuser session (trust for `postgres` over the server's Unix socket only).
    pub async fn superuser(&self, db: &str) -> Result<tokio_postgres::Client> {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host_path(&self.socket_dir)
            .port(self.port)
            .user("postgres")
            .dbname(db)
            .connect_timeout(Duration::from_secs(5));
        let (client, conn) = cfg
            .connect(tokio_postgres::NoTls)
            .await
            .context("superuser connection to PostgreSQL over its Unix socket failed")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// A superuser's `pg_dump`/`psql` connection options (`-h SOCKET -p PORT -U postgres`),
    /// for tools the harness runs beside the server.
    pub fn superuser_args(&self) -> Result<Vec<String>> {
        Ok(vec![
            "-h".into(),
            path_str(&self.socket_dir)?.into(),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            "postgres".into(),
        ])
    }

    /// The server log (harness side).
    pub fn log(&self) -> PathBuf {
        self.server
            .as_ref()
            .map(|s| s.log_file())
            .unwrap_or_else(|| self.place.artifacts.join("postgres.log"))
    }

    /// The end of the server log: assert only on what comes after it.
    pub fn log_cursor(&self) -> LogCursor {
        self.server
            .as_ref()
            .map(|s| s.log_cursor())
            .unwrap_or_default()
    }

    pub fn log_since(&self, cursor: LogCursor) -> String {
        self.server
            .as_ref()
            .map(|s| s.log_since(cursor))
            .unwrap_or_default()
    }

    /// What PostgreSQL said since `cursor`, for assertions on its GSS error texts. PostgreSQL
    /// keeps at most 128 bytes of a GSS status message: a long service principal pushes the end
    /// of a message like "... kvno 3 not found in keytab; keytab is likely out of date" off the
    /// cut, and the server logs "incomplete GSS error report" instead. The Kerberos library's
    /// trace of the same server (trace-postgres.log) holds the whole message, so when the log
    /// admits a cut, the trace follows it.
    pub fn gss_log_since(&self, cursor: LogCursor) -> String {
        with_trace_when_cut(self.log_since(cursor), || {
            std::fs::read_to_string(self.place.artifacts.join("trace-postgres.log"))
                .unwrap_or_default()
        })
    }

    /// Swaps the server keytab; PostgreSQL reads it on every GSS login, no reload needed.
    pub async fn replace_keytab(&self, keytab: &Path) -> Result<()> {
        let bytes = std::fs::read(keytab)
            .with_context(|| format!("keytab {} is missing", keytab.display()))?;
        self.substrate
            .put_file(&self.place, File::new("server.keytab", bytes, 0o600))
            .await
    }

    /// Lets `role` log in with a password (md5) from the components' network, ahead of the
    /// GSSAPI lines, and reloads: only for the bench's password baseline, which compares a
    /// password login with a GSS one on the same server. The Kerberos user stays GSSAPI-only.
    /// (md5, not SCRAM: PgBouncer's login with the `[databases]` line's own password failed
    /// SCRAM here with "password authentication failed"; not investigated further.)
    pub async fn admit_password_role(&self, role: &str, password: &str) -> Result<()> {
        let client = self.superuser("postgres").await?;
        let quoted = role.replace('"', "\"\"");
        client
            .batch_execute(&format!(
                "SET password_encryption = 'md5'; CREATE ROLE \"{quoted}\" LOGIN PASSWORD '{}'; GRANT CONNECT ON DATABASE \"{}\" TO \"{quoted}\"",
                password.replace('\'', "''"),
                self.spec.databases.first().map(|(d, _)| d.as_str()).unwrap_or("postgres")
            ))
            .await
            .map_err(|e| anyhow::anyhow!("creating the password role: {}", crate::probe::sql::error_text(&e)))?;
        let hba = self
            .substrate
            .read_file(&self.place, "pgdata/pg_hba.conf")
            .await?;
        let line = format!(
            "host    all       \"{quoted}\"  {}   md5\n",
            self.place.clients
        );
        let text = String::from_utf8_lossy(&hba);
        // pg_hba.conf is read top-down: the password line goes before the GSSAPI ones.
        let at = text.find("\nhostssl").map(|i| i + 1).unwrap_or(text.len());
        let new = format!("{}{line}{}", &text[..at], &text[at..]);
        self.substrate
            .put_file(
                &self.place,
                File::new("pgdata/pg_hba.conf", new.into_bytes(), 0o600),
            )
            .await?;
        client
            .batch_execute("SELECT pg_reload_conf()")
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "reloading pg_hba.conf: {}",
                    crate::probe::sql::error_text(&e)
                )
            })?;
        Ok(())
    }

    /// A restart as an operator does it (`pg_ctl stop -m fast`: sessions are terminated, the
    /// server checkpoints and exits), then the server started again on the same port and data
    /// directory; returns once it accepts connections again.
    pub async fn restart(&mut self) -> Result<()> {
        let cursor = self.log_cursor();
        self.substrate
            .exec(
                &self.place,
                Exec::new(
                    "stopping PostgreSQL (fast)",
                    self.substrate.program(&self.place, "pg_ctl")?,
                )
                .args([
                    "stop".to_string(),
                    "-D".into(),
                    self.place.path_str("pgdata")?,
                    "-m".into(),
                    "fast".into(),
                ])
                .run_as(RunAs::ServiceUser),
            )
            .await?;
        if let Some(mut old) = self.server.take() {
            old.stop().await;
        }
        let server = self
            .substrate
            .start(&self.place, self.server_spec.clone())
            .await?;
        // The log holds the first start's "ready" line too: only a new one counts.
        let ready = regex::Regex::new("database system is ready to accept connections")?;
        server
            .wait_log(cursor, &ready, Duration::from_secs(30))
            .await?;
        self.server = Some(server);
        Ok(())
    }

    pub async fn stop(&mut self) {
        if let Some(mut p) = self.server.take() {
            p.stop().await;
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.server.as_mut().is_some_and(|p| p.is_running())
    }
}

fn strip_comments(stmt: &str) -> String {
    stmt.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// Where the project's postgres image keeps the cluster it made at build time
/// (`postgres/Dockerfile`).
const IMAGE_CLUSTER: &str = "/var/lib/postgresql/data";

async fn initdb(substrate: &dyn Substrate, place: &Place) -> Result<()> {
    // initdb is the slowest step of the stack (~0.5 s); a pristine cluster made once per
    // PostgreSQL version is copied instead, which takes a tenth of that. An image carries its
    // own, made when it was built.
    let template = match substrate.tier() {
        crate::substrate::Tier::Local => template_cluster().await?,
        _ => PathBuf::from(IMAGE_CLUSTER),
    };
    substrate
        .exec(
            place,
            Exec::new("copying the template cluster", "/bin/cp")
                .args([
                    "-a".to_string(),
                    path_str(&template)?.into(),
                    place.path_str("pgdata")?,
                ])
                .run_as(RunAs::ServiceUser),
        )
        .await
        .map(drop)
}

async fn template_cluster() -> Result<PathBuf> {
    let initdb = tools::path("initdb")?;
    let version = initdb
        .parent()
        .and_then(|p| p.parent())
        .and_then(|p| p.file_name())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pg".into());
    let cache = crate::run::workspace_root().join("target/e2e-cache");
    let dest = cache.join(format!("pgdata-template-{version}"));
    if dest.join("PG_VERSION").exists() {
        return Ok(dest);
    }
    std::fs::create_dir_all(&cache)?;
    crate::run::make_traversable(&cache)?;
    let staging = tempfile::Builder::new()
        .prefix("pgdata-")
        .tempdir_in(&cache)?;
    crate::run::make_traversable(staging.path())?;
    give_to_service_user(staging.path())?;
    let data = staging.path().join("data");
    tools::run(
        &Exec::new("initdb", &initdb)
            .args([
                "-D",
                path_str(&data)?,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ])
            .run_as(RunAs::ServiceUser),
        None,
    )
    .await?;
    // Another run may have won the race; either copy is as good.
    if std::fs::rename(&data, &dest).is_err() && !dest.join("PG_VERSION").exists() {
        anyhow::bail!(
            "could not install the template cluster at {}",
            dest.display()
        );
    }
    Ok(dest)
}

/// A per-run self-signed certificate for the database host (EC keys: generated in milliseconds),
/// made in the server's place.
async fn self_signed_cert(substrate: &dyn Substrate, place: &Place, host: &str) -> Result<()> {
    let key = place.path_str("server.key")?;
    let cert = place.path_str("server.crt")?;
    // The name clients verify, and the address peers dial it at.
    let peer = match place.host.parse::<std::net::IpAddr>() {
        Ok(_) => format!("IP:{}", place.host),
        Err(_) => format!("DNS:{}", place.host),
    };
    let san = format!("subjectAltName=DNS:{host},{peer}");
    substrate
        .exec(
            place,
            Exec::new(
                "creating the TLS certificate",
                substrate.program(place, "openssl")?,
            )
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &cert,
                "-days",
                "2",
                "-subj",
                // X.509 caps a common name at 64 characters, and customers' database host
                // names can be longer; clients match the subjectAltName, which has no such cap.
                &format!("/CN={}", common_name(host)),
                "-addext",
                &san,
            ])
            // Owned by the server, which refuses a key others can read.
            .run_as(RunAs::ServiceUser),
        )
        .await?;
    Ok(())
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .with_context(|| format!("path {} is not UTF-8", p.display()))
}

/// `host` when it fits an X.509 common name (64 characters), else its first 64.
fn common_name(host: &str) -> &str {
    match host.char_indices().nth(64) {
        Some((i, _)) => &host[..i],
        None => host,
    }
}

/// PostgreSQL's marker for a GSS status message it cut at its 128-byte buffer.
const GSS_MESSAGE_CUT: &str = "incomplete GSS error report";

fn with_trace_when_cut(log: String, trace: impl FnOnce() -> String) -> String {
    if !log.contains(GSS_MESSAGE_CUT) {
        return log;
    }
    format!(
        "{log}\n--- PostgreSQL cut a GSS message ({GSS_MESSAGE_CUT}); its Kerberos trace follows ---\n{}",
        trace()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_host_names_are_cut_to_a_valid_common_name() {
        assert_eq!(common_name("db.example.test"), "db.example.test");
        let long = "customer-production-metadata-db-primary.us-east-1.internal.corp.example.test";
        assert_eq!(common_name(long).len(), 64);
        assert!(long.starts_with(common_name(long)));
    }

    #[test]
    fn a_cut_gss_message_is_completed_from_the_trace() {
        let whole = "Request ticket server postgres/a-very-long-host-name.example.test@EXAMPLE.TEST kvno 3 not found in keytab; keytab is likely out of date";
        let cut = format!("WARNING:  {GSS_MESSAGE_CUT}\nDETAIL:  {}", &whole[..100]);
        let text = with_trace_when_cut(cut, || format!("Failed to decrypt AP-REQ ticket: {whole}"));
        assert!(text.contains("keytab is likely out of date"), "{text}");
        // An uncut log is returned as it is: the trace is not read.
        let text = with_trace_when_cut(format!("DETAIL:  {whole}"), || unreachable!());
        assert_eq!(text, format!("DETAIL:  {whole}"));
    }
}
