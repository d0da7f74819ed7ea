//! Airflow as a component of the stack, as the platform runs it with a Kerberized database:
//! CeleryExecutor with a Redis broker, the metadata connection and the Celery result backend both
//! pointing at PgBouncer (password, users.txt) and never at PostgreSQL, which only PgBouncer
//! reaches, with GSSAPI. Every Airflow process is a component started by the stack's substrate,
//! so Ctrl-C and `kill_all` stop it; it is stopped before PgBouncer and PostgreSQL.

pub mod broker;
pub mod browser;
pub mod diagnose;
mod forkserver;
pub mod health;
mod rest;
mod settings;
pub mod template;
pub mod venv;
mod version;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::component::{Readiness, Spec};
use crate::environment::Environment;
use crate::logs::tail;
use crate::secret::Secret;
use crate::substrate::{Place, Running, Substrate};

use broker::Redis;
use health::Health;
pub use version::Version;

/// How many Airflow deployments run at once (`n`, the run's `airflow_concurrency`): each is five
/// Python processes importing Airflow, and on two cores more than two at a time only makes all
/// of them slower. The first caller's `n` sizes the run's slots.
pub async fn slot(n: usize) -> tokio::sync::OwnedSemaphorePermit {
    static SLOTS: OnceLock<Arc<tokio::sync::Semaphore>> = OnceLock::new();
    let n = n.max(1);
    let sem = SLOTS
        .get_or_init(|| Arc::new(tokio::sync::Semaphore::new(n)))
        .clone();
    sem.acquire_owned()
        .await
        .expect("the Airflow semaphore is never closed")
}

/// How Airflow is run, from the run's settings (`harness_config::settings`, parsed at the edge).
#[derive(Debug, Clone)]
pub struct Knobs {
    /// Restore the cached migrated schema when there is one (false: migrate, as on a cold cache).
    pub use_template: bool,
    /// Fork the components from one process that imported Airflow once.
    pub forkserver: bool,
    /// Start the web servers through airflow/config/harness_apiserver.py and
    /// harness_webserver.py rather than exactly as Airflow ships them.
    pub fast_api: bool,
    /// The fork server's niceness while Airflow 3's api-server starts beside it (0-19).
    pub nice: u8,
    /// Install nothing (uv, the venv) from the network.
    pub offline: bool,
}

impl From<&harness_config::settings::Settings> for Knobs {
    fn from(s: &harness_config::settings::Settings) -> Knobs {
        Knobs {
            use_template: s.airflow_template,
            forkserver: s.airflow_forkserver,
            fast_api: s.airflow_fast_api,
            nice: s.airflow_nice,
            offline: s.offline,
        }
    }
}

impl Default for Knobs {
    fn default() -> Knobs {
        Knobs::from(&harness_config::settings::Settings::default())
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub version: Version,
    /// The password Airflow's metadata connection sends to PgBouncer; None sends the users.txt
    /// one (a working deployment).
    pub metadata_password: Option<Secret>,
    pub knobs: Knobs,
}

impl Options {
    pub fn new(version: Version, knobs: Knobs) -> Options {
        Options {
            version,
            metadata_password: None,
            knobs,
        }
    }
}

/// Where the metadata schema of this deployment came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// `airflow db migrate`, through PgBouncer.
    Migrated,
    /// The cached dump of an earlier migration, restored into PostgreSQL.
    Template,
}

pub struct Airflow {
    pub version: Version,
    pub dir: PathBuf,
    /// The web server as the harness (and its browser) reaches it.
    pub base_url: String,
    /// The web server's component name (`api-server`, `webserver`).
    web: &'static str,
    /// The port it listens on in its place.
    api_port: u16,
    pub admin_user: String,
    pub admin_password: Secret,
    pub schema: Schema,
    /// Phase durations in seconds, for the bench and the artifacts.
    pub timings: Vec<(String, f64)>,
    principal: String,
    pgbouncer_log: PathBuf,
    pgbouncer_offset: u64,
    python: PathBuf,
    env: Vec<(String, String)>,
    knobs: Knobs,
    redis: Option<Redis>,
    /// The fork server's socket, when components are forked from it (see
    /// airflow/config/harness_forkserver.py).
    forkserver_socket: Option<PathBuf>,
    forkserver: Option<Box<dyn Running>>,
    _forkserver_dir: Option<crate::scratch::Scratch>,
    components: Vec<Box<dyn Running>>,
    /// Airflow 2's admin user is created by a command running beside the components.
    create_admin: Option<Box<dyn Running>>,
    substrate: Arc<dyn Substrate>,
    place: Place,
    started: Instant,
}

