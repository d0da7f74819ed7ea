//! What to run, and nothing about where: a component spec names a program (local tier) or an
//! image (docker, Kubernetes), its arguments and environment, the ports it listens on by name,
//! the files it needs placed, the user it runs as and how to tell it is ready. A
//! [`Substrate`](crate::substrate::Substrate) turns a spec into a running component.

use std::path::PathBuf;
use std::time::Duration;

/// What runs: a program on this machine or an image. A substrate refuses the kind it cannot run
/// (the local one runs programs, a container one images), naming the component.
#[derive(Debug, Clone)]
pub enum Source {
    Program(PathBuf),
    /// `repository:tag`, built or pulled by the substrate.
    Image(String),
}

/// How the harness knows a started component is ready to serve, by the component's own signal
/// (never a sleep).
#[derive(Debug, Clone)]
pub enum Readiness {
    /// A TCP connect to the named port (see [`Spec::ports`]) succeeds.
    Port(String),
    /// A line matching this regex appears in the component's log.
    LogLine(String),
    /// Started is enough (the caller probes readiness itself).
    None,
}

/// Which system user runs the process. PostgreSQL refuses to run as root, so when the harness
/// runs as root, database-side daemons run as the Debian `postgres` user; in an image it is the
/// image's service user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAs {
    Invoker,
    ServiceUser,
}

/// A port the component listens on inside its place, by name (`kdc`, `postgres`, `pgbouncer`):
/// the harness and the other components ask the running component for its endpoint by this
/// name, never by number.
#[derive(Debug, Clone)]
pub struct NamedPort {
    pub name: String,
    pub port: u16,
}

/// A file the component reads, placed before it starts: `path` is relative to the component's
/// place (see [`crate::substrate::Place::path`]).
#[derive(Clone)]
pub struct File {
    pub path: String,
    pub contents: Vec<u8>,
    /// 0o600 for keytabs, users.txt and keys; 0o644 for configuration.
    pub mode: u32,
    /// Mounted read-only where the substrate mounts files (a container), as the chart mounts a
    /// pod's configuration and an injector its credentials.
    pub read_only: bool,
}

impl File {
    pub fn new(path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> File {
        File {
            path: path.into(),
            contents: contents.into(),
            mode,
            read_only: false,
        }
    }

    /// The same file, mounted read-only (see [`File::read_only`]).
    pub fn mounted_read_only(mut self) -> File {
        self.read_only = true;
        self
    }
}

impl std::fmt::Debug for File {
    // The contents may be a keytab or a password file: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "File({}, {:o}, {} bytes)",
            self.path,
            self.mode,
            self.contents.len()
        )
    }
}

#[derive(Debug, Clone)]
pub struct Spec {
    /// Short name used for log files, host names and messages (`kdc`, `postgres`, ...).
    pub name: String,
    pub source: Source,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Variables removed from the inherited environment (e.g. a stray `KRB5CCNAME`).
    pub env_remove: Vec<String>,
    /// The working directory, relative to the component's place; None is the place itself.
    pub cwd: Option<PathBuf>,
    pub ports: Vec<NamedPort>,
    pub files: Vec<File>,
    pub run_as: RunAs,
    pub readiness: Readiness,
    pub ready_timeout: Duration,
    /// How long a SIGTERM gets before SIGKILL at teardown.
    pub stop_grace: Duration,
    /// CPU priority (nice) for processes off the critical path; None is the default.
    pub nice: Option<i32>,
}

impl Spec {
    pub fn new(name: &str, program: impl Into<PathBuf>) -> Self {
        Self::of(name, Source::Program(program.into()))
    }

    pub fn of(name: &str, source: Source) -> Self {
        Self {
            name: name.to_string(),
            source,
            args: Vec::new(),
            env: Vec::new(),
            env_remove: Vec::new(),
            cwd: None,
            ports: Vec::new(),
            files: Vec::new(),
            run_as: RunAs::Invoker,
            readiness: Readiness::None,
            ready_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(5),
            nice: None,
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

    pub fn port(mut self, name: &str, port: u16) -> Self {
        self.ports.push(NamedPort {
            name: name.into(),
            port,
        });
        self
    }

    pub fn file(mut self, path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        self.files.push(File::new(path, contents, mode));
        self
    }

    /// A file mounted read-only (configuration, injected credentials).
    pub fn read_only_file(mut self, path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        self.files
            .push(File::new(path, contents, mode).mounted_read_only());
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

/// A short-lived command run inside a component's place (kadmin.local next to the KDC database,
/// psql next to the server) or, with no component, wherever the substrate runs its tools.
#[derive(Debug, Clone)]
pub struct Exec {
    /// What it does, for the error message ("creating the KDC database").
    pub what: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    pub run_as: RunAs,
}

impl Exec {
    pub fn new(what: &str, program: impl Into<PathBuf>) -> Exec {
        Exec {
            what: what.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            run_as: RunAs::Invoker,
        }
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn envs(mut self, vars: &[(String, String)]) -> Self {
        self.env.extend(vars.iter().cloned());
        self
    }

    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    pub fn run_as(mut self, who: RunAs) -> Self {
        self.run_as = who;
        self
    }
}

/// What a tool printed. `status` is its exit code (None: killed by a signal).
#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}
