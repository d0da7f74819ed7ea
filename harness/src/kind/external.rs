//! The customer's "external" KDC and PostgreSQL for the kind tier: the docker tier's images,
//! driven by the project's own realm and database code (`realm.rs`, `postgres.rs` through
//! `Environment::up`) on the docker substrate, so every tier has one realm recipe: a fresh
//! `kdb5_util` database, `kadmin.local addprinc -randkey` for the connection principal and
//! `postgres/<db host>`, each `ktadd`ed once into its own keytab, PostgreSQL given the server
//! keytab, the login role and the databases; then Houston's database and its role (named like
//! Houston's principal) by the same database code. Then both containers join the Docker network
//! of the cluster's nodes (kind's, or `--external-network`) under their host names, so the
//! platform's pods reach them as a customer's pods reach theirs.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};

use super::injector::Credential;
use super::plan;
use super::Options;
use crate::environment::Environment;
use crate::stack::Shape;
use crate::substrate::docker::{Docker, RUN_LABEL};
use crate::substrate::Substrate;

/// The Docker network kind puts its nodes on: the default for the harness's own kind cluster.
pub const KIND_NETWORK: &str = "kind";

/// The realm and database of a kind run, up until [`External::down`].
pub struct External {
    env: Environment,
}

impl External {
    /// Brings the realm and PostgreSQL up in `o.work/external`, creates `databases`
    /// (`(database, owning role)`) beside the deployment's, hands krb5.conf and a keytab per
    /// credential to where the plan's credentials step reads them, and joins both containers to
    /// `network` under their host names.
    pub async fn up(
        o: &Options,
        creds: &[Credential],
        databases: &[(String, String)],
        network: &str,
    ) -> Result<External> {
        let deployment =
            harness_config::load_deployment(&o.deployment).map_err(|e| anyhow::anyhow!("{e}"))?;
        let shape = Shape::from_deployment(deployment, true)
            .map_err(|e| anyhow::anyhow!("{}: {e}", o.deployment.display()))?;
        let substrate: Arc<dyn Substrate> = Arc::new(Docker::connect(None, Some(o.name.as_str()))?);
        let mut env = Environment::up(substrate, &o.work.join("external"), shape).await?;
        let joined = async {
            for (db, role) in databases {
                env.add_database(db, role).await?;
            }
            hand_over(&env, o, creds).await?;
            let n = &env.shape().names;
            let hosts = [
                ("kdc", n.component_host("kdc")),
                ("postgres", n.db_host.clone()),
            ];
            for (component, host) in hosts {
                let container = container_of(&o.name, component)?;
                let what = format!("joining {component} to the {network} network as {host}");
                crate::tools::run(
                    &crate::component::Exec::new(&what, "docker").args([
                        "network",
                        "connect",
                        "--alias",
                        host.as_str(),
                        network,
                        container.as_str(),
                    ]),
                    None,
                )
                .await?;
            }
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = joined {
            env.down().await;
            return Err(e);
        }
        Ok(External { env })
    }

    pub async fn down(&mut self) {
        self.env.down().await;
    }
}

/// Writes krb5.conf as the other components read it (the KDC by its host name and port 88) and
/// each credential's keytab (0600) where the plan expects them. The connection principal's keytab
/// is the one `Environment::up` exported; any other (Houston's) is added to the realm here,
/// exported once.
pub async fn hand_over(env: &Environment, o: &Options, creds: &[Credential]) -> Result<()> {
    let conf = plan::external_krb5_conf(o);
    if let Some(dir) = conf.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&conf, env.stack().realm.peer_krb5_conf()?)?;
    let client = env.shape().names.client_principal.clone();
    let mut added: Vec<(String, std::path::PathBuf)> = Vec::new();
    for c in creds {
        let from = if c.principal == client {
            env.client_keytab().to_path_buf()
        } else if let Some((_, kt)) = added.iter().find(|(p, _)| p == &c.principal) {
            kt.clone()
        } else {
            let kt = env.add_principal(&c.principal).await?;
            added.push((c.principal.clone(), kt.clone()));
            kt
        };
        copy_private(&from, &c.keytab)?;
    }
    Ok(())
}

fn copy_private(from: &Path, to: &Path) -> Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let bytes = std::fs::read(from).with_context(|| format!("reading {}", from.display()))?;
    crate::secret::write_private(to, &bytes)
}

/// The name of the run's container of `component`: the docker substrate labels every container
/// with the run and names it `<network>-<component>`.
fn container_of(run: &str, component: &str) -> Result<String> {
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "--filter",
            &format!("label={RUN_LABEL}={run}"),
            "--format",
            "{{.Names}}",
        ])
        .output()
        .context("running `docker ps`")?;
    let names = String::from_utf8_lossy(&out.stdout);
    let suffix = format!("-{component}");
    let found: Vec<&str> = names.lines().filter(|n| n.ends_with(&suffix)).collect();
    match found.as_slice() {
        [one] => Ok(one.to_string()),
        [] => bail!("no running {component} container labelled {RUN_LABEL}={run}"),
        many => bail!("more than one {component} container labelled {RUN_LABEL}={run}: {many:?}"),
    }
}

