//! Configuration model of Astronomer's Kerberos database flow (Airflow → PgBouncer → Kerberized
//! PostgreSQL): parse the deployment variables and the control plane's values, lint them with
//! stable rule ids, and render what the platform would render from them.

pub mod finding;
pub mod ini;
pub mod lint;
pub mod load;
pub mod model;
pub mod platform;
pub mod render;
pub mod report;
pub mod rules;
pub mod settings;

pub use finding::{Finding, Rule, Severity};
pub use lint::{lint, lint_main, parse_selector, LintArgs};
pub use load::{load_deployment, load_houston_templates, load_values, HoustonTemplates, LoadError};
pub use model::{Deployment, LabelSelector, Values, GENERATED_SECRET};
pub use platform::{ImageRef, Platform};
pub use render::airflow::{airflow_urls, chart_urls, AirflowUrls, PgbouncerEndpoint};
pub use render::bundle::{render_bundle, RenderedFile};
pub use render::chart_values::chart_values;
pub use render::houston::{
    houston_mutation, render_houston_pgbouncer, HoustonApi, HoustonPgbouncer, MutationSpec,
};
pub use render::kube::{
    deployment_objects, houston_pgbouncer_deployment, houston_pgbouncer_pod_labels,
    DeploymentObjects,
};
pub use render::pgbouncer::{
    render_chart_users_txt, render_for_platform, render_pgbouncer_ini, render_users_txt,
    server_tls_sslmode, ChartSettings, Dial, Placement,
};
pub use render::shape::{service_principal, EnvironmentShape, Negotiate};
pub use render::RenderError;
pub use report::{print_report, Format, Summary, SCHEMA};
