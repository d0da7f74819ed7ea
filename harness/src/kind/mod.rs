//! The kind tier: a kind cluster, the customer's "external" KDC and PostgreSQL as containers on
//! kind's Docker network, the reference credential-injection webhook, the Astronomer platform
//! installed by Helm in the documented two steps, and a Kerberos deployment created through
//! Houston's GraphQL API, through to a healthy Airflow behind the platform's ingress.
//!
//! The tier is a plan first (`plan`: every command, API call and file, in order), so that what a
//! run would do can be printed (`--dry-run`), reviewed and tested on a machine without kind;
//! `preflight` says what such a machine lacks before anything starts; `execute` carries the plan
//! out on a machine that has everything, collecting the failure evidence as it goes.

pub mod execute;
pub mod external;
pub mod houston;
pub mod houston_db;
pub mod injector;
pub mod plan;
pub mod preflight;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The Astronomer release to install: harness-config's, the one place that knows what each
/// release renders (0.37.7 calls `createDeployment`, APC 1.1.0 `upsertDeployment` on a cluster).
pub use harness_config::Platform;

/// Where the kind tier's own committed files live (`kind/` in the repository).
pub fn kind_dir() -> PathBuf {
    crate::run::workspace_root().join("kind")
}

/// Everything a kind run is shaped by. Built once from xtask's flags.
#[derive(Debug, Clone)]
pub struct Options {
    /// Per-run name: the kind cluster, the KDC and database containers and their labels.
    pub name: String,
    pub platform: Platform,
    /// A local copy of Astronomer's platform chart (`helm pull astronomer/astronomer --untar`).
    pub chart: Option<PathBuf>,
    /// The control plane's values.yaml.
    pub values: PathBuf,
    /// The deployment variables (Houston's mutation) to create.
    pub deployment: PathBuf,
    /// An existing cluster instead of a new kind cluster (a ticket on real infrastructure).
    pub kubeconfig: Option<PathBuf>,
    /// The Docker network the cluster's nodes are on, which the KDC and PostgreSQL containers
    /// join (`--external-network`); unset means kind's own for the harness's kind cluster.
    pub external_network: Option<String>,
    /// The platform's base domain; Houston is `houston.<base>`, Airflow `deployments.<base>`.
    pub base_domain: String,
    /// The run's own directory for rendered files (`<run>/kind/`).
    pub work: PathBuf,
    /// Loopback ports kind maps to the ingress's 80 and 443.
    pub http_port: u16,
    pub https_port: u16,
    /// The scenario runner (the `e2e` test binary xtask builds), for the scenarios step.
    pub runner: Option<PathBuf>,
}

impl Options {
    pub fn new(name: &str, work: &Path, values: &Path, deployment: &Path) -> Options {
        Options {
            name: name.to_string(),
            platform: Platform::Software0377,
            chart: None,
            values: values.to_path_buf(),
            deployment: deployment.to_path_buf(),
            kubeconfig: None,
            external_network: None,
            base_domain: "astro.example.test".into(),
            work: work.to_path_buf(),
            http_port: 0,
            https_port: 0,
            runner: None,
        }
    }

    /// The platform's namespace and Helm release, as the documentation's commands name them.
    pub fn platform_namespace(&self) -> &'static str {
        "astronomer"
    }
    pub fn platform_release(&self) -> &'static str {
        "astronomer"
    }
    /// The Docker network the external KDC and PostgreSQL join: `--external-network`, else
    /// kind's for the harness's own cluster. None with `--kubeconfig` and no flag: nobody knows
    /// where that cluster's nodes are, and preflight says so.
    pub fn external_network(&self) -> Option<&str> {
        match (&self.external_network, &self.kubeconfig) {
            (Some(n), _) => Some(n),
            (None, None) => Some(external::KIND_NETWORK),
            (None, Some(_)) => None,
        }
    }
    /// The run's CA and the certificates it signs (webhook, ingress); keys 0600.
    pub fn pki_dir(&self) -> PathBuf {
        self.work.join("pki")
    }
    pub fn houston_url(&self) -> String {
        format!(
            "https://houston.{}:{}/v1",
            self.base_domain, self.https_port
        )
    }
}

/// The node image pinned in `kind/cluster.yaml`, the one place that names it.
pub fn node_image() -> Result<String> {
    let path = kind_dir().join("cluster.yaml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("image: ").map(str::to_string))
        .with_context(|| {
            format!(
                "{}: no `image:` line for the node; pin kindest/node by digest there",
                path.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_image_is_pinned_by_digest() {
        let image = node_image().unwrap();
        assert!(image.starts_with("kindest/node:v1.35."), "{image}");
        assert!(image.contains("@sha256:"), "{image}");
    }
}

/// What `harness kind` is asked to do (from xtask's `e2e --tier kind` flags).
#[derive(Debug, Clone)]
pub struct Request {
    pub options: Options,
    pub dry_run: bool,
}

/// The tier's entry point. Exit 2: something is missing (listed, nothing started); 1: a step
/// failed (evidence in the run directory); 0: done, or the plan printed.
pub async fn main(mut r: Request) -> Result<i32> {
    let missing = preflight::check(&r.options);
    if r.options.http_port == 0 {
        r.options.http_port = crate::substrate::ports::free_port()?;
        r.options.https_port = crate::substrate::ports::free_port()?;
    }
    let images = match &r.options.chart {
        Some(chart) if missing.is_empty() || r.dry_run => platform_images(&r.options, chart),
        _ => Vec::new(),
    };
    if r.dry_run {
        let plan = plan::build(&r.options, &images)?;
        print!("{}", plan.render(&r.options));
        if !missing.is_empty() {
            println!("\na live run on this machine would stop before step 1; missing:");
            for m in &missing {
                println!("  - {m}");
            }
        }
        return Ok(0);
    }
    if !missing.is_empty() {
        eprintln!(
            "kind: the kind tier cannot start on this machine; nothing was started. Missing:"
        );
        for m in &missing {
            eprintln!("  - {m}");
        }
        eprintln!("kind: `cargo xtask e2e --tier kind --dry-run` prints what a run would do.");
        return Ok(2);
    }
    let plan = plan::build(&r.options, &images)?;
    std::fs::write(r.options.work.join("plan.txt"), plan.render(&r.options))?;
    tokio::select! {
        res = execute::run(&r.options, &plan) => match res {
            Ok(()) => Ok(0),
            Err(e) => {
                eprintln!("kind: {e:#}");
                Ok(1)
            }
        },
        _ = tokio::signal::ctrl_c() => {
            eprintln!("kind: interrupted; tearing down");
            let teardown = plan::Plan {
                steps: plan.steps.iter().filter(|s| s.phase == plan::Phase::Teardown).cloned().collect(),
                files: Vec::new(),
            };
            let _ = execute::run(&r.options, &teardown).await;
            Ok(130)
        }
    }
}

/// The images the platform chart renders with the values, for `kind load`. Empty (and the plan
/// says so by listing none) when Helm cannot render it.
fn platform_images(o: &Options, chart: &Path) -> Vec<String> {
    let out = std::process::Command::new("helm")
        .args(["template", o.platform_release()])
        .arg(chart)
        .args(["--namespace", o.platform_namespace(), "-f"])
        .arg(&o.values)
        .output();
    match out {
        Ok(out) if out.status.success() => {
            preflight::images_in(&String::from_utf8_lossy(&out.stdout))
        }
        _ => Vec::new(),
    }
}
