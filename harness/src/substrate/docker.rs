//! The docker substrate: each component a container of the project's image (`cargo xtask
//! images`, tags in `target/images/manifest.json`), on a private network per environment where
//! it has the host name the configuration gives it (`kdc.example.test`, `db.example.test`,
//! `pgbouncer.example.test`, or a replayed file's names), its ports published on loopback only.
//! A place is a directory of the run bind-mounted into the container, so what a component
//! writes (its Kerberos trace, the KDC database) and what the harness places (its ini, the
//! injected keytab) are the artifacts, as on the local tier; credentials are mounted, never in
//! an image. Every container and network carries the run's labels, so Ctrl-C, the run's time
//! limit and a later run's sweep find them.
//!
//! testcontainers starts, pauses and stops the components and streams their logs; the docker
//! CLI runs the tools (it has stdin and a user for `exec`, which testcontainers' exec lacks) and
//! the sweeps that must work from a signal handler, where no async runtime can be relied on.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use testcontainers::core::{IntoContainerPort, Mount};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::roles::{dialable, family, Role, Roles};
use super::{Endpoint, LogCursor, Place, Running, Substrate, Tier};
use crate::component::{Exec, ExecOutput, File, NamedPort, RunAs, Source, Spec};
use crate::tools;

/// The label every container and network of a run carries (value: the run's id).
pub use super::RUN_LABEL;
/// The process that made them: a later run sweeps what a process no longer alive left.
const PID_LABEL: &str = "e2e-harness.pid";
/// Published ports bind here only: nothing outside this machine reaches a run.
const LOOPBACK: &str = "127.0.0.1";
/// Inside a container a component listens on every address of its private network.
const ANY: &str = "0.0.0.0";
/// pg_hba's name for "the networks the server is on": the run's private network (and the
/// gateway the published port arrives through).
const SAME_NETWORK: &str = "samenet";

/// The docker substrate of a run (see the module comment). The run-level value only makes
/// environments ([`Substrate::environment`]); each environment has its own network.
pub struct Docker {
    run: String,
    roles: Roles,
    env: Option<Arc<Env>>,
}

/// One environment: its network, its components' host names and what runs in each place.
struct Env {
    network: String,
    hosts: BTreeMap<String, String>,
    network_made: tokio::sync::OnceCell<()>,
    /// Per place name: directories shared into it, and the container running its component.
    places: Mutex<HashMap<String, PlaceState>>,
}

#[derive(Default, Clone)]
struct PlaceState {
    shared: Vec<(PathBuf, String)>,
    /// Its running containers, oldest first (Airflow's place holds one per component).
    running: Vec<String>,
}

