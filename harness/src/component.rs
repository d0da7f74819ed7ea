//! What to run, and nothing about where: a component spec is a program, its arguments,
//! environment and readiness check. A substrate turns specs into running things.

use std::path::PathBuf;
use std::time::Duration;

/// How the harness knows a started component is ready to serve.
#[derive(Debug, Clone)]
pub enum Readiness {
    /// A TCP connect to 127.0.0.1:port succeeds.
    TcpPort(u16),
    /// A line matching this regex appears in the component's log.
    LogLine(String),
    /// The HTTP endpoint answers (any status below 500).
    Http(String),
    /// Started is enough (the caller probes readiness itself).
    None,
}

/// Which system user runs the process. PostgreSQL refuses to run as root, so when the harness
/// runs as root, database-side daemons run as the Debian `postgres` user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAs {
    Invoker,
    ServiceUser,
}

#[derive(Debug, Clone)]
pub struct Spec {
    /// Short name used for log files and messages (`kdc`, `postgres`, `pgbouncer`, ...).
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Variables removed from the inherited environment (e.g. a stray `KRB5CCNAME`).
    pub env_remove: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub run_as: RunAs,
    pub readiness: Readiness,
    pub ready_timeout: Duration,
    /// How long a SIGTERM gets before SIGKILL at teardown.
    pub stop_grace: Duration,
}

impl Spec {
    pub fn new(name: &str, program: impl Into<PathBuf>) -> Self {
        Self {
            name: name.to_string(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            cwd: None,
            run_as: RunAs::Invoker,
            readiness: Readiness::None,
            ready_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(5),
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn envs(mut self, vars: &[(String, String)]) -> Self {
        self.env.extend(vars.iter().cloned());
        self
    }

    pub fn ready_when(mut self, r: Readiness, timeout: Duration) -> Self {
        self.readiness = r;
        self.ready_timeout = timeout;
        self
    }

    pub fn run_as(mut self, who: RunAs) -> Self {
        self.run_as = who;
        self
    }
}
