//! Steps for day-two faults (features/fault.feature, features/fault-day-two.feature): the KDC
//! stopped, silent or down while pooled clients run, the generic PgBouncer image, a rotated
//! server key, PostgreSQL restarted under load, expiring tickets, a skewed clock, reverse DNS. The measurement and the diagnosis live
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
    /// Where PgBouncer's and the KDC's logs stood when a fault took effect.
    pub pgbouncer_cursor: Option<harness::substrate::LogCursor>,
    pub kdc_cursor: Option<harness::substrate::LogCursor>,
    /// When PostgreSQL accepted connections again after a restart.
    pub restarted: Option<Instant>,
    /// The ticket lifetime the KDC was given.
    pub lifetime: Option<Duration>,
    /// The reverse name of the address PgBouncer dials PostgreSQL at.
    pub reverse_name: Option<String>,
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

// --- day two: keys, restarts, lifetimes, clocks, reverse DNS (features/fault-day-two.feature) ---

#[given("a client has connected through PgBouncer to the metadata database")]
async fn client_has_connected(w: &mut World) -> Result<()> {
    let s = w.env()?;
    let target = s.metadata_target(s.client_password())?;
    let a = fault::attempt(&target, Duration::from_secs(30)).await;
    if let Some(e) = a.error {
        bail!("the first client through PgBouncer failed: {e}");
    }
    Ok(())
}

#[when("the service principal's key is rotated in the KDC")]
async fn rotate_now(w: &mut World) -> Result<()> {
    let s = w.env()?;
    s.rotate_key(&s.shape().names.server_spn).await
}

#[when("PgBouncer logs in to the server again")]
async fn login_again(w: &mut World) -> Result<()> {
    let s = w.env()?;
    fault::close_server_connections(s).await?;
    let target = s.metadata_target(s.client_password())?;
    super::pgbouncer::connect_as_user(w, &target).await
}

#[when("PgBouncer's ticket cache is emptied")]
async fn empty_cache(w: &mut World) -> Result<()> {
    w.env()?.forget_pgbouncer_tickets()
}

#[when(expr = "the database server's keytab is replaced by one with {string}")]
async fn replace_server_keytab(w: &mut World, which: String) -> Result<()> {
    let keep_old = match which.as_str() {
        "the new key" | "only the new key" => false,
        "the old and the new key" => true,
        other => bail!("unknown keytab `{other}`: say \"the new key\", \"only the new key\" or \"the old and the new key\""),
    };
    let s = w.env()?;
    let kt = s.export_keys(&s.shape().names.server_spn, keep_old).await?;
    s.replace_server_keytab(&kt).await
}

#[when("PostgreSQL is restarted")]
async fn restart_postgres(w: &mut World) -> Result<()> {
    w.fault.since = Some(Instant::now());
    w.fault.pgbouncer_cursor = Some(w.env()?.log_cursor(Component::Pgbouncer));
    within(
        "restarting PostgreSQL",
        Duration::from_secs(60),
        w.env_mut()?.restart_postgres(),
    )
    .await?;
    w.fault.restarted = Some(Instant::now());
    Ok(())
}

#[then(expr = "after the restart the PgBouncer log says {string}")]
async fn after_restart_log(w: &mut World, needle: String) -> Result<()> {
    let needle = w.x(&needle);
    let cursor = w
        .fault
        .pgbouncer_cursor
        .context("PostgreSQL was not restarted")?;
    w.env()?
        .wait_log(
            Component::Pgbouncer,
            cursor,
            &needle,
            Duration::from_secs(10),
        )
        .await
        .map(drop)
}

