//! The Kerberos-capable PgBouncer: built once from Debian's source plus this project's GSSAPI
//! patch (`pgbouncer/`), cached under `target/` by the patch's hash, and run with a rendered ini.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::component::{Readiness, RunAs, Spec};
use crate::secret::{write_private, Secret};
use crate::substrate::local::Process;
use crate::tools::give_to_service_user;

/// The user of PgBouncer's admin console, with a per-run password.
pub const ADMIN_USER: &str = "harness_admin";

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

/// What a PgBouncer instance needs: its rendered ini (without the harness lines), users, and the
/// Kerberos environment the credential injector would give the pod.
pub struct PgbouncerSpec {
    /// The ini as the platform renders it, with local placement already applied.
    pub ini: String,
    /// `(user, password)` pairs for users.txt; written as SCRAM verifiers.
    pub users: Vec<(String, Secret)>,
    pub port: u16,
    pub krb_env: Vec<(String, String)>,
    pub build: Build,
}

pub struct Pgbouncer {
    pub dir: PathBuf,
    pub port: u16,
    pub log: PathBuf,
    pub admin_password: Secret,
    process: Option<Process>,
}

impl Pgbouncer {
    pub async fn start(dir: &Path, spec: PgbouncerSpec) -> Result<Pgbouncer> {
        let bin = ensure(spec.build).await?;
        std::fs::create_dir_all(dir)?;
        give_to_service_user(dir)?;
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
        let users_path = dir.join("users.txt");
        write_private(&users_path, users.as_bytes())?;
        give_to_service_user(&users_path)?;
        let ini_path = dir.join("pgbouncer.ini");
        std::fs::write(&ini_path, &spec.ini)?;
        give_to_service_user(&ini_path)?;
        let log = dir.join("pgbouncer.log");
        std::fs::write(&log, "")?;
        give_to_service_user(&log)?;
        for (k, v) in &spec.krb_env {
            if k == "KRB5_TRACE" {
                std::fs::write(v, "")?;
                give_to_service_user(Path::new(v))?;
            }
        }
        let proc_spec = Spec::new("pgbouncer", &bin)
            .arg(ini_path.display().to_string())
            .envs(&spec.krb_env)
            .run_as(RunAs::ServiceUser)
            // Its own "listening" line, not a TCP connect: a port another program holds would
            // answer the connect while PgBouncer itself failed to bind and exited.
            .ready_when(
                Readiness::LogLine(format!(r"listening on \S+:{}\b", spec.port)),
                Duration::from_secs(15),
            );
        let mut proc_spec = proc_spec;
        proc_spec.stop_grace = Duration::from_secs(3);
        let process = Process::start(&proc_spec, &log).await?;
        Ok(Pgbouncer {
            dir: dir.to_path_buf(),
            port: spec.port,
            log,
            admin_password,
            process: Some(process),
        })
    }

    /// The harness's own lines for an ini: where to listen, the auth file, the admin console.
    /// They go before the platform's `extraIni`, which must stay last as the chart renders it.
    pub fn harness_lines(dir: &Path, port: u16) -> String {
        format!(
            "; --- placed by the harness for the local tier (TCP only; admin console for diagnosis) ---\nunix_socket_dir =\nadmin_users = {ADMIN_USER}\nstats_users = {ADMIN_USER}\n; listen_port {port} and auth_file {} are set above\n",
            dir.join("users.txt").display()
        )
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|p| p.is_running())
    }

    pub async fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop().await;
        }
        // The ticket cache MIT filled from the injected keytab is a credential: it must not
        // outlive the process in the artifacts.
        let _ = std::fs::remove_file(self.dir.join(TICKET_CACHE));
    }
}
