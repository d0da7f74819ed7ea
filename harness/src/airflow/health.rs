//! Airflow's own health report: `/api/v2/monitor/health` (3.x) or `/health` (2.x). Both answer
//! HTTP 200 even when a component is down, so the verdict comes from the JSON body.

use anyhow::{Context, Result};
use serde_json::Value;

use super::Version;

#[derive(Debug, Clone)]
pub struct Health {
    pub raw: Value,
    /// Component name and its `status` (None when Airflow reports `null`: not running).
    pub components: Vec<(String, Option<String>)>,
}

/// The components a deployment runs and therefore must report healthy. Airflow 2's report also
/// lists `dag_processor`, which is `null` unless the standalone processor is deployed.
pub fn expected(version: Version) -> &'static [&'static str] {
    match version {
        Version::Airflow3 => &["metadatabase", "scheduler", "triggerer", "dag_processor"],
        Version::Airflow2 => &["metadatabase", "scheduler", "triggerer"],
    }
}

pub fn parse(body: &str) -> Result<Health> {
    let raw: Value = serde_json::from_str(body).with_context(|| {
        format!(
            "the health endpoint did not answer JSON: {}",
            body.chars().take(200).collect::<String>()
        )
    })?;
    let obj = raw
        .as_object()
        .context("the health JSON is not an object")?;
    let components = obj
        .iter()
        .filter(|(_, v)| v.is_object())
        .map(|(k, v)| {
            (
                k.clone(),
                v.get("status").and_then(Value::as_str).map(str::to_string),
            )
        })
        .collect();
    Ok(Health { raw, components })
}

impl Health {
    pub fn status(&self, component: &str) -> Option<&str> {
        self.components
            .iter()
            .find(|(k, _)| k == component)
            .and_then(|(_, s)| s.as_deref())
    }

    /// The expected components that are not `healthy`, with what Airflow says about them.
    pub fn not_healthy(&self, version: Version) -> Vec<String> {
        expected(version)
            .iter()
            .filter(|c| self.status(c) != Some("healthy"))
            .map(|c| format!("{c}={}", self.status(c).unwrap_or("null")))
            .collect()
    }

    pub fn all_healthy(&self, version: Version) -> bool {
        self.not_healthy(version).is_empty()
    }

    /// `metadatabase=healthy scheduler=healthy ...`, for messages.
    pub fn summary(&self) -> String {
        self.components
            .iter()
            .map(|(k, s)| format!("{k}={}", s.as_deref().unwrap_or("null")))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const AF3_OK: &str = r#"{"metadatabase":{"status":"healthy"},"scheduler":{"status":"healthy","latest_scheduler_heartbeat":"2026-11-23T11:34:12+00:00"},"triggerer":{"status":"healthy","latest_triggerer_heartbeat":null},"dag_processor":{"status":"healthy","latest_dag_processor_heartbeat":null}}"#;
    const AF3_NO_DP: &str = r#"{"metadatabase":{"status":"healthy"},"scheduler":{"status":"healthy"},"triggerer":{"status":"healthy"},"dag_processor":{"status":null}}"#;
    const AF2_OK: &str = r#"{"metadatabase":{"status":"healthy"},"scheduler":{"status":"healthy"},"triggerer":{"status":"healthy"},"dag_processor":{"status":null}}"#;
    const DB_DOWN: &str = r#"{"metadatabase":{"status":"unhealthy"},"scheduler":{"status":"unhealthy"},"triggerer":{"status":null},"dag_processor":{"status":null}}"#;

    #[rstest]
    #[case(Version::Airflow3, AF3_OK, true, "")]
    #[case(Version::Airflow3, AF3_NO_DP, false, "dag_processor=null")]
    #[case(Version::Airflow2, AF2_OK, true, "")]
    #[case(
        Version::Airflow2,
        DB_DOWN,
        false,
        "metadatabase=unhealthy, scheduler=unhealthy, triggerer=null"
    )]
    fn verdict_comes_from_the_body(
        #[case] v: Version,
        #[case] body: &str,
        #[case] ok: bool,
        #[case] bad: &str,
    ) {
        let h = parse(body).unwrap();
        assert_eq!(h.all_healthy(v), ok);
        assert_eq!(h.not_healthy(v).join(", "), bad);
    }

    #[test]
    fn non_json_is_named() {
        let e = parse("<html>502</html>").unwrap_err().to_string();
        assert!(e.contains("did not answer JSON"), "{e}");
    }
}
