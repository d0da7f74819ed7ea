//! Steps for Airflow on the Kerberized path: deploy it against PgBouncer, prove it healthy over
//! HTTP and in a browser, prove its sessions are GSS-authenticated, run a DAG on the Celery worker,
//! and name the cause when it cannot reach its database.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use cucumber::{then, when};
use harness::airflow::{self, browser, health::Health, Airflow, Options, Version};
use harness::environment::Component;
use harness::probe::sql;
use harness::secret::Secret;

use super::{within, World};

/// One scenario's Airflow: the deployment, what deploying it gave, and the DAG run it started.
#[derive(Default)]
pub struct AirflowState {
    pub deployment: Option<Airflow>,
    /// Healthy, or the harness's diagnosis of why not.
    pub outcome: Option<Result<Health, String>>,
    pub elapsed: Duration,
    pub run: Option<(String, String)>,
    /// Held for the whole scenario: bounds how many Airflow deployments share the two cores.
    pub slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// How the run's settings say Airflow is run.
fn knobs() -> airflow::Knobs {
    airflow::Knobs::from(&super::context::get().settings)
}

/// The Airflow version of scenarios that do not name one (`--airflow`).
fn run_version() -> Result<Version> {
    Version::parse(&super::context::get().settings.airflow)
}

fn save(w: &World, name: &str, text: &str) -> Result<()> {
    let path = w.dir()?.join(name);
    std::fs::write(&path, harness::redact::redact(text))
        .with_context(|| format!("could not write {}", path.display()))
}

async fn deploy(w: &mut World, opts: Options) -> Result<()> {
    w.airflow.slot = Some(airflow::slot(super::context::get().settings.airflow_concurrency).await);
    let dir = w.dir()?.join("airflow");
    let started = Instant::now();
    let stack = w.env()?;
    // Start-up includes a one-time venv install on a fresh machine (about 15 s with uv).
    let af = within(
        "installing and starting Airflow",
        Duration::from_secs(400),
        Airflow::start(stack, &opts, &dir),
    )
    .await;
    let mut af = match af {
        Ok(af) => af,
        Err(e) => {
            w.airflow.elapsed = started.elapsed();
            let failed_after = w.airflow.elapsed.as_secs_f64();
            save(
                w,
                "airflow-timings.json",
                &serde_json::json!({"version": opts.version.pin(), "failed_after_s": failed_after})
                    .to_string(),
            )?;
            w.airflow.outcome = Some(Err(format!("{e:#}")));
            return Ok(());
        }
    };
    let healthy = af.wait_healthy(Duration::from_secs(150)).await;
    w.airflow.elapsed = started.elapsed();
    let timings: serde_json::Map<String, serde_json::Value> = af
        .timings
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::json!((v * 1000.0).round() / 1000.0)))
        .collect();
    save(
        w,
        "airflow-timings.json",
        &serde_json::to_string_pretty(&serde_json::json!({
            "version": opts.version.pin(),
            "schema": format!("{:?}", af.schema),
            "phases": timings,
            "healthy_or_failed_after_s": w.airflow.elapsed.as_secs_f64(),
        }))?,
    )?;
    match healthy {
        Ok(h) => {
            save(
                w,
                "airflow-health.json",
                &serde_json::to_string_pretty(&h.raw)?,
            )?;
            w.airflow.outcome = Some(Ok(h));
        }
        Err(e) => w.airflow.outcome = Some(Err(format!("{e:#}"))),
    }
    w.airflow.deployment = Some(af);
    Ok(())
}

#[when(expr = "Airflow {string} is deployed with its connections through PgBouncer")]
async fn deploy_version(w: &mut World, version: String) -> Result<()> {
    deploy(w, Options::new(Version::parse(&version)?, knobs())).await
}

#[when("Airflow is deployed with its connections through PgBouncer")]
async fn deploy_default(w: &mut World) -> Result<()> {
    deploy(w, Options::new(run_version()?, knobs())).await
}

