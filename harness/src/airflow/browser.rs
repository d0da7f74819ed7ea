//! A real browser on the Airflow UI: Debian's headless Chromium, started as a component (its own
//! process group, stopped by `kill_all`) and driven over the DevTools protocol with
//! chromiumoxide. It logs in (Airflow's own form as the per-run admin, or behind Astronomer's
//! ingress with the platform user's token on every request), waits for the page a person would
//! see, and saves a screenshot.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, Page};
use futures::StreamExt;

use chromiumoxide::cdp::browser_protocol::network::{Headers, SetExtraHttpHeadersParams};

use super::{Airflow, Version};
use crate::component::{Readiness, RunAs, Spec};
use crate::secret::Secret;

pub struct UiCheck {
    pub screenshot: PathBuf,
    /// The visible text of the page after login (for assertions and the artifacts).
    pub text: String,
    pub url: String,
}

/// How the browser gets past the login.
pub enum Login {
    /// Airflow's own login form.
    Form { user: String, password: Secret },
    /// A header on every request the page makes: behind Astronomer's ingress, which asks
    /// Houston about each request, the token of the platform user.
    Header { name: &'static str, value: Secret },
}

/// One visit: where, how to log in, and what the page must show.
pub struct Visit {
    pub url: String,
    pub login: Login,
    pub landmarks: &'static [&'static str],
    /// Names the screenshot (`<label>-ui.png`).
    pub label: String,
    /// Chromium's `--host-resolver-rules` (a platform's host names to the loopback ingress).
    pub host_rules: Option<String>,
    /// The base64 SHA-256 of the serving key's SubjectPublicKeyInfo, trusted for this run
    /// (`--ignore-certificate-errors-spki-list`): the run's own CA is in no browser store.
    pub trust_spki: Option<String>,
}

/// What the logged-in home page shows once it has loaded. Airflow 3's home page carries health
/// badges for each component; Airflow 2's shows the DAG list.
pub fn landmarks(version: Version) -> &'static [&'static str] {
    match version {
        Version::Airflow3 => &["MetaDatabase", "Scheduler", "Triggerer", "Dag Processor"],
        Version::Airflow2 => &["DAGs", "harness_probe"],
    }
}

/// The Airflow the harness started, through its own login form.
pub async fn check_ui(af: &Airflow, out_dir: &Path, limit: Duration) -> Result<UiCheck> {
    let visit = Visit {
        url: af.base_url.to_string(),
        login: Login::Form {
            user: af.admin_user.clone(),
            password: af.admin_password.clone(),
        },
        landmarks: landmarks(af.version),
        label: format!("airflow-{}", af.version.pin()),
        host_rules: None,
        trust_spki: None,
    };
    visit_ui(&visit, out_dir, limit).await
}

/// A browser on this machine through one [`Visit`].
pub async fn visit_ui(v: &Visit, out_dir: &Path, limit: Duration) -> Result<UiCheck> {
    // The browser is the user's, on this machine, whatever Airflow runs on: it opens the web
    // server's endpoint as published to this machine, as a user's browser would.
    let substrate = crate::substrate::for_tier(crate::substrate::Tier::Local)?;
    let place = substrate.place("chromium", out_dir, RunAs::Invoker)?;
    let port = substrate.listen_port(&place, "devtools", 9222)?;
    let profile = tempfile::Builder::new()
        .prefix("chromium-")
        .tempdir_in(out_dir)?;
    let mut args = vec![
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
    if let Some(rules) = &v.host_rules {
        args.insert(0, format!("--host-resolver-rules={rules}"));
    }
    if let Some(spki) = &v.trust_spki {
        args.insert(0, format!("--ignore-certificate-errors-spki-list={spki}"));
    }
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
    let result = tokio::time::timeout(limit, drive(v, &devtools, out_dir)).await;
    chromium.stop().await;
    match result {
        Ok(r) => r,
        Err(_) => bail!(
            "the browser check of {} did not finish within {limit:?}",
            v.url
        ),
    }
}

async fn drive(
    v: &Visit,
    devtools: &crate::substrate::Endpoint,
    out_dir: &Path,
) -> Result<UiCheck> {
    let (mut browser, mut handler) = Browser::connect(format!("http://{devtools}"))
        .await
        .context("connecting to Chromium's DevTools endpoint")?;
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
    let result = async {
        let png = out_dir.join(format!("{}-ui.png", v.label));
        let page = browser.new_page("about:blank").await.context("opening a page")?;
        if let Login::Header { name, value } = &v.login {
            // Before the first request, so the page and everything it loads carry it.
            let mut headers = serde_json::Map::new();
            headers.insert(name.to_string(), value.expose().into());
            page.execute(SetExtraHttpHeadersParams::new(Headers::new(serde_json::Value::Object(headers))))
                .await
                .context("setting the login header")?;
        }
        page.goto(v.url.as_str()).await.context("opening the Airflow UI")?;
        let login = async {
            if let Login::Form { user, password } = &v.login {
                let field = wait_for(&page, "input[name=username]", Duration::from_secs(30)).await?;
                field.click().await?.type_str(user).await?;
                let pw = page.find_element("input[type=password]").await.context("the login form has no password field")?;
                pw.click().await?.type_str(password.expose()).await?.press_key("Enter").await?;
            }
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = login {
            let _ = page.save_screenshot(ScreenshotParams::builder().build(), &png).await;
            bail!("the Airflow login page did not work ({e:#}); what the browser saw: {}", png.display());
        }
        let deadline = Instant::now() + Duration::from_secs(45);
        let wanted = v.landmarks;
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
