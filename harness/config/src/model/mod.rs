//! Typed view of the two places the platform is configured: the deployment variables sent to
//! Houston and the control plane's Helm values. Fields the model does not know are kept in
//! `extra` so nothing a customer wrote is lost; the linter reports them.

mod connection;
mod deployment;
mod scalar;
mod values;

pub use connection::{Connection, ConnectionField, JsonForm};
pub use deployment::{Deployment, EnvList, EnvVar, PgbouncerConfig, GENERATED_SECRET};
pub(crate) use scalar::scalar_text;
pub use scalar::StringMap;
pub use values::{
    AstronomerValues, Global, GlobalPgbouncer, HarnessHouston, HarnessPlatform, HarnessValues,
    HoustonConfig, HoustonDatabase, HoustonDatabaseTarget, HoustonDeployments, HoustonUrl,
    HoustonValues, Image, ImageChoice, Injector, LabelSelector, ManualConnectionStrings,
    PgbouncerChartValues, Values, GLOBAL_PGBOUNCER_IMAGE, HELM_PGBOUNCER_IMAGE,
};

/// Unknown keys keep whatever JSON value they held.
pub type Extra = std::collections::BTreeMap<String, serde_json::Value>;

pub(crate) fn deployment_generic_fields() -> &'static [&'static str] {
    deployment::GENERIC_HOUSTON_FIELDS
}

/// Every field name the deployment model knows, for "did you mean".
pub(crate) fn deployment_known_fields() -> Vec<&'static str> {
    const MODELLED: &[&str] = &[
        "workspaceUuid",
        "deploymentUuid",
        "label",
        "releaseName",
        "namespace",
        "description",
        "executor",
        "airflowVersion",
        "runtimeVersion",
        "kerberosEnabled",
        "metadataConnectionJson",
        "resultBackendConnectionJson",
        "pgbouncerConfig",
    ];
    MODELLED
        .iter()
        .chain(deployment::GENERIC_HOUSTON_FIELDS)
        .copied()
        .collect()
}
