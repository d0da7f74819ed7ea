//! The local substrate: components as child processes on loopback, each in its own process
//! group so teardown reaches grandchildren too (Airflow forks, PostgreSQL backends). A place is
//! a directory of the run; its files are the artifacts.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::{Endpoint, LogCursor, Place, Running, Substrate, Tier};
use crate::component::{Exec, ExecOutput, File, NamedPort, RunAs, Source, Spec};
use crate::tools;

/// Loopback: what the harness and every other component dial locally.
const LOOPBACK: &str = "127.0.0.1";

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

/// The local substrate (see the module comment).
#[derive(Debug, Default, Clone, Copy)]
pub struct Local;

#[async_trait]
impl Substrate for Local {
    fn tier(&self) -> Tier {
        Tier::Local
    }

    fn place(&self, name: &str, artifacts: &Path, owner: RunAs) -> Result<Place> {
        std::fs::create_dir_all(artifacts)
            .with_context(|| format!("could not create {}", artifacts.display()))?;
        crate::run::make_traversable(artifacts)?;
        if owner == RunAs::ServiceUser {
            tools::give_to_service_user(artifacts)?;
        }
        Ok(Place {
            name: name.into(),
            dir: artifacts.to_path_buf(),
            artifacts: artifacts.to_path_buf(),
            host: LOOPBACK.into(),
            bind: LOOPBACK.into(),
            clients: format!("{LOOPBACK}/32"),
            owner,
        })
    }

    fn environment(
        self: std::sync::Arc<Self>,
        _names: &harness_config::EnvironmentShape,
    ) -> Result<std::sync::Arc<dyn Substrate>> {
        Ok(self)
    }

    async fn release(&self) {}

    fn program(&self, _place: &Place, tool: &str) -> Result<PathBuf> {
        tools::path(tool)
    }

    fn shipped(&self, _place: &Place, _rel: &str) -> Result<Option<PathBuf>> {
        Ok(None)
    }

    fn component_host(&self, place: &Place, _component: &str) -> String {
        place.host.clone()
    }

    fn share_dir(&self, _place: &Place, dir: &Path) -> Result<String> {
        dir.to_str()
            .map(str::to_string)
            .with_context(|| format!("path {} is not UTF-8", dir.display()))
    }

    fn listen_port(&self, _place: &Place, _name: &str, _default: u16) -> Result<u16> {
        super::ports::free_port()
    }

    async fn start(&self, place: &Place, spec: Spec) -> Result<Box<dyn Running>> {
        for f in &spec.files {
            self.put_file(place, f.clone()).await?;
        }
        let log = place.artifacts.join(format!("{}.log", spec.name));
        Ok(Box::new(Process::start(place, &spec, &log).await?))
    }

    async fn exec(&self, place: &Place, tool: Exec) -> Result<ExecOutput> {
        tools::run(&tool, Some(&place.dir)).await
    }

    async fn put_file(&self, place: &Place, file: File) -> Result<()> {
        let owner = match place.owner {
            RunAs::ServiceUser => tools::service_user()?,
            RunAs::Invoker => None,
        };
        super::write_placed(&place.path(&file.path), &file, owner)
    }

    async fn read_file(&self, place: &Place, rel: &str) -> Result<Vec<u8>> {
        let path = place.path(rel);
        std::fs::read(&path).with_context(|| format!("could not read {}", path.display()))
    }

