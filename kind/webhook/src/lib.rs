//! The reference credential-injection webhook of the Kerberized-database flow: a Kubernetes
//! mutating admission webhook that gives label-selected PgBouncer pods their Kerberos
//! credentials (krb5.conf from a ConfigMap, the keytab from a Secret, the variables MIT reads)
//! so PgBouncer can log in to PostgreSQL with GSSAPI. README.md says how to run and adapt it.

pub mod config;
pub mod inject;
pub mod review;
pub mod server;
pub mod tls;

pub use config::{Config, ConfigError, Selector};
pub use inject::{is_selected, mutate, InjectError};
pub use review::{review, Reply};
pub use server::{serve, Server};