impl Docker {
    /// Checks that an engine answers, sweeps what killed runs left, and reads the image tags.
    pub fn connect(pgbouncer_image: Option<String>, run_id: Option<&str>) -> Result<Docker> {
        let out = Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .output()
            .context(
                "the docker tier needs the `docker` client: install Docker, or run `--tier local`",
            )?;
        if !out.status.success() {
            bail!(
                "no Docker engine answers (`docker version`: {}): start it, or run `--tier local`",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let swept = sweep_orphans();
        if swept > 0 {
            eprintln!("e2e: removed {swept} container(s) and network(s) a killed run left");
        }
        let run = match run_id {
            Some(id) => id.to_string(),
            None => format!(
                "{}-{}",
                std::process::id(),
                hex::encode(rand::random::<[u8; 3]>())
            ),
        };
        let d = Docker {
            run,
            roles: Roles::built(Tier::Docker, pgbouncer_image),
            env: None,
        };
        // Every image a scenario needs, before any scenario starts.
        for c in ["kdc", "postgres", "pgbouncer"] {
            d.role(c)?;
        }
        Ok(d)
    }

    fn env(&self) -> Result<&Arc<Env>> {
        self.env
            .as_ref()
            .context("internal: a docker place outside an environment (Stack::up makes one first)")
    }

    fn role(&self, component: &str) -> Result<Role> {
        self.roles.role(component)
    }

    fn uid(&self, place: &Place, who: RunAs) -> Result<u32> {
        self.roles.uid(place, who)
    }

    fn labels(&self) -> [(String, String); 2] {
        [
            (RUN_LABEL.into(), self.run.clone()),
            (PID_LABEL.into(), std::process::id().to_string()),
        ]
    }

    async fn ensure_network(&self) -> Result<&Env> {
        let env = self.env()?;
        env.network_made
            .get_or_try_init(|| async {
                let mut args = vec!["network".to_string(), "create".into()];
                for (k, v) in self.labels() {
                    args.extend(["--label".into(), format!("{k}={v}")]);
                }
                args.push(env.network.clone());
                cli("creating the environment's network", &args)
                    .await
                    .map(drop)
            })
            .await?;
        Ok(env)
    }

    fn mounts(&self, place: &Place) -> Result<Vec<(String, String)>> {
        let env = self.env()?;
        let mut v = vec![(path_str(&place.artifacts)?, place.dir_str()?)];
        if let Some(state) = env.places.lock().expect("place registry").get(&place.name) {
            for (host, inside) in &state.shared {
                v.push((path_str(host)?, inside.clone()));
            }
        }
        Ok(v)
    }
}

#[async_trait]
impl Substrate for Docker {
    fn tier(&self) -> Tier {
        Tier::Docker
    }

    fn environment(
        self: Arc<Self>,
        names: &harness_config::EnvironmentShape,
    ) -> Result<Arc<dyn Substrate>> {
        static ENVIRONMENTS: std::sync::atomic::AtomicUsize =
            std::sync::atomic::AtomicUsize::new(0);
        let n = ENVIRONMENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let hosts = super::roles::hosts(names);
        Ok(Arc::new(Docker {
            run: self.run.clone(),
            roles: self.roles.clone(),
            env: Some(Arc::new(Env {
                network: format!("e2e-{}-{n}", self.run),
                hosts,
                network_made: tokio::sync::OnceCell::new(),
                places: Mutex::new(HashMap::new()),
            })),
        }))
    }

    async fn release(&self) {
        let Some(env) = &self.env else { return };
        if env.network_made.get().is_none() {
            return;
        }
        // Whatever of the environment is still there (a component whose stop failed) goes
        // first: a network with a container attached cannot be removed.
        let names: Vec<String> = env
            .places
            .lock()
            .expect("place registry")
            .values()
            .flat_map(|p| p.running.clone())
            .collect();
        if !names.is_empty() {
            let mut args = vec!["rm".to_string(), "-f".into()];
            args.extend(names);
            let _ = cli("removing the environment's containers", &args).await;
        }
        if let Err(e) = cli(
            "removing the environment's network",
            &["network".into(), "rm".into(), env.network.clone()],
        )
        .await
        {
            tracing::warn!("{e:#}");
        }
    }

    fn program(&self, place: &Place, tool: &str) -> Result<PathBuf> {
        let _ = self.role(&place.name)?;
        tools::image_path(tool)
    }

    fn shipped(&self, place: &Place, rel: &str) -> Result<Option<PathBuf>> {
        self.roles.shipped(place, rel)
    }

    fn component_host(&self, place: &Place, component: &str) -> String {
        super::roles::component_host(place, component)
    }

    fn share_dir(&self, place: &Place, dir: &Path) -> Result<String> {
        let env = self.env()?;
        let uid = self.role(&place.name)?.uid;
        std::os::unix::fs::chown(dir, Some(uid), Some(uid))
            .with_context(|| format!("could not hand {} to uid {uid}", dir.display()))?;
        let mut places = env.places.lock().expect("place registry");
        let state = places.entry(place.name.clone()).or_default();
        let inside = format!("/run/e2e-shared-{}", state.shared.len());
        state.shared.push((dir.to_path_buf(), inside.clone()));
        Ok(inside)
    }

    fn place(&self, name: &str, artifacts: &Path, owner: RunAs) -> Result<Place> {
        let env = self.env()?;
        let role = self.role(name)?;
        std::fs::create_dir_all(artifacts)
            .with_context(|| format!("could not create {}", artifacts.display()))?;
        crate::run::make_traversable(artifacts)?;
        std::os::unix::fs::chown(artifacts, Some(role.uid), Some(role.uid)).with_context(|| {
            format!("could not hand {} to uid {}", artifacts.display(), role.uid)
        })?;
        let host = env
            .hosts
            .get(family(name))
            .map(|h| dialable(h))
            .with_context(|| format!("internal: no host name for {name} in this environment"))?;
        Ok(Place {
            name: name.into(),
            dir: PathBuf::from(role.dir),
            artifacts: artifacts.to_path_buf(),
            host,
            bind: ANY.into(),
            clients: SAME_NETWORK.into(),
            owner,
        })
    }

    fn listen_port(&self, _place: &Place, _name: &str, default: u16) -> Result<u16> {
        // A container of its own: the program's well-known port, as in production.
        Ok(default)
    }

    async fn start(&self, place: &Place, spec: Spec) -> Result<Box<dyn Running>> {
        let env = self.ensure_network().await?;
        for f in &spec.files {
            self.put_file(place, f.clone()).await?;
        }
        let role = self.role(&place.name)?;
        let (image, entrypoint) = match &spec.source {
            Source::Program(p) => (role.image.clone(), Some(path_str(p)?)),
            Source::Image(i) => (i.clone(), None),
        };
        let (repo, tag) = split_image(&image);
        let mut img = GenericImage::new(repo, tag);
        for p in &spec.ports {
            img = img.with_exposed_port(p.port.tcp());
        }
        if let Some(ep) = &entrypoint {
            img = img.with_entrypoint(ep);
        }
        let log = place.artifacts.join(format!("{}.log", spec.name));
        let sink = LogSink::open(&log)?;
        let container_name = format!("{}-{}", env.network, spec.name);
        let ports: Vec<u16> = spec.ports.iter().map(|p| p.port).collect();
        let mut req = img
            .with_cmd(spec.args.clone())
            .with_network(env.network.clone())
            .with_hostname(self.component_host(place, &spec.name))
            .with_container_name(container_name.clone())
            .with_user(self.uid(place, spec.run_as)?.to_string())
            .with_working_dir(match &spec.cwd {
                Some(cwd) => path_str(&place.dir.join(cwd))?,
                None => place.dir_str()?,
            })
            .with_log_consumer(sink)
            // Creating and starting the container; readiness is awaited below, by its own signal.
            .with_startup_timeout(spec.ready_timeout.max(Duration::from_secs(60)))
            .with_host_config_modifier(move |hc| {
                // An init as PID 1: it forwards SIGTERM and reaps what the component forks.
                hc.init = Some(true);
                hc.publish_all_ports = Some(false);
                hc.port_bindings = Some(
                    ports
                        .iter()
                        .map(|p| {
                            (
                                format!("{p}/tcp"),
                                Some(vec![testcontainers::bollard::models::PortBinding {
                                    host_ip: Some(LOOPBACK.into()),
                                    host_port: Some(String::new()),
                                }]),
                            )
                        })
                        .collect(),
                );
            });
        for (k, v) in self.labels() {
            req = req.with_label(k, v);
        }
        for (k, v) in &spec.env {
            req = req.with_env_var(k, v);
        }
        for (host, inside) in self.mounts(place)? {
            req = req.with_mount(Mount::bind_mount(host, inside));
        }
        // Over the place's own mount: what the chart and the injector mount read-only.
        for f in spec.files.iter().filter(|f| f.read_only) {
            req = req.with_mount(
                Mount::bind_mount(
                    path_str(&place.artifacts.join(&f.path))?,
                    path_str(&place.path(&f.path))?,
                )
                .with_access_mode(testcontainers::core::AccessMode::ReadOnly),
            );
        }
        // Where this start's output begins in the (appended) log.
        let from = LogCursor(std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0));
        let container = req.start().await.with_context(|| {
            format!(
                "{}: could not start a container of {image} (is it built? `cargo xtask images`)",
                spec.name
            )
        })?;
        env.places
            .lock()
            .expect("place registry")
            .entry(place.name.clone())
            .or_default()
            .running
            .push(container_name.clone());
        let mut c = Container {
            name: spec.name.clone(),
            container_name,
            place_name: place.name.clone(),
            peer_host: self.component_host(place, &spec.name),
            log,
            // Published ports are looked up once it is ready: a container that exited has none.
            ports: spec.ports.iter().map(|p| (p.clone(), 0)).collect(),
            inner: Some(container),
            stop_grace: spec.stop_grace,
            env: self.env()?.clone(),
            last_state: None,
        };
        if let Err(e) = super::await_ready(&mut c, &spec.readiness, spec.ready_timeout, from).await
        {
            c.stop().await;
            return Err(e);
        }
        if let Err(e) = c.publish().await {
            c.stop().await;
            return Err(e);
        }
        Ok(Box::new(c))
    }

    async fn exec(&self, place: &Place, tool: Exec) -> Result<ExecOutput> {
        let env = self.ensure_network().await?;
        let role = self.role(&place.name)?;
        let running = env
            .places
            .lock()
            .expect("place registry")
            .get(&place.name)
            .and_then(|p| p.running.first().cloned());
        let uid = self.uid(place, tool.run_as)?.to_string();
        let program = path_str(&tool.program)?;
        let mut args: Vec<String> = Vec::new();
        match &running {
            // Beside the running component (kadmin.local next to the KDC's database).
            Some(container) => {
                args.extend([
                    "exec".into(),
                    "-u".into(),
                    uid,
                    "-w".into(),
                    place.dir_str()?,
                ]);
                if tool.stdin.is_some() {
                    args.push("-i".into());
                }
                for (k, v) in &tool.env {
                    args.extend(["-e".into(), format!("{k}={v}")]);
                }
                args.push(container.clone());
                args.push(program);
            }
            // Before it runs (kdb5_util before the KDC): a one-off container of its image
            // with the same place.
            None => {
                args.extend(["run".into(), "--rm".into(), "--network".into()]);
                args.push(env.network.clone());
                for (k, v) in self.labels() {
                    args.extend(["--label".into(), format!("{k}={v}")]);
                }
                args.extend(["-u".into(), uid, "-w".into(), place.dir_str()?]);
                if tool.stdin.is_some() {
                    args.push("-i".into());
                }
                for (host, inside) in self.mounts(place)? {
                    args.extend(["-v".into(), format!("{host}:{inside}")]);
                }
                for (k, v) in &tool.env {
                    args.extend(["-e".into(), format!("{k}={v}")]);
                }
                args.extend(["--entrypoint".into(), program, role.image.clone()]);
            }
        }
        args.extend(tool.args.iter().cloned());
        let mut docker = Exec::new(&tool.what, "docker").args(args);
        if let Some(input) = &tool.stdin {
            docker = docker.stdin(input.clone());
        }
        tools::run(&docker, None).await
    }

    async fn put_file(&self, place: &Place, file: File) -> Result<()> {
        let uid = self.role(&place.name)?.uid;
        super::write_placed(&place.artifacts.join(&file.path), &file, Some((uid, uid)))
    }

    async fn read_file(&self, place: &Place, rel: &str) -> Result<Vec<u8>> {
        let path = place.artifacts.join(rel);
        std::fs::read(&path).with_context(|| format!("could not read {}", path.display()))
    }

    fn kill_all(&self) -> usize {
        let label = format!("{RUN_LABEL}={}", self.run);
        let mut n = remove_labelled(&label);
        // A container whose creation was in flight (a tool's `docker run`, a component being
        // started) appears a moment later: a second pass catches it.
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(400));
            match remove_labelled(&label) {
                0 => break,
                more => n += more,
            }
        }
        n
    }
}

