//! Where components run: the seam every tier plugs into. A [`Substrate`] gives each component a
//! [`Place`] (its files, its host name), starts a [`component::Spec`](crate::component::Spec)
//! there and returns a [`Running`] handle with its endpoints (as the harness dials them and as the
//! other components dial them), its log with a cursor, and tools run inside it. The local
//! substrate (`local`) runs processes on loopback; the docker substrate (`docker`) runs each
//! component as a container with its own host name on a network per environment; the kind
//! substrate (`kube`) each component as a pod with a Service of its own, in a namespace per
//! environment. Nothing above this module knows which one it has.

pub mod docker;
pub mod kube;
pub mod local;
pub mod ports;
pub(crate) mod roles;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use async_trait::async_trait;

use crate::component::{Exec, ExecOutput, File, RunAs, Spec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Local,
    Docker,
    Kind,
}

impl FromStr for Tier {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "local" => Ok(Tier::Local),
            "docker" => Ok(Tier::Docker),
            "kind" => Ok(Tier::Kind),
            other => anyhow::bail!("unknown tier `{other}`: use one of local, docker, kind"),
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tier::Local => "local",
            Tier::Docker => "docker",
            Tier::Kind => "kind",
        })
    }
}

/// The label everything a container tier makes for a run carries (value: the run's id):
/// containers and networks on docker, namespaces on kind. Ctrl-C, the run's time limit and a
/// later run's sweep find them by it.
pub const RUN_LABEL: &str = "e2e-harness.run";

/// The substrate of a tier, with the run's settings (the docker tier's PgBouncer image).
pub fn for_settings(settings: &harness_config::settings::Settings) -> Result<Arc<dyn Substrate>> {
    for_run(settings, None)
}

/// [`for_settings`] for the run `run_id` (its run directory's name): the docker tier labels
/// what it makes with it, so whoever reads the artifacts finds the run's containers.
pub fn for_run(
    settings: &harness_config::settings::Settings,
    run_id: Option<&str>,
) -> Result<Arc<dyn Substrate>> {
    let tier: Tier = settings.tier.parse()?;
    match tier {
        Tier::Local => Ok(Arc::new(local::Local)),
        Tier::Docker => Ok(Arc::new(docker::Docker::connect(
            settings.pgbouncer_image.clone(),
            run_id,
        )?)),
        Tier::Kind => Ok(Arc::new(kube::Kube::connect(
            settings.kubeconfig.as_deref(),
            settings.pgbouncer_image.clone(),
            run_id,
        )?)),
    }
}

/// The substrate of a tier with default settings.
pub fn for_tier(tier: Tier) -> Result<Arc<dyn Substrate>> {
    for_settings(&harness_config::settings::Settings {
        tier: tier.to_string(),
        ..Default::default()
    })
}

/// A host and port to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A component's place before and while it runs: the directory its files live in as the
/// component sees it (`dir`, what its configuration names), the directory the harness keeps its
/// artifacts in (`artifacts`: logs, rendered configuration), and the host name the other
/// components dial it at (`host`). Locally `dir` and `artifacts` are one directory and `host` is
/// loopback; in a container `dir` is a path inside it and `host` its network alias.
#[derive(Debug, Clone)]
pub struct Place {
    pub name: String,
    pub dir: PathBuf,
    pub artifacts: PathBuf,
    pub host: String,
    /// The address the component binds (loopback locally; every address in a container).
    pub bind: String,
    /// The addresses its clients come from, as a CIDR for pg_hba.conf.
    pub clients: String,
    /// Who owns the files placed here (the user the component runs as).
    pub owner: RunAs,
}

impl Place {
    /// A path inside the place, as the component sees it (for its configuration files).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// The place's own directory as a string (as the component sees it).
    pub fn dir_str(&self) -> Result<String> {
        self.dir
            .to_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("path {} is not UTF-8", self.dir.display()))
    }

    /// [`Place::path`] as a string, for configuration text and arguments.
    pub fn path_str(&self, rel: &str) -> Result<String> {
        let p = self.path(rel);
        p.to_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("path {} is not UTF-8", p.display()))
    }
}

