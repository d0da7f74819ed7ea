//! The local substrate: components as child processes on loopback, each in its own process
//! group so teardown reaches grandchildren too (Airflow forks, PostgreSQL backends).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::component::{Readiness, RunAs, Spec};
use crate::tools;

/// Process groups of every component still running, so a signal handler can stop them all
/// (Drop does not run when the harness is interrupted).
static LIVE_GROUPS: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

fn track(pgid: Pid) {
    LIVE_GROUPS
        .lock()
        .expect("process registry poisoned")
        .push(pgid.as_raw());
}

fn untrack(pgid: Pid) {
    LIVE_GROUPS
        .lock()
        .expect("process registry poisoned")
        .retain(|p| *p != pgid.as_raw());
}

/// Kills every component this process started and has not stopped yet (Ctrl-C, run timeout).
pub fn kill_all() -> usize {
    let groups = std::mem::take(&mut *LIVE_GROUPS.lock().expect("process registry poisoned"));
    for g in &groups {
        let _ = killpg(Pid::from_raw(*g), Signal::SIGKILL);
    }
    groups.len()
}

/// A running component. Dropping it kills its whole process group, so a panic, a failed step or
/// Ctrl-C never leaves a daemon behind.
pub struct Process {
    pub name: String,
    pub log: PathBuf,
    child: Child,
    pgid: Option<Pid>,
    stop_grace: Duration,
}

impl Process {
    /// Starts `spec` with stdout and stderr appended to `log` and waits for its readiness check.
    pub async fn start(spec: &Spec, log: &Path) -> Result<Process> {
        if !spec.program.exists() {
            bail!(
                "{}: program {} does not exist; run `cargo xtask doctor` to see how to install it",
                spec.name,
                spec.program.display()
            );
        }
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("could not open log {}", log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0)
            .kill_on_drop(true);
        for k in &spec.env_remove {
            cmd.env_remove(k);
        }
        cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
        if let Some(cwd) = &spec.cwd {
            cmd.current_dir(cwd);
        }
        if spec.run_as == RunAs::ServiceUser {
            if let Some((uid, gid)) = tools::service_user()? {
                cmd.uid(uid).gid(gid);
            }
        }
        let child = cmd.spawn().with_context(|| {
            format!("{}: could not start {}", spec.name, spec.program.display())
        })?;
        let pgid = child.id().map(|id| Pid::from_raw(id as i32));
        if let Some(g) = pgid {
            track(g);
        }
        let mut p = Process {
            name: spec.name.clone(),
            log: log.to_path_buf(),
            child,
            pgid,
            stop_grace: spec.stop_grace,
        };
        p.wait_ready(&spec.readiness, spec.ready_timeout).await?;
        Ok(p)
    }

    async fn wait_ready(&mut self, r: &Readiness, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let line_re = match r {
            Readiness::LogLine(re) => Some(regex::Regex::new(re)?),
            _ => None,
        };
        let http = match r {
            Readiness::Http(_) => Some(
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(2))
                    .build()?,
            ),
            _ => None,
        };
        let mut delay = Duration::from_millis(5);
        loop {
            // A process that died will never become ready: say so now, with its last words.
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited during start-up ({status}); last lines of {}:\n{}",
                    self.name,
                    self.log.display(),
                    tail(&self.log, 15)
                );
            }
            let ready = match r {
                Readiness::None => true,
                Readiness::TcpPort(port) => tokio::net::TcpStream::connect(("127.0.0.1", *port))
                    .await
                    .is_ok(),
                Readiness::LogLine(_) => {
                    let text = std::fs::read_to_string(&self.log).unwrap_or_default();
                    line_re.as_ref().is_some_and(|re| re.is_match(&text))
                }
                Readiness::Http(url) => match http.as_ref().unwrap().get(url).send().await {
                    Ok(resp) => resp.status().as_u16() < 500,
                    Err(_) => false,
                },
            };
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not become ready within {:?} (waiting for {r:?}); last lines of {}:\n{}",
                    self.name,
                    timeout,
                    self.log.display(),
                    tail(&self.log, 15)
                );
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(100));
        }
    }

    /// True while the main process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> Option<u32> {
        self.pgid.map(|p| p.as_raw() as u32)
    }

    /// SIGTERM to the process group, a grace period, then SIGKILL.
    pub async fn stop(&mut self) {
        let Some(pgid) = self.pgid.take() else { return };
        let _ = killpg(pgid, Signal::SIGTERM);
        let waited = tokio::time::timeout(self.stop_grace, self.child.wait()).await;
        if waited.is_err() {
            tracing::warn!(
                "{} ignored SIGTERM for {:?}; killing it",
                self.name,
                self.stop_grace
            );
        }
        // Children of the group may outlive the leader (Airflow's forks): kill what is left.
        let _ = killpg(pgid, Signal::SIGKILL);
        untrack(pgid);
        let _ = self.child.wait().await;
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            let _ = killpg(pgid, Signal::SIGKILL);
            untrack(pgid);
        }
    }
}

/// The last `n` lines of a log file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    crate::redact::redact(&lines[start..].join("\n"))
}

/// Runs a short-lived command to completion, returning stdout; on failure the error names the
/// command and carries its stderr.
pub async fn run_tool(
    what: &str,
    program: &Path,
    args: &[&str],
    env: &[(String, String)],
    run_as: RunAs,
) -> Result<String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null());
    if run_as == RunAs::ServiceUser {
        if let Some((uid, gid)) = tools::service_user()? {
            cmd.uid(uid).gid(gid);
        }
    }
    let out = cmd
        .output()
        .await
        .with_context(|| format!("{what}: could not run {}", program.display()))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {} {}\n{}{}",
            out.status,
            program.display(),
            crate::redact::redact(&args.join(" ")),
            crate::redact::redact(&String::from_utf8_lossy(&out.stdout)),
            crate::redact::redact(&String::from_utf8_lossy(&out.stderr))
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