/// A running component: a container of the environment.
struct Container {
    name: String,
    container_name: String,
    place_name: String,
    peer_host: String,
    log: PathBuf,
    ports: Vec<(NamedPort, u16)>,
    inner: Option<ContainerAsync<GenericImage>>,
    stop_grace: Duration,
    env: Arc<Env>,
    /// The last answer of `docker inspect` and when: a health wait asks every component
    /// ten times a second, and each ask is a process of its own.
    last_state: Option<(std::time::Instant, bool)>,
}

/// How long a "running" answer stands (an exit is final and stands for ever).
const STATE_FRESH: Duration = Duration::from_millis(300);

impl Container {
    fn port(&self, name: &str) -> Result<&(NamedPort, u16)> {
        self.ports
            .iter()
            .find(|(p, _)| p.name == name)
            .with_context(|| format!("internal: {} has no port named `{name}`", self.name))
    }

    /// The host ports its ports are published at on loopback.
    async fn publish(&mut self) -> Result<()> {
        let c = self.inner.as_ref().context("the container is gone")?;
        for (p, host_port) in &mut self.ports {
            *host_port = c
                .get_host_port_ipv4(p.port)
                .await
                .with_context(|| format!("{}: port {} is not published", self.name, p.port))?;
        }
        Ok(())
    }

