//! `cargo xtask pgbouncer-check`: PgBouncer's own regression suite (`make check` of the Debian
//! 1.18 source: the shell tests, hba_test and the TLS tests) on Debian's source as shipped and
//! on the same source with pgbouncer/gssapi-server-login.patch, and the comparison: the patch
//! must not change the outcome of any upstream test.
//!
//! Both trees are built fresh by pgbouncer/build.sh (so the patch tested is the one checked
//! out), copied to a private directory owned by `nobody` (PostgreSQL's initdb refuses root), and
//! run one after the other: the suite uses fixed ports (6666, 6667) and /tmp sockets, so a
//! machine-wide lock keeps two checks from running at once.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::deps::{self, Need};

/// The suite's own fixed ports (test/test.sh, test/ssl/test.sh).
const SUITE_PORTS: [u16; 2] = [6666, 6667];
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Outcome {
    Ok,
    Failed,
    Skipped,
}

/// Test name → outcome, in the suite's order of names (hba_test counts as one test).
pub type Results = BTreeMap<String, Outcome>;

pub fn run(offline: bool) -> Result<i32> {
    deps::ensure(&[Need::PgbouncerBuild, Need::Run], offline)?;
    let root = crate::cargo::root();
    let out = root.join("target/pgbouncer/check");
    std::fs::create_dir_all(&out)?;
    let _lock = MachineLock::take()?;
    for port in SUITE_PORTS {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            bail!("port {port} on 127.0.0.1 is in use: PgBouncer's test suite needs it (and 6666/6667 both); stop what holds it (`ss -ltnp 'sport = :{port}'`)");
        }
    }
    let mut all = Vec::new();
    for (label, flag) in [("unpatched", Some("--unpatched")), ("patched", None)] {
        let tree = build(&root, &out.join(label), flag)?;
        let results = suite(label, &tree)?;
        eprintln!("xtask: pgbouncer-check [{label}]: {}", totals(&results));
        all.push((label, results));
    }
    let (unpatched, patched) = (&all[0].1, &all[1].1);
    println!("{}", compare(unpatched, patched));
    let regressions = regressions(unpatched, patched);
    Ok(if regressions.is_empty() && !patched.is_empty() {
        0
    } else {
        1
    })
}

/// pgbouncer/build.sh into `dir`, its phase lines shown as they come; the configured source
/// tree it leaves is what `make check` runs in.
fn build(root: &Path, dir: &Path, flag: Option<&str>) -> Result<PathBuf> {
    let _ = std::fs::remove_dir_all(dir);
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("pgbouncer/build.sh"));
    if let Some(f) = flag {
        cmd.arg(f);
    }
    cmd.arg(dir).env(
        "PGBOUNCER_SRC_CACHE",
        root.join("target/pgbouncer/src-cache"),
    );
    eprintln!(
        "xtask: pgbouncer-check: building {} ({})",
        dir.display(),
        flag.unwrap_or("with gssapi-server-login.patch")
    );
    let status = cmd.status().context("running pgbouncer/build.sh")?;
    if !status.success() {
        bail!(
            "pgbouncer/build.sh {} failed ({status}); see {}/build.log",
            flag.unwrap_or(""),
            dir.display()
        );
    }
    Ok(dir.join("work/src"))
}

