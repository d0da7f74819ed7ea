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
/// carries a hash only cargo knows).
pub fn test_binary(what: &str, package: &str, test: &str) -> Result<PathBuf> {
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
    let out = cargo()
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("could not run cargo for {what}"))?;
    if !out.status.success() {
        bail!("{what} failed (cargo {}: {})", args.join(" "), out.status);
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| {
            m["reason"] == "compiler-artifact"
                && m["target"]["name"] == test
                && m["profile"]["test"] == true
        })
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .with_context(|| {
            format!("cargo built no executable for test target `{test}` of `{package}`")
        })
}