/// Everything the docker substrate made for the run (containers, then its network), as the
/// teardown after Ctrl-C finds it: by the run's label, with no state of the run needed.
pub fn remove_all(run: &str) -> Result<usize> {
    let d = Docker::connect(None, Some(run))?;
    Ok(d.kill_all())
}

/// After the teardown: the keytabs, the KDC database and PostgreSQL's data the run made, and
/// the credentials file rendered from them, go (logs and rendered configuration stay).
pub fn scrub(o: &Options) {
    crate::environment::scrub(&o.work.join("external"), false);
    let _ = std::fs::remove_dir_all(o.work.join("external/keytabs"));
    let _ = std::fs::remove_file(o.work.join("credentials.yaml"));
    let _ = std::fs::remove_file(o.work.join("houston-db.yaml"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Against the Docker engine and the docker tier's images (`cargo xtask images`): the realm
    /// and database joined to a network stand-in for kind's, and a container on that network
    /// (where a pod's traffic would come from) gets a ticket with the handed-over krb5.conf and
    /// keytab and logs in to PostgreSQL over GSSAPI by the host names alone: the deployment's
    /// principal to its database, Houston's to Houston's.
    #[tokio::test]
    #[ignore = "needs a Docker engine and the kdc, postgres and pgbouncer images"]
    async fn a_container_on_the_joined_network_logs_in_over_gssapi() {
        let root = crate::run::workspace_root();
        let dir = tempfile::tempdir().unwrap();
        let name = format!("astro-e2e-probe-{}", std::process::id());
        let o = Options::new(
            &name,
            dir.path(),
            &root.join("fixtures/values.yaml"),
            &root.join("fixtures/deployments/kerberos.yaml"),
        );
        let values = harness_config::load_values(&o.values).unwrap();
        let d = harness_config::load_deployment(&o.deployment).unwrap();
        let creds = plan::credentials(&o, &values, &d).unwrap();
        let net = format!("{name}-kind");
        // Unlabelled: the docker substrate's sweep removes labelled networks of a pid it does
        // not know alive. Removed below.
        let ok = Command::new("docker")
            .args(["network", "create", &net])
            .status()
            .unwrap();
        assert!(ok.success());
        let houston = super::super::houston_db::HoustonDb::from_values(&o, &values).unwrap();
        let databases = [(houston.database.clone(), houston.principal.clone())];
        let result = async {
            let mut ext = External::up(&o, &creds, &databases, &net).await?;
            // Each principal logs in to its own database: the deployment's and Houston's.
            let mut outs = Vec::new();
            for (principal, db) in [
                ("astro_user@EXAMPLE.TEST", "kerberos_demo_airflow"),
                (houston.principal.as_str(), houston.database.as_str()),
            ] {
                let cred = creds.iter().find(|c| c.principal == principal).unwrap();
                let kt_dir = cred.keytab.parent().unwrap().display().to_string();
                let kt = format!("/kt/{}", cred.keytab.file_name().unwrap().to_string_lossy());
                let conf = plan::external_krb5_conf(&o).display().to_string();
                let image = crate::images::built("postgres").unwrap();
                let out = Command::new("docker")
                    .args(["run", "--rm", "--network", &net, "-u", "0", "--label"])
                    .arg(format!("{RUN_LABEL}={name}"))
                    .args(["-v", &format!("{kt_dir}:/kt:ro")])
                    .args(["-v", &format!("{conf}:/etc/krb5.conf:ro")])
                    .args(["-e", &format!("KRB5_CLIENT_KTNAME=FILE:{kt}")])
                    .args(["-e", "KRB5CCNAME=MEMORY:probe"])
                    .args([&image, "psql"])
                    .arg(format!(
                        "host=db.example.test dbname={db} user={principal} gssencmode=disable"
                    ))
                    .args(["-tAc", "select current_user"])
                    .output()?;
                outs.push((principal.to_string(), out));
            }
            ext.down().await;
            anyhow::Ok(outs)
        }
        .await;
        let swept = remove_all(&name).unwrap_or(0);
        let _ = Command::new("docker")
            .args(["network", "rm", &net])
            .status();
        for (principal, out) in result.unwrap() {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success(),
                "psql over GSSAPI as {principal} failed: {text}"
            );
            assert_eq!(text.trim(), principal);
        }
        // The keytabs the credentials step reads are where the plan says, 0600.
        use std::os::unix::fs::PermissionsExt;
        for c in &creds {
            let m = std::fs::metadata(&c.keytab).unwrap().permissions().mode();
            assert_eq!(m & 0o777, 0o600, "{}", c.keytab.display());
        }
        eprintln!("removed {swept} leftover(s)");
    }
}
