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
    /// `global.airflow`: the image defaults the platform chart writes into Houston's
    /// `deployments.helm.airflow` (read with [`Values::deployment_pgbouncer_image`]).
    #[serde(default)]
    pub airflow: Option<serde_json::Value>,
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
    /// Helm values Houston passes to every deployment chart (`airflow.*`, images, ...).
    #[serde(default)]
    pub helm: Option<serde_json::Value>,
    /// Houston's gate on `pgbouncerConfig.extraIni` (1.x: `upsertExtraIniAllowed`).
    #[serde(default)]
    pub upsert_extra_ini_allowed: Option<bool>,
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
    /// Houston's database URL as the Secret `<release>-houston-backend` (or the one named by
    /// `astronomer.houston.backendSecretName`) holds it, recorded here so it can be checked.
    #[serde(default)]
    pub connection: Option<String>,
    /// Directory of `pgbouncer.ini.tmpl` / `users.txt.tmpl`, relative to the values file.
    #[serde(default)]
    pub pgbouncer_templates: Option<String>,
    /// Houston's database on the customer's PostgreSQL: where the `[databases]` entry of
    /// Houston's pgbouncer.ini points (the templates' `db_host`, `db_port`, `db_name`).
    #[serde(default)]
    pub database: Option<HoustonDatabaseTarget>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `harness.houston.database`: the PostgreSQL database Houston's PgBouncer logs in to (as
/// Houston's principal, `global.pgbouncer.extraEnv.KERBEROS_USER`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HoustonDatabaseTarget {
    #[serde(default)]
    pub host: Option<String>,
    /// Defaults to PostgreSQL's 5432.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub name: Option<String>,
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
    /// The platform release the values are for (`0.37.7`, `1.1.0`); `--platform` overrides it.
    #[serde(default)]
    pub version: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Where Houston's database URL was found, for findings that point at it.
#[derive(Debug, Clone, PartialEq)]
pub struct HoustonUrl {
    pub path: String,
    pub url: String,
}

/// Which image the deployments' PgBouncer gets, and from which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageChoice {
    pub image: crate::platform::ImageRef,
    /// The values key it came from, or `None` for the platform chart's default.
    pub path: Option<&'static str>,
}

pub const HELM_PGBOUNCER_IMAGE: &str =
    "astronomer.houston.config.deployments.helm.airflow.images.pgbouncer";
pub const GLOBAL_PGBOUNCER_IMAGE: &str = "global.airflow.images.pgbouncer";

impl Values {
    /// The platform release: `harness.platform.version`, else `None`.
    pub fn platform_version(&self) -> Option<&str> {
        self.harness.as_ref()?.platform.as_ref()?.version.as_deref()
    }

    /// The deployments' PgBouncer image as Houston would hand it to the deployment chart:
    /// Houston's `local-production.yaml` (`astronomer.houston.config`) overrides the
    /// `deployments.helm` block the platform chart writes from `global.airflow.images`, whose
    /// default is the generic image. A key given without `tag` keeps the default's tag.
    pub fn deployment_pgbouncer_image(&self, platform: crate::Platform) -> ImageChoice {
        let default = platform.deployment_pgbouncer_image();
        let houston = self
            .houston()
            .and_then(|h| h.config.as_ref()?.deployments.as_ref()?.helm.as_ref())
            .and_then(|h| h.pointer("/airflow/images/pgbouncer"));
        let global = self
            .global
            .as_ref()
            .and_then(|g| g.airflow.as_ref())
            .and_then(|a| a.pointer("/images/pgbouncer"));
        let layered = |base: crate::platform::ImageRef, v: &serde_json::Value| {
            let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
            crate::platform::ImageRef {
                repository: field("repository").unwrap_or(base.repository),
                tag: field("tag").unwrap_or(base.tag),
            }
        };
        let mut choice = ImageChoice {
            image: default,
            path: None,
        };
        if let Some(g) = global {
            choice = ImageChoice {
                image: layered(choice.image, g),
                path: Some(GLOBAL_PGBOUNCER_IMAGE),
            };
        }
        if let Some(h) = houston {
            choice = ImageChoice {
                image: layered(choice.image, h),
                path: Some(HELM_PGBOUNCER_IMAGE),
            };
        }
        choice
    }

    pub fn extra_ini_allowed(&self) -> Option<bool> {
        self.houston()?
            .config
            .as_ref()?
            .deployments
            .as_ref()?
            .upsert_extra_ini_allowed
    }

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

    /// The Secret Houston's PgBouncer mounts at `/etc/pgbouncer` (`global.pgbouncer.secretName`,
    /// the chart's default when unset).
    pub fn pgbouncer_secret_name(&self) -> String {
        self.global_pgbouncer()
            .and_then(|g| g.secret_name.clone())
            .unwrap_or_else(|| GlobalPgbouncer::DEFAULT_SECRET_NAME.into())
    }

    /// The Secret Houston's container reads its database URL from (key `connection`):
    /// `astronomer.houston.backendSecretName`, else the chart's `<release>-houston-backend`.
    pub fn houston_backend_secret_name(&self) -> String {
        self.houston()
            .and_then(|h| h.backend_secret_name.clone())
            .unwrap_or_else(|| format!("{}-houston-backend", self.platform_release()))
    }

    pub fn houston_database(&self) -> Option<&HoustonDatabaseTarget> {
        self.harness.as_ref()?.houston.as_ref()?.database.as_ref()
    }

    pub fn templates_dir(&self) -> Option<&str> {
        self.harness
            .as_ref()?
            .houston
            .as_ref()?
            .pgbouncer_templates
            .as_deref()
    }

    /// Houston's database URL as its container gets it. The chart always sets
    /// `DATABASE__CONNECTION`/`DATABASE_URL` from the Secret `<release>-houston-backend` (or
    /// `backendSecretName`), whose content is not in the values; `harness.houston.connection`
    /// records it. An explicit `astronomer.houston.env` entry is read too.
    /// `astronomer.houston.config.database.connection` is not: it only reaches a configuration
    /// file the environment overrides (rule KRB116).
    pub fn houston_url(&self) -> Option<HoustonUrl> {
        let h = self.houston();
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
