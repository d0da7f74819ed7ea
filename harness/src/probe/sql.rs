//! Password (SCRAM) clients: what Airflow does against PgBouncer, and the PgBouncer admin console.

use std::time::Duration;

use anyhow::Result;
use tokio_postgres::{Client, Config, NoTls, SimpleQueryMessage};

#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub database: String,
}

/// Connects with a password; the error is the text a user would see (server message when there
/// is one), so steps can assert on it.
pub async fn connect(t: &Target, timeout: Duration) -> Result<Client, String> {
    let mut cfg = Config::new();
    cfg.host(&t.host)
        .port(t.port)
        .user(&t.user)
        .password(t.password.as_bytes())
        .dbname(&t.database)
        .application_name("harness-sql-probe")
        .connect_timeout(timeout);
    let fut = cfg.connect(NoTls);
    match tokio::time::timeout(timeout, fut).await {
        Err(_) => Err(format!(
            "no answer within {timeout:?} (login still pending)"
        )),
        Ok(Err(e)) => Err(error_text(&e)),
        Ok(Ok((client, conn))) => {
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(client)
        }
    }
}

/// The server's own message when there is one, else the client library's.
pub fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    }
}

/// Runs a simple-protocol query (the only kind PgBouncer's admin console speaks) and returns rows
/// as column-name → value maps.
pub async fn simple_rows(client: &Client, sql: &str) -> Result<Vec<Vec<(String, Option<String>)>>> {
    let mut rows = Vec::new();
    for msg in client.simple_query(sql).await? {
        if let SimpleQueryMessage::Row(r) = msg {
            let cols = r
                .columns()
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name().to_string(), r.get(i).map(str::to_string)));
            rows.push(cols.collect());
        }
    }
    Ok(rows)
}

pub fn cell<'a>(row: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    row.iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.as_deref())
}
