//! Which Airflow runs: each version is pinned by its lock file and has its own component set and
//! health endpoint.

use anyhow::{bail, Result};

/// The Airflow versions the harness runs, each pinned by `airflow/requirements-<pin>.lock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    Airflow3,
    Airflow2,
}

impl Version {
    /// The component that serves the UI and the health report (`api-server`, `webserver`).
    pub fn web_component(self) -> &'static str {
        match self {
            Version::Airflow3 => "api-server",
            Version::Airflow2 => "webserver",
        }
    }

    /// `3` or `2`, as the naive scripts take it.
    pub fn major(self) -> &'static str {
        match self {
            Version::Airflow3 => "3",
            Version::Airflow2 => "2",
        }
    }

    pub fn pin(self) -> &'static str {
        match self {
            Version::Airflow3 => "3.3.2",
            Version::Airflow2 => "2.11.2",
        }
    }

    /// `3`, `3.3.2`, `2`, `2.11.2` (what the run's `airflow` setting and scenario parameters say).
    pub fn parse(s: &str) -> Result<Version> {
        match s
            .trim()
            .trim_start_matches("airflow")
            .trim_start_matches('-')
        {
            "3" | "3.3.2" => Ok(Version::Airflow3),
            "2" | "2.11.2" => Ok(Version::Airflow2),
            other => {
                bail!("unknown Airflow version `{other}`: use 3 (3.3.2, the default) or 2 (2.11.2)")
            }
        }
    }

    pub fn health_path(self) -> &'static str {
        match self {
            Version::Airflow3 => "/api/v2/monitor/health",
            Version::Airflow2 => "/health",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_name_the_choices() {
        assert_eq!(Version::parse("3").unwrap(), Version::Airflow3);
        assert_eq!(Version::parse("2.11.2").unwrap(), Version::Airflow2);
        let e = Version::parse("1.10").unwrap_err().to_string();
        assert!(e.contains("use 3") && e.contains("2.11.2"), "{e}");
    }
}
