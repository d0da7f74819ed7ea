//! The harness library's own command line, driven by `cargo xtask` (which installs what is
//! missing first): a long-lived environment for poking at by hand, and the benchmark. Like the
//! scenario runner it is an edge: it reads the run's settings (`E2E_*`, see
//! `harness_config::settings`) once and hands them to the library.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "harness",
    about = "Kerberized-database harness (normally run through `cargo xtask`)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Brings an environment up in DIR, writes DIR/env.sh and DIR/env.json, and keeps it running
    /// until SIGTERM/SIGINT (what `cargo xtask env up` starts in the background).
    EnvServe {
        #[arg(long)]
        dir: PathBuf,
        /// A deployment file to replay (realm, principal, database host and names).
        #[arg(long)]
        deployment: Option<PathBuf>,
        /// The control plane's values (the injector's selectors decide whether PgBouncer gets
        /// credentials).
        #[arg(long)]
        values: Option<PathBuf>,
        /// Also run Airflow (3 or 2) behind PgBouncer, until every component is healthy.
        #[arg(long)]
        airflow: Option<String>,
        /// Build a replayed deployment as written, lint errors included.
        #[arg(long, requires = "deployment")]
        reproduce: bool,
    },
    /// The kind tier: preflight, then the plan printed (--dry-run) or carried out.
    Kind {
        /// Where the run's rendered files and evidence go.
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        deployment: PathBuf,
        #[arg(long)]
        values: PathBuf,
        /// Astronomer's platform chart, unpacked (`helm pull astronomer/astronomer --untar`).
        #[arg(long)]
        astronomer_chart: Option<PathBuf>,
        #[arg(long, default_value = "0.37.7")]
        platform: String,
        /// An existing cluster instead of a new kind cluster.
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// The Docker network the cluster's nodes are on, which the KDC and PostgreSQL join
        /// (default `kind` for the harness's own kind cluster; required with --kubeconfig).
        #[arg(long)]
        external_network: Option<String>,
        /// The scenario runner (the `e2e` test binary) for the @kind scenarios step.
        #[arg(long)]
        runner: Option<PathBuf>,
        #[arg(long)]
        dry_run: bool,
    },
    /// Measures the stack start-up against a naive sequential script; prints JSON.
    Bench {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only the GSS/password re-login figures (gss_relogin_tps, password_relogin_tps).
        #[arg(long)]
        relogin_only: bool,
    },
}

/// The substrate these commands run on: the local one (the only tier this machine runs).
fn local() -> std::sync::Arc<dyn harness::substrate::Substrate> {
    harness::substrate::for_tier(harness::substrate::Tier::Local)
        .expect("the local tier is always available")
}

fn main() {
    harness::child::dispatch();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result: Result<()> = rt.block_on(async {
        let settings = harness_config::settings::Settings::from_vars(|k| std::env::var(k).ok())?;
        let knobs = harness::airflow::Knobs::from(&settings);
        match cli.cmd {
            Cmd::EnvServe {
                dir,
                deployment,
                values,
                airflow,
                reproduce,
            } => {
                let airflow = airflow
                    .as_deref()
                    .map(harness::airflow::Version::parse)
                    .transpose()?;
                let policy = if reproduce {
                    harness::replay::Policy::Reproduce
                } else {
                    harness::replay::Policy::Refuse
                };
                // Its containers carry the environment's name, so a sweep can tell whose they are.
                let run_id = format!(
                    "env-{}",
                    dir.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                );
                harness::envctl::serve(
                    harness::substrate::for_run(&settings, Some(&run_id))?,
                    &dir,
                    deployment
                        .as_deref()
                        .map(|d| (d, values.as_deref(), policy)),
                    airflow.map(|v| (v, knobs)),
                )
                .await
            }
            Cmd::Bench {
                out,
                relogin_only: true,
                ..
            } => harness::bench::run_relogin(local(), out.as_deref()).await,
            Cmd::Bench { runs, out, .. } if settings.tier == "docker" => {
                let substrate = harness::substrate::for_settings(&settings)?;
                let version = harness::airflow::Version::parse(&settings.airflow)?;
                harness::bench::run_docker(substrate, runs, out.as_deref(), version, knobs).await
            }
            Cmd::Bench { runs, out, .. } => {
                let version = harness::airflow::Version::parse(&settings.airflow)?;
                harness::bench::run(local(), runs, out.as_deref(), version, knobs).await
            }
            Cmd::Kind {
                dir,
                deployment,
                values,
                astronomer_chart,
                platform,
                kubeconfig,
                external_network,
                runner,
                dry_run,
            } => {
                let name = format!(
                    "astro-e2e-{}",
                    dir.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                );
                let mut options = harness::kind::Options::new(&name, &dir, &values, &deployment);
                options.platform = platform
                    .parse()
                    .map_err(|e: String| anyhow::anyhow!("--platform: {e}"))?;
                options.chart = astronomer_chart;
                options.kubeconfig = kubeconfig;
                options.external_network = external_network;
                options.runner = runner;
                let code = harness::kind::main(harness::kind::Request { options, dry_run }).await?;
                std::process::exit(code);
            }
        }
    });
    if let Err(e) = result {
        eprintln!("harness: {e:#}");
        std::process::exit(1);
    }
}
