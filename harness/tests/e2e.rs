//! The Gherkin runner. `cargo xtask e2e` runs this binary with the run directory, tier and
//! configuration in the environment; it can also be run directly with `cargo test --test e2e`.

mod steps;

use std::io::Write;
use std::time::Duration;

use cucumber::tag::Ext as _;
use cucumber::writer::Stats as _;
use cucumber::{writer, World as _, WriterExt as _};

use steps::{context, World};

/// Scenarios that failed and why (the start of the failing step's error), for the summary: a CI
/// log that keeps only its end still says what broke.
static FAILED_NAMES: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// The first lines of a failure, redacted, short enough for a summary line.
fn why(ev: &cucumber::event::ScenarioFinished) -> String {
    use cucumber::event::ScenarioFinished as F;
    let text = match ev {
        F::StepFailed(_, _, e) => e.to_string(),
        F::BeforeHookFailed(_) => "the before-scenario hook failed".to_string(),
        _ => String::new(),
    };
    let text = text.trim_start_matches("Step panicked. Captured output: ");
    let mut short: String = text.lines().take(3).collect::<Vec<_>>().join(" / ");
    if short.chars().count() > 400 {
        short = short.chars().take(400).collect::<String>() + "…";
    }
    harness::redact::redact(&short)
}

fn main() {
    // Probe children (Kerberos logins in their own environment) re-enter here.
    harness::child::dispatch();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = rt.block_on(run());
    rt.shutdown_timeout(Duration::from_secs(5));
    std::process::exit(code);
}

async fn run() -> i32 {
    let started = std::time::Instant::now();
    let ctx = match context::init() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("e2e: {e:#}");
            return 2;
        }
    };
    // Ctrl-C and the whole-run limit stop every component this run started, then exit.
    tokio::spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            let n = context::abandon_run(context::get());
            eprintln!("\ne2e: interrupted; stopped {n} component(s) (process groups, containers, networks)");
            std::process::exit(130);
        }
    });
    let limit = ctx.run_timeout;
    tokio::spawn(async move {
        tokio::time::sleep(limit).await;
        let n = context::abandon_run(context::get());
        eprintln!("\ne2e: the run exceeded its limit of {limit:?}; stopped {n} component(s) (process groups, containers, networks)");
        std::process::exit(124);
    });

    let junit = std::fs::File::create(ctx.run.root.join("junit.xml")).expect("junit.xml");
    let json = std::fs::File::create(ctx.run.root.join("cucumber.json")).expect("cucumber.json");
    let features = harness::run::workspace_root().join("features");
    let selection = match context::Selection::from_settings(&ctx.settings) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("e2e: {e:#}");
            return 2;
        }
    };

    let summary = World::cucumber()
        .max_concurrent_scenarios(ctx.concurrency)
        .before(|_feature, _rule, scenario, world| {
            Box::pin(async move {
                world
                    .begin(&scenario.name, tags_of(_feature, _rule, scenario))
                    .await;
            })
        })
        .after(|_feature, _rule, scenario, ev, world| {
            Box::pin(async move {
                use cucumber::event::ScenarioFinished as F;
                let failed = matches!(ev, F::StepFailed(..) | F::BeforeHookFailed(..));
                if failed {
                    FAILED_NAMES
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((scenario.name.clone(), why(ev)));
                }
                steps::count(match ev {
                    F::StepPassed => steps::Outcome::Passed,
                    F::StepSkipped => steps::Outcome::Skipped,
                    _ => steps::Outcome::Failed,
                });
                if let Some(w) = world {
                    w.finish(&scenario.name, failed).await;
                }
            })
        })
        .with_writer(
            writer::Basic::raw(std::io::stdout(), writer::Coloring::Auto, 0)
                .summarized()
                .tee::<World, _>(writer::JUnit::for_tee(junit, 0))
                .tee::<World, _>(writer::Json::for_tee(json))
                .normalized(),
        )
        // Selection comes from E2E_TAGS / E2E_NAME (set by `cargo xtask e2e --tags/--name`), not
        // cucumber's own CLI, whose filters would replace the tier filter instead of narrowing it.
        .with_cli(cucumber::cli::Opts::<_, _, _, cucumber::cli::Empty>::default())
        .filter_run(features, move |feature, rule, scenario| {
            let tags = tags_of(feature, rule, scenario);
            // A scenario (or its feature/rule) names the tiers it applies to; it runs on the
            // first of the run's tiers it allows.
            let tier_ok = context::get().substrate_for(tags.iter().copied()).is_some();
            let tags_ok = selection
                .tags
                .as_ref()
                .is_none_or(|op| op.eval(tags.iter().copied()));
            let name_ok = selection
                .name
                .as_ref()
                .is_none_or(|re| re.is_match(&scenario.name));
            tier_ok && tags_ok && name_ok
        })
        .await;

    let sc = steps::tally();
    let failed = sc.failed + summary.parsing_errors() + summary.hook_errors();
    let report = serde_json::json!({
        "run_id": ctx.run.id,
        "tier": ctx.tier,
        "passed": sc.passed,
        "failed": failed,
        "skipped": sc.skipped,
        "parsing_errors": summary.parsing_errors(),
        "hook_errors": summary.hook_errors(),
    });
    let _ = std::fs::write(
        ctx.run.root.join("summary.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    );
    context::finish_run(ctx);
    // CI (CI=true) treats a skipped scenario as a failure: a missing tool must not pass silently.
    let skipped_fails = ctx.ci && sc.skipped > 0;
    let failed_names = FAILED_NAMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if !failed_names.is_empty() {
        println!("\nfailed (each scenario's logs and diagnosis are in its directory under the artifacts):");
        // The same replay settings, or the rerun would test another configuration.
        let mut same = String::new();
        if ctx.tier != "local" {
            same += &format!(" --tier {}", ctx.tier);
        }
        for (var, flag) in [
            ("E2E_DEPLOYMENT", "--deployment"),
            ("E2E_VALUES", "--values"),
        ] {
            if let Ok(v) = std::env::var(var) {
                same += &format!(" {flag} '{v}'");
            }
        }
        if std::env::var("E2E_REPLAY").as_deref() == Ok("reproduce") {
            same += " --reproduce";
        }
        for (n, why) in &failed_names {
            println!(
                "  {n}\n    why: {why}\n    rerun: cargo xtask e2e --name '^{}$'{same} --keep",
                regex::escape(n).replace('\'', ".")
            );
        }
    }
    println!("\nartifacts: {}", ctx.run.root.display());
    println!(
        "e2e: tier {} ({}), {:.0} s",
        ctx.tier,
        ctx.substrates
            .iter()
            .map(|(t, _)| t.to_string())
            .collect::<Vec<_>>()
            .join(" then "),
        started.elapsed().as_secs_f64()
    );
    println!(
        "e2e: {} passed, {} failed, {} skipped",
        sc.passed, failed, sc.skipped
    );
    let _ = std::io::stdout().flush();
    if failed > 0 || skipped_fails || summary.execution_has_failed() {
        1
    } else {
        0
    }
}

/// A scenario's tags with its feature's and rule's: tiers and capabilities are often tagged on
/// the feature.
fn tags_of<'a>(
    feature: &'a cucumber::gherkin::Feature,
    rule: Option<&'a cucumber::gherkin::Rule>,
    scenario: &'a cucumber::gherkin::Scenario,
) -> Vec<&'a String> {
    feature
        .tags
        .iter()
        .chain(rule.iter().flat_map(|r| r.tags.iter()))
        .chain(scenario.tags.iter())
        .collect()
}
