//! The run configuration: every knob of a run, its default (here and nowhere else), and the one
//! parser of the `E2E_*` variables that carry it from `cargo xtask` to the scenario runner. A bad
//! value is rejected naming the variable, the value and what is allowed; nothing below the
//! runner's entry point reads an environment variable.

use std::fmt;
use std::path::PathBuf;

/// One variable's bad value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    pub variable: &'static str,
    pub value: String,
    pub allowed: String,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is `{}`: {}", self.variable, self.value, self.allowed)
    }
}

impl std::error::Error for SettingError {}

/// What a replayed deployment with lint errors does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Refuse to run it, printing the findings (the default).
    Refuse,
    /// Run the breakage as written, to watch it fail as on the platform.
    Reproduce,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `local`, `docker`, `kind`, or `auto`: each scenario on the docker tier when it runs
    /// there and a Docker engine answers, else on the local tier.
    pub tier: String,
    pub tags: Option<String>,
    pub name: Option<String>,
    pub keep: bool,
    pub offline: bool,
    /// `CI=true`: a skipped scenario counts as a failure.
    pub ci: bool,
    pub deployment: Option<PathBuf>,
    pub values: Option<PathBuf>,
    pub replay: Replay,
    /// The Airflow major version of scenarios that do not name one: `2` or `3`.
    pub airflow: String,
    /// Scenarios run at once.
    pub concurrency: usize,
    /// The whole run's limit, in minutes.
    pub run_timeout_min: u64,
    /// Airflow deployments run at once (five Python processes each).
    pub airflow_concurrency: usize,
    /// The fork server's CPU priority while Airflow 3's api-server starts beside it.
    pub airflow_nice: u8,
    /// Fork Airflow's components from one process that imported Airflow once.
    pub airflow_forkserver: bool,
    /// Restore the cached migrated schema instead of migrating.
    pub airflow_template: bool,
    /// Start the web servers through airflow/config/harness_apiserver.py / harness_webserver.py.
    pub airflow_fast_api: bool,
    /// An existing run directory to write into (xtask's own runs; else a new one).
    pub run_dir: Option<PathBuf>,
    /// The kube-apiserver binary the @apiserver scenarios run (built and cached by xtask);
    /// unset, those scenarios fail naming `cargo xtask e2e --tags @apiserver`.
    pub kube_apiserver: Option<PathBuf>,
    /// The docker tier's PgBouncer image instead of the project's build (`--pgbouncer-image`,
    /// e.g. Astronomer's `ap-pgbouncer-krb`); unset, the one `cargo xtask images` built.
    pub pgbouncer_image: Option<String>,
    /// The kind tier's cluster (`E2E_KUBECONFIG`): a kind cluster made from kind/cluster.yaml,
    /// whose node sees this machine's run directories; unset, the kind tier's scenarios cannot
    /// run.
    pub kubeconfig: Option<PathBuf>,
    /// Test-only (`cargo xtask hygiene`): a known value every generated secret contains, so a
    /// leak of any of them anywhere can be found by searching for this one string.
    pub canary: Option<String>,
}

/// Each scenario on containers where it runs there and a Docker engine answers, else locally.
pub const DEFAULT_TIER: &str = "auto";
pub const DEFAULT_AIRFLOW: &str = "3";
pub const DEFAULT_CONCURRENCY: usize = 4;
pub const DEFAULT_RUN_TIMEOUT_MIN: u64 = 60;
pub const DEFAULT_AIRFLOW_CONCURRENCY: usize = 2;
pub const DEFAULT_AIRFLOW_NICE: u8 = 5;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tier: DEFAULT_TIER.into(),
            tags: None,
            name: None,
            keep: false,
            offline: false,
            ci: false,
            deployment: None,
            values: None,
            replay: Replay::Refuse,
            airflow: DEFAULT_AIRFLOW.into(),
            concurrency: DEFAULT_CONCURRENCY,
            run_timeout_min: DEFAULT_RUN_TIMEOUT_MIN,
            airflow_concurrency: DEFAULT_AIRFLOW_CONCURRENCY,
            airflow_nice: DEFAULT_AIRFLOW_NICE,
            airflow_forkserver: true,
            airflow_template: true,
            airflow_fast_api: true,
            run_dir: None,
            kube_apiserver: None,
            pgbouncer_image: None,
            kubeconfig: None,
            canary: None,
        }
    }
}

fn bad(variable: &'static str, value: &str, allowed: impl Into<String>) -> SettingError {
    SettingError {
        variable,
        value: value.into(),
        allowed: allowed.into(),
    }
}

fn flag(variable: &'static str, value: &str) -> Result<bool, SettingError> {
    match value.trim() {
        "1" | "true" => Ok(true),
        "0" | "false" | "" => Ok(false),
        _ => Err(bad(variable, value, "use 1 or true, 0 or false")),
    }
}

