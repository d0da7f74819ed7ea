//! Replaying a customer's configuration: the reference environment adopts the realm, principal,
//! database host and database names a deployment file describes, and PgBouncer is rendered from
//! the file itself, so the run shows where that configuration breaks.
//!
//! By default a file with lint errors is refused: an environment built from it would not be what
//! the platform builds. [`Policy::Reproduce`] runs it anyway when every error is of a kind the
//! local tier reproduces faithfully (wrong SPN, negotiation off, wrong user...), so a support
//! engineer sees the runtime failure the customer sees.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use harness_config::{
    Deployment, EnvironmentShape, Finding, LabelSelector, Severity, GENERATED_SECRET,
};

use crate::stack::Shape;

/// What to do with a file that has lint errors: refuse it, or (`Reproduce`) build the
/// environment from the file as written when each error is in [`REPRODUCIBLE`]. One type with
/// the run's settings, which parse it.
pub use harness_config::settings::Replay as Policy;

/// Errors whose effect the local tier reproduces as the platform would: the names Kerberos and
/// PostgreSQL see, the extraIni PgBouncer runs, the injector's choice. Other errors (a missing
/// connection, a port that is not a number, kerberosEnabled false...) leave nothing faithful to
/// run: Houston would reject the mutation or render a different chart.
pub const REPRODUCIBLE: &[&str] = &[
    "KRB003", // a user that is not a principal: PgBouncer logs in as a role the principal cannot be
    "KRB006", // no user= in a database extra: PgBouncer logs in as the client's name
    "KRB007", // user= differs from the principal: PostgreSQL refuses the mapping
    "KRB009", // negotiation off or absent: PgBouncer refuses AuthenticationGSS
    "KRB010", // SPN absent or malformed: the fork asks for what the file says
    "KRB011", // SPN host mismatch: the KDC has no such service, or the server no key for it
    "KRB012", // SPN realm mismatch: no cross-realm trust to the named realm
    "KRB016", // no labels: the injector skips the pod, no credentials
    "KRB017", // labels match no selector: same
    "KRB024", // two principals: PgBouncer logs in to both databases with the pod's one credential
];

/// A deployment file read for replay.
#[derive(Debug, Clone)]
pub struct Replay {
    pub file: PathBuf,
    pub shape: Shape,
    /// Everything lint said (errors only when the policy let them through).
    pub findings: Vec<Finding>,
}

impl Replay {
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }
}

/// The shape of a lint-clean deployment file; a file with errors is refused with the findings.
pub fn shape_from_file(file: &Path) -> Result<Shape> {
    Ok(load(file, None, Policy::Refuse)?.shape)
}

