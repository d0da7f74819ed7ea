//! The harness library's own command line, driven by `cargo xtask` (which installs what is
//! missing first): a long-lived environment for poking at by hand, and the benchmark.

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
    },
    /// Measures the stack start-up against a naive sequential script; prints JSON.
    Bench {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn main() {
    harness::child::dispatch();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result: Result<()> = rt.block_on(async {
        match cli.cmd {
            Cmd::EnvServe {
                dir,
                deployment,
                values,
                airflow,
            } => {
                let airflow = airflow
                    .as_deref()
                    .map(harness::airflow::Version::parse)
                    .transpose()?;
                harness::envctl::serve(&dir, deployment.as_deref(), values.as_deref(), airflow)
                    .await
            }
            Cmd::Bench { runs, out } => harness::bench::run(runs, out.as_deref()).await,
        }
    });
    if let Err(e) = result {
        eprintln!("harness: {e:#}");
        std::process::exit(1);
    }
}