#[then(expr = "the pooled clients complete queries again within {int} seconds")]
async fn load_resumes(w: &mut World, secs: u64) -> Result<()> {
    let restarted = w.fault.restarted.context("PostgreSQL was not restarted")?;
    let load = w
        .fault
        .load
        .as_ref()
        .context("no pooled clients are running")?;
    let deadline = restarted + Duration::from_secs(secs);
    loop {
        let done = load.max_gap(restarted, Instant::now()).completions;
        if done >= load.clients {
            eprintln!(
                "fault: {done} queries completed {:?} after PostgreSQL was back",
                restarted.elapsed()
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "only {done} pooled queries completed in the {secs} s after PostgreSQL was back (errors: {})",
                load.errors().join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[then("no pooled client saw an error but the queries in flight when PostgreSQL stopped")]
async fn only_in_flight_errors(w: &mut World) -> Result<()> {
    let s = w.env()?;
    let load = w
        .fault
        .load
        .as_ref()
        .context("no pooled clients are running")?;
    let errors = load.errors();
    let others: Vec<&String> = errors
        .iter()
        .filter(|e| !fault::is_in_flight_error(e))
        .collect();
    ensure!(
        others.is_empty(),
        "{} pooled client(s) failed with something other than a query cut by the stop: {}",
        others.len(),
        others
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    );
    // In transaction pooling a query is in flight only on a server connection of the pool.
    let pool = fault::pool_size(s, &s.shape().metadata_alias()).await?;
    ensure!(
        errors.len() <= pool,
        "{} pooled clients failed, more than the {pool} server connections that can carry a query: {}",
        errors.len(),
        errors.join("; ")
    );
    eprintln!(
        "fault: {} of {} pooled clients saw their query in flight cut: {}",
        errors.len(),
        load.clients,
        errors.join("; ")
    );
    Ok(())
}

#[given(expr = "tickets of {string} live at most {int} seconds")]
async fn ticket_lifetime(w: &mut World, principal: String, secs: u64) -> Result<()> {
    let principal = w.x(&principal);
    fault::tickets::limit_lifetime(w.env()?, &principal, secs).await?;
    w.fault.lifetime = Some(Duration::from_secs(secs));
    Ok(())
}

#[given("PgBouncer is started with a ticket cache and no keytab")]
async fn pgbouncer_cache_only(w: &mut World) -> Result<()> {
    super::pgbouncer::start(w, |o| o.keytab = None).await?;
    fault::tickets::inject_ticket_cache(w.env()?).await
}

#[given(
    expr = "PgBouncer is started with no keytab and a sidecar that renews its ticket cache from a keytab every {int} second(s)"
)]
async fn pgbouncer_with_sidecar(w: &mut World, secs: u64) -> Result<()> {
    super::pgbouncer::start(w, |o| o.keytab = None).await?;
    within(
        "starting the ticket-refresh sidecar",
        Duration::from_secs(15),
        fault::tickets::start_refresh_sidecar(w.env_mut()?, secs),
    )
    .await
}

#[when("PgBouncer's tickets have expired")]
async fn tickets_expired(w: &mut World) -> Result<()> {
    let life = w
        .fault
        .lifetime
        .context("no ticket lifetime was set: `Given tickets of ... live at most N seconds`")?;
    // Every ticket so far was issued after the lifetime was set, so after this it is past its
    // end (a second of margin for the KDC's whole-second times).
    tokio::time::sleep(life + Duration::from_secs(1)).await;
    let s = w.env()?;
    let (pgb, kdc) = (
        s.log_cursor(Component::Pgbouncer),
        s.log_cursor(Component::Kdc),
    );
    w.fault.pgbouncer_cursor = Some(pgb);
    w.fault.kdc_cursor = Some(kdc);
    Ok(())
}

#[then(expr = "since the tickets expired the {word} log says {string}")]
async fn since_expiry_log(w: &mut World, who: String, needle: String) -> Result<()> {
    let needle = w.x(&needle);
    let (c, cursor) = match who.as_str() {
        "PgBouncer" => (Component::Pgbouncer, w.fault.pgbouncer_cursor),
        "KDC" => (Component::Kdc, w.fault.kdc_cursor),
        other => bail!("no log `{other}`: say PgBouncer or KDC"),
    };
    let cursor = cursor.context("the tickets have not expired yet in this scenario")?;
    w.env()?
        .wait_log(c, cursor, &needle, Duration::from_secs(3))
        .await
        .map(drop)
}

#[then(expr = "the KDC log says {string}")]
async fn kdc_log_says(w: &mut World, needle: String) -> Result<()> {
    let needle = w.x(&needle);
    w.env()?
        .wait_log(
            Component::Kdc,
            harness::substrate::LogCursor::default(),
            &needle,
            Duration::from_secs(3),
        )
        .await
        .map(drop)
}

#[then(expr = "the sidecar's log says {string}")]
async fn sidecar_log_says(w: &mut World, needle: String) -> Result<()> {
    let needle = w.x(&needle);
    let text = w
        .env()?
        .sidecar_log(fault::tickets::REFRESH_SIDECAR)
        .context("no refresh sidecar runs in this scenario")?;
    let renewals = text.lines().filter(|l| l.contains(&needle)).count();
    ensure!(
        renewals >= 2,
        "the sidecar's log has {renewals} line(s) with `{needle}` (want a renewal before and after the expiry):\n{text}"
    );
    Ok(())
}

#[given(
    expr = "PgBouncer is started with a ticket cache and no keytab, its clock {int} minutes ahead"
)]
async fn skewed_cache_only(w: &mut World, minutes: i64) -> Result<()> {
    let env = fault::skew::clock_offset_env(minutes * 60)?;
    super::pgbouncer::start(w, |o| {
        o.keytab = None;
        o.env = env;
    })
    .await?;
    fault::tickets::inject_ticket_cache(w.env()?).await
}

