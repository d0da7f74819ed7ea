//! What the container tiers (docker, kind) know of each component: the project image it runs
//! from (`cargo xtask images`, tags in `target/images/manifest.json`), the uid that image runs it
//! as, where its place is mounted and what of the checkout the image carries. One table for both
//! tiers, so a component runs as the same user from the same image on either.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

use super::{Place, Tier};
use crate::component::RunAs;

/// PostgreSQL's uid in the project's image (`postgres/Dockerfile` fixes it).
pub const POSTGRES_UID: u32 = 999;
/// PgBouncer's uid, as the chart runs it (`runAsUser`).
const PGBOUNCER_UID: u32 = harness_config::render::kube::PGBOUNCER_UID as u32;
/// `nobody`: what the broker and Airflow's images run as.
const NOBODY: u32 = 65534;

/// One component's image, user and mount point (see the module comment).
#[derive(Debug, Clone)]
pub(crate) struct Role {
    pub image: String,
    pub uid: u32,
    pub dir: String,
    /// What of the checkout the image carries (`airflow/Dockerfile` copies it): path in the
    /// checkout -> path in the image.
    pub shipped: &'static [(&'static str, &'static str)],
    /// Whether the harness's own user is root inside (the daemons' images, whose tools and
    /// PgBouncer's `-u nobody` start as root) or the image's user (the broker, Airflow).
    pub invoker_is_root: bool,
}

/// Airflow's image (`airflow/Dockerfile`): the venv from the lock file, config/ and dags/.
const AIRFLOW_SHIPPED: &[(&str, &str)] = &[
    ("airflow/venv", "/opt/airflow/venv"),
    ("airflow/config", "/opt/airflow/config"),
    ("airflow/dags", "/opt/airflow/dags"),
];

/// A place's name without its version (`airflow-3.3.2` is Airflow's place): the component
/// family its host name is made from.
pub(crate) fn family(place: &str) -> &str {
    match place.split_once('-') {
        Some((f @ "airflow", _)) => f,
        _ => place,
    }
}

/// The images a run's container tier uses: the project's build, and the PgBouncer image the
/// run names instead (`--pgbouncer-image`).
#[derive(Debug, Clone)]
pub(crate) struct Roles {
    tier: Tier,
    pgbouncer_image: Option<String>,
    images: BTreeMap<String, String>,
}

impl Roles {
    /// The images built on this machine (`cargo xtask images`).
    pub fn built(tier: Tier, pgbouncer_image: Option<String>) -> Roles {
        Roles::with(tier, pgbouncer_image, crate::images::manifest())
    }

    pub fn with(
        tier: Tier,
        pgbouncer_image: Option<String>,
        images: BTreeMap<String, String>,
    ) -> Roles {
        Roles {
            tier,
            pgbouncer_image,
            images,
        }
    }

    /// Every image tag this run may start a component from (what a kind node must be given).
    pub fn all_images(&self) -> Vec<String> {
        let mut v: Vec<String> = self.images.values().cloned().collect();
        v.extend(self.pgbouncer_image.clone());
        v.sort();
        v.dedup();
        v
    }

    fn image(&self, component: &str) -> Result<String> {
        self.images.get(component).cloned().with_context(|| {
            format!(
                "the {} tier's {component} image is not built: run `cargo xtask images` (it builds what is missing; {} lists what is built)",
                self.tier,
                crate::images::manifest_path().display()
            )
        })
    }

