//! Day-two faults of the Kerberos path, reproduced on demand: the KDC stopped, slow or down
//! while PgBouncer serves pooled clients, the generic (non-Kerberos) PgBouncer, a rotated server
//! key, PostgreSQL restarted under load, expiring tickets ([`tickets`]), a skewed clock
//! ([`skew`]) and the reverse-DNS trap ([`rdns`]). What each fault does to clients is measured
//! here ([`load`]), named here ([`diagnose`]), and benchmarked here ([`kdc_stall`]); the
//! scenarios are `features/fault.feature` and `features/fault-day-two.feature`.

pub mod diagnose;
pub mod kdc_stall;
pub mod load;
pub mod rdns;
pub mod skew;
pub mod tickets;

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::environment::Environment;
use crate::probe::sql;

/// Waits until the pool of `alias` holds its full `pool_size` of logged-in server connections
/// and none is logging in (PgBouncer's admin console), so that a fault that follows hits only a
/// *new* login, not the pool still growing.
pub async fn wait_full_pool(env: &Environment, alias: &str, limit: Duration) -> Result<()> {
    let admin = env.admin_target().context("PgBouncer is not running")?;
    let client = sql::connect(&admin, Duration::from_secs(5))
        .await
        .map_err(|e| anyhow::anyhow!("PgBouncer's admin console: {e}"))?;
    let num = |row: &[(String, Option<String>)], k: &str| -> usize {
        sql::cell(row, k).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let size = sql::simple_rows(&client, "SHOW DATABASES")
        .await?
        .iter()
        .find(|r| sql::cell(r, "name") == Some(alias))
        .map(|r| num(r, "pool_size"))
        .with_context(|| format!("PgBouncer has no database `{alias}`"))?;
    let deadline = Instant::now() + limit;
    loop {
        let rows = sql::simple_rows(&client, "SHOW POOLS").await?;
        let (ready, login) = rows
            .iter()
            .filter(|r| sql::cell(r, "database") == Some(alias))
            .fold((0, 0), |(ready, login), r| {
                let up: usize = ["sv_active", "sv_idle", "sv_used", "sv_tested"]
                    .iter()
                    .map(|k| num(r, k))
                    .sum();
                (ready + up, login + num(r, "sv_login"))
            });
        if ready >= size && login == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the pool of {alias} has {ready} of {size} server connections ({login} logging in) after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `pool_size` PgBouncer gives `alias` (admin console `SHOW DATABASES`).
pub async fn pool_size(env: &Environment, alias: &str) -> Result<usize> {
    env.pgbouncer_admin("SHOW DATABASES")
        .await?
        .iter()
        .find(|r| sql::cell(r, "name") == Some(alias))
        .and_then(|r| sql::cell(r, "pool_size"))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("PgBouncer has no database `{alias}` with a pool_size"))
}

/// Drops every server connection of both pools (admin console `KILL`, then `RESUME`), so the
/// next client makes PgBouncer log in to PostgreSQL again, as after `server_lifetime` or a
/// PgBouncer restart.
pub async fn close_server_connections(env: &Environment) -> Result<()> {
    for alias in [
        env.shape().metadata_alias(),
        env.shape().result_backend_alias(),
    ] {
        env.pgbouncer_admin(&format!("KILL \"{alias}\""))
            .await
            .with_context(|| format!("KILL {alias} on PgBouncer's admin console"))?;
        env.pgbouncer_admin(&format!("RESUME \"{alias}\""))
            .await
            .with_context(|| format!("RESUME {alias} on PgBouncer's admin console"))?;
    }
    Ok(())
}

/// The errors a client sees when PostgreSQL stops under the query it is running: PostgreSQL's
/// own (fast shutdown terminates the session) as PgBouncer relays it, or PgBouncer's when the
/// server connection vanished under the query.
pub const IN_FLIGHT_ERRORS: &[&str] = &[
    "terminating connection due to administrator command",
    "server conn crashed?",
];

/// True when `error` is one a query in flight at the stop sees, not a failed new login.
pub fn is_in_flight_error(error: &str) -> bool {
    IN_FLIGHT_ERRORS.iter().any(|e| error.contains(e))
}

/// What one client saw when it connected through PgBouncer and ran a query.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub error: Option<String>,
    pub elapsed: Duration,
}

/// A password login plus `SELECT 1`: PgBouncer logs in to the server on the first query.
pub async fn attempt(target: &sql::Target, limit: Duration) -> Attempt {
    let started = Instant::now();
    let error = match sql::connect(target, limit).await {
        Ok(c) => {
            let left = limit.saturating_sub(started.elapsed());
            match tokio::time::timeout(left, c.simple_query("SELECT 1")).await {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(sql::error_text(&e)),
                Err(_) => Some(format!("no answer to SELECT 1 within {limit:?}")),
            }
        }
        Err(e) => Some(e),
    };
    Attempt {
        error,
        elapsed: started.elapsed(),
    }
}
