//! `releaseName`: PgBouncer's database aliases and every service of the deployment are named
//! after it, and Kubernetes accepts only DNS labels.

use super::catalog::RELEASE_NAME;
use crate::finding::Sink;
use crate::model::Deployment;

pub(super) fn check(sink: &mut Sink, d: &Deployment) {
    let Some(name) = d.release_name.as_deref() else {
        sink.add(
            &RELEASE_NAME,
            "releaseName",
            "`releaseName` is missing; the database aliases cannot be predicted",
        );
        return;
    };
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        sink.add(
            &RELEASE_NAME,
            "releaseName",
            format!("`{name}` is not a DNS label"),
        );
    }
}