    fn kill_all(&self) -> usize {
        kill_all()
    }
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
struct Process {
    name: String,
    log: PathBuf,
    ports: Vec<NamedPort>,
    child: Child,
    pgid: Option<Pid>,
    /// The group id, kept after stop to tell whether anything of it is left.
    group: Option<Pid>,
    stop_grace: Duration,
}

impl Process {
    /// Starts `spec` with stdout and stderr appended to `log` and waits for its readiness check.
    async fn start(place: &Place, spec: &Spec, log: &Path) -> Result<Process> {
        let program = match &spec.source {
            Source::Program(p) => p.clone(),
            Source::Image(image) => bail!(
                "{}: the local tier runs programs, not images (`{image}`); run it with --tier docker",
                spec.name
            ),
        };
        if !program.exists() {
            bail!(
                "{}: program {} does not exist; run `cargo xtask doctor` to see how to install it",
                spec.name,
                program.display()
            );
        }
        let out = std::fs::File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("could not open log {}", log.display()))?;
        if place.owner == RunAs::ServiceUser {
            tools::give_to_service_user(log)?;
        }
        let err = out.try_clone()?;
        let mut cmd = match spec.nice {
            // Off the critical path: lower priority, inherited by everything it forks.
            Some(level) if Path::new("/usr/bin/nice").exists() => {
                let mut c = Command::new("/usr/bin/nice");
                c.arg("-n").arg(level.to_string()).arg(&program);
                c
            }
            _ => Command::new(&program),
        };
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
        cmd.current_dir(match &spec.cwd {
            Some(cwd) => place.dir.join(cwd),
            None => place.dir.clone(),
        });
        if spec.run_as == RunAs::ServiceUser {
            if let Some((uid, gid)) = tools::service_user()? {
                cmd.uid(uid).gid(gid);
            }
        }
        // Where this start's output begins in the (appended) log.
        let from = LogCursor(std::fs::metadata(log).map(|m| m.len()).unwrap_or(0));
        let child = cmd
            .spawn()
            .with_context(|| format!("{}: could not start {}", spec.name, program.display()))?;
        let pgid = child.id().map(|id| Pid::from_raw(id as i32));
        if let Some(g) = pgid {
            track(g);
        }
        let mut p = Process {
            name: spec.name.clone(),
            log: log.to_path_buf(),
            ports: spec.ports.clone(),
            child,
            pgid,
            group: pgid,
            stop_grace: spec.stop_grace,
        };
        super::await_ready(&mut p, &spec.readiness, spec.ready_timeout, from).await?;
        Ok(p)
    }

    fn signal_group(&self, signal: Signal) -> Result<()> {
        let pgid = self
            .pgid
            .with_context(|| format!("{} is not running", self.name))?;
        killpg(pgid, signal)
            .with_context(|| format!("sending {signal} to {} (process group {pgid})", self.name))
    }

    fn port(&self, name: &str) -> Result<u16> {
        self.ports
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.port)
            .with_context(|| {
                format!(
                    "internal: {} has no port named `{name}` (it has: {})",
                    self.name,
                    self.ports
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

#[async_trait]
impl super::Starting for Process {
    fn exited(&mut self) -> Result<Option<String>> {
        Ok(self.child.try_wait()?.map(|status| status.to_string()))
    }

    async fn port_answers(&self, port: &str) -> Result<bool> {
        let port = self.port(port)?;
        Ok(tokio::net::TcpStream::connect((LOOPBACK, port))
            .await
            .is_ok())
    }
}

#[async_trait]
impl Running for Process {
    fn name(&self) -> &str {
        &self.name
    }

    fn endpoint(&self, port: &str) -> Result<Endpoint> {
        Ok(Endpoint {
            host: LOOPBACK.into(),
            port: self.port(port)?,
        })
    }

    fn peer_endpoint(&self, port: &str) -> Result<Endpoint> {
        self.endpoint(port)
    }

    fn log_file(&self) -> PathBuf {
        self.log.clone()
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn remains(&self) -> bool {
        // A signal-0 probe of the group succeeds while any process is in it.
        self.group.is_some_and(|g| killpg(g, None).is_ok())
    }

    async fn pause(&self) -> Result<()> {
        self.signal_group(Signal::SIGSTOP)
    }

    async fn resume(&self) -> Result<()> {
        self.signal_group(Signal::SIGCONT)
    }

    /// SIGTERM to the process group, a grace period, then SIGKILL.
    async fn stop(&mut self) {
        let Some(pgid) = self.pgid.take() else { return };
        let _ = killpg(pgid, Signal::SIGTERM);
        // A paused group would sit out the whole grace period with the SIGTERM pending.
        let _ = killpg(pgid, Signal::SIGCONT);
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