fn one_of(variable: &'static str, value: &str, allowed: &[&str]) -> Result<String, SettingError> {
    let v = value.trim();
    if allowed.contains(&v) {
        Ok(v.to_string())
    } else {
        Err(bad(
            variable,
            value,
            format!("use one of {}", allowed.join(", ")),
        ))
    }
}

fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(
    variable: &'static str,
    value: &str,
    default: impl fmt::Display,
) -> Result<T, SettingError> {
    value
        .trim()
        .parse::<T>()
        .ok()
        .filter(|n| *n >= T::from(1))
        .ok_or_else(|| {
            bad(
                variable,
                value,
                format!("use a whole number of at least 1 (unset: {default})"),
            )
        })
}

impl Settings {
    /// Reads the `E2E_*` variables (and `CI`) through `get`; unset means the default.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingError> {
        let mut s = Settings::default();
        let text = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        if let Some(v) = text("E2E_TIER") {
            s.tier = one_of("E2E_TIER", &v, &["auto", "local", "docker", "kind"])?;
        }
        s.tags = text("E2E_TAGS");
        s.name = text("E2E_NAME");
        if let Some(v) = get("E2E_KEEP") {
            s.keep = flag("E2E_KEEP", &v)?;
        }
        if let Some(v) = get("E2E_OFFLINE") {
            s.offline = flag("E2E_OFFLINE", &v)?;
        }
        // CI systems set CI to all sorts of things; only "true"/"1" asks for the strict count.
        s.ci = get("CI").is_some_and(|v| v == "1" || v == "true");
        s.deployment = text("E2E_DEPLOYMENT").map(PathBuf::from);
        s.values = text("E2E_VALUES").map(PathBuf::from);
        if let Some(v) = text("E2E_REPLAY") {
            s.replay = match one_of("E2E_REPLAY", &v, &["refuse", "reproduce"])?.as_str() {
                "reproduce" => Replay::Reproduce,
                _ => Replay::Refuse,
            };
        }
        if let Some(v) = text("E2E_AIRFLOW") {
            s.airflow = match v.trim() {
                "3" | "3.3.2" => "3".into(),
                "2" | "2.11.2" => "2".into(),
                _ => return Err(bad("E2E_AIRFLOW", &v, "use 3 (3.3.2) or 2 (2.11.2)")),
            };
        }
        if let Some(v) = text("E2E_CONCURRENCY") {
            s.concurrency = at_least_one("E2E_CONCURRENCY", &v, DEFAULT_CONCURRENCY)?;
        }
        if let Some(v) = text("E2E_RUN_TIMEOUT_MIN") {
            s.run_timeout_min = at_least_one("E2E_RUN_TIMEOUT_MIN", &v, DEFAULT_RUN_TIMEOUT_MIN)?;
        }
        if let Some(v) = text("E2E_AIRFLOW_CONCURRENCY") {
            s.airflow_concurrency =
                at_least_one("E2E_AIRFLOW_CONCURRENCY", &v, DEFAULT_AIRFLOW_CONCURRENCY)?;
        }
        if let Some(v) = text("E2E_AIRFLOW_NICE") {
            s.airflow_nice = v
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= 19)
                .ok_or_else(|| {
                    bad(
                        "E2E_AIRFLOW_NICE",
                        &v,
                        format!("use a niceness from 0 to 19 (unset: {DEFAULT_AIRFLOW_NICE})"),
                    )
                })?;
        }
        if let Some(v) = get("E2E_AIRFLOW_FORKSERVER") {
            s.airflow_forkserver = flag("E2E_AIRFLOW_FORKSERVER", &v)? || v.trim().is_empty();
        }
        if let Some(v) = get("E2E_AIRFLOW_TEMPLATE") {
            s.airflow_template = flag("E2E_AIRFLOW_TEMPLATE", &v)? || v.trim().is_empty();
        }
        if let Some(v) = get("E2E_AIRFLOW_FAST_API") {
            s.airflow_fast_api = flag("E2E_AIRFLOW_FAST_API", &v)? || v.trim().is_empty();
        }
        s.run_dir = text("E2E_RUN_DIR").map(PathBuf::from);
        s.kube_apiserver = text("E2E_KUBE_APISERVER").map(PathBuf::from);
        s.pgbouncer_image = text("E2E_PGBOUNCER_IMAGE");
        s.kubeconfig = text("E2E_KUBECONFIG").map(PathBuf::from);
        if let Some(v) = text("E2E_CANARY") {
            // Secrets end up in URLs, SQL literals and command lines: only letters and digits
            // keep every one of them valid; 12 or more so a chance match is impossible.
            let v = v.trim();
            if v.len() < 12 || v.len() > 32 || !v.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(bad(
                    "E2E_CANARY",
                    v,
                    "use 12 to 32 ASCII letters and digits (unset: secrets are random only)",
                ));
            }
            s.canary = Some(v.to_string());
        }
        Ok(s)
    }

    /// The variables that carry these settings to the scenario runner; [`Settings::from_vars`]
    /// reads them back to the same settings. Unset options are listed with `None` (to remove an
    /// inherited value).
    pub fn to_vars(&self) -> Vec<(&'static str, Option<String>)> {
        let b = |v: bool| Some(if v { "1" } else { "0" }.to_string());
        let p = |v: &Option<PathBuf>| v.as_ref().map(|p| p.display().to_string());
        vec![
            ("E2E_TIER", Some(self.tier.clone())),
            ("E2E_TAGS", self.tags.clone()),
            ("E2E_NAME", self.name.clone()),
            ("E2E_KEEP", b(self.keep)),
            ("E2E_OFFLINE", b(self.offline)),
            ("E2E_DEPLOYMENT", p(&self.deployment)),
            ("E2E_VALUES", p(&self.values)),
            (
                "E2E_REPLAY",
                Some(
                    match self.replay {
                        Replay::Refuse => "refuse",
                        Replay::Reproduce => "reproduce",
                    }
                    .into(),
                ),
            ),
            ("E2E_AIRFLOW", Some(self.airflow.clone())),
            ("E2E_CONCURRENCY", Some(self.concurrency.to_string())),
            (
                "E2E_RUN_TIMEOUT_MIN",
                Some(self.run_timeout_min.to_string()),
            ),
            (
                "E2E_AIRFLOW_CONCURRENCY",
                Some(self.airflow_concurrency.to_string()),
            ),
            ("E2E_AIRFLOW_NICE", Some(self.airflow_nice.to_string())),
            ("E2E_AIRFLOW_FORKSERVER", b(self.airflow_forkserver)),
            ("E2E_AIRFLOW_TEMPLATE", b(self.airflow_template)),
            ("E2E_AIRFLOW_FAST_API", b(self.airflow_fast_api)),
            ("E2E_RUN_DIR", p(&self.run_dir)),
            ("E2E_KUBE_APISERVER", p(&self.kube_apiserver)),
            ("E2E_PGBOUNCER_IMAGE", self.pgbouncer_image.clone()),
            ("E2E_KUBECONFIG", p(&self.kubeconfig)),
            ("E2E_CANARY", self.canary.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Settings, SettingError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn nothing_set_is_the_defaults() {
        assert_eq!(parse(&[]).unwrap(), Settings::default());
    }

    #[test]
    fn the_variables_read_back_to_the_same_settings() {
        let s = Settings {
            tags: Some("@kdc".into()),
            keep: true,
            replay: Replay::Reproduce,
            airflow: "2".into(),
            concurrency: 7,
            run_timeout_min: 9,
            airflow_concurrency: 3,
            airflow_nice: 12,
            airflow_forkserver: false,
            airflow_template: false,
            airflow_fast_api: false,
            deployment: Some("/x/d.yaml".into()),
            kubeconfig: Some("/x/kubeconfig".into()),
            canary: Some("hygieneCanary42".into()),
            ..Settings::default()
        };
        let vars: HashMap<&str, String> = s
            .to_vars()
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect();
        assert_eq!(Settings::from_vars(|k| vars.get(k).cloned()).unwrap(), s);
    }

    #[test]
    fn every_bad_value_names_variable_value_and_what_is_allowed() {
        for (var, value, allowed) in [
            ("E2E_CONCURRENCY", "0", "at least 1"),
            ("E2E_CONCURRENCY", "four", "at least 1"),
            ("E2E_RUN_TIMEOUT_MIN", "-5", "at least 1"),
            ("E2E_AIRFLOW_CONCURRENCY", "2.5", "at least 1"),
            ("E2E_AIRFLOW_NICE", "20", "0 to 19"),
            ("E2E_AIRFLOW", "4", "3 (3.3.2) or 2"),
            ("E2E_TIER", "k8s", "local, docker, kind"),
            ("E2E_REPLAY", "yes", "refuse, reproduce"),
            ("E2E_KEEP", "yes", "1 or true"),
            ("E2E_AIRFLOW_FORKSERVER", "off", "1 or true"),
            ("E2E_CANARY", "short", "12 to 32 ASCII letters"),
            ("E2E_CANARY", "has-a-dash-in-it", "12 to 32 ASCII letters"),
        ] {
            let e = parse(&[(var, value)]).unwrap_err();
            let text = e.to_string();
            assert_eq!(e.variable, var);
            assert!(
                text.contains(var)
                    && text.contains(&format!("`{value}`"))
                    && text.contains(allowed),
                "{text}"
            );
        }
    }
}
