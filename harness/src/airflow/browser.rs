//! A real browser on the Airflow UI: Debian's headless Chromium, started as a component (its own
//! process group, stopped by `kill_all`) and driven over the DevTools protocol with
//! chromiumoxide. It logs in as the per-run admin, waits for the page a person would see, and
//! saves a screenshot.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, Page};
use futures::StreamExt;

use super::{Airflow, Version};
use crate::component::{Readiness, RunAs, Spec};

pub struct UiCheck {
    pub screenshot: PathBuf,
    /// The visible text of the page after login (for assertions and the artifacts).
    pub text: String,
    pub url: String,
}

/// What the logged-in home page shows once it has loaded. Airflow 3's home page carries health
/// badges for each component; Airflow 2's shows the DAG list.
fn landmarks(version: Version) -> &'static [&'static str] {
    match version {
        Version::Airflow3 => &["MetaDatabase", "Scheduler", "Triggerer", "Dag Processor"],
        Version::Airflow2 => &["DAGs", "harness_probe"],
    }
}

pub async fn check_ui(af: &Airflow, out_dir: &Path, limit: Duration) -> Result<UiCheck> {
    // The browser is the user's, on this machine, whatever Airflow runs on: it opens the web
    // server's endpoint as published to this machine, as a user's browser would.
    let substrate = crate::substrate::for_tier(crate::substrate::Tier::Local)?;
    let place = substrate.place("chromium", out_dir, RunAs::Invoker)?;
    let port = substrate.listen_port(&place, "devtools", 9222)?;
    let profile = tempfile::Builder::new()
        .prefix("chromium-")
        .tempdir_in(out_dir)?;
    let args = [
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1366,900".into(),
        format!("--remote-debugging-address={}", place.bind),
        format!("--remote-debugging-port={port}"),
        format!("--user-data-dir={}", profile.path().display()),
        "about:blank".into(),
    ];
    let mut spec = Spec::new("chromium", crate::tools::path("chromium")?)
        .args(args)
        .port("devtools", port)
        .ready_when(
            Readiness::LogLine("DevTools listening on".into()),
            Duration::from_secs(30),
        );
    spec.stop_grace = Duration::from_secs(2);
    let mut chromium = substrate.start(&place, spec).await?;
    let devtools = chromium.endpoint("devtools")?;
    let result = tokio::time::timeout(limit, drive(af, &devtools, out_dir)).await;
    chromium.stop().await;
    match result {
        Ok(r) => r,
        Err(_) => bail!(
            "the browser check of {} did not finish within {limit:?}",
            af.base_url
        ),
    }
}

async fn drive(
    af: &Airflow,
    devtools: &crate::substrate::Endpoint,
    out_dir: &Path,
) -> Result<UiCheck> {
    let (mut browser, mut handler) = Browser::connect(format!("http://{devtools}"))
        .await
        .context("connecting to Chromium's DevTools endpoint")?;
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
    let result = async {
        let page = browser.new_page(af.base_url.as_str()).await.context("opening the Airflow UI")?;
        let png = out_dir.join(format!("airflow-{}-ui.png", af.version.pin()));
        let login = async {
            let user = wait_for(&page, "input[name=username]", Duration::from_secs(30)).await?;
            user.click().await?.type_str(&af.admin_user).await?;
            let pw = page.find_element("input[type=password]").await.context("the login form has no password field")?;
            pw.click().await?.type_str(af.admin_password.expose()).await?.press_key("Enter").await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = login {
            let _ = page.save_screenshot(ScreenshotParams::builder().build(), &png).await;
            bail!("the Airflow login page did not work ({e:#}); what the browser saw: {}", png.display());
        }
        let deadline = Instant::now() + Duration::from_secs(45);
        let wanted = landmarks(af.version);
        let text = loop {
            let text = visible_text(&page).await.unwrap_or_default();
            if wanted.iter().all(|w| text.contains(w)) && !text.contains("Sign in") {
                break text;
            }
            if Instant::now() > deadline {
                let _ = page.save_screenshot(ScreenshotParams::builder().build(), &png).await;
                bail!(
                    "after logging in, the Airflow UI did not show {wanted:?} within 45 s; it shows: {}; screenshot: {}",
                    text.chars().take(300).collect::<String>().replace('\n', " | "),
                    png.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        // The health badges fetch their state after the text appears: give them a moment.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let text = visible_text(&page).await.unwrap_or(text);
        page.save_screenshot(ScreenshotParams::builder().build(), &png).await.context("taking the screenshot")?;
        let url = page.url().await?.unwrap_or_default();
        anyhow::Ok(UiCheck { screenshot: png, text, url })
    }
    .await;
    let _ = browser.close().await;
    events.abort();
    result
}

async fn visible_text(page: &Page) -> Result<String> {
    Ok(page
        .evaluate("document.body ? document.body.innerText : ''")
        .await?
        .into_value::<String>()?)
}

/// Airflow 3's UI is a client-side app: the load event says nothing, so wait for the element.
async fn wait_for(page: &Page, selector: &str, limit: Duration) -> Result<chromiumoxide::Element> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(e) = page.find_element(selector).await {
            return Ok(e);
        }
        if Instant::now() > deadline {
            bail!(
                "no `{selector}` on {} within {limit:?}",
                page.url().await.ok().flatten().unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
