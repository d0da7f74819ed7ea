//! Probes look at a running environment and report what they saw; they never know the tier.

pub mod gss;
pub mod sql;