    fn inspect(&self, format: &str) -> Option<String> {
        let out = Command::new("docker")
            .args(["inspect", "-f", format, &self.container_name])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    fn forget(&self) {
        if let Some(p) = self
            .env
            .places
            .lock()
            .expect("place registry")
            .get_mut(&self.place_name)
        {
            p.running.retain(|c| c != &self.container_name);
        }
    }
}

#[async_trait]
impl super::Starting for Container {
    fn exited(&mut self) -> Result<Option<String>> {
        Ok((!self.is_running()).then(|| {
            self.inspect("exit code {{.State.ExitCode}}")
                .unwrap_or_else(|| "the container is gone".into())
        }))
    }

    /// Inside the container: a published port answers a connect even when nothing listens
    /// behind it.
    async fn port_answers(&self, port: &str) -> Result<bool> {
        let port = self.port(port)?.0.port;
        let mut docker = tokio::process::Command::new("docker");
        docker.args(["exec", &self.container_name]);
        Ok(super::roles::port_answers_inside(docker, port).await)
    }
}

#[async_trait]
impl Running for Container {
    fn name(&self) -> &str {
        &self.name
    }

    fn endpoint(&self, port: &str) -> Result<Endpoint> {
        Ok(Endpoint {
            host: LOOPBACK.into(),
            port: self.port(port)?.1,
        })
    }

