//! What a fault looks like in PgBouncer's own log, named for the person who has to fix it: the
//! generic PgBouncer image (no GSSAPI support) gives itself away in one line long before any
//! client times out, so the harness watches the log while a client waits and says so at once.

use std::fmt;
use std::time::{Duration, Instant};

use crate::environment::{Component, Environment};
use crate::probe::sql;
use crate::substrate::LogCursor;

/// A cause recognised in PgBouncer's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnosis {
    /// PostgreSQL asked for GSSAPI (AuthenticationGSS, method 7) and PgBouncer could not answer.
    NoGssapiSupport { line: String },
    /// PgBouncer refused the fork's settings at start-up: it is not the Kerberos-capable build.
    ForkSettingUnknown { setting: String, line: String },
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnosis::NoGssapiSupport { line } => write!(
                f,
                "PgBouncer has no GSSAPI support: PostgreSQL asked it for a Kerberos (GSSAPI) login and it logged `{line}`. This is the generic PgBouncer image; deploy the Kerberos-capable one (ap-pgbouncer-krb), which answers with server_gssauth_negotiate = allow"
            ),
            Diagnosis::ForkSettingUnknown { setting, line } => write!(
                f,
                "PgBouncer has no GSSAPI support: it does not know `{setting}` (`{line}`) and refused to start. This is the generic PgBouncer image; deploy the Kerberos-capable one (ap-pgbouncer-krb)"
            ),
        }
    }
}

/// The first recognised cause in PgBouncer's log text, if any.
pub fn pgbouncer_log(text: &str) -> Option<Diagnosis> {
    for line in text.lines() {
        if line.contains("unknown/unsupported auth method: 7") {
            return Some(Diagnosis::NoGssapiSupport {
                line: tail_from(line, "unknown/unsupported"),
            });
        }
        for setting in ["server_gssauth_negotiate", "server_krb_spn"] {
            let param = line.contains(&format!("unknown parameter: pgbouncer/{setting}"));
            let conn = line.contains(&format!("unrecognized connection parameter: {setting}"));
            if param || conn {
                return Some(Diagnosis::ForkSettingUnknown {
                    setting: setting.into(),
                    line: tail_from(line, if param { "unknown" } else { "unrecognized" }),
                });
            }
        }
    }
    None
}

/// The line from `word` on: PgBouncer's prefix (time, pid, level) is noise in a diagnosis.
fn tail_from(line: &str, word: &str) -> String {
    line.find(word)
        .map_or(line, |i| &line[i..])
        .trim()
        .to_string()
}

/// How a client's attempt through PgBouncer ended, with the log watched meanwhile.
#[derive(Debug)]
pub enum Watched {
    Connected,
    /// The client got an error before the log said anything the harness recognises.
    Failed(String),
    /// The log named the cause while the client was still waiting (or as it failed).
    Diagnosed(Diagnosis),
}

/// A password client connects and queries through PgBouncer while the harness polls
/// PgBouncer's log (only what follows `cursor`); whichever answers first wins, so a
/// recognised cause is reported without waiting for PgBouncer's client_login_timeout.
pub async fn connect_watching(
    env: &Environment,
    target: &sql::Target,
    cursor: LogCursor,
    limit: Duration,
) -> (Watched, Duration) {
    let started = Instant::now();
    let read_new = || env.log_since(Component::Pgbouncer, cursor);
    let client = super::attempt(target, limit);
    tokio::pin!(client);
    let outcome = loop {
        tokio::select! {
            a = &mut client => {
                break match (a.error, pgbouncer_log(&read_new())) {
                    (Some(_), Some(d)) => Watched::Diagnosed(d),
                    (Some(e), None) => Watched::Failed(e),
                    (None, _) => Watched::Connected,
                };
            }
            _ = tokio::time::sleep(Duration::from_millis(50)) => {
                if let Some(d) = pgbouncer_log(&read_new()) {
                    break Watched::Diagnosed(d);
                }
            }
        }
    };
    (outcome, started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_7_is_the_generic_image() {
        let log = "2026-11-22 10:00:00.000 UTC [1] LOG S-0x1: db/u@127.0.0.1:5432 new connection to server\n\
                   2026-11-22 10:00:00.001 UTC [1] ERROR S-0x1: db/u@127.0.0.1:5432 unknown/unsupported auth method: 7\n";
        let d = pgbouncer_log(log).unwrap();
        assert_eq!(
            d,
            Diagnosis::NoGssapiSupport {
                line: "unknown/unsupported auth method: 7".into()
            }
        );
        assert!(d.to_string().starts_with("PgBouncer has no GSSAPI support"));
    }

    #[test]
    fn the_forks_settings_refused_at_start_are_the_generic_image() {
        let log = "2026-12-01 10:13:58.073 UTC [11783] ERROR unknown parameter: pgbouncer/server_gssauth_negotiate\n";
        match pgbouncer_log(log) {
            Some(Diagnosis::ForkSettingUnknown { setting, line }) => {
                assert_eq!(setting, "server_gssauth_negotiate");
                assert_eq!(
                    line,
                    "unknown parameter: pgbouncer/server_gssauth_negotiate"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_auth_methods_and_gss_failures_are_not_this_diagnosis() {
        // Method 9 (SSPI) is a different mistake, and the fork's own GSS failures name
        // themselves.
        let log = "ERROR unknown/unsupported auth method: 9\n\
                   ERROR GSSAPI login to server failed (spn=postgres/db@R): No credentials were supplied\n";
        assert_eq!(pgbouncer_log(log), None);
    }
}
