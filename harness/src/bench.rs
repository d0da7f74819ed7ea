//! `cargo xtask bench`: how long the harness takes from nothing to the first GSS-authenticated
//! query through PgBouncer, against a naive sequential script doing the same steps, measured in
//! the same run on the same machine.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::probe::sql;
use crate::run::RunDir;
use crate::stack::{Shape, Stack};

/// One harness run: realm, PostgreSQL, PgBouncer, then the query that proves GSS.
async fn kerberos_stack_once(dir: &Path) -> Result<Duration> {
    let started = Instant::now();
    let mut stack = Stack::up(dir, Shape::default()).await?;
    let result = async {
        let opts = stack.default_pgbouncer_options();
        stack.start_pgbouncer(&opts).await?;
        let client = sql::connect(&stack.metadata_target(stack.client_password.expose()), Duration::from_secs(10))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let rows = sql::simple_rows(&client, "SELECT gss_authenticated::text AS g FROM pg_stat_gssapi WHERE pid = pg_backend_pid()").await?;
        ensure!(rows.first().and_then(|r| sql::cell(r, "g")) == Some("true"), "the session through PgBouncer is not GSS-authenticated");
        Ok(started.elapsed())
    }
    .await;
    stack.down().await;
    result
}

async fn baseline_once(dir: &Path) -> Result<Duration> {
    let script = crate::run::workspace_root().join("harness/bench/naive-kerberos-stack.sh");
    let bin = crate::pgbouncer::ensure_built().await?;
    std::fs::create_dir_all(dir)?;
    let started = Instant::now();
    let out = tokio::process::Command::new("bash")
        .arg(&script)
        .arg(&bin)
        .arg(dir)
        .output()
        .await
        .context("running the naive baseline script")?;
    let took = started.elapsed();
    ensure!(out.status.success(), "the baseline script failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(took)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub async fn run(runs: usize, out: Option<&Path>) -> Result<()> {
    let runs = runs.max(1);
    let run = RunDir::create(&crate::run::workspace_root().join("target/bench"))?;
    // One-time costs (the PgBouncer build, the template cluster) are paid before timing, as a
    // developer's second run would find them cached.
    crate::pgbouncer::ensure_built().await?;
    kerberos_stack_once(&run.subdir("warmup")?).await?;
    let mut harness_s = Vec::new();
    let mut baseline_s = Vec::new();
    for i in 0..runs {
        // Interleaved, so drift in machine load affects both sides alike.
        let d = kerberos_stack_once(&run.subdir(&format!("harness-{i}"))?).await?;
        harness_s.push(d.as_secs_f64());
        let b = baseline_once(&run.subdir(&format!("baseline-{i}"))?).await?;
        baseline_s.push(b.as_secs_f64());
        eprintln!("bench: run {}/{runs}: harness {:.3} s, baseline {:.3} s", i + 1, d.as_secs_f64(), b.as_secs_f64());
    }
    let k = median(harness_s.clone());
    let b = median(baseline_s.clone());
    let report = serde_json::json!({
        "kerberos_stack_s": (k * 1000.0).round() / 1000.0,
        "baseline_s": (b * 1000.0).round() / 1000.0,
        "speedup": ((b / k) * 100.0).round() / 100.0,
        "runs": runs,
        "samples": { "kerberos_stack_s": harness_s, "baseline_s": baseline_s },
        "machine": { "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0) },
    });
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(run.root.join("bench.json"), &text)?;
    if let Some(o) = out {
        std::fs::write(o, &text)?;
    }
    println!("{text}");
    eprintln!(
        "bench: kerberos_stack_s {k:.3} s (median of {runs}) vs baseline_s {b:.3} s: {:.2}x faster; target <= 1.5 s: {}",
        b / k,
        if k <= 1.5 { "met" } else { "NOT met" }
    );
    let _ = std::fs::remove_dir_all(&run.root);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(super::median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
