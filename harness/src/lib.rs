//! The Kerberized-database e2e harness: a throwaway MIT realm, a GSSAPI-only PostgreSQL, a
//! Kerberos-capable PgBouncer and (later) Airflow, started for real on this machine, plus the
//! probes that prove the path is Kerberized and name the failure when it is not.

pub mod airflow;
pub mod bench;
pub mod child;
pub mod component;
pub mod envctl;
pub mod kube;
pub mod pgbouncer;
pub mod ports;
pub mod postgres;
pub mod probe;
pub mod progress;
pub mod realm;
pub mod redact;
pub mod replay;
pub mod run;
pub mod secret;
pub mod stack;
pub mod substrate;
pub mod template;
pub mod tools;
