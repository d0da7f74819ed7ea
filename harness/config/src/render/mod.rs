//! What the platform would produce from the model: PgBouncer's files, Airflow's URLs, Houston's
//! PgBouncer files and the GraphQL mutation, plus the shape of a reference environment.

pub mod airflow;
pub mod bundle;
pub mod chart_values;
pub mod houston;
pub mod kube;
pub mod pgbouncer;
pub mod shape;
mod template;

pub use template::fill;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    /// The model lacks a field rendering needs; lint explains it in detail.
    #[error("{path} is missing or invalid: {why}")]
    Missing { path: String, why: String },
    #[error("template {name}: {why}")]
    Template { name: String, why: String },
    #[error("users.txt: user `{user}` has two different passwords (metadata and result backend)")]
    ConflictingPasswords { user: String },
    #[error("variable `{name}` has no GraphQL type; pass it in MutationSpec::types (from schema introspection)")]
    UnknownVariableType { name: String },
}

pub(crate) fn missing(path: &str, why: impl Into<String>) -> RenderError {
    RenderError::Missing {
        path: path.to_string(),
        why: why.into(),
    }
}
