//! The scenario world and the steps, grouped by the capability they exercise.

mod airflow;
mod apiserver;
mod config;
pub mod context;
mod fault;
mod kerberos;
mod pgbouncer;
mod render;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use harness::environment::{Component, Environment};
use harness::probe::gss::LoginOutcome;
use harness::secret::Secret;
use harness::stack::{PgbouncerOptions, Shape};
use harness::substrate::LogCursor;

/// Scenario outcomes, counted as they finish (the summary writer counts steps, not scenarios,
/// in a form the runner can read back).
static PASSED: AtomicUsize = AtomicUsize::new(0);
static FAILED: AtomicUsize = AtomicUsize::new(0);
static SKIPPED: AtomicUsize = AtomicUsize::new(0);

pub enum Outcome {
    Passed,
    Failed,
    Skipped,
}

pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

pub fn count(o: Outcome) {
    match o {
        Outcome::Passed => &PASSED,
        Outcome::Failed => &FAILED,
        Outcome::Skipped => &SKIPPED,
    }
    .fetch_add(1, Ordering::SeqCst);
}

pub fn tally() -> Tally {
    Tally {
        passed: PASSED.load(Ordering::SeqCst),
        failed: FAILED.load(Ordering::SeqCst),
        skipped: SKIPPED.load(Ordering::SeqCst),
    }
}

/// One scenario's state: its own directory, stack and observations.
#[derive(cucumber::World)]
#[world(init = Self::new)]
pub struct World {
    pub dir: Option<PathBuf>,
    /// The tier this scenario runs on and its substrate (chosen in `begin` from its tags).
    pub substrate: Option<(
        harness::substrate::Tier,
        std::sync::Arc<dyn harness::substrate::Substrate>,
    )>,
    pub shape: Shape,
    pub env: Option<Environment>,
    /// PostgreSQL's log cursor once the environment is up: assertions read only what follows.
    pub pg_log: LogCursor,
    pub login: Option<LoginOutcome>,
    pub connect: Option<Connect>,
    pub keytabs: HashMap<String, PathBuf>,
    pub klist: Option<String>,
    pub password: Option<Secret>,
    pub pgbouncer_opts: Option<PgbouncerOptions>,
    /// Why PgBouncer refused to start, when a scenario expects it to.
    pub pgbouncer_refused: Option<String>,
    /// Airflow on the Kerberized path (features/airflow.feature).
    pub airflow: airflow::AirflowState,
    /// The configuration files and lint result (features/config.feature).
    pub config: config::ConfigState,
    /// Pooled load, KDC faults and diagnoses (features/fault.feature).
    pub fault: fault::FaultState,
    /// The API server tier (features/apiserver.feature).
    pub kube: apiserver::KubeState,
}

/// What a password client saw when it connected.
pub struct Connect {
    pub client: Option<tokio_postgres::Client>,
    pub error: Option<String>,
    pub elapsed: Duration,
}

impl fmt::Debug for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("World")
            .field("dir", &self.dir)
            .field("realm", &self.shape.names.realm)
            .field("login", &self.login.as_ref().map(|l| l.diagnosis()))
            .field(
                "connect_error",
                &self.connect.as_ref().and_then(|c| c.error.clone()),
            )
            .finish()
    }
}

impl World {
    fn new() -> Self {
        World {
            dir: None,
            substrate: None,
            shape: context::get().shape.clone(),
            env: None,
            pg_log: LogCursor::default(),
            login: None,
            connect: None,
            keytabs: HashMap::new(),
            klist: None,
            password: None,
            pgbouncer_opts: None,
            pgbouncer_refused: None,
            airflow: Default::default(),
            config: Default::default(),
            fault: Default::default(),
            kube: Default::default(),
        }
    }

