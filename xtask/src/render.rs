//! `cargo xtask render`: everything the platform would get for one deployment, as files, and
//! the strict schema check of the rendered Kubernetes objects that `cargo xtask test` runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Args;
use harness_config::{load_deployment, load_values, render_bundle, Platform};

#[derive(Args)]
pub struct RenderArgs {
    /// The `variables` of Houston's deployment mutation, as YAML or JSON.
    #[arg(long, short = 'd')]
    pub deployment: PathBuf,
    /// The control plane's Helm values (the deployments' PgBouncer image, Houston's PgBouncer).
    #[arg(long, short = 'v')]
    pub values: Option<PathBuf>,
    /// The platform release to render for; default: `harness.platform.version` of the values,
    /// else 0.37.7.
    #[arg(long, value_parser = ["0.37.7", "1.1.0"])]
    pub platform: Option<String>,
    /// Directory to write into (created; files in it with the same names are replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Also validate the Kubernetes objects strictly (kubernetes-validate, installed by xtask).
    #[arg(long)]
    pub validate: bool,
    #[arg(long)]
    pub offline: bool,
}

/// The platform of a render: the flag, else the values' `harness.platform.version`, else the
/// default. A version in the values that is not modelled is an error, not a silent default.
pub fn platform(flag: Option<&str>, values: Option<&harness_config::Values>) -> Result<Platform> {
    match (flag, values.and_then(|v| v.platform_version())) {
        (Some(f), _) => f
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--platform: {e}")),
        (None, Some(v)) => v
            .parse()
            .map_err(|e: String| anyhow::anyhow!("harness.platform.version: {e}")),
        (None, None) => Ok(Platform::default()),
    }
}

/// Writes the bundle; returns the files written, Kubernetes objects flagged.
pub fn write(args: &RenderArgs) -> Result<Vec<(PathBuf, bool)>> {
    let d = load_deployment(&args.deployment)?;
    let v = args.values.as_deref().map(load_values).transpose()?;
    let platform = platform(args.platform.as_deref(), v.as_ref())?;
    let files = render_bundle(&d, v.as_ref(), platform)
        .with_context(|| format!("rendering {}", args.deployment.display()))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut written = Vec::new();
    for f in files {
        let path = args.out.join(f.name);
        write_file(&path, &f.text, f.secret)?;
        written.push((path, f.kubernetes));
    }
    Ok(written)
}

/// A file only its owner can read.
pub fn write_secret_file(path: &Path, text: &str) -> Result<()> {
    write_file(path, text, true)
}

fn write_file(path: &Path, text: &str, secret: bool) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

pub fn run(args: &RenderArgs) -> Result<i32> {
    let written = write(args)?;
    for (p, _) in &written {
        println!("{}", p.display());
    }
    if args.validate {
        let objects: Vec<PathBuf> = written
            .into_iter()
            .filter(|(_, k)| *k)
            .map(|(p, _)| p)
            .collect();
        validate(&objects, args.offline)?;
        eprintln!(
            "xtask: {} objects pass strict validation (Kubernetes {})",
            objects.len(),
            crate::deps::KUBERNETES_VERSION
        );
    }
    Ok(0)
}

/// `kubernetes-validate --strict` on `files` at the pinned Kubernetes version.
pub fn validate(files: &[PathBuf], offline: bool) -> Result<()> {
    let kv = crate::deps::kubernetes_validate(offline)?;
    let out = Command::new(&kv)
        .args([
            "--strict",
            "--kubernetes-version",
            crate::deps::KUBERNETES_VERSION,
        ])
        .args(files)
        .output()
        .with_context(|| format!("running {}", kv.display()))?;
    if !out.status.success() {
        bail!(
            "strict schema validation (Kubernetes {}) failed:\n{}{}",
            crate::deps::KUBERNETES_VERSION,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The reference deployment rendered for every modelled platform, and its Kubernetes objects
/// validated strictly: part of `cargo xtask test`.
pub fn validate_reference(offline: bool) -> Result<()> {
    let root = crate::cargo::root();
    let out = root.join("target/render-check");
    let mut objects = Vec::new();
    for p in Platform::ALL {
        let args = RenderArgs {
            deployment: root.join("fixtures/deployments/kerberos.yaml"),
            values: Some(root.join("fixtures/values.yaml")),
            platform: Some(p.version().to_string()),
            out: out.join(p.version()),
            validate: false,
            offline,
        };
        objects.extend(
            write(&args)?
                .into_iter()
                .filter(|(_, k)| *k)
                .map(|(p, _)| p),
        );
    }
    eprintln!(
        "xtask: validating {} rendered objects strictly (kubernetes-validate, Kubernetes {})",
        objects.len(),
        crate::deps::KUBERNETES_VERSION
    );
    validate(&objects, offline)
}
