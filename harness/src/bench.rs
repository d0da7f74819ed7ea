//! `cargo xtask bench`: how long the harness takes from nothing to the first GSS-authenticated
//! query through PgBouncer, against a naive sequential script doing the same steps, measured in
//! the same run on the same machine; and from nothing to a healthy Airflow on that path, with and
//! without the cached migrated schema.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};

use crate::airflow::{Knobs, Version};
use crate::environment::Environment;
use crate::probe::sql;
use crate::run::RunDir;
use crate::stack::Shape;
use crate::substrate::Substrate;

/// One harness run: realm, PostgreSQL, PgBouncer, then the query that proves GSS.
async fn kerberos_stack_once(substrate: Arc<dyn Substrate>, dir: &Path) -> Result<Duration> {
    let started = Instant::now();
    let mut env = Environment::up_with_pgbouncer(substrate, dir, Shape::default()).await?;
    let result = async {
        let client = sql::connect(
            &env.metadata_target(env.client_password())?,
            Duration::from_secs(10),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let rows = sql::simple_rows(
            &client,
            "SELECT gss_authenticated::text AS g FROM pg_stat_gssapi WHERE pid = pg_backend_pid()",
        )
        .await?;
        ensure!(
            rows.first().and_then(|r| sql::cell(r, "g")) == Some("true"),
            "the session through PgBouncer is not GSS-authenticated"
        );
        Ok(started.elapsed())
    }
    .await;
    env.down().await;
    result
}

async fn baseline_once(dir: &Path) -> Result<Duration> {
    naive_once("naive-kerberos-stack.sh", &[], dir, Duration::from_secs(60)).await
}

/// The naive full flow (harness/bench/naive-airflow-flow.sh): the naive stack, then Airflow
/// migrated and started by hand, until every component is healthy over HTTP.
async fn airflow_baseline_once(dir: &Path, version: Version, offline: bool) -> Result<Duration> {
    let venv = crate::airflow::venv::ensure(version, offline).await?;
    let venv = venv.display().to_string();
    naive_once(
        "naive-airflow-flow.sh",
        &[&venv, version.major()],
        dir,
        Duration::from_secs(300),
    )
    .await
}

/// Runs one of the naive baseline scripts, timed from its start to its exit.
async fn naive_once(name: &str, extra: &[&str], dir: &Path, limit: Duration) -> Result<Duration> {
    let script = crate::run::workspace_root()
        .join("harness/bench")
        .join(name);
    let bin = crate::pgbouncer::ensure_built().await?;
    std::fs::create_dir_all(dir.join("pg"))?;
    // The script runs initdb as the service user inside `pg/`, which it does not hand over itself.
    crate::tools::give_to_service_user(&dir.join("pg"))?;
    let mut args = vec![bin.display().to_string(), dir.display().to_string()];
    args.extend(extra.iter().map(|a| a.to_string()));
    run_script(name, &script, &args, dir, limit).await
}

/// A naive `docker run` baseline (harness/bench/naive-docker-*.sh) on the same images as the
/// harness: the Kerberos stack, or with `airflow` the full flow of that version.
async fn docker_baseline_once(dir: &Path, airflow: Option<Version>) -> Result<Duration> {
    let image = |c: &str| {
        crate::images::built(c)
            .with_context(|| format!("the {c} image is not built: run `cargo xtask images`"))
    };
    std::fs::create_dir_all(dir)?;
    crate::run::make_traversable(dir)?;
    let mut args = vec![image("kdc")?, image("postgres")?, image("pgbouncer")?];
    let (name, limit) = match airflow {
        None => ("naive-docker-stack.sh", Duration::from_secs(60)),
        Some(v) => {
            args.push(image("redis")?);
            args.push(image(&format!("airflow-{}", v.pin()))?);
            args.push(v.major().to_string());
            ("naive-docker-airflow.sh", Duration::from_secs(300))
        }
    };
    args.push(dir.display().to_string());
    let script = crate::run::workspace_root()
        .join("harness/bench")
        .join(name);
    run_script(name, &script, &args, dir, limit).await
}

/// Runs a baseline script, timed from its start to its exit; a hung one is killed at `limit`.
async fn run_script(
    name: &str,
    script: &Path,
    args: &[String],
    dir: &Path,
    limit: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    let mut child = tokio::process::Command::new("bash")
        .arg(script)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .with_context(|| format!("running the naive baseline {name}"))?;
    let pgid = child.id().map(|id| nix::unistd::Pid::from_raw(id as i32));
    let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
    let output = async {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        if let Some(s) = stdout.as_mut() {
            let _ = tokio::io::AsyncReadExt::read_to_end(s, &mut o).await;
        }
        if let Some(s) = stderr.as_mut() {
            let _ = tokio::io::AsyncReadExt::read_to_end(s, &mut e).await;
        }
        (o, e)
    };
    // A hung baseline must not hang the bench.
    match tokio::time::timeout(limit, async {
        let ((_, err), status) = tokio::join!(output, child.wait());
        (err, status)
    })
    .await
    {
        Ok((err, status)) => {
            let status = status.with_context(|| format!("running the naive baseline {name}"))?;
            ensure!(
                status.success(),
                "the baseline {name} failed: {}",
                String::from_utf8_lossy(&err)
            );
        }
        Err(_) => {
            use nix::sys::signal::{kill, killpg, Signal};
            // SIGTERM first, so the script's exit trap stops what it started in other sessions
            // (Airflow's components); then SIGKILL for whatever is left.
            if let Some(g) = pgid {
                let _ = killpg(g, Signal::SIGTERM);
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
            if let Some(g) = pgid {
                let _ = killpg(g, Signal::SIGKILL);
            }
            // After SIGKILL no trap runs, and PgBouncer (`-d`) and PostgreSQL (pg_ctl) left the
            // process group: stop them by their pid files.
            for pidfile in [dir.join("pgb/pid"), dir.join("pg/data/postmaster.pid")] {
                let pid = std::fs::read_to_string(&pidfile)
                    .ok()
                    .and_then(|t| t.lines().next()?.trim().parse::<i32>().ok());
                if let Some(pid) = pid {
                    let _ = kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
            anyhow::bail!(
                "the baseline {name} did not finish within {limit:?} (see {})",
                dir.display()
            );
        }
    }
    Ok(started.elapsed())
}

struct FullFlow {
    version: crate::airflow::Version,
    cold: f64,
    warm: f64,
    warm_samples: Vec<f64>,
    phases: serde_json::Value,
    /// The naive sequential flow by hand (naive-airflow-flow.sh), or why it failed.
    baseline: Result<f64, String>,
}

/// Realm, PostgreSQL, PgBouncer and Airflow from nothing to every component healthy over HTTP:
/// once without the cached migrated schema (cold: `airflow db migrate` through PgBouncer), then
/// with it (warm). The venv install is a one-time cost, paid before timing like the PgBouncer
/// build. The version is the run's `airflow` setting (3 by default).
async fn full_flow(
    substrate: Arc<dyn Substrate>,
    run: &RunDir,
    runs: usize,
    version: Version,
    knobs: &Knobs,
) -> Result<FullFlow> {
    crate::airflow::venv::ensure(version, knobs.offline).await?;
    let cold_knobs = Knobs {
        use_template: false,
        ..knobs.clone()
    };
    let warm_knobs = Knobs {
        use_template: true,
        ..knobs.clone()
    };
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    let (cold, cold_phases) = crate::airflow::full_flow_once(
        substrate.clone(),
        &run.subdir("airflow-cold")?,
        version,
        cold_knobs,
    )
    .await?;
    eprintln!(
        "bench: Airflow {} cold (migrate): {:.3} s",
        version.pin(),
        cold.as_secs_f64()
    );
    let mut warm = Vec::new();
    let mut phases = vec![serde_json::json!({"cold": cold_phases})];
    // Each run starts five Python processes: three samples keep the bench under a few minutes.
    for i in 0..runs.min(3) {
        let (d, p) = crate::airflow::full_flow_once(
            substrate.clone(),
            &run.subdir(&format!("airflow-warm-{i}"))?,
            version,
            warm_knobs.clone(),
        )
        .await?;
        eprintln!(
            "bench: Airflow {} warm run {}: {:.3} s",
            version.pin(),
            i + 1,
            d.as_secs_f64()
        );
        warm.push(round(d.as_secs_f64()));
        phases.push(serde_json::json!({format!("warm-{i}"): p}));
    }
    // One sample: by hand the flow takes half a minute, and it is the yardstick, not the figure.
    let baseline = airflow_baseline_once(&run.subdir("airflow-naive")?, version, knobs.offline)
        .await
        .map(|d| round(d.as_secs_f64()))
        .map_err(|e| format!("{e:#}"));
    match &baseline {
        Ok(b) => eprintln!(
            "bench: Airflow {} naive flow by hand: {b:.3} s",
            version.pin()
        ),
        Err(e) => {
            eprintln!("bench: the naive Airflow flow failed, reporting the harness alone: {e}")
        }
    }
    Ok(FullFlow {
        version,
        baseline,
        cold: round(cold.as_secs_f64()),
        warm: round(median(warm.clone())),
        warm_samples: warm,
        phases: serde_json::Value::Array(phases),
    })
}

/// Prints the report and keeps it as the run's `bench.json` (and at `out` when given).
fn publish(run: &RunDir, out: Option<&Path>, report: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(run.root.join("bench.json"), &text)?;
    if let Some(o) = out {
        std::fs::write(o, &text)?;
    }
    println!("{text}");
    Ok(())
}

/// The machine a figure was measured on: its cores and its load at the end.
fn machine() -> serde_json::Value {
    serde_json::json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "load_average": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    })
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

/// The login the bench's password baseline uses (a role of its own, admitted with md5).
const PASSWORD_ROLE: &str = "bench_password_user";
/// PgBouncer's database for it, beside the deployment's metadata alias on the same server.
const PASSWORD_ALIAS: &str = "bench-password";

/// One pgbench run through PgBouncer: its throughput and the server logins PgBouncer made.
#[derive(Debug, serde::Serialize)]
struct Relogin {
    tps: f64,
    logins: usize,
    failed_transactions: u64,
}

/// GSS re-login against password re-login (issue 14): PgBouncer with `server_lifetime = 0`
/// (each server connection used once, so every transaction logs in again), pgbench `SELECT 1`
/// through the deployment's metadata alias (GSSAPI to PostgreSQL) and through an alias whose
/// server login is a password (md5), on the same server in the same run.
async fn relogin(
    substrate: Arc<dyn Substrate>,
    dir: &Path,
    seconds: u32,
) -> Result<serde_json::Value> {
    let mut env = Environment::up(substrate, dir, Shape::default()).await?;
    let result = async {
        let password = crate::secret::Secret::generate();
        env.admit_password_role(PASSWORD_ROLE, password.expose()).await?;
        let pg = env.peer_endpoint(crate::environment::Component::Postgres)?;
        let mut opts = env.default_pgbouncer_options();
        opts.extra_ini = vec![
            "server_lifetime = 0".into(),
            "[databases]".into(),
            format!(
                "{PASSWORD_ALIAS} = host={} port={} dbname={} user={PASSWORD_ROLE} password={} pool_size=10",
                pg.host,
                pg.port,
                env.shape().names.metadata_db,
                password.expose()
            ),
        ];
        env.start_pgbouncer(&opts).await?;
        let gss = pgbench(&env, &env.shape().metadata_alias(), dir, seconds, "GSSAPI login to server succeeded").await?;
        let pw = pgbench(
            &env,
            PASSWORD_ALIAS,
            dir,
            seconds,
            &format!("{PASSWORD_ALIAS}/{PASSWORD_ROLE}@"),
        )
        .await?;
        ensure!(
            gss.failed_transactions == 0 && pw.failed_transactions == 0,
            "pgbench saw failed transactions: GSS {}, password {}",
            gss.failed_transactions,
            pw.failed_transactions
        );
        ensure!(gss.logins > 0, "PgBouncer logged no GSSAPI login during the GSS run");
        Ok(serde_json::json!({
            "gss_relogin_tps": (gss.tps * 10.0).round() / 10.0,
            "password_relogin_tps": (pw.tps * 10.0).round() / 10.0,
            "ratio": ((gss.tps / pw.tps) * 100.0).round() / 100.0,
            "gss": gss,
            "password": pw,
            "seconds": seconds,
            "mode": "server_lifetime = 0 (a server login per transaction), pgbench -n -c 4 -j 2 SELECT 1",
        }))
    }
    .await;
    env.down().await;
    result
}

/// pgbench for `seconds` against PgBouncer's `database`; `login_marker` counts the server
/// logins in PgBouncer's log meanwhile (its GSSAPI line, or the alias's new server connections).
async fn pgbench(
    env: &Environment,
    database: &str,
    dir: &Path,
    seconds: u32,
    login_marker: &str,
) -> Result<Relogin> {
    use crate::environment::Component;
    let script = dir.join("select1.sql");
    std::fs::write(&script, "SELECT 1;\n")?;
    let at = env.endpoint(Component::Pgbouncer)?;
    let cursor = env.log_cursor(Component::Pgbouncer);
    let conn = format!(
        "host={} port={} dbname={database} user={}",
        at.host,
        at.port,
        env.shape().metadata_user()
    );
    let out = crate::tools::run(
        &crate::component::Exec::new("pgbench through PgBouncer", crate::tools::path("pgbench")?)
            .args([
                "-n".to_string(),
                "-f".into(),
                script.display().to_string(),
                "-c".into(),
                "4".into(),
                "-j".into(),
                "2".into(),
                "-T".into(),
                seconds.to_string(),
                conn,
            ])
            .envs(&[("PGPASSWORD".into(), env.client_password().into())]),
        None,
    )
    .await?;
    let number = |prefix: &str| -> Option<f64> {
        out.stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
    };
    let tps =
        number("tps = ").with_context(|| format!("pgbench printed no tps:\n{}", out.stdout))?;
    let log = env.log_since(Component::Pgbouncer, cursor);
    let logins = if login_marker.contains("GSSAPI") {
        log.matches(login_marker).count()
    } else {
        log.lines()
            .filter(|l| l.contains(login_marker) && l.contains("new connection to server"))
            .count()
    };
    Ok(Relogin {
        tps,
        logins,
        failed_transactions: number("number of failed transactions: ").unwrap_or(0.0) as u64,
    })
}

/// `cargo xtask bench --relogin-only`: the re-login figures alone.
pub async fn run_relogin(substrate: Arc<dyn Substrate>, out: Option<&Path>) -> Result<()> {
    let run = RunDir::create(&crate::run::workspace_root().join("target/bench"))?;
    crate::pgbouncer::ensure_built().await?;
    let mut report = relogin(substrate, &run.subdir("relogin")?, 5).await?;
    report["machine"] = machine();
    publish(&run, out, &report)?;
    Ok(())
}

/// `cargo xtask bench --tier docker`: the Kerberos stack on containers against the naive
/// `docker run` script on the same images, interleaved. (The full Airflow flow does not run on
/// containers yet.)
pub async fn run_docker(
    substrate: Arc<dyn Substrate>,
    runs: usize,
    out: Option<&Path>,
    version: Version,
    knobs: Knobs,
) -> Result<()> {
    let runs = runs.max(1);
    let run = RunDir::create(&crate::run::workspace_root().join("target/bench"))?;
    kerberos_stack_once(substrate.clone(), &run.subdir("warmup")?).await?;
    let (mut harness_s, mut baseline_s) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let d =
            kerberos_stack_once(substrate.clone(), &run.subdir(&format!("harness-{i}"))?).await?;
        let b = docker_baseline_once(&run.subdir(&format!("baseline-{i}"))?, None).await?;
        eprintln!(
            "bench: run {}/{runs} on docker: harness {:.3} s, naive docker run {:.3} s",
            i + 1,
            d.as_secs_f64(),
            b.as_secs_f64()
        );
        harness_s.push(d.as_secs_f64());
        baseline_s.push(b.as_secs_f64());
    }
    let (k, b) = (median(harness_s.clone()), median(baseline_s.clone()));
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    // Airflow on containers: a first flow that makes the cached schema if it is missing (not
    // timed), then warm flows interleaved with the naive script's (each about a minute, so at
    // most three of each).
    let warm_knobs = Knobs {
        use_template: true,
        ..knobs
    };
    crate::airflow::full_flow_once(
        substrate.clone(),
        &run.subdir("airflow-first")?,
        version,
        warm_knobs.clone(),
    )
    .await?;
    let (mut warm_s, mut naive_s, mut phases) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs.min(3) {
        let (d, p) = crate::airflow::full_flow_once(
            substrate.clone(),
            &run.subdir(&format!("airflow-warm-{i}"))?,
            version,
            warm_knobs.clone(),
        )
        .await?;
        let n = docker_baseline_once(&run.subdir(&format!("airflow-naive-{i}"))?, Some(version))
            .await?;
        eprintln!(
            "bench: Airflow {} on docker, run {}/{}: harness {:.3} s, naive docker run {:.3} s",
            version.pin(),
            i + 1,
            runs.min(3),
            d.as_secs_f64(),
            n.as_secs_f64()
        );
        warm_s.push(round(d.as_secs_f64()));
        naive_s.push(round(n.as_secs_f64()));
        phases.push(serde_json::json!({ format!("warm-{i}"): p }));
    }
    let (w, n) = (median(warm_s.clone()), median(naive_s.clone()));
    let report = serde_json::json!({
        "tier": "docker",
        "kerberos_stack_s": round(k),
        "baseline_s": round(b),
        "speedup": ((b / k) * 100.0).round() / 100.0,
        "airflow": version.pin(),
        "full_flow_warm_s": round(w),
        "full_flow_baseline_s": round(n),
        "full_flow_speedup": ((n / w) * 100.0).round() / 100.0,
        "full_flow_phases": phases,
        "runs": runs,
        "samples": {
            "kerberos_stack_s": harness_s,
            "baseline_s": baseline_s,
            "full_flow_warm_s": warm_s,
            "full_flow_baseline_s": naive_s,
        },
        "machine": machine(),
    });
    publish(&run, out, &report)?;
    Ok(())
}

/// The bench on `substrate`, Airflow `version` run with `knobs`.
pub async fn run(
    substrate: Arc<dyn Substrate>,
    runs: usize,
    out: Option<&Path>,
    version: Version,
    knobs: Knobs,
) -> Result<()> {
    let runs = runs.max(1);
    let run = RunDir::create(&crate::run::workspace_root().join("target/bench"))?;
    // One-time costs (the PgBouncer build, the template cluster) are paid before timing, as a
    // developer's second run would find them cached.
    crate::pgbouncer::ensure_built().await?;
    kerberos_stack_once(substrate.clone(), &run.subdir("warmup")?).await?;
    let flow = full_flow(substrate.clone(), &run, runs, version, &knobs).await?;
    let mut harness_s = Vec::new();
    let mut baseline_s = Vec::new();
    let mut baseline_error = None;
    for i in 0..runs {
        // Interleaved, so drift in machine load affects both sides alike.
        let d =
            kerberos_stack_once(substrate.clone(), &run.subdir(&format!("harness-{i}"))?).await?;
        harness_s.push(d.as_secs_f64());
        if baseline_error.is_none() {
            match baseline_once(&run.subdir(&format!("baseline-{i}"))?).await {
                Ok(b) => baseline_s.push(b.as_secs_f64()),
                Err(e) => {
                    eprintln!("bench: the baseline failed, reporting the harness alone: {e:#}");
                    baseline_error = Some(format!("{e:#}"));
                }
            }
        }
        eprintln!(
            "bench: run {}/{runs}: harness {:.3} s, baseline {}",
            i + 1,
            d.as_secs_f64(),
            baseline_s
                .last()
                .map_or("failed".to_string(), |b| format!("{b:.3} s"))
        );
    }
    let relogin = relogin(substrate.clone(), &run.subdir("relogin")?, 5).await?;
    eprintln!(
        "bench: gss_relogin_tps {} vs password_relogin_tps {} (ratio {})",
        relogin["gss_relogin_tps"], relogin["password_relogin_tps"], relogin["ratio"]
    );
    // The KDC-stall figure (issue 14): once, 5 s stopped, as the stall was first measured.
    let stall = crate::fault::kdc_stall::measure(
        substrate.clone(),
        &run.subdir("kdc-stall")?,
        std::time::Duration::from_secs(5),
    )
    .await?;
    eprintln!(
        "bench: kdc_stall_max_gap_ms {:.1} ms with the KDC stopped for {:.0} ms (floor <= 50 ms: {})",
        stall.max_gap_ms,
        stall.kdc_stopped_ms,
        if stall.max_gap_ms <= 50.0 { "met" } else { "NOT met" }
    );
    let k = median(harness_s.clone());
    let b = if baseline_s.is_empty() {
        f64::NAN
    } else {
        median(baseline_s.clone())
    };
    let report = serde_json::json!({
        "kerberos_stack_s": (k * 1000.0).round() / 1000.0,
        "baseline_s": (b * 1000.0).round() / 1000.0,
        "speedup": ((b / k) * 100.0).round() / 100.0,
        "full_flow_cold_s": flow.cold,
        "full_flow_warm_s": flow.warm,
        "full_flow_baseline_s": flow.baseline.as_ref().ok(),
        "full_flow_baseline_error": flow.baseline.as_ref().err(),
        "airflow_version": flow.version.pin(),
        "kdc_stall_max_gap_ms": stall.max_gap_ms,
        "gss_relogin_tps": relogin["gss_relogin_tps"],
        "password_relogin_tps": relogin["password_relogin_tps"],
        "relogin": relogin,
        "kdc_stall": stall,
        "baseline_error": baseline_error,
        "runs": runs,
        "samples": {
            "kerberos_stack_s": harness_s,
            "baseline_s": baseline_s,
            "full_flow_warm_s": flow.warm_samples,
            "full_flow_phases": flow.phases,
        },
        "machine": machine(),
    });
    publish(&run, out, &report)?;
    eprintln!(
        "bench: kerberos_stack_s {k:.3} s (median of {runs}) vs baseline_s {b:.3} s: {:.2}x faster; target <= 1.5 s: {}",
        b / k,
        if k <= 1.5 { "met" } else { "NOT met" }
    );
    // The targets (issue 3) are set for the default flow, Airflow 3; Airflow 2 is reported
    // against them for comparison only.
    let scope = match flow.version {
        Version::Airflow3 => "",
        Version::Airflow2 => " (set for Airflow 3)",
    };
    let verdict = |v: f64, t: f64| {
        let met = if v <= t { "met" } else { "NOT met" };
        format!("{met}{scope}")
    };
    eprintln!(
        "bench: Airflow {} from nothing to all-healthy: cold {:.1} s (target <= 15 s: {}), warm {:.1} s (median; target <= 6 s: {})",
        flow.version.pin(),
        flow.cold,
        verdict(flow.cold, 15.0),
        flow.warm,
        verdict(flow.warm, 6.0)
    );
    if let Ok(b) = flow.baseline {
        eprintln!(
            "bench: Airflow {} naive flow by hand (baseline): {b:.1} s; the harness is {:.1}x faster cold, {:.1}x warm",
            flow.version.pin(),
            b / flow.cold,
            b / flow.warm
        );
    }
    // The runs' directories go (clusters, logs, keytabs); bench.json stays as the record.
    for entry in std::fs::read_dir(&run.root).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    eprintln!("bench: report in {}", run.root.join("bench.json").display());
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