#[when("Airflow is deployed with a metadata connection password that differs from users.txt")]
async fn deploy_wrong_password(w: &mut World) -> Result<()> {
    let opts = Options {
        metadata_password: Some(Secret::generate()),
        ..Options::new(run_version()?, knobs())
    };
    deploy(w, opts).await
}

fn deployment(w: &mut World) -> Result<&mut Airflow> {
    if let Some(Err(e)) = &w.airflow.outcome {
        bail!("Airflow is not healthy: {e}");
    }
    w.airflow.deployment.as_mut().context(
        "Airflow was not deployed: the scenario needs `When Airflow ... is deployed` first",
    )
}

#[then("every component in Airflow's health report is healthy")]
async fn all_healthy(w: &mut World) -> Result<()> {
    let af = deployment(w)?;
    let h = af.health().await?;
    ensure!(
        h.all_healthy(af.version),
        "Airflow {} reports components that are not healthy: {} (full report: {})",
        af.version.pin(),
        h.not_healthy(af.version).join(", "),
        h.summary()
    );
    Ok(())
}

#[then("Airflow's REST API rejects a malformed parameter and answers a valid one")]
async fn api_validates(w: &mut World) -> Result<()> {
    let af = deployment(w)?;
    within(
        "checking the REST API's request validation",
        Duration::from_secs(60),
        af.check_request_validation(),
    )
    .await?;
    Ok(())
}

#[then("a browser logs in to the Airflow UI and sees it healthy")]
async fn browser_sees_ui(w: &mut World) -> Result<()> {
    let dir = w.dir()?.clone();
    let af = deployment(w)?;
    let ui = browser::check_ui(af, &dir, Duration::from_secs(120)).await?;
    let meta = std::fs::metadata(&ui.screenshot)
        .with_context(|| format!("no screenshot at {}", ui.screenshot.display()))?;
    // A blank page compresses to a few kilobytes; a rendered Airflow page does not.
    ensure!(
        meta.len() > 20_000,
        "the screenshot {} is only {} bytes: the page looks blank",
        ui.screenshot.display(),
        meta.len()
    );
    let version = af.version;
    save(
        w,
        "airflow-ui.txt",
        &format!(
            "url: {}\nscreenshot: {}\n\n{}",
            ui.url,
            ui.screenshot.display(),
            ui.text
        ),
    )?;
    if version == Version::Airflow3 {
        // The badges and the API read the same health; the API proves they were green.
        let h = deployment(w)?.health().await?;
        ensure!(
            h.all_healthy(version),
            "the UI loaded, but health says {}",
            h.summary()
        );
    }
    Ok(())
}

#[then(expr = "pg_stat_gssapi shows Airflow's connections GSS-authenticated as {string}")]
async fn airflow_sessions_gss(w: &mut World, principal: String) -> Result<()> {
    let principal = w.x(&principal);
    deployment(w)?;
    let rows = w.env()?.superuser_rows(
        "postgres",
        "SELECT a.pid::text AS pid, a.usename AS role, a.datname AS db, a.client_addr::text AS client, \
         g.gss_authenticated::text AS gss, g.principal AS principal, g.encrypted::text AS encrypted \
         FROM pg_stat_activity a JOIN pg_stat_gssapi g ON g.pid = a.pid \
         WHERE a.backend_type = 'client backend' AND a.usename IS DISTINCT FROM 'postgres' ORDER BY a.pid",
    )
    .await?;
    let mut text = String::from("pid role db client gss_authenticated principal encrypted\n");
    for r in &rows {
        let cells: Vec<&str> = [
            "pid",
            "role",
            "db",
            "client",
            "gss",
            "principal",
            "encrypted",
        ]
        .iter()
        .map(|c| sql::cell(r, c).unwrap_or("-"))
        .collect();
        text += &cells.join(" ");
        text.push('\n');
    }
    save(w, "pg_stat_gssapi.txt", &text)?;
    ensure!(!rows.is_empty(), "PostgreSQL has no session from PgBouncer, although Airflow is healthy: is Airflow really going through PgBouncer?");
    let bad: Vec<&str> = text
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            f.get(4) != Some(&"true") || f.get(5) != Some(&principal.as_str())
        })
        .collect();
    ensure!(
        bad.is_empty(),
        "sessions not GSS-authenticated as {principal}:\n{}",
        bad.join("\n")
    );
    Ok(())
}

