//! Airflow's Python environment: one venv per committed lock file, installed with `uv` and cached
//! under `target/airflow/venv-<hash of the lock>`, so a changed lock gets a fresh venv and an
//! unchanged one is never reinstalled.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use super::Version;

/// The interpreter the locks were compiled for (`uv pip compile --python-version 3.11`).
pub const PYTHON: &str = "3.11";

pub fn cache_dir() -> PathBuf {
    crate::run::workspace_root().join("target/airflow")
}

pub fn lock_path(version: Version) -> PathBuf {
    crate::run::workspace_root().join(format!("airflow/requirements-{}.lock", version.pin()))
}

/// The hash that names everything derived from a lock (the venv, the migrated template).
pub fn lock_key(version: Version) -> Result<String> {
    let lock = lock_path(version);
    let bytes = std::fs::read(&lock).with_context(|| {
        format!(
            "the Airflow {} lock file {} is missing; regenerate it with `uv pip compile --python-version {PYTHON} airflow/requirements-{}.in -o {}`",
            version.pin(),
            lock.display(),
            version.pin(),
            lock.display()
        )
    })?;
    let mut h = Sha256::new();
    h.update(PYTHON.as_bytes());
    h.update(&bytes);
    Ok(hex::encode(&h.finalize()[..8]))
}

pub fn venv_path(version: Version) -> Result<PathBuf> {
    Ok(cache_dir().join(format!("venv-{}", lock_key(version)?)))
}

/// The venv for `version`, installing it first when the lock changed. The install goes to a
/// staging directory that is renamed into place, so concurrent runs never see a half-built venv.
pub async fn ensure(version: Version, offline: bool) -> Result<PathBuf> {
    static INSTALL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let venv = venv_path(version)?;
    if ready(&venv) {
        return Ok(venv);
    }
    let _guard = INSTALL.lock().await;
    if ready(&venv) {
        return Ok(venv);
    }
    let base = cache_dir();
    std::fs::create_dir_all(&base)
        .with_context(|| format!("could not create {}", base.display()))?;
    let uv = find_or_install_uv(offline).await?;
    let staging = tempfile::Builder::new()
        .prefix(".venv-")
        .tempdir_in(&base)?;
    let target = staging.path().join("venv");
    let lock = lock_path(version);
    eprintln!(
        "airflow: installing Airflow {} from {} with uv into {} (once per lock file) ...",
        version.pin(),
        lock.display(),
        venv.display()
    );
    let started = std::time::Instant::now();
    // --relocatable: the venv is built in the staging directory and then renamed.
    run_uv(&uv, &["venv", "--quiet", "--relocatable", "--python", PYTHON, path_str(&target)?], offline).await.with_context(|| {
        format!("creating the Airflow venv needs Python {PYTHON} (pyenv, python{PYTHON} on PATH, or `apt-get install python{PYTHON}`)")
    })?;
    let python = target.join("bin/python");
    // PYTHONDONTWRITEBYTECODE is set on these machines: without compiled bytecode every Airflow
    // command starts more than a second slower.
    run_uv(
        &uv,
        &[
            "pip",
            "sync",
            "--quiet",
            "--compile-bytecode",
            "--python",
            path_str(&python)?,
            path_str(&lock)?,
        ],
        offline,
    )
    .await
    .with_context(|| {
        format!(
            "installing {} (use --offline only with a warm uv cache)",
            lock.display()
        )
    })?;
    let built = staging.keep();
    if std::fs::rename(built.join("venv"), &venv).is_err() && !ready(&venv) {
        bail!("could not move the Airflow venv into {}", venv.display());
    }
    let _ = std::fs::remove_dir_all(&built);
    eprintln!(
        "airflow: Airflow {} installed in {:.1} s",
        version.pin(),
        started.elapsed().as_secs_f64()
    );
    Ok(venv)
}

fn ready(venv: &Path) -> bool {
    venv.join("bin/airflow").exists()
}

async fn run_uv(uv: &Path, args: &[&str], offline: bool) -> Result<()> {
    let mut cmd = tokio::process::Command::new(uv);
    cmd.args(args)
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env_remove("VIRTUAL_ENV");
    if offline {
        cmd.env("UV_OFFLINE", "1");
    }
    let out = cmd
        .output()
        .await
        .with_context(|| format!("could not run {}", uv.display()))?;
    if !out.status.success() {
        bail!(
            "`uv {}` failed ({}):\n{}",
            args.join(" "),
            out.status,
            crate::redact::redact(&String::from_utf8_lossy(&out.stderr))
        );
    }
    Ok(())
}

/// `uv` from PATH; when missing, installed with pip (said so), unless the run is offline.
pub async fn find_or_install_uv(offline: bool) -> Result<PathBuf> {
    if let Some(p) = on_path("uv") {
        return Ok(p);
    }
    if let Some(p) = uv_from_python().await {
        return Ok(p);
    }
    if offline {
        bail!("uv is not installed and the run is offline (--offline): install it with `python3 -m pip install uv` while online");
    }
    eprintln!("airflow: uv is not installed; installing it with `python3 -m pip install uv` ...");
    let out = tokio::process::Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "uv"])
        .output()
        .await
        .context("could not run `python3 -m pip install uv`: install Python 3 and pip")?;
    if !out.status.success() {
        bail!(
            "`python3 -m pip install uv` failed: {}; install uv by hand (`python3 -m pip install uv`)",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    if let Some(p) = on_path("uv").or(uv_from_python().await) {
        return Ok(p);
    }
    bail!("installed uv with pip, but cannot find its binary: add pip's script directory to PATH")
}

async fn uv_from_python() -> Option<PathBuf> {
    let out = tokio::process::Command::new("python3")
        .args(["-c", "import uv; print(uv.find_uv_bin())"])
        .output()
        .await
        .ok()?;
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && p.exists()).then_some(p)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub(crate) fn path_str(p: &Path) -> Result<&str> {
    p.to_str()
        .with_context(|| format!("path {} is not UTF-8", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_version_has_a_committed_lock() {
        for v in [Version::Airflow3, Version::Airflow2] {
            let key = lock_key(v).unwrap();
            assert_eq!(key.len(), 16);
            let text = std::fs::read_to_string(lock_path(v)).unwrap();
            assert!(
                text.contains(&format!("apache-airflow=={}", v.pin())),
                "{}",
                lock_path(v).display()
            );
        }
    }
}