    fn peer_endpoint(&self, port: &str) -> Result<Endpoint> {
        Ok(Endpoint {
            host: self.peer_host.clone(),
            port: self.port(port)?.0.port,
        })
    }

    fn log_file(&self) -> PathBuf {
        self.log.clone()
    }

    fn is_running(&mut self) -> bool {
        if self.inner.is_none() {
            return false;
        }
        match self.last_state {
            Some((_, false)) => return false,
            Some((at, true)) if at.elapsed() < STATE_FRESH => return true,
            _ => {}
        }
        let running = self.inspect("{{.State.Running}}").as_deref() == Some("true");
        self.last_state = Some((std::time::Instant::now(), running));
        running
    }

    fn remains(&self) -> bool {
        self.inspect("{{.Id}}").is_some()
    }

    async fn pause(&self) -> Result<()> {
        let c = self
            .inner
            .as_ref()
            .with_context(|| format!("{} is not running", self.name))?;
        c.pause()
            .await
            .with_context(|| format!("pausing {}", self.name))
    }

    async fn resume(&self) -> Result<()> {
        let c = self
            .inner
            .as_ref()
            .with_context(|| format!("{} is not running", self.name))?;
        c.unpause()
            .await
            .with_context(|| format!("resuming {}", self.name))
    }

    /// SIGTERM through the container's init, its stop grace, then a kill; the container goes.
    async fn stop(&mut self) {
        let Some(c) = self.inner.take() else { return };
        // A paused container would sit out the whole grace period with the SIGTERM pending.
        let _ = c.unpause().await;
        let grace = self.stop_grace.as_secs().max(1) as i32;
        if let Err(e) = c.stop_with_timeout(Some(grace)).await {
            tracing::warn!("stopping {}: {e}", self.name);
        }
        if let Err(e) = c.rm().await {
            tracing::warn!("removing {}: {e}", self.name);
        }
        self.forget();
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if self.inner.take().is_some() {
            // testcontainers removes a dropped container itself; this makes sure even when its
            // runtime is gone (a panic during teardown).
            let _ = Command::new("docker")
                .args(["rm", "-f", &self.container_name])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            self.forget();
        }
    }
}

/// Appends a container's output to its log file (stdout and stderr in arrival order).
struct LogSink(Mutex<std::fs::File>);

impl LogSink {
    fn open(path: &Path) -> Result<LogSink> {
        let f = std::fs::File::options()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("could not open log {}", path.display()))?;
        Ok(LogSink(Mutex::new(f)))
    }
}