/// `make -k check` in a private copy of `tree` (so the three parts all run even when one fails),
/// as `nobody` when run as root, each result line echoed with the label.
fn suite(label: &str, tree: &Path) -> Result<Results> {
    let scratch =
        std::env::temp_dir().join(format!("pgbouncer-check-{}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let copy = Command::new("cp")
        .args(["-a"])
        .arg(tree)
        .arg(&scratch)
        .status()
        .context("copying the PgBouncer tree")?;
    if !copy.success() {
        bail!("could not copy {} to {}", tree.display(), scratch.display());
    }
    let guard = Scratch(scratch.clone());
    let as_nobody = unsafe { libc::geteuid() } == 0;
    if as_nobody {
        let st = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(&scratch)
            .status()?;
        if !st.success() {
            bail!("could not hand {} to user nobody", scratch.display());
        }
    }
    let path = format!(
        "{PG_BIN}:{}",
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    let mut cmd = if as_nobody {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--", "make", "-k", "check"]);
        c.env("USER", "nobody");
        c
    } else {
        let mut c = Command::new("make");
        c.args(["-k", "check"]);
        c
    };
    cmd.current_dir(&scratch)
        .env("PATH", path)
        .env("HOME", &scratch)
        .env_remove("PGHOST")
        .env_remove("PGPORT")
        .env_remove("PGDATA")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    eprintln!(
        "xtask: pgbouncer-check [{label}]: make -k check in {}{} (about 4 minutes)",
        scratch.display(),
        if as_nobody { " as nobody" } else { "" }
    );
    let mut child = cmd.spawn().context("running make check")?;
    let log_path = tree
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| scratch.join("check.log"), |d| d.join("check.log"));
    let mut log = std::fs::File::create(&log_path)?;
    let mut results = Results::new();
    for line in BufReader::new(child.stdout.take().context("make's stdout")?)
        .lines()
        .map_while(Result::ok)
    {
        use std::io::Write;
        let _ = writeln!(log, "{line}");
        if let Some((name, outcome)) = result_line(&line) {
            eprintln!("  [{label}] {name}: {outcome:?}");
            let mut key = name.clone();
            let mut n = 2;
            while results.contains_key(&key) {
                key = format!("{name}#{n}");
                n += 1;
            }
            results.insert(key, outcome);
        }
    }
    child.wait()?;
    drop(guard);
    if results.is_empty() {
        bail!(
            "make check on the {label} tree ran no test; its output is in {}",
            log_path.display()
        );
    }
    eprintln!(
        "xtask: pgbouncer-check [{label}]: output in {}",
        log_path.display()
    );
    Ok(results)
}

/// `… running test_x ... ok|FAILED|skipped` (test.sh, ssl/test.sh) and hba_test's verdict.
pub fn result_line(line: &str) -> Option<(String, Outcome)> {
    let line = line.trim_end();
    if line == "HBA test OK" {
        return Some(("hba_test".into(), Outcome::Ok));
    }
    if line.contains("hba_test") && line.contains("Error") {
        return Some(("hba_test".into(), Outcome::Failed));
    }
    let rest = &line[line.find("running ")? + "running ".len()..];
    let (name, verdict) = rest.split_once(" ... ")?;
    let outcome = match verdict.trim() {
        "ok" => Outcome::Ok,
        "FAILED" => Outcome::Failed,
        "skipped" => Outcome::Skipped,
        _ => return None,
    };
    Some((name.trim().to_string(), outcome))
}

fn totals(r: &Results) -> String {
    let n = |o| r.values().filter(|v| **v == o).count();
    format!(
        "{} ok, {} failed, {} skipped",
        n(Outcome::Ok),
        n(Outcome::Failed),
        n(Outcome::Skipped)
    )
}

/// Tests the patch made worse (ok or skipped before, failed or missing after).
pub fn regressions(before: &Results, after: &Results) -> Vec<String> {
    before
        .iter()
        .filter(|(name, b)| {
            **b != Outcome::Failed && after.get(*name).is_none_or(|a| *a == Outcome::Failed)
        })
        .map(|(name, _)| name.clone())
        .collect()
}

/// The report: totals of both, then every test whose outcome differs.
pub fn compare(before: &Results, after: &Results) -> String {
    let mut out = format!(
        "PgBouncer 1.18 regression suite (make check):\n  unpatched: {}\n  patched:   {}\n",
        totals(before),
        totals(after)
    );
    let failed: Vec<&str> = after
        .iter()
        .filter(|(_, o)| **o == Outcome::Failed)
        .map(|(n, _)| n.as_str())
        .collect();
    if !failed.is_empty() {
        out += &format!("  failing on the patched build: {}\n", failed.join(", "));
    }
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    let diffs: Vec<String> = names
        .into_iter()
        .filter(|n| before.get(*n) != after.get(*n))
        .map(|n| format!("    {n}: {:?} -> {:?}", before.get(n), after.get(n)))
        .collect();
    if diffs.is_empty() {
        out += "  identical outcome for every test";
    } else {
        out += &format!("  differences ({}):\n{}", diffs.len(), diffs.join("\n"));
    }
    out
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// flock on a file in the temp directory: the suite's ports are machine-wide.
struct MachineLock {
    /// Held open: closing it releases the lock.
    _file: std::fs::File,
}

impl MachineLock {
    fn take() -> Result<MachineLock> {
        use std::os::fd::AsRawFd;
        let p = std::env::temp_dir().join("pgbouncer-check.lock");
        let f = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .with_context(|| format!("opening {}", p.display()))?;
        // SAFETY: flock on a descriptor this struct owns.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            eprintln!(
                "xtask: pgbouncer-check: another check holds {}; waiting for it",
                p.display()
            );
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
                bail!("could not lock {}", p.display());
            }
        }
        Ok(MachineLock { _file: f })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_lines_are_parsed() {
        assert_eq!(
            result_line("Tue Dec  1 10:17:29 UTC 2026 running test_show_version ... ok"),
            Some(("test_show_version".into(), Outcome::Ok))
        );
        assert_eq!(
            result_line("Tue Dec  1 10:20:00 UTC 2026 running test_host_list ... FAILED"),
            Some(("test_host_list".into(), Outcome::Failed))
        );
        assert_eq!(
            result_line("x running test_x ... skipped"),
            Some(("test_x".into(), Outcome::Skipped))
        );
        assert_eq!(
            result_line("HBA test OK"),
            Some(("hba_test".into(), Outcome::Ok))
        );
        assert_eq!(result_line("# running the thing"), None);
    }

    #[test]
    fn a_test_the_patch_breaks_is_a_regression_and_an_old_failure_is_not() {
        let before: Results = [
            ("a".to_string(), Outcome::Ok),
            ("b".to_string(), Outcome::Failed),
            ("c".to_string(), Outcome::Skipped),
        ]
        .into();
        let mut after = before.clone();
        assert!(regressions(&before, &after).is_empty());
        assert!(compare(&before, &after).contains("identical outcome"));
        after.insert("a".into(), Outcome::Failed);
        after.remove("c");
        assert_eq!(regressions(&before, &after), vec!["a", "c"]);
        assert!(compare(&before, &after).contains("a: Some(Ok) -> Some(Failed)"));
    }
}
