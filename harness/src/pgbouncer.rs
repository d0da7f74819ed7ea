//! The Kerberos-capable PgBouncer: built once from Debian's source plus this project's GSSAPI
//! patch (`pgbouncer/`), cached under `target/` by the patch's hash, and run in its place with
//! the ini harness-config renders from the deployment (the harness's own lines are in it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::component::{Readiness, RunAs, Source, Spec};
use crate::secret::Secret;
use crate::substrate::{Endpoint, LogCursor, Place, Running, Substrate};

/// The user of PgBouncer's admin console, with a per-run password.
pub const ADMIN_USER: &str = "harness_admin";

/// The generic (non-Kerberos) PgBouncer's image on the container tiers (`cargo xtask images`).
pub const GENERIC_IMAGE: &str = "pgbouncer-generic";

/// The ticket cache MIT fills from the injected keytab, inside PgBouncer's directory.
pub const TICKET_CACHE: &str = "krb5cc";

/// Which PgBouncer runs: the Kerberos-capable build, or Debian's source as shipped (what the
/// generic image is: no GSSAPI), built by the same recipe with `--unpatched`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Build {
    #[default]
    Kerberos,
    Generic,
}

impl Build {
    fn dir_name(self, key: &str) -> String {
        match self {
            Build::Kerberos => key.to_string(),
            Build::Generic => format!("unpatched-{key}"),
        }
    }
}

fn recipe_dir() -> PathBuf {
    crate::run::workspace_root().join("pgbouncer")
}

/// The cache key: anything that changes the binary changes the key.
pub fn build_key() -> Result<String> {
    let mut h = Sha256::new();
    for f in ["gssapi-server-login.patch", "build.sh"] {
        let p = recipe_dir().join(f);
        h.update(
            std::fs::read(&p)
                .with_context(|| format!("missing PgBouncer recipe file {}", p.display()))?,
        );
    }
    Ok(hex::encode(&h.finalize()[..8]))
}

/// Where the binary for the current patch lives (built or not).
pub fn binary_path() -> Result<PathBuf> {
    build_path(Build::Kerberos)
}

/// Where a build's binary lives; its directory also keeps the configured source tree.
pub fn build_path(build: Build) -> Result<PathBuf> {
    Ok(crate::run::workspace_root()
        .join("target/pgbouncer")
        .join(build.dir_name(&build_key()?))
        .join("bin/pgbouncer"))
}

/// The binary, building it first when the patch changed. Builds go to a staging directory and are
/// renamed into place, so two runs building at once never see a half-written binary.
pub async fn ensure_built() -> Result<PathBuf> {
    ensure(Build::Kerberos).await
}