#[when(expr = "the DAG {string} is triggered")]
async fn trigger(w: &mut World, dag: String) -> Result<()> {
    let af = deployment(w)?;
    let run = within(
        "triggering the DAG",
        Duration::from_secs(120),
        af.trigger_dag(&dag, Duration::from_secs(90)),
    )
    .await?;
    w.airflow.run = Some((dag, run));
    Ok(())
}

#[then("the DAG run succeeds on the Celery worker")]
async fn run_succeeds(w: &mut World) -> Result<()> {
    let (dag, run) = w.airflow.run.clone().context("no DAG run was triggered")?;
    let af = deployment(w)?;
    let body = within(
        "waiting for the DAG run",
        Duration::from_secs(150),
        af.wait_dag_run(&dag, &run, Duration::from_secs(140)),
    )
    .await?;
    let tis = af.task_instances(&dag, &run).await.unwrap_or_default();
    let worker_log = std::fs::read_to_string(af.component_log("celery-worker")).unwrap_or_default();
    let worker_log_path = af.component_log("celery-worker");
    save(
        w,
        "dag-run.json",
        &serde_json::to_string_pretty(&serde_json::json!({"run": body, "task_instances": tis}))?,
    )?;
    ensure!(
        worker_log.contains("] received"),
        "the run succeeded, but the Celery worker's log ({}) shows no task it received: did another executor run it?",
        worker_log_path.display()
    );
    // The worker stored the task's result through PgBouncer's result-backend alias.
    let s = w.env()?;
    let rb_db = s.shape().names.result_backend_db.clone();
    // Celery stores the result after the task returns, which can be after Airflow marks the run.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = s
            .superuser_rows(
                &rb_db,
                "SELECT status FROM celery_taskmeta WHERE status = 'SUCCESS'",
            )
            .await;
        if rows.as_ref().is_ok_and(|r| !r.is_empty()) {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "Celery's result backend (celery_taskmeta, through `{}`) holds no SUCCESS result 30 s after the run succeeded{}",
                s.shape().result_backend_alias(),
                rows.err().map(|e| format!(": {e}")).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}

#[then("the Celery result is in the result backend's own database, not in the metadata database")]
async fn result_in_own_database(w: &mut World) -> Result<()> {
    let s = w.env()?;
    let n = &s.shape().names;
    ensure!(
        n.result_backend_db != n.metadata_db,
        "the deployment's result backend shares the metadata database `{}`: nothing to tell apart",
        n.metadata_db
    );
    let count = |rows: Vec<harness::environment::Row>| {
        rows.first()
            .and_then(|r| sql::cell(r, "n"))
            .unwrap_or("0")
            .to_string()
    };
    let stored = s
        .superuser_rows(
            &n.result_backend_db,
            "SELECT count(*)::text AS n FROM celery_taskmeta WHERE status = 'SUCCESS'",
        )
        .await?;
    let stored = count(stored);
    let in_metadata = count(
        s.superuser_rows(
            &n.metadata_db,
            "SELECT count(*)::text AS n FROM pg_tables WHERE tablename = 'celery_taskmeta'",
        )
        .await?,
    );
    save(
        w,
        "result-backend.txt",
        &format!(
            "result backend database {}: {stored} SUCCESS row(s) in celery_taskmeta\nmetadata database {}: celery_taskmeta tables: {in_metadata}\n",
            n.result_backend_db, n.metadata_db
        ),
    )?;
    ensure!(
        stored != "0",
        "celery_taskmeta in `{}` holds no SUCCESS result",
        n.result_backend_db
    );
    ensure!(
        in_metadata == "0",
        "the metadata database `{}` has a celery_taskmeta table: the result backend wrote there",
        n.metadata_db
    );
    Ok(())
}

#[then(expr = "PgBouncer's pools show traffic on {string} and {string}")]
async fn pools_show_traffic(w: &mut World, a: String, b: String) -> Result<()> {
    let (a, b) = (w.x(&a), w.x(&b));
    deployment(w)?;
    let env = w.env()?;
    let mut text = String::new();
    let mut stats = Vec::new();
    for q in ["SHOW POOLS", "SHOW STATS"] {
        let rows = env.pgbouncer_admin(q).await?;
        text += &format!("{q}:\n");
        for r in &rows {
            let cells: Vec<String> = r
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("")))
                .collect();
            text += &format!("  {}\n", cells.join(" "));
        }
        if q == "SHOW STATS" {
            stats = rows;
        }
    }
    save(w, "pgbouncer-show-pools.txt", &text)?;
    for db in [&a, &b] {
        let xacts: u64 = stats
            .iter()
            .find(|r| sql::cell(r, "database") == Some(db.as_str()))
            .and_then(|r| sql::cell(r, "total_xact_count"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        ensure!(
            xacts > 0,
            "PgBouncer carried no transaction for `{db}`:\n{text}"
        );
    }
    Ok(())
}

#[then("Airflow stops before PgBouncer and PostgreSQL, leaving no process behind")]
async fn ordered_teardown(w: &mut World) -> Result<()> {
    let mut af = w
        .airflow
        .deployment
        .take()
        .context("Airflow was not deployed")?;
    let left = within("stopping Airflow", Duration::from_secs(30), async {
        Ok(af.stop().await)
    })
    .await?;
    ensure!(
        left.is_empty(),
        "Airflow components still alive after stopping: {left:?}"
    );
    if let Some(mut s) = w.env.take() {
        s.down().await;
    }
    Ok(())
}

#[then(expr = "Airflow does not become healthy, and the harness says so within {int} seconds")]
async fn not_healthy(w: &mut World, secs: u64) -> Result<()> {
    let outcome = w
        .airflow
        .outcome
        .as_ref()
        .context("Airflow was not deployed")?;
    if let Ok(h) = outcome {
        bail!(
            "Airflow became healthy ({}), but this configuration must not work",
            h.summary()
        );
    }
    ensure!(
        w.airflow.elapsed <= Duration::from_secs(secs),
        "the harness found the failure, but only after {:?} (limit {secs} s): it must stop at the first terminal sign",
        w.airflow.elapsed
    );
    Ok(())
}

#[then(expr = "the diagnosis says {string}")]
async fn diagnosis_says(w: &mut World, needle: String) -> Result<()> {
    let needle = w.x(&needle);
    let Some(Err(e)) = &w.airflow.outcome else {
        bail!("there is no failure diagnosis: Airflow was not deployed or became healthy")
    };
    ensure!(
        e.contains(&needle),
        "the diagnosis does not say `{needle}`:\n{e}"
    );
    save(w, "airflow-diagnosis.txt", e)?;
    Ok(())
}

#[then("the diagnosis points at the PgBouncer log line")]
async fn diagnosis_points_at_log(w: &mut World) -> Result<()> {
    let log = w.env()?.log_file(Component::Pgbouncer);
    let Some(Err(e)) = &w.airflow.outcome else {
        bail!("there is no failure diagnosis")
    };
    let marker = format!("PgBouncer log {}:", log.display());
    ensure!(
        e.contains(&marker),
        "the diagnosis does not point at a line of {}:\n{e}",
        log.display()
    );
    Ok(())
}
