//! The slice of the control plane's Helm `values.yaml` that the Kerberos flow depends on. Every
//! level keeps unknown keys: a real values file holds far more than this, and the linter decides
//! which unknowns are worth a word.

use super::connection::Connection;
use super::deployment::EnvList;
use super::scalar::StringMap;
use super::Extra;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Values {
    #[serde(default)]
    pub global: Option<Global>,
    #[serde(default)]
    pub astronomer: Option<AstronomerValues>,
    /// The `pgbouncer` subchart: Houston's own PgBouncer (image lives here).
    #[serde(default)]
    pub pgbouncer: Option<PgbouncerChartValues>,
    /// Harness-specific facts the chart does not hold (the injector's selector, where Houston's
    /// URL and PgBouncer templates live). Helm ignores this key.
    #[serde(default)]
    pub harness: Option<HarnessValues>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Global {
    #[serde(default)]
    pub pgbouncer: Option<GlobalPgbouncer>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GlobalPgbouncer {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub secret_name: Option<String>,
    #[serde(default)]
    pub extra_labels: Option<StringMap>,
    #[serde(default)]
    pub extra_env: Option<StringMap>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl GlobalPgbouncer {
    /// The chart's default when `secretName` is not set.
    pub const DEFAULT_SECRET_NAME: &'static str = "astronomer-pgbouncer-config";
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AstronomerValues {
    #[serde(default)]
    pub houston: Option<HoustonValues>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoustonValues {
    #[serde(default)]
    pub config: Option<HoustonConfig>,
    #[serde(default)]
    pub backend_secret_name: Option<String>,
    #[serde(default)]
    pub backend_connection: Option<Connection>,
    #[serde(default)]
    pub backend_secret_connection: Option<bool>,
    #[serde(default)]
    pub env: Option<EnvList>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HoustonConfig {
    #[serde(default)]
    pub deployments: Option<HoustonDeployments>,
    #[serde(default)]
    pub database: Option<HoustonDatabase>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HoustonDatabase {
    #[serde(default)]
    pub connection: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HoustonDeployments {
    #[serde(default)]
    pub manual_connection_strings: Option<ManualConnectionStrings>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ManualConnectionStrings {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PgbouncerChartValues {
    #[serde(default)]
    pub image: Option<Image>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    #[serde(default)]
    pub repository: Option<String>,
    #[serde(default)]
    pub tag: Option<String>,
    #[serde(default)]
    pub pull_policy: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HarnessValues {
    #[serde(default)]
    pub injector: Option<Injector>,
    #[serde(default)]
    pub houston: Option<HarnessHouston>,
    #[serde(default)]
    pub platform: Option<HarnessPlatform>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The credential-injection webhook's pod selector(s). A webhook configuration may register
/// several object selectors; a pod is injected when any of them matches.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Injector {
    #[serde(default)]
    pub selectors: Vec<LabelSelector>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default)]
    pub match_labels: StringMap,
    #[serde(flatten)]
    pub extra: Extra,
}

impl LabelSelector {
    pub fn matches(&self, labels: &StringMap) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HarnessHouston {
    /// Houston's database URL when it lives in a Secret the customer created
    /// (`astronomer.houston.backendSecretName`), recorded here so it can be checked.
    #[serde(default)]
    pub connection: Option<String>,
    /// Directory of `pgbouncer.ini.tmpl` / `users.txt.tmpl`, relative to the values file.
    #[serde(default)]
    pub pgbouncer_templates: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HarnessPlatform {
    /// Helm release of the control plane; Houston's PgBouncer service is `<release>-pgbouncer`.
    #[serde(default)]
    pub release_name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Where Houston's database URL was found, for findings that point at it.
#[derive(Debug, Clone, PartialEq)]
pub struct HoustonUrl {
    pub path: String,
    pub url: String,
}

impl Values {
    pub fn houston(&self) -> Option<&HoustonValues> {
        self.astronomer.as_ref()?.houston.as_ref()
    }

    pub fn global_pgbouncer(&self) -> Option<&GlobalPgbouncer> {
        self.global.as_ref()?.pgbouncer.as_ref()
    }

    pub fn manual_connection_strings(&self) -> Option<bool> {
        self.houston()?
            .config
            .as_ref()?
            .deployments
            .as_ref()?
            .manual_connection_strings
            .as_ref()?
            .enabled
    }

    pub fn image(&self) -> Option<&Image> {
        self.pgbouncer.as_ref()?.image.as_ref()
    }

    pub fn selectors(&self) -> Option<&[LabelSelector]> {
        self.harness
            .as_ref()?
            .injector
            .as_ref()
            .map(|i| i.selectors.as_slice())
    }

    pub fn platform_release(&self) -> &str {
        self.harness
            .as_ref()
            .and_then(|h| h.platform.as_ref())
            .and_then(|p| p.release_name.as_deref())
            .unwrap_or("astronomer")
    }

    pub fn templates_dir(&self) -> Option<&str> {
        self.harness
            .as_ref()?
            .houston
            .as_ref()?
            .pgbouncer_templates
            .as_deref()
    }

    /// Houston's database URL, from the first place that holds one. Which key the documented
    /// setup uses is not public [?], so every plausible one is read.
    pub fn houston_url(&self) -> Option<HoustonUrl> {
        let h = self.houston();
        if let Some(url) = h.and_then(|h| h.config.as_ref()?.database.as_ref()?.connection.clone())
        {
            return Some(HoustonUrl {
                path: "astronomer.houston.config.database.connection".into(),
                url,
            });
        }
        if let Some(env) = h.and_then(|h| h.env.as_ref()) {
            for name in ["DATABASE__CONNECTION", "DATABASE_URL"] {
                if let Some(url) = env.get(name) {
                    return Some(HoustonUrl {
                        path: format!("astronomer.houston.env.{name}"),
                        url: url.to_string(),
                    });
                }
            }
        }
        if let Some(url) = self
            .harness
            .as_ref()
            .and_then(|x| x.houston.as_ref()?.connection.clone())
        {
            return Some(HoustonUrl {
                path: "harness.houston.connection".into(),
                url,
            });
        }
        None
    }
}
