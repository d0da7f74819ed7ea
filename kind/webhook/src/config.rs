//! What the webhook is told: which pods it selects and where their credentials come from. Read
//! from one YAML file; unknown keys are errors, so a misspelt key never becomes a silent default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The group of `nobody` (uid 65534), which the platform's PgBouncer pods run as. The keytab
/// is mounted group-readable and the pod's `fsGroup` (when it has none) set to this, so the
/// keytab is readable by the pod's user without being world-readable.
pub const DEFAULT_FS_GROUP: i64 = 65534;

/// One object selector: a pod matches when it carries every one of these labels (the subset of
/// a Kubernetes `LabelSelector` the platform's labels need).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selector {
    pub match_labels: BTreeMap<String, String>,
}

impl Selector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// A pod is injected when any selector matches its labels. Register the same selectors as
    /// `objectSelector`s of the MutatingWebhookConfiguration (one webhook entry each): the API
    /// server then never calls the webhook for other pods, and this check is the second line.
    pub selectors: Vec<Selector>,
    /// The ConfigMap holding krb5.conf, in the pod's namespace.
    pub krb5_config_map: String,
    #[serde(default = "default_krb5_key")]
    pub krb5_config_map_key: String,
    /// The Secret holding the keytab, in the pod's namespace.
    pub keytab_secret: String,
    #[serde(default = "default_keytab_key")]
    pub keytab_secret_key: String,
    /// The pod's `fsGroup` when it sets none (see [`DEFAULT_FS_GROUP`]).
    #[serde(default = "default_fs_group")]
    pub fs_group: i64,
    /// Containers to inject, by name; empty means every container of the pod.
    #[serde(default)]
    pub containers: Vec<String>,
}

fn default_krb5_key() -> String {
    "krb5.conf".into()
}
fn default_keytab_key() -> String {
    "krb5.keytab".into()
}
fn default_fs_group() -> i64 {
    DEFAULT_FS_GROUP
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("webhook configuration {file}: cannot read it: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "webhook configuration {file}: {source} (README.md, \"Configuration\", lists the keys)"
    )]
    Parse {
        file: PathBuf,
        source: serde_yaml::Error,
    },
    #[error("webhook configuration {file}: `{field}` {problem}; {fix}")]
    Invalid {
        file: PathBuf,
        field: String,
        problem: String,
        fix: String,
    },
}

impl Config {
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.into(),
            source,
        })?;
        Self::parse(file, &text)
    }

    /// `file` only names the source in errors.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let cfg: Config = serde_yaml::from_str(text).map_err(|source| ConfigError::Parse {
            file: file.into(),
            source,
        })?;
        let invalid = |field: &str, problem: &str, fix: &str| ConfigError::Invalid {
            file: file.into(),
            field: field.into(),
            problem: problem.into(),
            fix: fix.into(),
        };
        if cfg.selectors.is_empty() {
            return Err(invalid(
                "selectors",
                "is empty, so no pod would ever be injected",
                "list the pod labels of the PgBouncer pods, e.g. `- matchLabels: {krb-inject: enabled}`",
            ));
        }
        if let Some(i) = cfg.selectors.iter().position(|s| s.match_labels.is_empty()) {
            return Err(invalid(
                &format!("selectors[{i}].matchLabels"),
                "is empty, which would select every pod",
                "name at least one label",
            ));
        }
        for (field, v) in [
            ("krb5ConfigMap", &cfg.krb5_config_map),
            ("krb5ConfigMapKey", &cfg.krb5_config_map_key),
            ("keytabSecret", &cfg.keytab_secret),
            ("keytabSecretKey", &cfg.keytab_secret_key),
        ] {
            if v.trim().is_empty() {
                return Err(invalid(field, "is empty", "give the object's name or key"));
            }
        }
        if cfg.fs_group < 0 {
            return Err(invalid(
                "fsGroup",
                "is negative",
                "use a group id such as 65534",
            ));
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const GOOD: &str = "selectors:\n  - matchLabels: {krb-inject: enabled}\nkrb5ConfigMap: krb5\nkeytabSecret: kt\n";

    #[test]
    fn defaults_apply() {
        let c = Config::parse(Path::new("c.yaml"), GOOD).unwrap();
        assert_eq!(c.krb5_config_map_key, "krb5.conf");
        assert_eq!(c.keytab_secret_key, "krb5.keytab");
        assert_eq!(c.fs_group, 65534);
    }

    #[rstest]
    #[case::typo(
        "selector:\n  - matchLabels: {a: b}\nkrb5ConfigMap: k\nkeytabSecret: s\n",
        "unknown field `selector`"
    )]
    #[case::no_selectors(
        "selectors: []\nkrb5ConfigMap: k\nkeytabSecret: s\n",
        "`selectors` is empty"
    )]
    #[case::empty_labels(
        "selectors:\n  - matchLabels: {}\nkrb5ConfigMap: k\nkeytabSecret: s\n",
        "`selectors[0].matchLabels` is empty"
    )]
    #[case::no_secret(
        "selectors:\n  - matchLabels: {a: b}\nkrb5ConfigMap: k\n",
        "missing field `keytabSecret`"
    )]
    #[case::blank_secret(
        "selectors:\n  - matchLabels: {a: b}\nkrb5ConfigMap: k\nkeytabSecret: ' '\n",
        "`keytabSecret` is empty"
    )]
    fn bad_config_is_named(#[case] text: &str, #[case] want: &str) {
        let e = Config::parse(Path::new("/etc/w/config.yaml"), text)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want) && e.contains("/etc/w/config.yaml"), "{e}");
    }
}