#[given(
    expr = "PgBouncer is configured as the deployment renders it, its clock {int} minutes ahead"
)]
async fn skewed_keytab(w: &mut World, minutes: i64) -> Result<()> {
    let env = fault::skew::clock_offset_env(minutes * 60)?;
    super::pgbouncer::start(w, |o| o.env = env).await
}

#[given("the database address has a reverse name other than the database host")]
async fn reverse_name_differs(w: &mut World) -> Result<()> {
    let s = w.env()?;
    let addr = s.peer_endpoint(Component::Postgres)?.host;
    let Some(name) = fault::rdns::reverse_name(s, &addr).await? else {
        bail!("{addr}, where PgBouncer dials PostgreSQL, has no reverse name where PgBouncer runs (getent hosts {addr}): the trap needs one");
    };
    ensure!(
        name != s.shape().names.db_host,
        "the reverse name of {addr} is the database host {name} itself: no trap to show"
    );
    w.fault.reverse_name = Some(name);
    Ok(())
}

#[given(expr = "PgBouncer is started with server_krb_spn {string} and {string} in its krb5.conf")]
async fn pgbouncer_krb5_conf(w: &mut World, spn: String, settings: String) -> Result<()> {
    let spn = w.x(&spn);
    let mut libdefaults = Vec::new();
    for s in settings.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = s
            .split_once('=')
            .with_context(|| format!("`{s}` is not `key = value`"))?;
        libdefaults.push((k.trim().to_string(), v.trim().to_string()));
    }
    super::pgbouncer::start(w, |o| {
        o.spn = Some(spn);
        o.krb5_libdefaults = libdefaults;
    })
    .await
}

#[then(expr = "PgBouncer's own log is stamped {int} minutes ahead of the harness's clock")]
async fn pgbouncer_clock_ahead(w: &mut World, minutes: i64) -> Result<()> {
    let s = w.env()?;
    let log = s.log_since(
        Component::Pgbouncer,
        harness::substrate::LogCursor::default(),
    );
    let ahead = fault::skew::log_clock_ahead(&log, chrono::Utc::now())
        .context("PgBouncer's log has no time-stamped line")?;
    // The last line was written a few seconds ago at most.
    ensure!(
        (ahead - minutes * 60).abs() <= 30,
        "PgBouncer's clock is {ahead} s ahead of the harness's, not the {minutes} minutes the scenario set (libfaketime)"
    );
    Ok(())
}
