//! A private PostgreSQL cluster that admits the Kerberos user through GSSAPI only, over plain TCP
//! or TLS, on a free loopback port, with the configuration from `postgres/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::component::{Readiness, RunAs, Spec};
use crate::ports;
use crate::substrate::local::{run_tool, Process};
use crate::template;
use crate::tools::{self, give_to_service_user};

const POSTGRESQL_CONF: &str = include_str!("../../postgres/postgresql.conf.tmpl");
const PG_HBA: &str = include_str!("../../postgres/pg_hba.conf.tmpl");
const INIT_SQL: &str = include_str!("../../postgres/init.sql.tmpl");
const DATABASE_SQL: &str = include_str!("../../postgres/database.sql.tmpl");

#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub realm: String,
    /// The database host name as clients know it; the TLS certificate is issued for it.
    pub host: String,
    /// Keytab holding `postgres/<host>@<REALM>`.
    pub server_keytab: PathBuf,
    /// The login role, named exactly like the Kerberos principal.
    pub role: String,
    pub databases: Vec<String>,
    /// The KRB5_CONFIG the server uses.
    pub krb5_conf: PathBuf,
}

pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
    pub socket_dir: PathBuf,
    pub log: PathBuf,
    pub spec: ClusterSpec,
    process: Option<Process>,
    _socket_tmp: tempfile::TempDir,
}

impl Cluster {
    /// initdb, configuration, certificate, start, then the role and databases.
    pub async fn start(dir: &Path, spec: ClusterSpec) -> Result<Cluster> {
        let data = dir.join("pgdata");
        // Unix socket paths are limited to 107 bytes, too short for run directories: the socket
        // lives in a private directory under /tmp, removed with the cluster.
        let socket_tmp = tempfile::Builder::new()
            .prefix("harness-pg-")
            .tempdir_in("/tmp")?;
        let socket_dir = socket_tmp.path().to_path_buf();
        crate::run::make_traversable(&socket_dir)?;
        give_to_service_user(dir)?;
        give_to_service_user(&socket_dir)?;

        let (init, cert) = tokio::join!(initdb(&data), self_signed_cert(dir, &spec.host));
        init?;
        let (cert, key) = cert?;

        let port = ports::free_port()?;
        let port_s = port.to_string();
        // The server reads its keytab as the service user; the harness keeps the original.
        let keytab = dir.join("server.keytab");
        std::fs::copy(&spec.server_keytab, &keytab).with_context(|| {
            format!(
                "server keytab {} is missing or unreadable",
                spec.server_keytab.display()
            )
        })?;
        give_to_service_user(&keytab)?;
        let vars = [
            ("port", port_s.as_str()),
            ("socket_dir", path_str(&socket_dir)?),
            ("keytab", path_str(&keytab)?),
            ("tls_cert", path_str(&cert)?),
            ("tls_key", path_str(&key)?),
            ("realm", spec.realm.as_str()),
        ];
        let conf = template::fill("postgres/postgresql.conf.tmpl", POSTGRESQL_CONF, &vars)?;
        append(&data.join("postgresql.conf"), &conf)?;
        std::fs::write(
            data.join("pg_hba.conf"),
            template::fill("postgres/pg_hba.conf.tmpl", PG_HBA, &vars)?,
        )?;
        // Copies for people reading the artifacts.
        std::fs::write(dir.join("postgresql.conf.rendered"), &conf)?;
        std::fs::copy(data.join("pg_hba.conf"), dir.join("pg_hba.conf.rendered"))?;

        let log = dir.join("postgres.log");
        let server = Spec::new("postgres", tools::path("postgres")?)
            .args(["-D", path_str(&data)?])
            .env("KRB5_CONFIG", spec.krb5_conf.display().to_string())
            .env("KRB5RCACHEDIR", socket_dir.display().to_string())
            .env(
                "KRB5_TRACE",
                dir.join("trace-postgres.log").display().to_string(),
            )
            .run_as(RunAs::ServiceUser)
            .ready_when(
                Readiness::LogLine("database system is ready to accept connections".into()),
                Duration::from_secs(30),
            );
        // Created up front so the service user can write it.
        std::fs::write(&log, "")?;
        give_to_service_user(&log)?;
        std::fs::write(dir.join("trace-postgres.log"), "")?;
        give_to_service_user(&dir.join("trace-postgres.log"))?;
        let process = Process::start(&server, &log).await?;

        let cluster = Cluster {
            dir: dir.to_path_buf(),
            port,
            socket_dir,
            log,
            spec,
            process: Some(process),
            _socket_tmp: socket_tmp,
        };
        cluster.create_role_and_databases().await?;
        Ok(cluster)
    }

