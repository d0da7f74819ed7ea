//! The platform releases the model follows, and every fact that differs between them: which
//! chart versions a release pins, its image defaults, how its deployment PgBouncer pod is
//! hardened, and Houston's mutation. Read from Astronomer's charts (see RULES.md, "Platform
//! versions"); one place for each, so a new release is one new arm here.

use crate::render::houston::HoustonApi;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Platform {
    /// Astronomer Software 0.37.7: airflow-chart 1.15.9, apc-airflow 1.15.6-astro.
    #[default]
    Software0377,
    /// Astro Private Cloud 1.1.0: airflow-chart 1.17.20, apc-airflow 1.17.3-astro.
    Apc110,
}

/// An image as a chart writes it: `repository:tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub repository: String,
    pub tag: String,
}

impl ImageRef {
    fn new(repository: &str, tag: &str) -> Self {
        ImageRef {
            repository: repository.into(),
            tag: tag.into(),
        }
    }

    /// The last path element of the repository, e.g. `ap-pgbouncer-krb`.
    pub fn name(&self) -> &str {
        self.repository
            .rsplit('/')
            .next()
            .unwrap_or(&self.repository)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

/// The Kerberos build of PgBouncer; the generic `ap-pgbouncer` has no GSSAPI.
pub const KRB_IMAGE: &str = "ap-pgbouncer-krb";
const KRB_REPOSITORY: &str = "quay.io/astronomer/ap-pgbouncer-krb";

impl Platform {
    pub const ALL: &'static [Platform] = &[Platform::Software0377, Platform::Apc110];

    pub fn version(self) -> &'static str {
        match self {
            Platform::Software0377 => "0.37.7",
            Platform::Apc110 => "1.1.0",
        }
    }

    /// `astronomer/airflow-chart`, the deployment chart Houston installs.
    pub fn airflow_chart_version(self) -> &'static str {
        match self {
            Platform::Software0377 => "1.15.9",
            Platform::Apc110 => "1.17.20",
        }
    }

    /// The `airflow` subchart (`astronomer/apc-airflow`), which holds the PgBouncer templates.
    pub fn subchart_version(self) -> &'static str {
        match self {
            Platform::Software0377 => "1.15.6-astro",
            Platform::Apc110 => "1.17.3-astro",
        }
    }

    /// `global.airflow.images.pgbouncer` of the platform chart: what Houston gives every
    /// deployment's PgBouncer unless overridden. The generic image, not the Kerberos build.
    pub fn deployment_pgbouncer_image(self) -> ImageRef {
        let tag = match self {
            Platform::Software0377 => "1.24.1-2",
            Platform::Apc110 => "1.24.1-4",
        };
        ImageRef::new("quay.io/astronomer/ap-pgbouncer", tag)
    }

    /// The Kerberos build the documentation names for this release.
    pub fn krb_pgbouncer_image(self) -> ImageRef {
        let tag = match self {
            Platform::Software0377 => "1.25.0-2",
            Platform::Apc110 => "1.25.0-3",
        };
        ImageRef::new(KRB_REPOSITORY, tag)
    }

    /// The `pgbouncer` subchart's `image` default (Houston's own PgBouncer): already the
    /// Kerberos build.
    pub fn houston_pgbouncer_image(self) -> ImageRef {
        self.krb_pgbouncer_image()
    }

    /// airflow-chart 1.17 sets the PgBouncer container's `securityContext` to
    /// `{readOnlyRootFilesystem: true}` and mounts an emptyDir at `/tmp`. That value replaces
    /// the subchart's default `{allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}`
    /// (which 1.15 keeps), so on 1.1.0 the container may escalate and keeps its capabilities.
    pub fn read_only_root_filesystem(self) -> bool {
        matches!(self, Platform::Apc110)
    }

    /// The `chart` label of the subchart's Secrets: 1.15.6-astro writes the bare name.
    pub fn secret_chart_label(self) -> String {
        match self {
            Platform::Software0377 => "airflow".into(),
            Platform::Apc110 => self.workload_chart_label(),
        }
    }

    /// The `chart` label of the subchart's Deployments: `airflow-<version>`.
    pub fn workload_chart_label(self) -> String {
        format!("airflow-{}", self.subchart_version())
    }

    pub fn houston_api(self) -> HoustonApi {
        match self {
            Platform::Software0377 => HoustonApi::CreateDeployment,
            Platform::Apc110 => HoustonApi::UpsertDeployment,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.version())
    }
}

impl FromStr for Platform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().trim_start_matches('v');
        Platform::ALL
            .iter()
            .copied()
            .find(|p| p.version() == s)
            .ok_or_else(|| {
                format!(
                    "platform version `{s}` is not modelled; use one of {}",
                    Platform::ALL
                        .iter()
                        .map(|p| p.version())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}
