//! The reverse-DNS trap: with `rdns` and `dns_canonicalize_hostname` on, MIT turns the host of a
//! host-based service name into the reverse name of its address before asking the KDC, so
//! PgBouncer asks for `postgres/<reverse name>` instead of `postgres/<host it was given>`.

use anyhow::{bail, Context, Result};

/// The name the system resolver gives `addr` back (`getent hosts`, i.e. /etc/hosts then DNS,
/// as MIT's getnameinfo sees it); None when it has none.
pub async fn reverse_name(addr: &str) -> Result<Option<String>> {
    let out = tokio::process::Command::new("getent")
        .args(["hosts", addr])
        .output()
        .await
        .context("running getent hosts")?;
    match out.status.code() {
        Some(0) => {}
        // getent's "not found".
        Some(2) => return Ok(None),
        _ => bail!(
            "getent hosts {addr} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .map(|n| n.trim_end_matches('.').to_lowercase()))
}
