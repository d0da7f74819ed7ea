//! `cargo xtask soak`: the same flow run N times in a row, to say whether the harness can be
//! trusted under repetition. Each run is a whole `cargo xtask e2e` (its own run directory, its
//! own realm and ports), so a soak measures exactly what a user or CI gets; the report counts
//! runs, names the steps that failed and how often, and gives the spread of run times.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};

use crate::cargo;

#[derive(Args, Debug)]
pub struct SoakArgs {
    /// How many times to run the flow.
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// A cucumber tag expression narrowing the scenarios of each run, as for `e2e --tags`.
    #[arg(long)]
    pub tags: Option<String>,
    /// Also write the JSON report here (it is always kept under target/soak/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Further `cargo xtask e2e` flags, after `--` (e.g. `-- --airflow 2 --concurrency 2`).
    #[arg(last = true)]
    pub e2e_args: Vec<String>,
}

/// What one `e2e` run left behind, read from its output and its cucumber report.
struct Run {
    seconds: f64,
    exit: i32,
    passed: usize,
    failed: usize,
    skipped: usize,
    artifacts: Option<PathBuf>,
    failed_steps: Vec<String>,
}

impl Run {
    fn ok(&self) -> bool {
        self.exit == 0 && self.failed == 0 && self.passed > 0
    }
}

pub fn run(a: &SoakArgs) -> Result<i32> {
    if a.runs == 0 {
        bail!("--runs must be at least 1");
    }
    // Build once up front and hand every run the same runner, so a run's time is the flow's,
    // never a rebuild (the tree may change while a long soak runs).
    let runner = cargo::test_binary(
        "building the harness and its scenario runner",
        "harness",
        "e2e",
    )?;
    let exe = crate::cargo::xtask_exe().context("locating the xtask binary")?;
    let mut runs = Vec::with_capacity(a.runs);
    for i in 1..=a.runs {
        eprintln!("soak: run {i}/{} ...", a.runs);
        let run = one(&exe, &runner, a)?;
        eprintln!(
            "soak: run {i}/{}: {} in {:.1} s ({} passed, {} failed, {} skipped){}",
            a.runs,
            if run.ok() { "passed" } else { "FAILED" },
            run.seconds,
            run.passed,
            run.failed,
            run.skipped,
            run.artifacts
                .as_ref()
                .map(|p| format!(", artifacts {}", p.display()))
                .unwrap_or_default()
        );
        let interrupted = run.exit == 130;
        runs.push(run);
        if interrupted {
            eprintln!("soak: interrupted; reporting the runs so far");
            break;
        }
    }
    let report = report(a, &runs);
    let dir = cargo::root()
        .join("target/soak")
        .join(crate::cargo::stamp());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(dir.join("soak.json"), &text)?;
    if let Some(out) = &a.out {
        std::fs::write(out, &text).with_context(|| format!("writing {}", out.display()))?;
    }
    println!("{text}");
    eprintln!("{}", human(&report));
    eprintln!("soak: report kept in {}", dir.join("soak.json").display());
    Ok(if runs.iter().all(Run::ok) && runs.len() == a.runs {
        0
    } else {
        1
    })
}