/// [`ensure_built`] for either build.
pub async fn ensure(build: Build) -> Result<PathBuf> {
    // Concurrent scenarios of one run wait for a single build.
    static BUILD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let bin = build_path(build)?;
    if bin.exists() {
        return Ok(bin);
    }
    let _guard = BUILD.lock().await;
    if bin.exists() {
        return Ok(bin);
    }
    let out = bin
        .parent()
        .and_then(Path::parent)
        .context("bad pgbouncer path")?
        .to_path_buf();
    let base = out.parent().context("bad pgbouncer path")?;
    std::fs::create_dir_all(base)?;
    let staging = tempfile::Builder::new()
        .prefix(".build-")
        .tempdir_in(base)?;
    let step = crate::progress::step(match build {
        Build::Kerberos => "pgbouncer: building the Kerberos-capable PgBouncer (Debian source + pgbouncer/gssapi-server-login.patch)",
        Build::Generic => "pgbouncer: building Debian's PgBouncer as shipped (no GSSAPI: the generic image)",
    });
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg(recipe_dir().join("build.sh"));
    if build == Build::Generic {
        cmd.arg("--unpatched");
    }
    let mut child = cmd
        .arg(staging.path())
        .env("PGBOUNCER_SRC_CACHE", base.join("src-cache"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("could not run pgbouncer/build.sh")?;
    if let Some(out) = child.stdout.take() {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(out).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            step.phase(line.trim_start_matches("build.sh: "));
        }
    }
    let status = child
        .wait()
        .await
        .context("waiting for pgbouncer/build.sh")?;
    step.finish(if status.success() { "built" } else { "FAILED" });
    if !status.success() {
        bail!(
            "building PgBouncer failed ({status}); see {}/build.log",
            staging.keep().display()
        );
    }
    let built = staging.keep();
    if std::fs::rename(&built, &out).is_err() && !bin.exists() {
        bail!("could not move the PgBouncer build into {}", out.display());
    }
    let _ = std::fs::remove_dir_all(&built);
    Ok(bin)
}

/// What a PgBouncer instance needs: its rendered ini (placed in `place`, listening on `port`),
/// users, the krb5.conf and the keytab the credential injector would give the pod.
pub struct PgbouncerSpec {
    /// The ini as the platform renders it, with the placement already applied.
    pub ini: String,
    /// `(user, password)` pairs for users.txt; written as SCRAM verifiers.
    pub users: Vec<(String, Secret)>,
    pub port: u16,
    /// krb5.conf as components dial the KDC.
    pub krb5_conf: String,
    /// The injected keytab (harness side); None: the injector did not select the pod.
    pub keytab: Option<PathBuf>,
    /// Which PgBouncer runs the ini.
    pub build: Build,
    /// Further environment (a fault's LD_PRELOAD), set after the Kerberos variables.
    pub env: Vec<(String, String)>,
}

pub struct Pgbouncer {
    pub admin_password: Secret,
    place: Place,
    substrate: Arc<dyn Substrate>,
    process: Option<Box<dyn Running>>,
}

impl Pgbouncer {
    /// The place PgBouncer runs in and the port it listens on there, chosen before its ini is
    /// rendered (the ini names both).
    pub fn place(substrate: &dyn Substrate, dir: &Path) -> Result<(Place, u16)> {
        let place = substrate.place("pgbouncer", dir, RunAs::ServiceUser)?;
        let port = substrate.listen_port(&place, "pgbouncer", 6543)?;
        Ok((place, port))
    }

    pub async fn start(
        substrate: Arc<dyn Substrate>,
        place: Place,
        spec: PgbouncerSpec,
    ) -> Result<Pgbouncer> {
        let source = match (substrate.tier(), spec.build) {
            (crate::substrate::Tier::Local, build) => Source::Program(ensure(build).await?),
            // The image's PgBouncer, found on its PATH as the chart's command does.
            (_, Build::Kerberos) => Source::Program(PathBuf::from("pgbouncer")),
            // The generic image, run by its own entrypoint.
            (_, Build::Generic) => Source::Image(crate::images::built(GENERIC_IMAGE).with_context(|| {
                format!("the generic PgBouncer image is not built: run `cargo xtask images --only {GENERIC_IMAGE}`")
            })?),
        };
        let admin_password = Secret::generate();
        let mut users = String::new();
        for (u, p) in spec.users.iter().chain(std::iter::once(&(
            ADMIN_USER.to_string(),
            admin_password.clone(),
        ))) {
            let verifier = postgres_protocol::password::scram_sha_256(p.expose().as_bytes());
            users.push_str(&format!(
                "\"{}\" \"{}\"\n",
                u.replace('"', "\"\""),
                verifier
            ));
        }
        let mut proc_spec = Spec::of("pgbouncer", source);
        if substrate.tier() != crate::substrate::Tier::Local {
            // As the chart runs it: `pgbouncer -u nobody /etc/pgbouncer/pgbouncer.ini`.
            proc_spec = proc_spec.args(["-u", "nobody"]);
        }
        let mut proc_spec = proc_spec
            .arg(place.path_str("pgbouncer.ini")?)
            .read_only_file("users.txt", users, 0o600)
            .read_only_file("pgbouncer.ini", spec.ini, 0o644)
            .read_only_file("krb5.conf", spec.krb5_conf, 0o644)
            .file("trace-pgbouncer.log", Vec::new(), 0o644)
            .env("KRB5_CONFIG", place.path_str("krb5.conf")?)
            .env(
                "KRB5CCNAME",
                format!("FILE:{}", place.path_str(TICKET_CACHE)?),
            )
            .env("KRB5_TRACE", place.path_str("trace-pgbouncer.log")?)
            .port("pgbouncer", spec.port)
            .run_as(RunAs::ServiceUser)
            // Its own "listening" line, not a TCP connect: a port another program holds would
            // answer the connect while PgBouncer itself failed to bind and exited.
            .ready_when(
                Readiness::LogLine(format!(r"listening on \S+:{}\b", spec.port)),
                Duration::from_secs(15),
            );
        // The credential injector's job: a keytab in the pod, readable by PgBouncer only.
        let keytab = match &spec.keytab {
            Some(kt) => {
                let bytes = std::fs::read(kt)
                    .with_context(|| format!("keytab {} is missing", kt.display()))?;
                proc_spec = proc_spec.read_only_file("injected.keytab", bytes, 0o600);
                "injected.keytab"
            }
            // A keytab that does not exist, so no default keytab is used by accident.
            None => "not-injected.keytab",
        };
        proc_spec = proc_spec.env(
            "KRB5_CLIENT_KTNAME",
            format!("FILE:{}", place.path_str(keytab)?),
        );
        proc_spec = proc_spec.envs(&spec.env);
        proc_spec.stop_grace = Duration::from_secs(3);
        let log = place.artifacts.join("pgbouncer.log");
        let process = match substrate.start(&place, proc_spec).await {
            Ok(p) => p,
            // What PgBouncer's own log says is the cause, when it names one (the generic image).
            Err(e) => match crate::fault::diagnose::pgbouncer_log(
                &std::fs::read_to_string(&log).unwrap_or_default(),
            ) {
                Some(d) => return Err(e.context(d.to_string())),
                None => return Err(e),
            },
        };
        Ok(Pgbouncer {
            admin_password,
            place,
            substrate,
            process: Some(process),
        })
    }

    /// Where PgBouncer runs: a sidecar sharing its files starts here (`fault::tickets`).
    pub fn placed(&self) -> &Place {
        &self.place
    }

    /// Places a file beside PgBouncer (a ticket cache the injector hands it).
    pub async fn put_file(&self, file: crate::component::File) -> Result<()> {
        self.substrate.put_file(&self.place, file).await
    }

    fn running(&self) -> Result<&dyn Running> {
        self.process.as_deref().context("PgBouncer is not running")
    }

    /// PgBouncer as the harness dials it.
    pub fn endpoint(&self) -> Result<Endpoint> {
        self.running()?.endpoint("pgbouncer")
    }

    /// Where the other components (Airflow) dial it.
    pub fn peer_endpoint(&self) -> Result<Endpoint> {
        self.running()?.peer_endpoint("pgbouncer")
    }

    /// The ini it runs with, as placed.
    pub async fn ini(&self) -> Result<String> {
        let bytes = self
            .substrate
            .read_file(&self.place, "pgbouncer.ini")
            .await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    pub fn log(&self) -> PathBuf {
        self.process
            .as_ref()
            .map(|p| p.log_file())
            .unwrap_or_else(|| self.place.artifacts.join("pgbouncer.log"))
    }

    pub fn log_cursor(&self) -> LogCursor {
        self.process
            .as_ref()
            .map(|p| p.log_cursor())
            .unwrap_or_default()
    }

    pub fn log_since(&self, cursor: LogCursor) -> String {
        self.process
            .as_ref()
            .map(|p| p.log_since(cursor))
            .unwrap_or_default()
    }

    pub fn log_text(&self) -> String {
        self.log_since(LogCursor::default())
    }

    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.is_running())
    }

    /// Drops the ticket cache MIT filled from the injected keytab, so the next server login must
    /// fetch a TGT and a service ticket from the KDC first (as after a pod restart, or once the
    /// cached tickets expire). Like [`Pgbouncer::stop`], it works on the harness's copy of the
    /// place, which is the place itself on the local tier.
    pub fn forget_tickets(&self) -> Result<()> {
        let cache = self.place.artifacts.join(TICKET_CACHE);
        match std::fs::remove_file(&cache) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", cache.display())),
        }
    }

    pub async fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop().await;
        }
        // The ticket cache MIT filled from the injected keytab is a credential: it must not
        // outlive the process in the artifacts.
        let _ = self.forget_tickets();
    }
}