    async fn create_role_and_databases(&self) -> Result<()> {
        let client = self.superuser("postgres").await?;
        let role = self.spec.role.replace('"', "\"\"");
        let mut sql = template::fill("postgres/init.sql.tmpl", INIT_SQL, &[("role", &role)])?;
        for db in &self.spec.databases {
            let db = db.replace('"', "\"\"");
            sql += &template::fill(
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

    /// A superuser session over the Unix socket (trust for `postgres` only).
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

    /// The byte offset of the end of the server log: assert only on what comes after it.
    pub fn log_offset(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    pub fn log_since(&self, offset: u64) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let start = (offset as usize).min(text.len());
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    /// What PostgreSQL said since `offset`, for assertions on its GSS error texts. PostgreSQL
    /// keeps at most 128 bytes of a GSS status message: a long service principal pushes the end
    /// of a message like "... kvno 3 not found in keytab; keytab is likely out of date" off the
    /// cut, and the server logs "incomplete GSS error report" instead. The Kerberos library's
    /// trace of the same server (trace-postgres.log) holds the whole message, so when the log
    /// admits a cut, the trace follows it.
    pub fn gss_log_since(&self, offset: u64) -> String {
        with_trace_when_cut(self.log_since(offset), || {
            std::fs::read_to_string(self.dir.join("trace-postgres.log")).unwrap_or_default()
        })
    }

    /// Swaps the server keytab; PostgreSQL reads it on every GSS login, no reload needed.
    pub fn replace_keytab(&self, keytab: &Path) -> Result<()> {
        let dest = self.dir.join("server.keytab");
        std::fs::copy(keytab, &dest)?;
        give_to_service_user(&dest)
    }

    pub async fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop().await;
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.is_running())
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

async fn initdb(data: &Path) -> Result<()> {
    // initdb is the slowest step of the stack (~0.5 s); a pristine cluster made once per
    // PostgreSQL version is copied instead, which takes a tenth of that.
    let template = template_cluster().await?;
    let status = tokio::process::Command::new("cp")
        .args(["-a", path_str(&template)?, path_str(data)?])
        .status()
        .await?;
    anyhow::ensure!(
        status.success(),
        "copying the template cluster {} failed",
        template.display()
    );
    give_to_service_user(data)
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
    run_tool(
        "initdb",
        &initdb,
        &[
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
        ],
        &[],
        RunAs::ServiceUser,
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

/// A per-run self-signed certificate for the database host (EC keys: generated in milliseconds).
async fn self_signed_cert(dir: &Path, host: &str) -> Result<(PathBuf, PathBuf)> {
    let cert = dir.join("server.crt");
    let key = dir.join("server.key");
    run_tool(
        "creating the TLS certificate",
        &tools::path("openssl")?,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            path_str(&key)?,
            "-out",
            path_str(&cert)?,
            "-days",
            "2",
            "-subj",
            // X.509 caps a common name at 64 characters, and customers' database host names can
            // be longer; clients match the subjectAltName, which has no such cap.
            &format!("/CN={}", common_name(host)),
            "-addext",
            &format!("subjectAltName=DNS:{host},IP:127.0.0.1"),
        ],
        &[],
        RunAs::Invoker,
    )
    .await?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))?;
    give_to_service_user(&key)?;
    give_to_service_user(&cert)?;
    Ok((cert, key))
}

fn append(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
    writeln!(f, "\n{text}")?;
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
