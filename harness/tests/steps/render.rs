//! Steps for what the platform renders from a configuration (harness-config's renderers, held
//! against Astronomer's charts) and for the control plane's lint findings.

use anyhow::{ensure, Context as _, Result};
use cucumber::then;
use harness_config::{load_deployment, load_values, render_bundle, Platform};

use super::config::reported_in;
use super::World;

#[then(expr = "lint reports {word} as {word} in the values file")]
async fn lint_reports_in_values(w: &mut World, rule: String, severity: String) -> Result<()> {
    let file = w
        .config
        .values
        .clone()
        .context("no values file: the scenario needs `And the control plane values \"...\"`")?;
    reported_in(w, &rule, &severity, &file.display().to_string())
}

/// `{pass}` in the expected text stands for the deployment's password as the chart escapes it.
#[then(expr = "the {word} render of {string} is {string}")]
async fn render_is(w: &mut World, platform: String, name: String, want: String) -> Result<()> {
    let text = rendered(w, &platform, &name)?;
    ensure!(
        text == want,
        "the {platform} render of {name} is\n{text}\nnot\n{want}"
    );
    Ok(())
}

#[then(expr = "the {word} render of {string} says {string}")]
async fn render_says(w: &mut World, platform: String, name: String, want: String) -> Result<()> {
    let text = rendered(w, &platform, &name)?;
    ensure!(
        text.contains(&want),
        "the {platform} render of {name} does not say `{want}`:\n{text}"
    );
    Ok(())
}

#[then(expr = "the {word} render of {string} does not say {string}")]
async fn render_lacks(w: &mut World, platform: String, name: String, want: String) -> Result<()> {
    let text = rendered(w, &platform, &name)?;
    ensure!(
        !text.contains(&want),
        "the {platform} render of {name} says `{want}`:\n{text}"
    );
    Ok(())
}

/// The named file of the bundle `cargo xtask render` writes, rendered from the scenario's
/// files; the placeholder password stays `${generated}` and is written `{pass}` escaped.
fn rendered(w: &World, platform: &str, name: &str) -> Result<String> {
    let platform: Platform = platform.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let dpath =
        w.config.deployment.clone().context(
            "no deployment file: the scenario needs `Given the deployment file \"...\"`",
        )?;
    let d = load_deployment(&dpath)?;
    let v = w.config.values.as_deref().map(load_values).transpose()?;
    let files = render_bundle(&d, v.as_ref(), platform)?;
    let f = files.iter().find(|f| f.name == name).with_context(|| {
        format!(
            "the render has no {name}; it has {:?}",
            files.iter().map(|f| f.name).collect::<Vec<_>>()
        )
    })?;
    let escaped = harness_config::render::airflow::encode(harness_config::GENERATED_SECRET);
    Ok(f.text.replace(&escaped, "{pass}"))
}