/// What no Airflow process inherits from the invoker's environment (the deployment's own values
/// are set again from `Airflow::env`). Airflow logs in with a password only; Kerberos is
/// PgBouncer's business, and an inherited ticket cache or keytab must not make the path look
/// Kerberized when it is not.
const NOT_INHERITED: &[&str] = &[
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "AIRFLOW_CONFIG",
    "KRB5CCNAME",
    "KRB5_CONFIG",
    "KRB5_CLIENT_KTNAME",
    "KRB5_KTNAME",
];

/// A SQLAlchemy URL for `target`: its own host, port, user, password and database (user-info
/// and path percent-encoded by harness-config's encoder: the user is a principal with an `@`).
fn pg_url(scheme: &str, target: &crate::probe::sql::Target) -> String {
    format!(
        "{scheme}://{}:{}@{}:{}/{}",
        harness_config::render::airflow::encode(&target.user),
        harness_config::render::airflow::encode(&target.password),
        target.host,
        target.port,
        harness_config::render::airflow::encode(&target.database)
    )
}

impl Airflow {
    /// Installs (once) and starts Airflow against the stack's PgBouncer: schema, broker, then all
    /// components at once. Returns as soon as they are launched; [`Airflow::wait_healthy`] waits.
    pub async fn start(env: &Environment, opts: &Options, dir: &Path) -> Result<Airflow> {
        let started = Instant::now();
        let stack = env.stack();
        let version = opts.version;
        let pgb = stack
            .pgbouncer
            .as_ref()
            .context("PgBouncer is not running: Airflow reaches the database only through PgBouncer, start it first")?;
        let pgbouncer_log = pgb.log();
        let pgbouncer_offset = pgb.log_cursor().0;
        let substrate = stack.substrate.clone();
        // A place per version: on docker its image is that version's (`airflow-<pin>`).
        let place = substrate.place(
            &format!("airflow-{}", version.pin()),
            dir,
            crate::component::RunAs::Invoker,
        )?;
        // Where the deployment's code is: in its image, or this checkout's (and a venv made
        // from the same lock file).
        let checkout = |rel: &str| -> Result<String> {
            let p = substrate
                .shipped(&place, rel)?
                .unwrap_or_else(|| crate::run::workspace_root().join(rel));
            venv::path_str(&p).map(str::to_string)
        };
        let shipped_venv = substrate.shipped(&place, "airflow/venv")?;

        let mut timings = Vec::new();
        let t = Instant::now();
        let redis_dir = dir.join("redis");
        let (venv, redis) = tokio::join!(
            async {
                match &shipped_venv {
                    Some(v) => Ok(v.clone()),
                    None => venv::ensure(version, opts.knobs.offline).await,
                }
            },
            Redis::start(substrate.as_ref(), &redis_dir)
        );
        let venv = venv?;
        let redis = redis.context("starting the Celery broker (redis-server)")?;
        timings.push(("venv_and_broker_s".to_string(), t.elapsed().as_secs_f64()));

        let port = substrate.listen_port(&place, "api", 8080)?;
        let web = version.web_component();
        // As the other components dial the web server (the worker's task runner calls Airflow
        // 3's execution API there); the harness and the browser use its published endpoint.
        let peer_url = format!("http://{}:{port}", substrate.component_host(&place, web));
        let admin_user = "admin".to_string();
        let admin_password = Secret::generate();
        let mut metadata = stack.metadata_target(
            opts.metadata_password
                .as_ref()
                .map(Secret::expose)
                .unwrap_or(stack.client_password.expose()),
        )?;
        // The result backend is a connection of its own: its user, password and database.
        let mut rb = stack.result_backend_target(stack.client_password.expose())?;
        // Airflow dials PgBouncer from its own place: the harness's endpoint is not Airflow's.
        let pgbouncer_peer = pgb.peer_endpoint()?;
        for t in [&mut metadata, &mut rb] {
            t.host = pgbouncer_peer.host.clone();
            t.port = pgbouncer_peer.port;
        }
        let passwords_rel = "secrets/simple_auth_manager_passwords.json";
        if version == Version::Airflow3 {
            substrate
                .put_file(
                    &place,
                    crate::component::File::new(
                        passwords_rel,
                        json!({ &admin_user: admin_password.expose() }).to_string(),
                        0o600,
                    ),
                )
                .await?;
        }
        let env = settings::environment(&settings::Inputs {
            version,
            dir: &place.dir,
            dags: &checkout("airflow/dags")?,
            python_path: &checkout("airflow/config")?,
            metadata: &metadata,
            result_backend: &rb,
            broker_url: redis.url(),
            bind: &place.bind,
            api_port: port,
            base_url: &peer_url,
            admin_user: &admin_user,
            passwords_file: &place.path(passwords_rel),
            log_server_ports: (
                substrate.listen_port(&place, "worker-logs", 8793)?,
                substrate.listen_port(&place, "triggerer-logs", 8794)?,
            ),
        });
        let mut af = Airflow {
            version,
            dir: dir.to_path_buf(),
            // Until the web server runs and its endpoint is known.
            base_url: peer_url,
            web,
            api_port: port,
            admin_user,
            admin_password,
            schema: Schema::Migrated,
            timings,
            principal: metadata.user.clone(),
            pgbouncer_log,
            pgbouncer_offset,
            python: venv.join("bin/python"),
            env,
            knobs: opts.knobs.clone(),
            redis: Some(redis),
            components: Vec::new(),
            create_admin: None,
            forkserver_socket: None,
            forkserver: None,
            _forkserver_dir: None,
            substrate,
            place,
            started,
        };

        let t = Instant::now();
        let cached = template::path(version, af.substrate.tier())?;
        let warm = opts.knobs.use_template && cached.exists();
        // Airflow 3's api-server is the longest start-up: importing Airflow, then building its
        // FastAPI app (about 5 s of CPU as shipped, under 2 s through harness_apiserver.py),
        // without touching the database. With the fork server it runs
        // as its own process from the start, on the core the fork server's single-threaded import
        // leaves idle, instead of being forked once that import is done. It is told not to check
        // the schema at start-up (the harness restores or migrates it right now); until the
        // tables exist its health report says "unhealthy", and the wait below polls on.
        // The fork server makes every component a child of one process on one host. Where
        // Airflow comes in its image, each component is a container of its own instead, as
        // the platform runs them.
        let forked = opts.knobs.forkserver && shipped_venv.is_none();
        let early_api = version == Version::Airflow3 && forked;
        if early_api {
            let spec = af
                .spec("api-server", &["api-server"])
                .env("AIRFLOW__DATABASE__CHECK_MIGRATIONS", "False");
            let p = af.substrate.start(&af.place, spec).await?;
            af.components.push(p);
        }
        // Airflow 2's webserver, as gunicorn run directly (airflow/config/harness_webserver.py),
        // is likewise the last to answer, so it does not wait for the fork server either. Its
        // app creation writes FAB's tables, so it waits for the schema: right after the restore
        // (warm), or after the migration (cold, started with the others below).
        let early_web = version == Version::Airflow2 && forked && opts.knobs.fast_api;
        let mut web = None;
        if forked {
            // Airflow imports once, in the fork server, while the schema is restored.
            let web_spec = af.spec("webserver", &[]);
            let (substrate, place) = (af.substrate.clone(), af.place.clone());
            let (fs, restored) = tokio::join!(
                forkserver::launch(
                    substrate.as_ref(),
                    &place,
                    &af.python,
                    &af.env,
                    (early_api || early_web).then_some(opts.knobs.nice)
                ),
                async {
                    if warm {
                        template::restore(stack, &cached).await?;
                        if early_web {
                            web = Some(substrate.start(&place, web_spec).await?);
                        }
                    }
                    Ok::<(), anyhow::Error>(())
                }
            );
            af.components.extend(web.take());
            restored?;
            let (process, tmp, socket) = fs?;
            af.forkserver = Some(process);
            af._forkserver_dir = Some(tmp);
            af.forkserver_socket = Some(socket);
        } else if warm {
            template::restore(stack, &cached).await?;
        }
        if warm {
            af.schema = Schema::Template;
        } else {
            af.run_once(
                "migrate",
                &["db", "migrate"],
                Duration::from_secs(180),
                r"(?i)database migrat\w* done",
            )
            .await?;
            if version == Version::Airflow2 {
                // Airflow 2's webserver otherwise creates FAB's roles and permissions (hundreds of
                // rows) on every start; in the cached schema, a warm start finds them done.
                af.run_once(
                    "sync-perm",
                    &["sync-perm"],
                    Duration::from_secs(180),
                    r"Updating actions and resources for all existing roles",
                )
                .await?;
            }
            template::save(stack, &cached).await?;
        }
        af.timings.push((
            "schema_and_preload_s".to_string(),
            t.elapsed().as_secs_f64(),
        ));

        let worker = [
            "celery",
            "worker",
            "--without-mingle",
            "--without-gossip",
            "--concurrency",
            "1",
        ];
        let components: Vec<(&str, Vec<&str>)> = match version {
            Version::Airflow3 => vec![
                ("api-server", vec!["api-server"]),
                ("scheduler", vec!["scheduler"]),
                ("dag-processor", vec!["dag-processor"]),
                ("triggerer", vec!["triggerer"]),
                ("celery-worker", worker.to_vec()),
            ],
            Version::Airflow2 => vec![
                ("webserver", vec!["webserver"]),
                ("scheduler", vec!["scheduler"]),
                ("triggerer", vec!["triggerer"]),
                ("celery-worker", worker.to_vec()),
            ],
        };
        let web_started = af.components.iter().any(|p| p.name() == "webserver");
        for (name, args) in components {
            if (early_api && name == "api-server") || (web_started && name == "webserver") {
                continue;
            }
            let mut spec = af.spec(name, &args);
            if name == "celery-worker" {
                if af.forkserver_socket.is_some() {
                    spec = spec.env("HARNESS_FORKSERVER_NICE", "10");
                } else {
                    background(&mut spec);
                }
            }
            let p = af.substrate.start(&af.place, spec).await?;
            af.components.push(p);
        }
        if version == Version::Airflow2 {
            // The password stays out of every command line (and so out of `ps`): it travels in
            // the environment of this one process. The health wait also waits for this user,
            // so it runs at normal priority.
            let mut spec = if af.forkserver_socket.is_some() {
                let user = af.admin_user.clone();
                let args = [
                    "users",
                    "create",
                    "--role",
                    "Admin",
                    "--username",
                    &user,
                    "--password",
                    "@env:HARNESS_ADMIN_PASSWORD",
                    "--firstname",
                    "Harness",
                    "--lastname",
                    "Admin",
                    "--email",
                    "admin@example.test",
                ];
                af.spec("create-admin", &args)
            } else {
                let code = "import os, sys\nsys.argv = ['airflow', 'users', 'create', '--role', 'Admin', '--username', os.environ['HARNESS_ADMIN_USER'], '--password', os.environ['HARNESS_ADMIN_PASSWORD'], '--firstname', 'Harness', '--lastname', 'Admin', '--email', 'admin@example.test']\nfrom airflow.__main__ import main\nmain()\n";
                let mut spec = af.spec("create-admin", &[]);
                spec.args = vec!["-c".into(), code.into()];
                spec
            };
            spec = spec
                .env("HARNESS_ADMIN_USER", af.admin_user.clone())
                .env("HARNESS_ADMIN_PASSWORD", af.admin_password.expose());
            af.create_admin = Some(af.substrate.start(&af.place, spec).await?);
        }
        let web = af
            .components
            .iter()
            .find(|p| p.name() == af.web)
            .with_context(|| format!("internal: Airflow's {} was not started", af.web))?;
        af.base_url = format!("http://{}", web.endpoint("api")?);
        Ok(af)
    }