impl testcontainers::core::logs::consumer::LogConsumer for LogSink {
    fn accept<'a>(
        &'a self,
        record: &'a testcontainers::core::logs::LogFrame,
    ) -> futures::future::BoxFuture<'a, ()> {
        if let Ok(mut f) = self.0.lock() {
            let _ = f.write_all(record.bytes());
        }
        Box::pin(async {})
    }
}

/// Runs the docker CLI to completion; the error names what it was for and carries its stderr.
async fn cli(what: &str, args: &[String]) -> Result<ExecOutput> {
    tools::run(&Exec::new(what, "docker").args(args.iter().cloned()), None).await
}

/// Removes every container, then every network, carrying `label` (`key=value`); returns how
/// many. Synchronous, for signal handlers.
fn remove_labelled(label: &str) -> usize {
    let list = |args: &[&str]| -> Vec<String> {
        Command::new("docker")
            .args(args)
            .args(["--filter", &format!("label={label}")])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_string)
                    .filter(|l| !l.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = list(&["ps", "-aq"]);
    if !containers.is_empty() {
        let _ = Command::new("docker")
            .args(["rm", "-f"])
            .args(&containers)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    let networks = list(&["network", "ls", "-q"]);
    if !networks.is_empty() {
        let _ = Command::new("docker")
            .args(["network", "rm"])
            .args(&networks)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    containers.len() + networks.len()
}

/// Removes what runs whose process is gone left behind (a SIGKILLed run cannot clean up; its
/// containers also hold address pools, of which an engine has about 31).
fn sweep_orphans() -> usize {
    let out = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label={RUN_LABEL}"),
            "--format",
            &format!("{{{{.Label \"{RUN_LABEL}\"}}}} {{{{.Label \"{PID_LABEL}\"}}}}"),
        ])
        .output();
    let mut runs: Vec<(String, String)> = out
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.split_once(' '))
                .map(|(r, p)| (r.to_string(), p.to_string()))
                .collect()
        })
        .unwrap_or_default();
    // Networks without containers too.
    let nets = Command::new("docker")
        .args([
            "network",
            "ls",
            "--filter",
            &format!("label={RUN_LABEL}"),
            "--format",
            &format!("{{{{.Label \"{RUN_LABEL}\"}}}} {{{{.Label \"{PID_LABEL}\"}}}}"),
        ])
        .output();
    if let Ok(o) = nets {
        runs.extend(
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.split_once(' '))
                .map(|(r, p)| (r.to_string(), p.to_string())),
        );
    }
    runs.sort();
    runs.dedup();
    runs.iter()
        .filter(|(_, pid)| !pid_alive(pid))
        .map(|(run, _)| remove_labelled(&format!("{RUN_LABEL}={run}")))
        .sum()
}

fn pid_alive(pid: &str) -> bool {
    pid.parse::<i32>()
        .is_ok_and(|p| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok())
}

/// `repository:tag` (a registry host's port is not a tag).
fn split_image(image: &str) -> (String, String) {
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.into(), tag.into()),
        _ => (image.into(), "latest".into()),
    }
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_string)
        .with_context(|| format!("path {} is not UTF-8", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_split_at_the_tag_not_at_a_registry_port() {
        assert_eq!(
            split_image("e2e-harness/kdc:0a1b"),
            ("e2e-harness/kdc".into(), "0a1b".into())
        );
        assert_eq!(
            split_image("quay.io/astronomer/ap-pgbouncer-krb:1.25.0-2"),
            (
                "quay.io/astronomer/ap-pgbouncer-krb".into(),
                "1.25.0-2".into()
            )
        );
        assert_eq!(
            split_image("registry.example.test:5000/pgbouncer"),
            (
                "registry.example.test:5000/pgbouncer".into(),
                "latest".into()
            )
        );
    }
}