fn one(exe: &Path, runner: &Path, a: &SoakArgs) -> Result<Run> {
    let mut cmd = Command::new(exe);
    cmd.arg("e2e").arg("--runner").arg(runner);
    if let Some(t) = &a.tags {
        cmd.args(["--tags", t]);
    }
    cmd.args(&a.e2e_args);
    cmd.stdout(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().context("starting `cargo xtask e2e`")?;
    // The child stops its own components on Ctrl-C; the soak waits for it to finish doing so.
    crate::e2e::ignore_interrupts();
    let mut artifacts = None;
    let mut counts = None;
    let log = BufReader::new(child.stdout.take().expect("stdout is piped"));
    for line in log.lines() {
        let line = line.context("reading the run's output")?;
        if let Some(p) = line.strip_prefix("artifacts: ") {
            artifacts = Some(PathBuf::from(p.trim()));
        }
        if let Some(c) = summary_counts(&line) {
            counts = Some(c);
        }
    }
    let status = child.wait().context("waiting for `cargo xtask e2e`")?;
    let seconds = started.elapsed().as_secs_f64();
    let (passed, failed, skipped) = counts.unwrap_or((0, 0, 0));
    let failed_steps = artifacts
        .as_deref()
        .map(|d| failed_steps(&d.join("cucumber.json")))
        .unwrap_or_default();
    Ok(Run {
        seconds,
        exit: status.code().unwrap_or(130),
        passed,
        failed,
        skipped,
        artifacts,
        failed_steps,
    })
}

/// `e2e: N passed, N failed, N skipped`, the runner's last line.
fn summary_counts(line: &str) -> Option<(usize, usize, usize)> {
    let rest = line.strip_prefix("e2e: ")?;
    let mut n = rest.split(", ").map(|part| {
        let (num, _) = part.split_once(' ')?;
        num.parse::<usize>().ok()
    });
    Some((n.next()??, n.next()??, n.next()??))
}

/// Each failed step as `<feature>: <scenario> / <step>`, from a cucumber JSON report. A run
/// that died before writing one has no steps to name; its exit code still counts it failed.
fn failed_steps(report: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(report) else {
        return Vec::new();
    };
    let Ok(Value::Array(features)) = serde_json::from_str::<Value>(&text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for f in &features {
        let feature = f["name"].as_str().unwrap_or("?");
        for s in f["elements"].as_array().into_iter().flatten() {
            let scenario = s["name"].as_str().unwrap_or("?");
            let hooks = s["before"].as_array().into_iter().flatten();
            let hooks = hooks.chain(s["after"].as_array().into_iter().flatten());
            let steps = s["steps"].as_array().into_iter().flatten();
            for st in steps.chain(hooks) {
                if st["result"]["status"].as_str() == Some("failed") {
                    let step = st["name"].as_str().unwrap_or("a hook");
                    out.push(format!("{feature}: {scenario} / {step}"));
                }
            }
        }
    }
    out
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(a: &SoakArgs, runs: &[Run]) -> Value {
    let mut secs: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
    secs.sort_by(f64::total_cmp);
    let mut by_step: BTreeMap<&str, usize> = BTreeMap::new();
    for r in runs {
        for s in &r.failed_steps {
            *by_step.entry(s).or_default() += 1;
        }
    }
    let round = |x: f64| (x * 100.0).round() / 100.0;
    json!({
        "schema": "astro-kerberos-soak/v1",
        "requested_runs": a.runs,
        "tags": a.tags,
        "e2e_args": a.e2e_args,
        "runs": runs.len(),
        "runs_passed": runs.iter().filter(|r| r.ok()).count(),
        "runs_failed": runs.iter().filter(|r| !r.ok()).count(),
        "scenarios": {
            "passed": runs.iter().map(|r| r.passed).sum::<usize>(),
            "failed": runs.iter().map(|r| r.failed).sum::<usize>(),
            "skipped": runs.iter().map(|r| r.skipped).sum::<usize>(),
        },
        "failures_by_step": by_step,
        "run_seconds": {
            "min": round(secs[0]),
            "median": round(percentile(&secs, 50.0)),
            "p95": round(percentile(&secs, 95.0)),
            "max": round(secs[secs.len() - 1]),
        },
        "samples": runs.iter().map(|r| json!({
            "seconds": round(r.seconds),
            "exit": r.exit,
            "passed": r.passed,
            "failed": r.failed,
            "skipped": r.skipped,
            "artifacts": r.artifacts,
            "failed_steps": r.failed_steps,
        })).collect::<Vec<_>>(),
    })
}

fn human(r: &Value) -> String {
    let s = &r["run_seconds"];
    format!(
        "soak: {} runs, {} passed, {} failed; run time min {} s, median {} s, p95 {} s, max {} s{}",
        r["runs"],
        r["runs_passed"],
        r["runs_failed"],
        s["min"],
        s["median"],
        s["p95"],
        s["max"],
        match r["failures_by_step"].as_object() {
            Some(m) if !m.is_empty() => format!(
                "; failed steps: {}",
                m.iter()
                    .map(|(k, v)| format!("{k} ({v}x)"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            _ => String::new(),
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_runner_summary_line() {
        assert_eq!(
            summary_counts("e2e: 12 passed, 1 failed, 0 skipped"),
            Some((12, 1, 0))
        );
        assert_eq!(summary_counts("e2e: interrupted"), None);
        assert_eq!(summary_counts("xtask: e2e: 1 passed"), None);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 10.0);
        assert_eq!(percentile(&v, 95.0), 19.0);
        assert_eq!(percentile(&v, 100.0), 20.0);
        assert_eq!(percentile(&[3.0], 95.0), 3.0);
    }

    #[test]
    fn names_failed_steps_and_hooks_from_a_cucumber_report() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("cucumber.json");
        std::fs::write(
            &f,
            r#"[{"name":"PgBouncer","elements":[
                {"name":"ok","steps":[{"name":"a","result":{"status":"passed"}}]},
                {"name":"bad","steps":[{"name":"b","result":{"status":"failed"}}],
                 "after":[{"result":{"status":"failed"}}]}]}]"#,
        )
        .unwrap();
        assert_eq!(
            failed_steps(&f),
            vec!["PgBouncer: bad / b", "PgBouncer: bad / a hook"]
        );
        assert!(failed_steps(&dir.path().join("missing.json")).is_empty());
    }
}
