//! Steps for day-two faults (features/fault.feature): the KDC stopped, silent or down while
//! pooled clients run, and the generic PgBouncer image. The measurement and the diagnosis live
//! in `harness::fault`; these steps only sequence them.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _, Result};
use cucumber::{given, then, when};
use harness::environment::Component;
use harness::fault::diagnose::{self, Watched};
use harness::fault::load::Load;
use harness::fault::{self, Attempt};
use harness::pgbouncer::Build;

use super::{within, World};

/// A fault scenario's state: the pooled load, when the fault began, a login left waiting, and
/// what the harness said.
#[derive(Default)]
pub struct FaultState {
    pub load: Option<Load>,
    pub since: Option<Instant>,
    pub waiting: Option<tokio::task::JoinHandle<Attempt>>,
    pub said: Option<(String, Duration)>,
}

#[given(expr = "PgBouncer is configured as the deployment renders it, plus {string}")]
async fn pgbouncer_plus(w: &mut World, settings: String) -> Result<()> {
    let lines: Vec<String> = settings
        .split(';')
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    super::pgbouncer::start(w, |o| o.extra_ini.extend(lines)).await
}

#[given(expr = "{int} clients run queries through PgBouncer on a full pool")]
async fn pooled_load(w: &mut World, clients: usize) -> Result<()> {
    let s = w.env()?;
    let target = s.metadata_target(s.client_password())?;
    let load = within(
        "connecting the pooled clients",
        Duration::from_secs(60),
        Load::start(&target, clients),
    )
    .await?;
    within(
        "filling the pool",
        Duration::from_secs(35),
        fault::wait_full_pool(s, &s.shape().metadata_alias(), Duration::from_secs(30)),
    )
    .await?;
    // Steady state: every client has gone round a few times on the pool's server connections.
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure!(
        load.completed() > clients,
        "the pooled clients completed only {} queries in 300 ms",
        load.completed()
    );
    w.fault.load = Some(load);
    Ok(())
}

fn begin_fault(w: &mut World) -> Result<()> {
    w.env()?.forget_pgbouncer_tickets()?;
    w.fault.since = Some(Instant::now());
    Ok(())
}

#[when("PgBouncer's ticket cache is emptied and the KDC stops answering")]
async fn kdc_sigstop(w: &mut World) -> Result<()> {
    begin_fault(w)?;
    w.env()?.pause_kdc().await
}

#[when("PgBouncer's ticket cache is emptied and the KDC is stopped")]
async fn kdc_down(w: &mut World) -> Result<()> {
    begin_fault(w)?;
    w.env_mut()?.stop_kdc().await;
    Ok(())
}

#[when("the KDC answers again")]
async fn kdc_sigcont(w: &mut World) -> Result<()> {
    w.env()?.resume_kdc().await
}

#[when("the KDC is started again")]
async fn kdc_restart(w: &mut World) -> Result<()> {
    within(
        "restarting the KDC",
        Duration::from_secs(20),
        w.env_mut()?.restart_kdc(),
    )
    .await
}

#[when(expr = "{int} second(s) pass(es)")]
async fn seconds_pass(_w: &mut World, secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

#[when("a client connects through PgBouncer to the result-backend database")]
async fn client_result_backend(w: &mut World) -> Result<()> {
    let s = w.env()?;
    let target = s.result_backend_target(s.client_password())?;
    super::pgbouncer::connect_as_user(w, &target).await
}

#[when(
    "a client connects through PgBouncer to the result-backend database, waiting in the background"
)]
async fn client_result_backend_background(w: &mut World) -> Result<()> {
    let s = w.env()?;
    let target = s.result_backend_target(s.client_password())?;
    w.fault.waiting = Some(tokio::spawn(async move {
        fault::attempt(&target, Duration::from_secs(60)).await
    }));
    Ok(())
}

#[then(expr = "the waiting client's connection succeeds within {int} seconds")]
async fn waiting_client_succeeds(w: &mut World, secs: u64) -> Result<()> {
    let handle = w
        .fault
        .waiting
        .take()
        .context("no client is waiting in the background")?;
    let a = within("the waiting client", Duration::from_secs(secs), async {
        handle.await.context("the waiting client's task")
    })
    .await?;
    if let Some(e) = a.error {
        bail!(
            "the client that waited for the KDC failed after {:?}: {e}",
            a.elapsed
        );
    }
    Ok(())
}

