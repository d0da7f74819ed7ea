//! `cargo xtask e2e --tier kind`: hands over to `harness kind`, which checks the machine first
//! (kind, Helm, kubectl, the node image, Astronomer's chart and images) and stops with exit 2
//! naming each missing thing before it starts anything; `--dry-run` prints the ordered plan.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use crate::cargo;
use crate::deps::{self, Need};

#[derive(Args, Debug, Clone, Default)]
pub struct KindArgs {
    /// kind tier: print every command, API call and file of the run in order, and what this
    /// machine lacks for it; start nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// kind tier: use this existing cluster instead of creating a kind cluster (then
    /// --external-network is required).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// kind tier: the Docker network the cluster's nodes are on, which the customer's KDC and
    /// PostgreSQL containers join so pods reach them by host name [default: `kind`, the harness's
    /// own kind cluster's; with --kubeconfig it must be given].
    #[arg(long, value_name = "NAME")]
    pub external_network: Option<String>,
    /// kind tier: Astronomer's platform chart, unpacked (`helm pull astronomer/astronomer
    /// --version 0.37.7 --untar`).
    #[arg(long)]
    pub astronomer_chart: Option<PathBuf>,
    /// kind tier: the Astronomer release to install, 0.37.7 or 1.1.0.
    #[arg(long, default_value = "0.37.7", value_parser = ["0.37.7", "1.1.0"])]
    pub platform: String,
}

pub fn run(
    k: &KindArgs,
    deployment: Option<&Path>,
    values: Option<&Path>,
    offline: bool,
) -> Result<i32> {
    deps::ensure(&[Need::Build], offline)?;
    let root = cargo::root();
    let deployment = deployment
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.join("fixtures/deployments/kerberos.yaml"));
    let values = values
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.join("fixtures/values.yaml"));
    cargo::run(
        "building the harness",
        &["build", "--quiet", "-p", "harness", "--bin", "harness"],
    )?;
    // The plan's last step runs the @kind scenarios on the cluster it made (not with
    // --kubeconfig, whose cluster lacks the kind substrate's mounts, nor for a printed plan).
    let runner = match k.dry_run || k.kubeconfig.is_some() {
        true => None,
        false => Some(cargo::test_binary(
            "building the scenario runner for the @kind scenarios",
            "harness",
            "e2e",
        )?),
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let dir = root
        .join("target/kind")
        .join(format!("{stamp}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = std::process::Command::new(root.join("target/debug/harness"));
    cmd.arg("kind")
        .arg("--dir")
        .arg(&dir)
        .arg("--deployment")
        .arg(&deployment)
        .arg("--values")
        .arg(&values)
        .args(["--platform", &k.platform]);
    if let Some(c) = &k.astronomer_chart {
        cmd.arg("--astronomer-chart").arg(c);
    }
    if let Some(c) = &k.kubeconfig {
        cmd.arg("--kubeconfig").arg(c);
    }
    if let Some(n) = &k.external_network {
        cmd.arg("--external-network").arg(n);
    }
    if let Some(r) = &runner {
        cmd.arg("--runner").arg(r);
    }
    if k.dry_run {
        cmd.arg("--dry-run");
    }
    let mut child = cmd.spawn().context("starting `harness kind`")?;
    crate::e2e::ignore_interrupts();
    let status = child.wait().context("waiting for `harness kind`")?;
    Ok(status.code().unwrap_or(130))
}