    pub async fn begin(&mut self, scenario: &str, tags: Vec<&String>) {
        let ctx = context::get();
        self.substrate = ctx.substrate_for(tags.iter().copied());
        let base = harness::run::slug(scenario);
        // Scenario outlines and names alike in their first 60 characters get distinct
        // directories. Concurrent scenarios claim a name by creating it (atomic), not by
        // checking first, so two of them can never share one.
        let mut n = 1;
        self.dir = loop {
            let name = if n == 1 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            let p = ctx.run.root.join(&name);
            match std::fs::create_dir(&p) {
                Ok(()) => {
                    // Which tier it ran on, for whoever reads the artifacts of an `auto` run.
                    if let Some((tier, _)) = &self.substrate {
                        let _ = std::fs::write(p.join("tier"), format!("{tier}\n"));
                    }
                    break harness::run::make_traversable(&p).ok().map(|_| p);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => {
                    eprintln!(
                        "could not create the scenario directory {}: {e}",
                        p.display()
                    );
                    break None;
                }
            }
        };
    }

    pub async fn finish(&mut self, scenario: &str, failed: bool) {
        let ctx = context::get();
        if failed {
            if let Err(e) = self.write_diagnosis(scenario).await {
                eprintln!("could not write the diagnosis for `{scenario}`: {e:#}");
            }
        }
        // Airflow before PgBouncer and PostgreSQL: a scheduler whose database vanishes hangs
        // instead of exiting. Passing scenarios already stopped it in their last step.
        if let Some(mut af) = self.airflow.deployment.take() {
            af.stop().await;
        }
        self.airflow.slot = None;
        if let Some(mut s) = self.env.take() {
            s.down().await;
        }
        self.kube.stop().await;
        if let Some(dir) = &self.dir {
            harness::environment::scrub(dir, ctx.keep);
        }
    }

    /// On failure: what a person needs to see first, in one file, and how to rerun.
    async fn write_diagnosis(&mut self, scenario: &str) -> Result<()> {
        let Some(dir) = self.dir.clone() else {
            return Ok(());
        };
        let mut text = format!("scenario: {scenario}\n");
        if let Some(l) = &self.login {
            text += &format!("direct GSS login: {}\n", l.diagnosis());
        }
        if let Some(c) = &self.connect {
            text += &format!(
                "client through PgBouncer: {} after {:?}\n",
                c.error.as_deref().unwrap_or("connected"),
                c.elapsed
            );
        }
        if let Some(env) = &self.env {
            text += &env.diagnosis().await;
        }
        text += &format!(
            "\nrerun just this scenario: cargo xtask e2e --name '^{}$'\n",
            regex::escape(scenario)
        );
        std::fs::write(dir.join("diagnosis.txt"), harness::redact::redact(&text))?;
        eprintln!("diagnosis: {}", dir.join("diagnosis.txt").display());
        Ok(())
    }

    /// The scenario text with the configuration's names, and `{postgres_host}`: the host
    /// PgBouncer dials PostgreSQL at on this tier (its `[databases]` host).
    pub fn x(&self, text: &str) -> String {
        let mut text = self.shape.expand(text);
        if let Some(name) = &self.fault.reverse_name {
            text = text.replace("{postgres_reverse_name}", name);
        }
        // The names PgBouncer dials them at (loopback locally, their host names on docker).
        for (placeholder, c) in [
            ("{postgres_host}", Component::Postgres),
            ("{kdc_host}", Component::Kdc),
        ] {
            if let Some(at) = self.env.as_ref().and_then(|e| e.peer_endpoint(c).ok()) {
                text = text.replace(placeholder, &at.host);
            }
        }
        text
    }

    pub fn dir(&self) -> Result<&PathBuf> {
        self.dir
            .as_ref()
            .context("the scenario has no directory (the before hook did not run)")
    }

    /// Where this scenario's components run (the tier its tags and the run allow).
    pub fn substrate(&self) -> Result<std::sync::Arc<dyn harness::substrate::Substrate>> {
        self.substrate
            .as_ref()
            .map(|(_, s)| s.clone())
            .context("the scenario runs on none of the run's tiers")
    }

    pub fn env(&self) -> Result<&Environment> {
        self.env.as_ref().context(
            "no environment: the scenario needs `Given the Kerberos reference environment` first",
        )
    }

    pub fn env_mut(&mut self) -> Result<&mut Environment> {
        self.env.as_mut().context(
            "no environment: the scenario needs `Given the Kerberos reference environment` first",
        )
    }

    /// Brings the environment up for `shape` on the run's substrate, and remembers where
    /// PostgreSQL's log stood.
    pub async fn up(&mut self, shape: Shape) -> Result<()> {
        let dir = self.dir()?.clone();
        let env = within(
            "starting the realm and PostgreSQL",
            Duration::from_secs(90),
            Environment::up(self.substrate()?, &dir, shape),
        )
        .await?;
        self.pg_log = env.log_cursor(Component::Postgres);
        self.env = Some(env);
        Ok(())
    }

    /// Waits for `needle` to appear in the PostgreSQL log after the scenario's cursor.
    pub async fn pg_log_contains(&self, needle: &str) -> Result<String> {
        self.env()?
            .wait_log(
                Component::Postgres,
                self.pg_log,
                needle,
                Duration::from_secs(2),
            )
            .await
    }
}

/// Bounds a step: cucumber has no step timeout of its own.
pub async fn within<T>(
    what: &str,
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        // cucumber prints only the outermost message; the chain is the diagnosis.
        Ok(r) => r.map_err(|e| anyhow::anyhow!("{e:#}")),
        Err(_) => bail!("{what} did not finish within {limit:?}"),
    }
}