/// A point in a component's log: what was written after it is what an assertion reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogCursor(pub u64);

/// Where components run (see the module comment). Implementations: [`local::Local`],
/// [`docker::Docker`], [`kube::Kube`].
#[async_trait]
pub trait Substrate: Send + Sync {
    fn tier(&self) -> Tier;

    /// The substrate one environment's components run on, given the names its configuration
    /// uses: the local substrate serves every environment as it is; the docker one gives each
    /// its own network, on which the database is the configured host (`names.db_host`).
    /// [`Substrate::release`] ends it.
    fn environment(
        self: Arc<Self>,
        names: &harness_config::EnvironmentShape,
    ) -> Result<Arc<dyn Substrate>>;

    /// Removes what [`Substrate::environment`] made beside the components (a network), once
    /// they are stopped.
    async fn release(&self);

    /// Where a system program (by its name in [`crate::tools::TOOLS`]) is for the component in
    /// `place`: on this machine locally, inside the component's image on docker.
    fn program(&self, place: &Place, tool: &str) -> Result<PathBuf>;

    /// Where a part of this checkout that the component's image carries is, as the component
    /// sees it (`airflow/dags`, `airflow/config`, `airflow/venv`: the image was built from
    /// them): None where the component runs from the checkout itself, and the caller uses (or
    /// installs) the checkout's own.
    fn shipped(&self, place: &Place, rel: &str) -> Result<Option<PathBuf>>;

    /// The host name the component `component` of `place` is dialled at by the other
    /// components: the place's own name for its main component (named like the place), and on a
    /// substrate where each component is a host of its own, `<component>.<place host>` for the
    /// others (Airflow's api-server, scheduler and worker in Airflow's place).
    fn component_host(&self, place: &Place, component: &str) -> String;

    /// Makes a directory of the harness's visible to `place`'s component (a Unix socket
    /// directory the harness connects through) before it starts; returns the path the component
    /// sees it at.
    fn share_dir(&self, place: &Place, dir: &Path) -> Result<String>;

    /// Creates the place of component `name`, keeping artifacts under `artifacts`.
    fn place(&self, name: &str, artifacts: &Path, owner: RunAs) -> Result<Place>;

    /// The port a component should listen on for `name` inside its place: a free loopback port
    /// locally, `default` (the program's well-known port) in a container of its own.
    fn listen_port(&self, place: &Place, name: &str, default: u16) -> Result<u16>;

    /// Places `spec.files`, starts the component and waits for `spec.readiness`; the error
    /// carries the last lines of its log.
    async fn start(&self, place: &Place, spec: Spec) -> Result<Box<dyn Running>>;

    /// Runs a short-lived tool inside the place (whether or not its component runs: kdb5_util
    /// before the KDC, kadmin.local beside it, initdb before PostgreSQL). A non-zero exit is an
    /// error naming the tool and carrying its stderr.
    async fn exec(&self, place: &Place, tool: Exec) -> Result<ExecOutput>;

    /// Places a file (mode as given, owned by the place's owner), e.g. a replacement keytab.
    async fn put_file(&self, place: &Place, file: File) -> Result<()>;

    /// Reads a file the component or a tool wrote in its place (an exported keytab).
    async fn read_file(&self, place: &Place, rel: &str) -> Result<Vec<u8>>;

    /// Stops everything this substrate started and has not stopped yet (Ctrl-C, the run's time
    /// limit); returns how many components it stopped.
    fn kill_all(&self) -> usize;
}

/// A running component (see [`Substrate::start`]). Dropping it stops it.
#[async_trait]
pub trait Running: Send + Sync {
    fn name(&self) -> &str;

    /// The named port as the harness dials it (locally 127.0.0.1:port; on docker the published
    /// port).
    fn endpoint(&self, port: &str) -> Result<Endpoint>;

    /// The named port as the other components dial it (locally the same; on docker
    /// `<alias>:<port>` on the run's network).
    fn peer_endpoint(&self, port: &str) -> Result<Endpoint>;

    /// The harness's copy of the component's log (an artifact).
    fn log_file(&self) -> PathBuf;

