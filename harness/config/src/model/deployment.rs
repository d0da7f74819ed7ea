//! The deployment file: exactly the `variables` object of Houston's `upsertDeployment` (1.x) or
//! `createDeployment` (0.3x) mutation, in YAML or JSON, with the API's own field names.

use super::connection::ConnectionField;
use super::scalar::{scalar_text, StringMap};
use super::Extra;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// Placeholder for a password the harness generates per run. Fixtures use it instead of a
/// literal so no usable password is ever committed.
pub const GENERATED_SECRET: &str = "${generated}";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub airflow_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kerberos_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_connection_json: Option<ConnectionField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_backend_connection_json: Option<ConnectionField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgbouncer_config: Option<PgbouncerConfig>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Houston mutation arguments that are not about Kerberos but are legitimate in the file; the
/// linter does not call them unknown.
pub(crate) const GENERIC_HOUSTON_FIELDS: &[&str] = &[
    "type",
    "config",
    "env",
    "properties",
    "cloudRole",
    "dagDeployment",
    "workers",
    "webserver",
    "scheduler",
    "triggerer",
    "dagProcessor",
    "apiServer",
    "clusterId",
    "bypassUpdatesForDeploymentUpgrade",
];

impl Deployment {
    pub fn metadata(&self) -> Option<&super::Connection> {
        self.metadata_connection_json.as_ref().map(|c| &c.value)
    }

    pub fn result_backend(&self) -> Option<&super::Connection> {
        self.result_backend_connection_json
            .as_ref()
            .map(|c| &c.value)
    }

    pub fn pgbouncer(&self) -> PgbouncerConfig {
        self.pgbouncer_config.clone().unwrap_or_default()
    }

    /// A copy with every `pass` equal to [`GENERATED_SECRET`] replaced by `secret`, which is what
    /// the harness does before rendering or sending anything.
    pub fn with_generated_secret(&self, secret: &str) -> Deployment {
        let mut d = self.clone();
        for c in [
            &mut d.metadata_connection_json,
            &mut d.result_backend_connection_json,
        ]
        .into_iter()
        .flatten()
        {
            if c.value.pass.as_deref() == Some(GENERATED_SECRET) {
                c.value.pass = Some(secret.to_string());
            }
        }
        d
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PgbouncerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<StringMap>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<EnvList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_ini: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_ini_metadata: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_ini_result_backend: Option<String>,
    /// Any other key of the subchart's `pgbouncer` block (Houston passes `pgbouncerConfig`
    /// through as `airflow.pgbouncer`); the chart-schema rule judges them.
    #[serde(flatten)]
    pub extra: Extra,
}

impl PgbouncerConfig {
    /// `airflow.pgbouncer.sslmode`: PgBouncer's `server_tls_sslmode` (the chart's default
    /// `prefer`); the connections' own `sslmode` goes into Airflow's URLs instead. Kept in
    /// `extra` like every other pass-through key of the subchart's `pgbouncer` block.
    pub fn sslmode(&self) -> Option<&str> {
        self.extra.get("sslmode").and_then(|v| v.as_str())
    }

    /// An integer setting given through `pgbouncerConfig` (e.g. `metadataPoolSize`).
    pub fn integer(&self, key: &str) -> Option<u32> {
        self.extra
            .get(key)
            .and_then(|v| v.as_u64())
            .and_then(|n| u32::try_from(n).ok())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvVar {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// The chart takes `env` as a list of `{name, value}`; people also write a map. Both are read;
/// it always serializes as the list the chart expects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct EnvList(pub Vec<EnvVar>);

impl EnvList {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.value.as_str())
    }
}

impl<'de> Deserialize<'de> for EnvList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Null => Ok(EnvList::default()),
            serde_json::Value::Object(map) => {
                let mut out = Vec::new();
                for (name, v) in map {
                    let value = scalar_text(&v).ok_or_else(|| {
                        de::Error::custom(format!("env `{name}`: the value must be a string"))
                    })?;
                    out.push(EnvVar { name, value });
                }
                Ok(EnvList(out))
            }
            list @ serde_json::Value::Array(_) => {
                let raw: Vec<serde_json::Map<String, serde_json::Value>> =
                    serde_json::from_value(list).map_err(|e| {
                        de::Error::custom(format!("env must be a list of {{name, value}}: {e}"))
                    })?;
                let mut out = Vec::new();
                for (i, entry) in raw.into_iter().enumerate() {
                    let name = entry.get("name").and_then(|v| v.as_str()).ok_or_else(|| {
                        de::Error::custom(format!("env[{i}]: each entry needs a string `name`"))
                    })?;
                    let value = match entry.get("value") {
                        None => String::new(),
                        Some(v) => scalar_text(v).ok_or_else(|| {
                            de::Error::custom(format!(
                                "env[{i}] `{name}`: the value must be a string"
                            ))
                        })?,
                    };
                    out.push(EnvVar {
                        name: name.to_string(),
                        value,
                    });
                }
                Ok(EnvList(out))
            }
            _ => Err(de::Error::custom(
                "env must be a list of {name, value} or a map of name: value",
            )),
        }
    }
}