/// Load and lint `deployment` (with the control plane's `values` for the injector's selectors,
/// when given) and derive the environment's shape from it.
pub fn load(deployment: &Path, values: Option<&Path>, policy: Policy) -> Result<Replay> {
    // Load errors already name file, line and column.
    let findings =
        harness_config::lint(Some(deployment), values, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let errors: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    let blocking: Vec<&Finding> = match policy {
        Policy::Refuse => errors.clone(),
        Policy::Reproduce => errors
            .iter()
            .copied()
            .filter(|f| !REPRODUCIBLE.contains(&f.rule))
            .collect(),
    };
    if !blocking.is_empty() {
        let mut msg = match policy {
            Policy::Refuse => format!(
                "{} has {} lint error(s); an environment built from it would not be the one the platform builds.\n\
                 Fix them, or run the breakage on purpose with `cargo xtask e2e --reproduce` (E2E_REPLAY=reproduce).\n",
                deployment.display(),
                blocking.len()
            ),
            Policy::Reproduce => format!(
                "{} has {} lint error(s) the local tier cannot reproduce (it reproduces {}); fix them first:\n",
                deployment.display(),
                blocking.len(),
                REPRODUCIBLE.join(", ")
            ),
        };
        for f in &blocking {
            let _ = writeln!(msg, "{f}");
        }
        bail!("{}", msg.trim_end());
    }
    let d = harness_config::load_deployment(deployment).map_err(|e| anyhow::anyhow!("{e}"))?;
    let selectors = match values {
        Some(v) => harness_config::load_values(v)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .selectors()
            .map(<[_]>::to_vec),
        None => None,
    };
    let shape = shape_of(deployment, d, selectors.as_deref())?;
    Ok(Replay {
        file: deployment.to_path_buf(),
        shape,
        findings,
    })
}

/// The principal the injector gives the pod: the metadata user when it is one, else the
/// result backend's, else `KERBEROS_USER` from `pgbouncerConfig.env` (what the injector is told).
fn identity(d: &Deployment) -> Option<String> {
    let is_principal = |u: &&str| {
        u.rsplit_once('@')
            .is_some_and(|(n, r)| !n.is_empty() && !r.is_empty())
    };
    let pg = d.pgbouncer();
    let found = [
        d.metadata().and_then(|c| c.user.as_deref()),
        d.result_backend().and_then(|c| c.user.as_deref()),
        pg.env.as_ref().and_then(|e| e.get("KERBEROS_USER")),
    ]
    .into_iter()
    .flatten()
    .find(is_principal)
    .map(str::to_string);
    found
}

fn shape_of(file: &Path, mut d: Deployment, selectors: Option<&[LabelSelector]>) -> Result<Shape> {
    // users.txt and Airflow's URLs both use the run's generated secret, so a literal `pass` (a
    // customer's real one, perhaps) is never needed: keep it out of the shape, which is cloned
    // and printed, and out of every log the redactor sweeps.
    for c in [
        &mut d.metadata_connection_json,
        &mut d.result_backend_connection_json,
    ]
    .into_iter()
    .flatten()
    {
        if let Some(p) = c.value.pass.as_mut().filter(|p| *p != GENERATED_SECRET) {
            crate::secret::Secret::adopt(p.clone());
            *p = GENERATED_SECRET.into();
        }
    }
    let principal = identity(&d).ok_or_else(|| {
        anyhow::anyhow!(
            "{}: metadataConnectionJson.user: no Kerberos principal in the file (neither connection user nor \
             pgbouncerConfig.env KERBEROS_USER is <username>@<REALM>)\n    fix: write the user as <username>@<REALM>, e.g. astro_user@EXAMPLE.TEST",
            file.display()
        )
    })?;
    // The shape is read from the metadata connection; when its user is not a principal (the
    // breakage being replayed), read the rest with the pod's principal in its place and keep
    // the file's user for users.txt and the [databases] line.
    let mut named = d.clone();
    if let Some(c) = named.metadata_connection_json.as_mut() {
        c.value.user = Some(principal.clone());
    }
    let env = EnvironmentShape::from_deployment(&named).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}\n    fix: see `cargo xtask lint --deployment {}`",
            file.display(),
            file.display()
        )
    })?;
    let labels = {
        let mut l = env.labels.clone();
        // The chart's own pod labels count for a selector too.
        for (k, v) in [
            ("tier", "airflow"),
            ("component", "pgbouncer"),
            ("release", env.release_name.as_str()),
        ] {
            l.0.entry(k.to_string()).or_insert_with(|| v.to_string());
        }
        l
    };
    let credentials_injected = match selectors {
        Some(sel) if !sel.is_empty() => sel.iter().any(|s| s.matches(&labels)),
        // No selector known: an injector keyed on pod labels needs at least one label from the
        // deployment.
        _ => !env.labels.is_empty(),
    };
    Ok(Shape {
        names: env,
        deployment: d,
        credentials_injected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(rel: &str) -> PathBuf {
        crate::run::workspace_root()
            .join("fixtures/deployments")
            .join(rel)
    }

    #[test]
    fn the_reference_file_gives_the_reference_shape() {
        let s = shape_from_file(&fixture("kerberos.yaml")).unwrap();
        let r = Shape::default();
        let core = |n: &harness_config::EnvironmentShape| {
            (
                n.realm.clone(),
                n.client_principal.clone(),
                n.db_host.clone(),
                n.server_spn.clone(),
                n.requested_spn.clone(),
                n.release_name.clone(),
                n.metadata_db.clone(),
            )
        };
        assert_eq!(core(&s.names), core(&r.names));
        assert!(s.credentials_injected);
    }

    #[test]
    fn a_broken_file_is_refused_with_rule_field_and_fix() {
        let e = shape_from_file(&fixture("broken/spn-host-mismatch.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("KRB011"), "{e}");
        assert!(e.contains("pgbouncerConfig.extraIni"), "{e}");
        assert!(e.contains("fix: "), "{e}");
        assert!(e.contains("spn-host-mismatch.yaml"), "{e}");
    }

    #[test]
    fn reproduce_keeps_the_broken_spn() {
        let r = load(
            &fixture("broken/spn-host-mismatch.yaml"),
            None,
            Policy::Reproduce,
        )
        .unwrap();
        assert_eq!(
            r.shape.names.server_spn,
            "postgres/db.example.test@EXAMPLE.TEST"
        );
        assert_eq!(
            r.shape.names.requested_spn,
            "postgres/db.example.com@EXAMPLE.TEST"
        );
        assert_eq!(
            r.shape.extra_ini_setting("server_krb_spn").as_deref(),
            Some("postgres/db.example.com@EXAMPLE.TEST")
        );
    }

    #[test]
    fn reproduce_still_refuses_what_cannot_run() {
        let e = load(
            &fixture("broken/port-not-integer.yaml"),
            None,
            Policy::Reproduce,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("KRB018"), "{e}");
    }

    /// features/config.feature runs every broken fixture through lint; a new fixture must be
    /// added to its examples.
    #[test]
    fn every_broken_fixture_is_a_scenario() {
        let feature =
            std::fs::read_to_string(crate::run::workspace_root().join("features/config.feature"))
                .unwrap();
        let missing: Vec<String> = std::fs::read_dir(fixture("broken"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .filter(|stem| !feature.contains(&format!("| {stem} ")))
            .collect();
        assert!(
            missing.is_empty(),
            "broken fixtures without a scenario in features/config.feature: {missing:?}"
        );
    }

    #[test]
    fn a_literal_password_stays_out_of_the_shape() {
        let r = load(&fixture("broken/pass-literal.yaml"), None, Policy::Refuse).unwrap();
        assert!(!format!("{:?}", r.shape).contains("Tr0ub4dor"));
        for c in [
            r.shape.deployment.metadata(),
            r.shape.deployment.result_backend(),
        ] {
            assert_eq!(c.unwrap().pass.as_deref(), Some(GENERATED_SECRET));
        }
    }

    #[test]
    fn a_user_without_realm_keeps_the_principal_from_the_pod() {
        let r = load(
            &fixture("broken/user-not-principal.yaml"),
            None,
            Policy::Reproduce,
        )
        .unwrap();
        assert_eq!(r.shape.names.client_principal, "astro_user@EXAMPLE.TEST");
        assert_eq!(r.shape.metadata_user(), "astro_user");
    }
}
