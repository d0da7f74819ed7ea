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

pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs a cargo command to completion, failing with what it was for.
pub fn run(what: &str, args: &[&str]) -> Result<()> {
    eprintln!("xtask: {what} (cargo {})", args.join(" "));
    let status = cargo()
        .args(args)
        .status()
        .with_context(|| format!("could not run cargo for {what}"))?;
    if !status.success() {
        bail!("{what} failed (cargo {}: {status})", args.join(" "));
    }
    Ok(())
}

/// `cargo xtask check`: formatting and clippy with warnings as errors.
pub fn check() -> Result<i32> {
    crate::deps::ensure(&[crate::deps::Need::Build], false)?;
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
