//! The reverse-DNS trap: with `rdns` and `dns_canonicalize_hostname` on, MIT turns the host of a
//! host-based service name into the reverse name of its address before asking the KDC, so
//! PgBouncer asks for `postgres/<reverse name>` instead of `postgres/<host it was given>`.

use anyhow::{Context, Result};

use crate::component::Exec;
use crate::environment::Environment;

/// The name PgBouncer's resolver gives `addr` back (`getent hosts` in PgBouncer's place: its
/// /etc/hosts, then DNS, as MIT's getnameinfo there sees it); None when it has none.
pub async fn reverse_name(env: &Environment, addr: &str) -> Result<Option<String>> {
    let stack = env.stack();
    let pgb = stack
        .pgbouncer
        .as_ref()
        .context("PgBouncer is not running: its resolver answers only in its place")?;
    // getent exits 2 for "not found": that is an answer here, not a failure.
    let out = stack
        .substrate
        .exec(
            pgb.placed(),
            Exec::new("resolving the database address (getent hosts)", "/bin/sh").args([
                "-c",
                r#"getent hosts "$1" || [ $? -eq 2 ]"#,
                "getent",
                addr,
            ]),
        )
        .await?;
    Ok(first_name(&out.stdout))
}

/// The canonical name of `getent hosts` output (`10.0.0.5  db-1.internal  db`), lower case.
fn first_name(getent: &str) -> Option<String> {
    getent
        .split_whitespace()
        .nth(1)
        .map(|n| n.trim_end_matches('.').to_lowercase())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_first_name_after_the_address_is_the_reverse_name() {
        assert_eq!(
            super::first_name("10.0.0.5       DB-1.Internal.  db\n").as_deref(),
            Some("db-1.internal")
        );
        assert_eq!(super::first_name(""), None);
    }
}