    fn spec(&self, name: &str, args: &[&str]) -> Spec {
        let mut args = args.to_vec();
        let launcher: Vec<String> = match &self.forkserver_socket {
            // Airflow 3's api-server is never forked (it starts beside the fork server) and
            // starts through airflow/config/harness_apiserver.py, which defers FastAPI's
            // validator compilation (E2E_AIRFLOW_FAST_API=0 turns that off).
            _ if name == "api-server" => vec!["-m".into(), "harness_apiserver".into()],
            // Airflow 2's webserver: gunicorn in-process, the same app and settings (see
            // airflow/config/harness_webserver.py); E2E_AIRFLOW_FAST_API=0 forks `airflow webserver`.
            _ if name == "webserver" && self.knobs.fast_api => {
                args.clear();
                vec!["-m".into(), "harness_webserver".into()]
            }
            Some(socket) => vec![
                "-m".into(),
                "harness_forkserver".into(),
                "run".into(),
                socket.display().to_string(),
            ],
            None => vec!["-m".into(), "airflow".into()],
        };
        let mut spec = Spec::new(name, &self.python)
            .args(launcher)
            .args(args.iter().copied())
            .envs(&self.env)
            .ready_when(Readiness::None, Duration::from_secs(1));
        if name == self.web {
            spec = spec.port("api", self.api_port);
        }
        spec.env_remove = NOT_INHERITED.iter().map(|s| s.to_string()).collect();
        spec.stop_grace = Duration::from_secs(5);
        spec
    }

