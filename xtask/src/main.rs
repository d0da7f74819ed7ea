//! `cargo xtask`: the commands people type. Each installs or builds what it needs first (saying
//! so), then hands over to the harness.

mod apiserver;
mod cargo;
mod chart_diff;
mod deps;
mod e2e;
mod env;
mod hygiene;
mod images;
mod kind;
mod pgbouncer_check;
mod reach;
mod render;
mod soak;
mod tidy;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Kerberized-database e2e harness for Astronomer's Airflow platform",
    after_help = "Start with `cargo xtask e2e`; artifacts land in target/e2e/latest/."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the Gherkin scenarios end to end (the main job).
    E2e(Box<e2e::E2eArgs>),
    /// Everything the project tests: unit tests, configuration fixtures and every scenario.
    Test {
        /// Never install anything; fail naming what is missing.
        #[arg(long)]
        offline: bool,
    },
    /// A long-lived environment to poke at by hand.
    Env {
        #[command(subcommand)]
        cmd: env::EnvCmd,
    },
    /// Check a deployment file and/or a control-plane values.yaml against the rules
    /// (harness/config/RULES.md). Exit 0 clean (warnings allowed), 1 errors, 2 unreadable input.
    Lint {
        /// The `variables` of Houston's deployment mutation, as YAML or JSON.
        #[arg(long, short = 'd')]
        deployment: Option<PathBuf>,
        /// The control plane's Helm values.
        #[arg(long, short = 'v')]
        values: Option<PathBuf>,
        /// The credential injector's pod selector, `k=v[,k=v]`; repeatable (any one may match).
        #[arg(long, short = 's')]
        selector: Vec<String>,
        #[arg(long, short = 'f', default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Time the stack from nothing to the first GSS-authenticated query, against a naive script.
    Bench {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Also write the JSON report here.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        offline: bool,
        /// The Airflow major version of the full-flow figures: 3 or 2 (unset: E2E_AIRFLOW, else 3).
        #[arg(long, value_parser = ["2", "3"])]
        airflow: Option<String>,
        /// Where the stack runs: local (processes; also the Airflow flow and the KDC-stall
        /// figure) or docker (containers, against a naive `docker run` script).
        #[arg(long, default_value = "local", value_parser = ["local", "docker"])]
        tier: String,
        /// Only the GSS/password re-login figures (local tier; about 20 s).
        #[arg(long)]
        relogin_only: bool,
    },
    /// Build the docker tier's images that are missing (content-hash tags; skips what is built).
    Images(images::ImagesArgs),
    /// Run the flow N times in a row: pass/fail counts, failed steps and the spread of run times.
    Soak(soak::SoakArgs),
    /// Runs interrupted by SIGINT at chosen points, two runs at once, and a canary planted in
    /// every secret: exit 1 if a process, port, temp directory or secret leaks.
    Hygiene(hygiene::HygieneArgs),
    /// What the machine lacks for the harness, and how to install it.
    Doctor {
        /// Install what is missing (apt-get, pip).
        #[arg(long)]
        fix: bool,
    },
    /// Formatting and clippy, as CI would want them.
    Check,
    /// Write everything the platform would render for a deployment: the chart values Houston
    /// passes, pgbouncer.ini, users.txt, the connection Secrets, the PgBouncer Deployment and
    /// Houston's PgBouncer Deployment.
    Render(render::RenderArgs),
    /// Render a real chart with Helm and the same values and print every difference from the
    /// model, one line each (exit 1 on any). Astronomer's airflow-chart or platform chart is
    /// the intended input; README.md, "Holding the model against the real charts".
    ChartDiff(chart_diff::ChartDiffArgs),
    /// PgBouncer's own regression suite (make check) on Debian's source with and without the
    /// GSSAPI patch, and the comparison; exit 1 if the patch breaks a test.
    PgbouncerCheck {
        #[arg(long)]
        offline: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::E2e(args) => e2e::run(&args),
        Cmd::Test { offline } => e2e::test(offline),
        Cmd::Env { cmd } => env::run(cmd),
        Cmd::Lint {
            deployment,
            values,
            selector,
            format,
        } => {
            let args = harness_config::LintArgs {
                deployment,
                values,
                selectors: selector,
                format: format.parse().expect("clap restricts the format"),
            };
            let code =
                harness_config::lint_main(&args, &mut std::io::stdout(), &mut std::io::stderr());
            return ExitCode::from(code as u8);
        }
        Cmd::Bench {
            runs,
            out,
            offline,
            airflow,
            tier,
            relogin_only,
        } => e2e::bench(runs, out, offline, airflow.as_deref(), &tier, relogin_only),
        Cmd::Soak(args) => soak::run(&args),
        Cmd::Hygiene(args) => hygiene::run(&args),
        Cmd::Images(args) => images::run(&args),
        Cmd::Doctor { fix } => deps::doctor(fix, false).map(|ok| if ok { 0 } else { 1 }),
        Cmd::Check => deps::ensure(&[deps::Need::Build], false).and_then(|_| cargo::check()),
        Cmd::Render(args) => render::run(&args),
        Cmd::ChartDiff(args) => chart_diff::run(&args),
        Cmd::PgbouncerCheck { offline } => pgbouncer_check::run(offline),
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::from(2)
        }
    }
}
