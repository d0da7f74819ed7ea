//! Where components run: the seam every tier plugs into. A [`Substrate`] gives each component a
//! [`Place`] (its files, its host name), starts a [`component::Spec`](crate::component::Spec)
//! there and returns a [`Running`] handle with its endpoints (as the harness dials them and as the
//! other components dial them), its log with a cursor, and tools run inside it. The local
//! substrate (`local`) runs processes on loopback; a docker or Kubernetes substrate implements the
//! same two traits and nothing above this module changes.

pub mod local;
pub mod ports;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
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

/// The substrate of a tier. The docker and kind substrates plug in here.
pub fn for_tier(tier: Tier) -> Result<std::sync::Arc<dyn Substrate>> {
    match tier {
        Tier::Local => Ok(std::sync::Arc::new(local::Local)),
        other => bail!(
            "tier `{other}` cannot run on this machine yet: only the local tier is implemented (the docker and kind tiers are described in README.md)"
        ),
    }
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

/// Where components run (see the module comment). Implementations: [`local::Local`].
#[async_trait]
pub trait Substrate: Send + Sync {
    fn tier(&self) -> Tier;

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
    fn log_cursor(&self) -> LogCursor;

    /// What the component logged after `cursor`.
    fn log_since(&self, cursor: LogCursor) -> String;

    /// True while the component's main process runs.
    fn is_running(&mut self) -> bool;

    /// True while anything the component started is still alive (forked children included).
    fn remains(&self) -> bool;

    /// Stops it: a signal, its stop grace, then a kill; everything it started goes with it.
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