    /// What PgBouncer's log says went wrong since Airflow started, if anything.
    pub fn finding(&self) -> Option<diagnose::Finding> {
        diagnose::pgbouncer(&self.pgbouncer_log, self.pgbouncer_offset, &self.principal)
    }

    /// Runs one Airflow command to completion, watching PgBouncer's log so a login failure ends
    /// it at once instead of after the command's own retries.
    async fn run_once(
        &mut self,
        name: &str,
        args: &[&str],
        limit: Duration,
        success: &str,
    ) -> Result<()> {
        let log = self.dir.join(format!("{name}.log"));
        let mut p = self
            .substrate
            .start(&self.place, self.spec(name, args))
            .await?;
        let ok = regex::Regex::new(success)?;
        let deadline = Instant::now() + limit;
        loop {
            if !p.is_running() {
                p.stop().await;
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if ok.is_match(&text) {
                    return Ok(());
                }
                bail!(
                    "{}",
                    self.failure(&format!("`airflow {}` failed", args.join(" ")), &log)
                );
            }
            if self.finding().is_some() {
                p.stop().await;
                bail!(
                    "{}",
                    self.failure(
                        &format!(
                            "`airflow {}` cannot reach the metadata database",
                            args.join(" ")
                        ),
                        &log
                    )
                );
            }
            if Instant::now() > deadline {
                p.stop().await;
                bail!(
                    "{}",
                    self.failure(
                        &format!(
                            "`airflow {}` did not finish within {limit:?}",
                            args.join(" ")
                        ),
                        &log
                    )
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A failure message: PgBouncer's diagnosis when it has one (the cause), else the log of the
    /// Airflow process that failed (the symptom).
    fn failure(&self, what: &str, log: &Path) -> String {
        match self.finding() {
            Some(f) => format!("{what}: {f}"),
            None => format!(
                "{what}; last lines of {}:\n{}",
                log.display(),
                tail(log, 15)
            ),
        }
    }

    pub fn health_url(&self) -> String {
        format!("{}{}", self.base_url, self.version.health_path())
    }

    /// Polls the health endpoint until every component is healthy. A component that exited, a
    /// login failure in PgBouncer's log, or the broker dying ends the wait at once.
    pub async fn wait_healthy(&mut self, limit: Duration) -> Result<Health> {
        let http = crate::http::builder()
            .timeout(Duration::from_secs(3))
            .build()?;
        let deadline = Instant::now() + limit;
        let url = self.health_url();
        let mut last: Option<Health> = None;
        let mut admin_done = self.create_admin.is_none();
        loop {
            if let Some(f) = self.finding() {
                let health = last
                    .as_ref()
                    .map(|h| format!(" (health: {})", h.summary()))
                    .unwrap_or_default();
                bail!("Airflow cannot reach its metadata database through PgBouncer{health}: {f}");
            }
            if let Some(name) = self.exited().first() {
                let log = self.component_log(name);
                bail!(
                    "{}",
                    self.failure(&format!("Airflow's {name} exited during start-up"), &log)
                );
            }
            if !self.redis.as_mut().is_some_and(|r| r.is_running()) {
                bail!(
                    "the Celery broker (redis-server) exited; see {}",
                    self.dir.join("redis/redis.log").display()
                );
            }
            if let Some(p) = self.create_admin.as_mut().filter(|_| !admin_done) {
                if !p.is_running() {
                    let log = p.log_file();
                    if !std::fs::read_to_string(&log)
                        .unwrap_or_default()
                        .contains("created with role")
                    {
                        bail!(
                            "{}",
                            self.failure("creating Airflow 2's admin user failed", &log)
                        );
                    }
                    admin_done = true;
                }
            }
            if let Ok(resp) = http.get(&url).send().await {
                if let Ok(body) = resp.text().await {
                    if let Ok(h) = health::parse(&body) {
                        if last.is_none() {
                            // Which is later, the API answering or the components' heartbeats.
                            self.timings.push((
                                "api_answers_s".to_string(),
                                self.started.elapsed().as_secs_f64(),
                            ));
                        }
                        if h.all_healthy(self.version) && admin_done {
                            self.timings.push((
                                "to_healthy_s".to_string(),
                                self.started.elapsed().as_secs_f64(),
                            ));
                            return Ok(h);
                        }
                        last = Some(h);
                    }
                }
            }
            if Instant::now() > deadline {
                let state = match &last {
                    Some(h) => format!(
                        "not healthy: {}; health says {}",
                        h.not_healthy(self.version).join(", "),
                        h.summary()
                    ),
                    None => format!("{url} never answered"),
                };
                bail!(
                    "Airflow {} did not become healthy within {limit:?} ({state}); component logs are in {}",
                    self.version.pin(),
                    self.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn health(&self) -> Result<Health> {
        let body = crate::http::builder()
            .timeout(Duration::from_secs(5))
            .build()?
            .get(self.health_url())
            .send()
            .await
            .with_context(|| format!("GET {}", self.health_url()))?
            .text()
            .await?;
        health::parse(&body)
    }

    /// The components whose process has exited.
    pub fn exited(&mut self) -> Vec<String> {
        self.components
            .iter_mut()
            .filter_map(|p| (!p.is_running()).then(|| p.name().to_string()))
            .collect()
    }

    pub fn component_log(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    /// Why the scheduler failed a task before a worker got it, if its log says.
    pub fn executor_failure(&self) -> Option<String> {
        diagnose::scheduler(&self.component_log("scheduler"))
    }

    /// Stops every Airflow process (a signal to each at once, a grace period, a kill), then the
    /// broker, and returns the components of which something was still alive 5 s later (empty
    /// when nothing was left behind). Call it before stopping PgBouncer and PostgreSQL.
    pub async fn stop(&mut self) -> Vec<String> {
        let mut all: Vec<Box<dyn Running>> = std::mem::take(&mut self.components);
        all.extend(self.create_admin.take());
        futures::future::join_all(all.iter_mut().map(|p| p.stop())).await;
        // A forked component is the fork server's child, not the launcher it was started as:
        // it is gone only once the component itself has finished dying.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && all.iter().any(|p| p.remains()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let left = all
            .iter()
            .filter(|p| p.remains())
            .map(|p| p.name().to_string())
            .collect();
        if let Some(mut f) = self.forkserver.take() {
            f.stop().await;
        }
        if let Some(mut r) = self.redis.take() {
            r.stop().await;
        }
        left
    }

    fn check_alive(&mut self) -> Result<()> {
        let dead = self.exited();
        if let Some(name) = dead.first() {
            let log = self.component_log(name);
            bail!(
                "{}",
                self.failure(&format!("Airflow's {name} exited"), &log)
            );
        }
        Ok(())
    }
}

impl Drop for Airflow {
    /// The secrets Airflow was started with (the admin password file, the broker's config) are
    /// not artifacts: gone with the deployment, also when a failed scenario drops it.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.dir.join("secrets"));
        let _ = std::fs::remove_file(self.dir.join("redis/redis.conf"));
    }
}

/// Runs a process that is off the path to a healthy deployment (the Celery worker, Airflow 2's
/// user creation) at a lower CPU priority: on two cores, five Airflow processes importing at once
/// otherwise delay the ones the health report waits for.
fn background(spec: &mut Spec) {
    spec.nice = Some(10);
}

/// From nothing to every Airflow component healthy over HTTP: realm, PostgreSQL, PgBouncer,
/// broker, schema (cached or migrated), the Airflow processes. What `cargo xtask bench` times.
pub async fn full_flow_once(
    substrate: Arc<dyn Substrate>,
    dir: &Path,
    version: Version,
    knobs: Knobs,
) -> Result<(Duration, Vec<(String, f64)>)> {
    let started = Instant::now();
    let mut env =
        Environment::up_with_pgbouncer(substrate, dir, crate::stack::Shape::default()).await?;
    let result = async {
        let af_opts = Options::new(version, knobs);
        let mut af = Airflow::start(&env, &af_opts, &dir.join("airflow")).await?;
        let healthy = af.wait_healthy(Duration::from_secs(180)).await;
        let took = started.elapsed();
        af.stop().await;
        healthy?;
        Ok((took, af.timings.clone()))
    }
    .await;
    env.down().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_are_encoded_in_urls() {
        assert_eq!(
            pg_url(
                "postgresql",
                &crate::probe::sql::Target {
                    host: "pgbouncer.example.test".into(),
                    port: 6543,
                    user: "astro_user@EXAMPLE.TEST".into(),
                    password: "p@ss/word".into(),
                    database: "r-metadata".into(),
                }
            ),
            "postgresql://astro_user%40EXAMPLE.TEST:p%40ss%2Fword@pgbouncer.example.test:6543/r-metadata"
        );
    }
}