    pub fn role(&self, component: &str) -> Result<Role> {
        let mut shipped: &'static [(&'static str, &'static str)] = &[];
        let mut invoker_is_root = true;
        let (image, uid, dir) = match component {
            "kdc" => (self.image("kdc")?, 0, "/e2e/kdc"),
            "postgres" => (self.image("postgres")?, POSTGRES_UID, "/e2e/postgres"),
            // The Celery broker, as the platform runs it: an image of its own.
            "redis" => {
                invoker_is_root = false;
                (self.image("redis")?, NOBODY, "/e2e/redis")
            }
            // Airflow's image runs as nobody (`airflow/Dockerfile`), its place beside its home.
            airflow if family(airflow) == "airflow" => {
                shipped = AIRFLOW_SHIPPED;
                invoker_is_root = false;
                (self.image(airflow)?, NOBODY, "/opt/airflow/run")
            }
            // Where the chart mounts PgBouncer's ini and users.txt.
            "pgbouncer" => (
                match &self.pgbouncer_image {
                    Some(i) => i.clone(),
                    None => self.image("pgbouncer")?,
                },
                PGBOUNCER_UID,
                "/etc/pgbouncer",
            ),
            other => bail!(
                "the {} tier has no image for the component `{other}` (it runs the KDC, PostgreSQL, PgBouncer, the Celery broker and Airflow; run it with --tier local)",
                self.tier
            ),
        };
        Ok(Role {
            image,
            uid,
            dir: dir.into(),
            shipped,
            invoker_is_root,
        })
    }

    /// The uid `who` runs as in `place`'s image.
    pub fn uid(&self, place: &Place, who: RunAs) -> Result<u32> {
        let role = self.role(&place.name)?;
        Ok(match (who, place.owner) {
            (RunAs::Invoker, RunAs::Invoker) if role.invoker_is_root => 0,
            _ => role.uid,
        })
    }

    /// Where a part of the checkout the image carries is inside it (see [`Role::shipped`]).
    pub fn shipped(&self, place: &Place, rel: &str) -> Result<Option<std::path::PathBuf>> {
        Ok(self
            .role(&place.name)?
            .shipped
            .iter()
            .find(|(checkout, _)| *checkout == rel)
            .map(|(_, inside)| std::path::PathBuf::from(inside)))
    }
}

/// The name a component is given on the network: its configured host name, or that name's
/// first label when it is longer than a kernel host name may be (64 bytes; customers' database
/// hosts can be longer). The names Kerberos sees stay the configured ones: PgBouncer is given
/// the configured service principal, as on the local tier, which dials an address.
/// Whether a TCP connect to `port` on loopback succeeds inside a container or pod, through
/// `inside`, the CLI command that runs a program there (`docker exec <name>`, `kubectl exec
/// ... --`): from outside, a published or forwarded port answers a connect even when nothing
/// listens behind it.
pub(crate) async fn port_answers_inside(mut inside: tokio::process::Command, port: u16) -> bool {
    inside
        .args(["bash", "-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

pub(crate) fn dialable(host: &str) -> String {
    const HOST_NAME_MAX: usize = 63;
    if host.len() <= HOST_NAME_MAX {
        return host.to_string();
    }
    let first = host.split('.').next().unwrap_or(host);
    first.chars().take(HOST_NAME_MAX).collect()
}

/// The host names of an environment's places, by family, from the names its configuration
/// uses (the database is the configured host).
pub(crate) fn hosts(names: &harness_config::EnvironmentShape) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("kdc".to_string(), names.component_host("kdc")),
        ("postgres".to_string(), names.db_host.clone()),
        ("pgbouncer".to_string(), names.component_host("pgbouncer")),
        ("redis".to_string(), names.component_host("redis")),
        ("airflow".to_string(), names.component_host("airflow")),
    ])
}

/// The host name of `component` in `place` on a tier where each component is a host of its own
/// (see [`super::Substrate::component_host`]).
pub(crate) fn component_host(place: &Place, component: &str) -> String {
    if component == place.name || family(&place.name) == component {
        place.host.clone()
    } else {
        dialable(&format!("{component}.{}", place.host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_name_too_long_for_the_kernel_is_dialled_by_its_first_label() {
        assert_eq!(dialable("db.example.test"), "db.example.test");
        let long = "customer-production-metadata-db-primary.us-east-1.internal.corp.example.test";
        assert_eq!(dialable(long), "customer-production-metadata-db-primary");
    }

    #[test]
    fn a_missing_image_names_the_tier_and_the_fix() {
        let r = Roles::with(Tier::Kind, None, BTreeMap::new());
        let e = format!("{:#}", r.role("kdc").unwrap_err());
        assert!(e.contains("the kind tier's kdc image is not built"), "{e}");
        assert!(e.contains("cargo xtask images"), "{e}");
    }
}
