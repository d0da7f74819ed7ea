//! The real kube-apiserver the @apiserver scenarios run against: built once from Debian's
//! `kubernetes` source package by kind/apiserver/build.sh, cached under
//! `target/apiserver/<key>/` (the key hashes the script, which pins the package version), and
//! handed to the scenario runner in `E2E_KUBE_APISERVER`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::cargo;

fn recipe() -> PathBuf {
    cargo::root().join("kind/apiserver/build.sh")
}

fn key() -> Result<String> {
    let script = std::fs::read(recipe())
        .with_context(|| format!("missing the API server recipe {}", recipe().display()))?;
    Ok(hex(&Sha256::digest(&script)[..8]))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn base() -> PathBuf {
    cargo::root().join("target/apiserver")
}

/// Where the binary of the current recipe lives, built or not.
pub fn binary() -> Result<PathBuf> {
    Ok(base().join(key()?).join("bin/kube-apiserver"))
}

/// Whether a tag expression can select @apiserver scenarios (no expression: every scenario).
/// Only an expression that never names @apiserver, or names it only negated, leaves them out.
pub fn selected(tags: Option<&str>) -> bool {
    match tags {
        None => true,
        Some(t) => {
            let t = t.replace(' ', "");
            t.contains("@apiserver") && !t.contains("not@apiserver") && !t.contains("!@apiserver")
        }
    }
}

/// The binary, building it first (about 5 minutes, with progress) when the recipe changed.
pub fn ensure_built(offline: bool) -> Result<PathBuf> {
    let bin = binary()?;
    if bin.exists() {
        return Ok(bin);
    }
    let out = bin
        .parent()
        .and_then(|p| p.parent())
        .context("bad path")?
        .to_path_buf();
    std::fs::create_dir_all(base())?;
    let src_cache = base().join("src-cache");
    if offline && !src_cache.join("apt").exists() {
        bail!("kube-apiserver is not built and --offline forbids downloading Debian's `kubernetes` source; run once without --offline");
    }
    // A staging directory renamed into place: a second run never sees a half-built binary.
    let staging = base().join(format!(".build-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    eprintln!(
        "xtask: building kube-apiserver v1.20.2 from Debian's `kubernetes` source package \
         (once; 5-8 minutes on 2 cores, less with a warm Go cache; log: {}/build.log)",
        staging.display()
    );
    let start = Instant::now();
    let mut child = Command::new("bash")
        .arg(recipe())
        .arg(&staging)
        .env("APISERVER_SRC_CACHE", &src_cache)
        .env("APISERVER_GOCACHE", base().join("go-cache"))
        .stdout(Stdio::piped())
        .spawn()
        .context("could not run kind/apiserver/build.sh")?;
    // The compile phase prints nothing for minutes: a heartbeat says it is still working.
    let done = Arc::new(AtomicBool::new(false));
    let beat = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut last = Instant::now();
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(500));
                if last.elapsed() >= Duration::from_secs(30) {
                    eprintln!(
                        "xtask:   [{:>4} s] still building kube-apiserver",
                        start.elapsed().as_secs()
                    );
                    last = Instant::now();
                }
            }
        })
    };
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("xtask:   [{:>4} s] {line}", start.elapsed().as_secs());
        }
    }
    let status = child
        .wait()
        .context("waiting for kind/apiserver/build.sh")?;
    done.store(true, Ordering::SeqCst);
    let _ = beat.join();
    if !status.success() {
        bail!(
            "building kube-apiserver failed ({status}); see {}/build.log",
            staging.display()
        );
    }
    if std::fs::rename(&staging, &out).is_err() && !bin.exists() {
        bail!(
            "could not move the kube-apiserver build into {}",
            out.display()
        );
    }
    let _ = std::fs::remove_dir_all(&staging);
    eprintln!(
        "xtask: kube-apiserver built in {} s: {}",
        start.elapsed().as_secs(),
        bin.display()
    );
    Ok(bin)
}

/// The line `cargo xtask doctor` prints.
pub fn doctor_line() -> String {
    match binary() {
        Ok(b) if b.exists() => format!("  {:<3} {:<24} built: {}", "ok", "kube-apiserver", b.display()),
        Ok(b) => format!(
            "  {:<3} {:<24} not built yet; `cargo xtask e2e --tags @apiserver` builds it from Debian's source (5-8 min) into {}",
            "--",
            "kube-apiserver",
            b.display()
        ),
        Err(e) => format!("  {:<3} {:<24} {e:#}", "--", "kube-apiserver"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_follows_the_tag_expression() {
        assert!(selected(None));
        assert!(selected(Some("@apiserver")));
        assert!(selected(Some("@apiserver and not @slow")));
        assert!(!selected(Some("@pgbouncer")));
        assert!(!selected(Some("not @apiserver")));
        assert!(!selected(Some("@kerberos and not @apiserver")));
    }

    #[test]
    fn the_key_follows_the_script() {
        let k = key().unwrap();
        assert_eq!(k.len(), 16);
        assert!(binary().unwrap().to_string_lossy().contains(&k));
    }
}
