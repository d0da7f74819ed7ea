//! The Kerberized-database e2e harness: a throwaway MIT realm, a GSSAPI-only PostgreSQL, a
//! Kerberos-capable PgBouncer and Airflow, started for real by a substrate (processes on
//! loopback, or containers with their own host names), plus the probes that prove the path is Kerberized and name the
//! failure when it is not. Steps and commands use one [`environment::Environment`]; components
//! describe themselves with a tier-neutral [`component::Spec`] and run through a
//! [`substrate::Substrate`].

pub mod airflow;
pub mod bench;
pub mod child;
pub mod component;
pub mod envctl;
pub mod environment;
pub mod fault;
pub mod http;
pub mod images;
pub mod kind;
pub mod kube;
pub mod logs;
pub mod orphans;
pub mod pgbouncer;
pub mod postgres;
pub mod probe;
pub mod progress;
pub mod realm;
pub mod redact;
pub mod replay;
pub mod run;
pub mod scratch;
pub mod secret;
pub mod stack;
pub mod substrate;
pub mod tools;
