//! Running cargo (the same toolchain that runs xtask) from the workspace root.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// This xtask binary, to run again as a child (soak, hygiene). `cargo xtask test` rebuilds
/// xtask's own binary while it runs (its unit-test phase), and Linux then names the running one
/// `<path> (deleted)`: the rebuilt binary at the plain path is the one to run.
pub fn xtask_exe() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    if exe.exists() {
        return Ok(exe);
    }
    let text = exe.to_string_lossy();
    match text.strip_suffix(" (deleted)") {
        Some(plain) if Path::new(plain).exists() => Ok(PathBuf::from(plain)),
        _ => anyhow::bail!(
            "the xtask binary {} is gone; run `cargo xtask` again",
            exe.display()
        ),
    }
}

/// A sortable directory name from the clock, without a date crate (soak and hygiene reports).
pub fn stamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{}", now.as_secs(), std::process::id())
}

pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs a cargo command to completion, failing with what it was for.
pub fn run(what: &str, args: &[&str]) -> Result<()> {
    run_with_env(what, args, &[])
}

pub fn run_with_env(what: &str, args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    eprintln!("xtask: {what} (cargo {})", args.join(" "));
    let status = cargo()
        .args(args)
        .envs(env.iter().copied())
        .status()
        .with_context(|| format!("could not run cargo for {what}"))?;
    if !status.success() {
        bail!("{what} failed (cargo {}: {status})", args.join(" "));
    }
    Ok(())
}

/// `cargo xtask check`: formatting and clippy with warnings as errors.
pub fn check() -> Result<i32> {
    run("checking formatting", &["fmt", "--all", "--check"])?;
    run(
        "running clippy",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--quiet",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    eprintln!("xtask: fmt and clippy clean");
    Ok(0)
}

/// Builds one test target and returns its executable, from cargo's JSON messages (the file name
/// carries a hash only cargo knows). A cold build takes minutes and cargo draws no progress bar
/// when stderr is not a terminal (CI, a log file), so a line every 20 s says how far it is.
pub fn test_binary(what: &str, package: &str, test: &str) -> Result<PathBuf> {
    use std::io::BufRead;
    use std::sync::{Arc, Mutex};
    let args = [
        "test",
        "--quiet",
        "-p",
        package,
        "--test",
        test,
        "--no-run",
        "--message-format=json-render-diagnostics",
    ];
    eprintln!("xtask: {what} (cargo {})", args.join(" "));
    let mut child = cargo()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .with_context(|| format!("could not run cargo for {what}"))?;
    let stdout = child.stdout.take().context("cargo's stdout")?;
    // (crates built so far, the last one's name)
    let progress = Arc::new(Mutex::new((0usize, String::new())));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ticker = {
        let (progress, done) = (progress.clone(), done.clone());
        let total = crates_in_lock();
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let mut next = 20;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_millis(200));
                let secs = started.elapsed().as_secs();
                if secs >= next {
                    next += 20;
                    let (n, last) = progress.lock().map(|p| p.clone()).unwrap_or_default();
                    let of = total.map(|t| format!(" of about {t}")).unwrap_or_default();
                    eprintln!("xtask:   [{secs:>4} s] still compiling: {n}{of} crates built, last `{last}`");
                }
            }
        })
    };
    let mut executable = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let Ok(m) = serde_json::from_str::<serde_json::Value>(&line?) else {
            continue;
        };
        if m["reason"] != "compiler-artifact" {
            continue;
        }
        if let Ok(mut p) = progress.lock() {
            p.0 += 1;
            p.1 = m["target"]["name"].as_str().unwrap_or_default().to_string();
        }
        if m["target"]["name"] == test && m["profile"]["test"] == true {
            executable = m["executable"].as_str().map(PathBuf::from);
        }
    }
    let status = child.wait()?;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = ticker.join();
    if !status.success() {
        bail!("{what} failed (cargo {}: {status})", args.join(" "));
    }
    executable.with_context(|| {
        format!("cargo built no executable for test target `{test}` of `{package}`")
    })
}

/// How many packages the lock file holds: about how many crates a cold build compiles.
fn crates_in_lock() -> Option<usize> {
    let text = std::fs::read_to_string(root().join("Cargo.lock")).ok()?;
    Some(text.matches("[[package]]").count())
}
