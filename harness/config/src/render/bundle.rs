//! Everything the platform would get for one deployment, as named files: what
//! `cargo xtask render` writes and what the Kubernetes and docker tiers take as input.

use super::airflow::chart_urls;
use super::chart_values::chart_values;
use super::kube::{deployment_objects, houston_pgbouncer_deployment};
use super::pgbouncer::{render_chart_users_txt, render_for_platform};
use super::RenderError;
use crate::model::{Deployment, Values};
use crate::platform::Platform;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub name: &'static str,
    pub text: String,
    /// Holds a password (a placeholder in fixtures): written mode 0600.
    pub secret: bool,
    /// A Kubernetes object, checked by strict schema validation.
    pub kubernetes: bool,
}

fn file(name: &'static str, text: String, secret: bool, kubernetes: bool) -> RenderedFile {
    RenderedFile {
        name,
        text,
        secret,
        kubernetes,
    }
}

fn yaml(v: &serde_json::Value) -> Result<String, RenderError> {
    serde_yaml::to_string(v).map_err(|e| RenderError::Template {
        name: "yaml".into(),
        why: e.to_string(),
    })
}

/// The files, in the order they are listed in the README. Houston's PgBouncer Deployment is
/// there only with values that enable it.
pub fn render_bundle(
    d: &Deployment,
    v: Option<&Values>,
    platform: Platform,
) -> Result<Vec<RenderedFile>, RenderError> {
    let image = v
        .map(|v| v.deployment_pgbouncer_image(platform).image)
        .unwrap_or_else(|| platform.deployment_pgbouncer_image());
    let objects = deployment_objects(d, platform, &image)?;
    let urls = chart_urls(d)?;
    let mut out = vec![
        file(
            "values.yaml",
            yaml(&chart_values(d, v, platform))?,
            true,
            false,
        ),
        file("pgbouncer.ini", render_for_platform(d)?, false, false),
        file("users.txt", render_chart_users_txt(d)?, true, false),
        file("metadata-url.txt", urls.metadata, true, false),
        file("result-backend-url.txt", urls.result_backend, true, false),
        file(
            "pgbouncer-config-secret.yaml",
            yaml(&objects.config_secret)?,
            true,
            true,
        ),
        file(
            "metadata-secret.yaml",
            yaml(&objects.metadata_secret)?,
            true,
            true,
        ),
        file(
            "result-backend-secret.yaml",
            yaml(&objects.result_backend_secret)?,
            true,
            true,
        ),
        file(
            "pgbouncer-deployment.yaml",
            yaml(&objects.pgbouncer_deployment)?,
            false,
            true,
        ),
    ];
    if let Some(h) = v.and_then(|v| houston_pgbouncer_deployment(v, platform)) {
        out.push(file(
            "houston-pgbouncer-deployment.yaml",
            yaml(&h)?,
            false,
            true,
        ));
    }
    Ok(out)
}