    /// The end of the log now.
    fn log_cursor(&self) -> LogCursor {
        LogCursor(
            std::fs::metadata(self.log_file())
                .map(|m| m.len())
                .unwrap_or(0),
        )
    }

    /// What the component logged after `cursor`.
    fn log_since(&self, cursor: LogCursor) -> String {
        let text = std::fs::read(self.log_file()).unwrap_or_default();
        let start = (cursor.0 as usize).min(text.len());
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    /// True while the component's main process runs.
    fn is_running(&mut self) -> bool;

    /// True while anything the component started is still alive (forked children included).
    fn remains(&self) -> bool;

    /// Freezes it without stopping it (locally SIGSTOP to its process group; a container would
    /// be paused): it keeps its sockets and answers nothing, as a hung server does.
    async fn pause(&self) -> Result<()>;

    /// Lets a paused component run on.
    async fn resume(&self) -> Result<()>;

    /// Stops it: a signal, its stop grace, then a kill; everything it started goes with it (a
    /// paused component too).
    async fn stop(&mut self);
}

impl dyn Running {
    /// Waits until a line matching `pattern` appears after `cursor`; returns the text since the
    /// cursor. The error names the component and shows its last lines.
    pub async fn wait_log(
        &self,
        cursor: LogCursor,
        pattern: &regex::Regex,
        timeout: Duration,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.log_since(cursor);
            if pattern.is_match(&text) {
                return Ok(text);
            }
            if Instant::now() > deadline {
                bail!(
                    "{}'s log ({}) has no line matching `{pattern}` within {timeout:?}; since then it says:\n{}",
                    self.name(),
                    self.log_file().display(),
                    crate::logs::last_lines(&text, 12)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Writes a placed file on the harness's side with its final mode from the start (a keytab is
/// never readable by others, not even briefly), owned by `owner` (uid, gid) when given.
pub(crate) fn write_placed(path: &Path, file: &File, owner: Option<(u32, u32)>) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let _ = std::fs::remove_file(path);
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(file.mode)
            .open(path)
            .with_context(|| format!("could not write {}", path.display()))?;
        f.write_all(&file.contents)?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(file.mode))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .with_context(|| format!("could not chown {} to {uid}:{gid}", path.display()))?;
    }
    Ok(())
}

/// What a substrate tells [`await_ready`] about a component that is starting.
#[async_trait]
pub(crate) trait Starting: Running {
    /// None while its main process runs; how it ended once it is gone.
    fn exited(&mut self) -> Result<Option<String>>;

    /// Whether the named port accepts a connection where the component listens.
    async fn port_answers(&self, port: &str) -> Result<bool>;
}

/// Waits until a started component is ready by its own signal (see
/// [`crate::component::Readiness`]), never a sleep; one that exits meanwhile, or is not ready in
/// `timeout`, is an error carrying the last lines of its log. Only what this start wrote from
/// `from` on counts: a restarted component's log holds the last start's ready line too.
pub(crate) async fn await_ready(
    c: &mut dyn Starting,
    r: &crate::component::Readiness,
    timeout: Duration,
    from: LogCursor,
) -> Result<()> {
    use crate::component::Readiness;
    let deadline = Instant::now() + timeout;
    let line_re = match r {
        Readiness::LogLine(re) => Some(regex::Regex::new(re)?),
        _ => None,
    };
    let mut delay = Duration::from_millis(5);
    loop {
        // A component that died will never become ready: say so now, with its last words.
        if let Some(how) = c.exited()? {
            bail!(
                "{} exited during start-up ({how}); last lines of {}:\n{}",
                c.name(),
                c.log_file().display(),
                crate::logs::tail(&c.log_file(), 15)
            );
        }
        let ready = match r {
            Readiness::None => true,
            Readiness::Port(name) => c.port_answers(name).await?,
            Readiness::LogLine(_) => {
                let text = c.log_since(from);
                line_re.as_ref().is_some_and(|re| re.is_match(&text))
            }
        };
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not become ready within {timeout:?} (waiting for {r:?}); last lines of {}:\n{}",
                c.name(),
                c.log_file().display(),
                crate::logs::tail(&c.log_file(), 15)
            );
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}
