//! Why Airflow cannot reach its database, read from PgBouncer's log: PgBouncer is where both
//! halves of the path meet (the client's password, the server's Kerberos login), and each way it
//! breaks leaves one recognisable line there.

use std::path::Path;

/// A failure PgBouncer logged, with the line that proves it.
#[derive(Debug, Clone)]
pub struct Finding {
    /// One sentence: what is wrong and how to fix it.
    pub diagnosis: String,
    /// `<log path>:<line number>`.
    pub location: String,
    pub line: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n  PgBouncer log {}: {}",
            self.diagnosis,
            self.location,
            self.line.trim()
        )
    }
}

struct Rule {
    needle: &'static str,
    diagnosis: fn(&str) -> String,
}

/// Client-side (users.txt) before server-side (Kerberos): a refused client never reaches the
/// server login, so its line is the first cause.
const RULES: &[Rule] = &[
    Rule {
        needle: "password authentication failed",
        diagnosis: |user| {
            format!(
                "Airflow's connection password for {user} does not match users.txt: PgBouncer refused the client login (password authentication failed); make the connection's `pass` and the users.txt entry the same secret"
            )
        },
    },
    Rule {
        needle: "No credentials were supplied",
        diagnosis: |_| {
            "PgBouncer has no Kerberos credentials, so its GSSAPI login to PostgreSQL fails (No credentials were supplied); the credential injector did not give the PgBouncer pod a keytab (KRB5_CLIENT_KTNAME) or ticket cache: check the pod labels against the injector's selector".to_string()
        },
    },
    Rule {
        needle: "GSSAPI login to server failed",
        diagnosis: |_| {
            "PgBouncer's GSSAPI login to PostgreSQL failed; the GSS status below names the cause"
                .to_string()
        },
    },
    Rule {
        needle: "GSSAPI login to server rejected by server",
        diagnosis: |_| {
            "PostgreSQL rejected PgBouncer's GSSAPI login; the server's message below names the cause".to_string()
        },
    },
    Rule {
        needle: "no such database",
        diagnosis: |_| {
            "Airflow asks PgBouncer for a database alias it does not define: the `<release>-metadata` / `<release>-result-backend` lines are missing from [databases]".to_string()
        },
    },
];

/// The first known failure in `log` after byte `offset`, if any.
pub fn pgbouncer(log: &Path, offset: u64, user: &str) -> Option<Finding> {
    let bytes = std::fs::read(log).ok()?;
    let start = (offset as usize).min(bytes.len());
    let skipped_lines = bytes[..start].iter().filter(|b| **b == b'\n').count();
    let text = String::from_utf8_lossy(&bytes[start..]);
    for rule in RULES {
        if let Some((i, line)) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(rule.needle))
        {
            return Some(Finding {
                diagnosis: (rule.diagnosis)(user),
                location: format!("{}:{}", log.display(), skipped_lines + i + 1),
                line: crate::redact::redact(line),
            });
        }
    }
    None
}

/// Why the scheduler gave a task up before any worker ran it, from the scheduler's log: the
/// run then fails with an empty task log, and the worker's log shows nothing received.
pub fn scheduler(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let (i, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains("Celery Task Timeout Error"))?;
    Some(format!(
        "the scheduler could not hand the task to Celery within [celery] operation_timeout (AIRFLOW__CELERY__OPERATION_TIMEOUT, {} s here) and failed it unrun: the hand-off reaches the broker and stores a pending result through PgBouncer's result-backend alias, whose first server login waits for the KDC; scheduler log {}:{}: {}",
        super::settings::OPERATION_TIMEOUT_S,
        log.display(),
        i + 1,
        crate::redact::redact(line.trim())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_the_scheduler_could_not_hand_to_celery_is_named_with_its_setting() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("scheduler.log");
        std::fs::write(&log, "[info] Loaded executor: :CeleryExecutor:\n").unwrap();
        assert_eq!(scheduler(&log), None);
        std::fs::write(
            &log,
            "[info] Loaded executor\n[info] [Try 1 of 3] Celery Task Timeout Error for Workload: (TaskInstanceKey(dag_id='harness_probe'))\n",
        )
        .unwrap();
        let why = scheduler(&log).unwrap();
        assert!(
            why.contains("AIRFLOW__CELERY__OPERATION_TIMEOUT") && why.contains("scheduler.log:2"),
            "{why}"
        );
    }

    #[test]
    fn names_the_line_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("pgbouncer.log");
        std::fs::write(
            &log,
            "old ERROR password authentication failed\nLOG ok\nERROR S-0x1: m/u@127.0.0.1:1 GSSAPI login to server failed (spn=x): No credentials were supplied, or ...\n",
        )
        .unwrap();
        let offset = "old ERROR password authentication failed\n".len() as u64;
        let f = pgbouncer(&log, offset, "u@R").unwrap();
        assert!(f.diagnosis.contains("No credentials were supplied"), "{f}");
        assert!(f.location.ends_with("pgbouncer.log:3"), "{}", f.location);
        assert!(pgbouncer(&log, std::fs::metadata(&log).unwrap().len(), "u").is_none());
        let f = pgbouncer(&log, 0, "u@R").unwrap();
        assert!(
            f.diagnosis.contains("does not match users.txt") && f.diagnosis.contains("u@R"),
            "{f}"
        );
    }
}