#[then(expr = "the pooled clients never went more than {int} ms without a completed query")]
async fn no_stall(w: &mut World, limit_ms: u64) -> Result<()> {
    let load = w
        .fault
        .load
        .as_ref()
        .context("no pooled clients are running")?;
    let since = w.fault.since.context("no fault was started")?;
    let gap = load.max_gap(since, Instant::now());
    let log = w
        .env()?
        .log_file(Component::Pgbouncer)
        .display()
        .to_string();
    ensure!(
        gap.longest <= Duration::from_millis(limit_ms),
        "the {} pooled clients completed nothing for {:?} (from {:?} after the fault began; limit {limit_ms} ms): PgBouncer's event loop stalled while a server login waited for the KDC (log: {log})",
        load.clients,
        gap.longest,
        gap.at
    );
    ensure!(
        gap.completions > 0,
        "the pooled clients completed no query at all since the fault began"
    );
    eprintln!(
        "fault: longest stretch without a completed query: {:.1} ms ({} queries since the fault began)",
        gap.longest.as_secs_f64() * 1000.0,
        gap.completions
    );
    Ok(())
}

#[then("no pooled client saw an error")]
async fn pooled_no_errors(w: &mut World) -> Result<()> {
    let load = w
        .fault
        .load
        .as_ref()
        .context("no pooled clients are running")?;
    let errors = load.errors();
    ensure!(
        errors.is_empty(),
        "{} pooled client(s) failed: {}",
        errors.len(),
        errors.join("; ")
    );
    Ok(())
}

#[given(
    "the generic PgBouncer image is started without server_gssauth_negotiate and server_krb_spn"
)]
async fn generic_without_fork_settings(w: &mut World) -> Result<()> {
    super::pgbouncer::start(w, |o| {
        o.build = Build::Generic;
        o.negotiate = None;
        o.spn = None;
    })
    .await
}

#[when("the generic PgBouncer image is started as the deployment renders it")]
async fn generic_as_rendered(w: &mut World) -> Result<()> {
    // A first run builds it: that is not the time the diagnosis takes (on the container tiers
    // it is an image, built before the run).
    if w.env()?.tier() == harness::substrate::Tier::Local {
        harness::pgbouncer::ensure(Build::Generic).await?;
    }
    let started = Instant::now();
    let result = super::pgbouncer::start(w, |o| o.build = Build::Generic).await;
    // The harness's copy of the log: it stays when PgBouncer refused to start.
    let text = std::fs::read_to_string(w.env()?.log_file(Component::Pgbouncer)).unwrap_or_default();
    let said = match (result, diagnose::pgbouncer_log(&text)) {
        (_, Some(d)) => d.to_string(),
        (Ok(()), None) => "PgBouncer started".to_string(),
        (Err(e), None) => format!("PgBouncer failed to start: {e:#}"),
    };
    w.fault.said = Some((said, started.elapsed()));
    Ok(())
}

#[when("a client connects through PgBouncer to the metadata database while the harness watches PgBouncer's log")]
async fn connect_watching(w: &mut World) -> Result<()> {
    let s = w.env()?;
    let cursor = s.log_cursor(Component::Pgbouncer);
    let target = s.metadata_target(s.client_password())?;
    // Past PgBouncer's client_login_timeout (60 s): the diagnosis must not wait for it.
    let (outcome, elapsed) =
        diagnose::connect_watching(s, &target, cursor, Duration::from_secs(75)).await;
    let said = match outcome {
        Watched::Diagnosed(d) => d.to_string(),
        Watched::Failed(e) => format!("the client failed: {e}"),
        Watched::Connected => "the client connected".to_string(),
    };
    w.fault.said = Some((said, elapsed));
    Ok(())
}

#[then(expr = "within {int} seconds the harness says {string}")]
async fn harness_says(w: &mut World, secs: u64, needle: String) -> Result<()> {
    let needle = w.x(&needle);
    let (said, elapsed) = w
        .fault
        .said
        .as_ref()
        .context("the harness has not diagnosed anything yet")?;
    ensure!(
        said.contains(&needle),
        "the harness said `{said}`, not `{needle}`"
    );
    ensure!(
        *elapsed <= Duration::from_secs(secs),
        "the harness said the right thing, but only after {elapsed:?} (limit {secs} s)"
    );
    Ok(())
}
