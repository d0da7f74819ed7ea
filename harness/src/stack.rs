//! The Kerberos stack of one scenario or one `env up`: realm, PostgreSQL and PgBouncer, started in
//! dependency order (PgBouncer needs the realm and the database) and stopped in reverse.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use harness_config::model::{
    Connection, ConnectionField, Deployment, EnvList, EnvVar, JsonForm, PgbouncerConfig, StringMap,
    GENERATED_SECRET,
};
use harness_config::{Dial, EnvironmentShape, Placement};

use crate::pgbouncer::{Pgbouncer, PgbouncerSpec};
use crate::postgres::{Cluster, ClusterSpec};
use crate::realm::{Realm, RealmSpec};
use crate::secret::Secret;
use crate::substrate::{Endpoint, Substrate};

/// What an environment is built from: the names (harness-config's [`EnvironmentShape`], read
/// from the deployment by the one function that reads them, with the principal the server holds
/// and the one PgBouncer requests as two fields), and the deployment variables PgBouncer's ini
/// and users.txt are rendered from. The reference configuration gives the defaults; a replayed
/// deployment file gives a customer's own (see `replay`).
#[derive(Debug, Clone)]
pub struct Shape {
    pub names: EnvironmentShape,
    /// The deployment variables (Houston's mutation) that PgBouncer's ini and users.txt are
    /// rendered from, with harness-config's renderer, as the deployment chart renders them.
    pub deployment: Deployment,
    /// Whether the credential injector selects the PgBouncer pod (its labels match a selector):
    /// when it does not, PgBouncer starts without a keytab, as on the platform.
    pub credentials_injected: bool,
}

impl Default for Shape {
    fn default() -> Self {
        Shape::new(
            "EXAMPLE.TEST",
            "astro_user",
            "db.example.test",
            "kerberos-demo",
        )
    }
}

impl Shape {
    /// A working configuration with these names (what `fixtures/deployments/kerberos.yaml`
    /// holds for the defaults).
    pub fn new(realm: &str, user: &str, db_host: &str, release: &str) -> Shape {
        let principal = format!("{user}@{realm}");
        let spn = harness_config::service_principal(db_host, realm);
        let db = format!("{}_airflow", release.replace('-', "_"));
        let connection = || ConnectionField {
            value: Connection {
                user: Some(principal.clone()),
                pass: Some(GENERATED_SECRET.into()),
                host: Some(db_host.into()),
                port: Some(5432.into()),
                db: Some(db.clone()),
                sslmode: Some("prefer".into()),
                extra: Default::default(),
            },
            form: JsonForm::Object,
        };
        let deployment = Deployment {
            release_name: Some(release.into()),
            kerberos_enabled: Some(true),
            metadata_connection_json: Some(connection()),
            result_backend_connection_json: Some(connection()),
            pgbouncer_config: Some(PgbouncerConfig {
                labels: Some(StringMap::from([("krb-inject", "enabled")])),
                env: Some(EnvList(vec![EnvVar {
                    name: "KERBEROS_USER".into(),
                    value: principal.clone(),
                }])),
                extra_ini: Some(format!(
                    "server_gssauth_negotiate = allow\nserver_krb_spn = {spn}\n"
                )),
                extra_ini_metadata: Some(format!("user={principal}")),
                extra_ini_result_backend: Some(format!("user={principal}")),
                extra: Default::default(),
            }),
            ..Default::default()
        };
        Shape::from_deployment(deployment, true)
            .expect("the reference deployment built from valid names has every field")
    }

    /// The shape of `deployment` (the names through [`EnvironmentShape::from_deployment`]).
    pub fn from_deployment(
        deployment: Deployment,
        credentials_injected: bool,
    ) -> Result<Shape, harness_config::RenderError> {
        Ok(Shape {
            names: EnvironmentShape::from_deployment(&deployment)?,
            deployment,
            credentials_injected,
        })
    }

    pub fn metadata_alias(&self) -> String {
        format!("{}-metadata", self.names.release_name)
    }

    pub fn result_backend_alias(&self) -> String {
        format!("{}-result-backend", self.names.release_name)
    }

    /// The user Airflow's metadata connection logs in to PgBouncer as (the connection's `user`;
    /// equal to the principal in a working configuration).
    pub fn metadata_user(&self) -> String {
        self.deployment
            .metadata()
            .and_then(|c| c.user.clone())
            .unwrap_or_else(|| self.names.client_principal.clone())
    }

    pub fn result_backend_user(&self) -> String {
        self.deployment
            .result_backend()
            .and_then(|c| c.user.clone())
            .unwrap_or_else(|| self.names.client_principal.clone())
    }

    /// `server_gssauth_negotiate` and `server_krb_spn` as the deployment's extraIni sets them
    /// (the last line wins, as in PgBouncer); None when the line is absent.
    pub fn extra_ini_setting(&self, key: &str) -> Option<String> {
        let text = self.deployment.pgbouncer().extra_ini.unwrap_or_default();
        harness_config::ini::last_setting(&harness_config::ini::settings(&text), key)
            .map(str::to_string)
    }

    /// Replaces `{realm}`, `{principal}`, `{db_host}`, `{spn}` (the server's), `{requested_spn}`
    /// (PgBouncer's) and `{release}` in scenario text, so the same feature files run against a
    /// replayed configuration.
    pub fn expand(&self, text: &str) -> String {
        let n = &self.names;
        text.replace("{realm}", &n.realm)
            .replace("{principal}", &n.client_principal)
            .replace("{db_host}", &n.db_host)
            .replace("{requested_spn}", &n.requested_spn)
            .replace("{spn}", &n.server_spn)
            .replace("{release}", &n.release_name)
    }
}

/// How PgBouncer's Kerberos side is set up for one scenario; the defaults are what the
/// deployment configures, each field is one of the ways it breaks.
#[derive(Debug, Clone)]
pub struct PgbouncerOptions {
    /// `server_gssauth_negotiate` in extraIni; None leaves the line out (the fork's default).
    pub negotiate: Option<String>,
    /// `server_krb_spn` in extraIni; None leaves it out.
    pub spn: Option<String>,
    /// Which keytab the credential injector would mount; None injects nothing.
    pub keytab: Option<PathBuf>,
    /// Further extraIni lines, appended after the deployment's own.
    pub extra_ini: Vec<String>,
    /// Further `key=value` settings appended to the metadata database's extra
    /// (`extraIniMetadata`, on its `[databases]` line).
    pub metadata_extra: Vec<String>,
    /// Which PgBouncer runs the ini (the generic image is a breakage too).
    pub build: crate::pgbouncer::Build,
    /// `[libdefaults]` settings of PgBouncer's krb5.conf that replace the realm's (the reverse-DNS
    /// fault turns `rdns` on).
    pub krb5_libdefaults: Vec<(String, String)>,
    /// Further environment for PgBouncer (libfaketime for the clock-skew fault).
    pub env: Vec<(String, String)>,
}

pub struct Stack {
    pub dir: PathBuf,
    pub shape: Shape,
    pub substrate: Arc<dyn Substrate>,
    pub realm: Realm,
    pub pg: Cluster,
    pub pgbouncer: Option<Pgbouncer>,
    pub client_keytab: PathBuf,
    pub server_keytab: PathBuf,
    /// The password of the metadata/result-backend user in users.txt (what Airflow sends).
    pub client_password: Secret,
}

impl Stack {
    /// Realm (with the client and service principals) and PostgreSQL (with the role and
    /// databases), on `substrate`.
    pub async fn up(substrate: Arc<dyn Substrate>, dir: &Path, shape: Shape) -> Result<Stack> {
        let n = &shape.names;
        crate::realm::validate_principal(&n.client_principal).context("the client principal")?;
        crate::realm::validate_principal(&n.server_spn).context("the service principal (SPN)")?;
        let secrets = dir.join("secrets");
        std::fs::create_dir_all(&secrets)?;
        let substrate = substrate.environment(n)?;
        let realm = Realm::start(
            substrate.clone(),
            &dir.join("kdc"),
            &RealmSpec {
                realm: shape.names.realm.clone(),
                hosts: vec![shape.names.db_host.clone()],
            },
        )
        .await?;
        let client_keytab = secrets.join("client.keytab");
        let server_keytab = secrets.join("server.keytab");
        realm
            .add_principals(&[
                (&shape.names.client_principal, &client_keytab),
                (&shape.names.server_spn, &server_keytab),
            ])
            .await?;
        // A role per connection user that is a principal (the customer's database has them);
        // each database is owned by the role of the connection that uses it.
        let owner = |user: String| {
            if user.contains('@') {
                user
            } else {
                shape.names.client_principal.clone()
            }
        };
        let (meta_owner, rb_owner) = (
            owner(shape.metadata_user()),
            owner(shape.result_backend_user()),
        );
        let mut roles = vec![shape.names.client_principal.clone()];
        for r in [&meta_owner, &rb_owner] {
            if !roles.contains(r) {
                roles.push(r.clone());
            }
        }
        let mut databases = vec![(shape.names.metadata_db.clone(), meta_owner)];
        if shape.names.result_backend_db != shape.names.metadata_db {
            databases.push((shape.names.result_backend_db.clone(), rb_owner));
        }
        let pg = Cluster::start(
            substrate.clone(),
            &dir.join("postgres"),
            ClusterSpec {
                realm: shape.names.realm.clone(),
                host: shape.names.db_host.clone(),
                server_keytab: server_keytab.clone(),
                roles,
                databases,
                krb5_conf: realm.peer_krb5_conf()?,
            },
        )
        .await?;
        Ok(Stack {
            dir: dir.to_path_buf(),
            shape,
            substrate,
            realm,
            pg,
            pgbouncer: None,
            client_keytab,
            server_keytab,
            client_password: Secret::generate(),
        })
    }

    /// PgBouncer as the deployment configures it: extraIni's negotiation and SPN, and a keytab
    /// when the injector selects the pod. For a replayed broken configuration these reproduce
    /// the breakage; nothing here repairs it.
    pub fn default_pgbouncer_options(&self) -> PgbouncerOptions {
        PgbouncerOptions {
            negotiate: self.shape.extra_ini_setting("server_gssauth_negotiate"),
            spn: self.shape.extra_ini_setting("server_krb_spn"),
            keytab: self
                .shape
                .credentials_injected
                .then(|| self.client_keytab.clone()),
            extra_ini: Vec::new(),
            metadata_extra: Vec::new(),
            build: Default::default(),
            krb5_libdefaults: Vec::new(),
            env: Vec::new(),
        }
    }

    pub async fn start_pgbouncer(&mut self, opts: &PgbouncerOptions) -> Result<()> {
        let (place, port) = Pgbouncer::place(self.substrate.as_ref(), &self.dir.join("pgbouncer"))?;
        let ini = render_placed_ini(
            &self.shape,
            opts,
            &PgbouncerPlacement {
                listen: Endpoint {
                    host: place.bind.clone(),
                    port,
                },
                auth_file: place.path("users.txt"),
                postgres: self.pg.peer_endpoint()?,
            },
        )?;
        // users.txt as Houston writes it: one line per connection user. Both sides of the
        // password come from the same `pass` field, so the harness's per-run secret stands in.
        let mut users = vec![(self.shape.metadata_user(), self.client_password.clone())];
        let rb_user = self.shape.result_backend_user();
        if rb_user != users[0].0 {
            users.push((rb_user, self.client_password.clone()));
        }
        let pgb = Pgbouncer::start(
            self.substrate.clone(),
            place,
            PgbouncerSpec {
                ini,
                users,
                port,
                krb5_conf: crate::realm::with_libdefaults(
                    &self.realm.peer_krb5_conf()?,
                    &opts.krb5_libdefaults,
                ),
                keytab: opts.keytab.clone(),
                build: opts.build,
                env: opts.env.clone(),
            },
        )
        .await?;
        self.pgbouncer = Some(pgb);
        Ok(())
    }

    fn pgbouncer_endpoint(&self) -> Result<Endpoint> {
        self.pgbouncer
            .as_ref()
            .context("PgBouncer is not running: the scenario needs `Given PgBouncer ...` first")?
            .endpoint()
    }

    /// What Airflow does: a password login to PgBouncer's metadata alias.
    pub fn metadata_target(&self, password: &str) -> Result<crate::probe::sql::Target> {
        let at = self.pgbouncer_endpoint()?;
        Ok(crate::probe::sql::Target {
            host: at.host,
            port: at.port,
            user: self.shape.metadata_user(),
            password: password.into(),
            database: self.shape.metadata_alias(),
        })
    }

    /// What Celery's result backend does: a password login to the result-backend alias.
    pub fn result_backend_target(&self, password: &str) -> Result<crate::probe::sql::Target> {
        let at = self.pgbouncer_endpoint()?;
        Ok(crate::probe::sql::Target {
            host: at.host,
            port: at.port,
            user: self.shape.result_backend_user(),
            password: password.into(),
            database: self.shape.result_backend_alias(),
        })
    }

    pub fn admin_target(&self) -> Option<crate::probe::sql::Target> {
        let p = self.pgbouncer.as_ref()?;
        let at = p.endpoint().ok()?;
        Some(crate::probe::sql::Target {
            host: at.host,
            port: at.port,
            user: crate::pgbouncer::ADMIN_USER.into(),
            password: p.admin_password.expose().into(),
            database: "pgbouncer".into(),
        })
    }

    /// Stops everything this stack started, newest first.
    pub async fn down(&mut self) {
        if let Some(mut p) = self.pgbouncer.take() {
            p.stop().await;
        }
        self.pg.stop().await;
        self.realm.stop().await;
        self.substrate.release().await;
        crate::redact::sweep(&self.dir);
    }
}

/// Where PgBouncer's ini places it: the address it listens on, its users.txt, and PostgreSQL as
/// PgBouncer dials it.
pub struct PgbouncerPlacement {
    pub listen: Endpoint,
    pub auth_file: PathBuf,
    pub postgres: Endpoint,
}

/// The deployment's extraIni with the options applied. A setting the options leave as the file
/// has it keeps the file's lines verbatim, so a replay runs the customer's text; a changed one
/// takes the place of the file's last line for that key (or is appended).
fn extra_ini(shape: &Shape, opts: &PgbouncerOptions) -> String {
    let original = shape.deployment.pgbouncer().extra_ini.unwrap_or_default();
    let mut lines: Vec<Option<String>> = original.lines().map(|l| Some(l.to_string())).collect();
    for (key, wanted) in [
        ("server_gssauth_negotiate", &opts.negotiate),
        ("server_krb_spn", &opts.spn),
    ] {
        if *wanted == shape.extra_ini_setting(key) {
            continue;
        }
        let mut last = None;
        for (i, line) in lines.iter_mut().enumerate() {
            let is_key = line
                .as_deref()
                .and_then(|l| l.split_once('='))
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case(key));
            if is_key {
                *line = None;
                last = Some(i);
            }
        }
        if let Some(v) = wanted {
            let line = Some(format!("{key} = {v}"));
            match last {
                Some(i) => lines[i] = line,
                None => lines.push(line),
            }
        }
    }
    let mut out = String::new();
    for l in lines
        .into_iter()
        .flatten()
        .chain(opts.extra_ini.iter().cloned())
    {
        out += &l;
        out.push('\n');
    }
    out
}

/// The deployment PgBouncer ini, rendered by harness-config exactly as the deployment chart
/// renders it, placed by the substrate: listening where `at.listen` says, users.txt at
/// `at.auth_file`, every configured database host dialled at the run's PostgreSQL
/// (`at.postgres`). The names Kerberos sees (SPN, principal, realm) stay the configured ones.
pub fn render_placed_ini(
    shape: &Shape,
    opts: &PgbouncerOptions,
    at: &PgbouncerPlacement,
) -> Result<String> {
    let mut deployment = shape.deployment.clone();
    let extra_ini = extra_ini(shape, opts);
    let mut pg = deployment.pgbouncer();
    pg.extra_ini = Some(extra_ini.clone());
    if !opts.metadata_extra.is_empty() {
        let mut extras: Vec<String> = pg.extra_ini_metadata.iter().cloned().collect();
        extras.extend(opts.metadata_extra.iter().cloned());
        pg.extra_ini_metadata = Some(extras.join(" "));
    }
    deployment.pgbouncer_config = Some(pg.clone());

    let mut host_map = std::collections::BTreeMap::new();
    for c in [deployment.metadata(), deployment.result_backend()]
        .into_iter()
        .flatten()
    {
        if let Some(h) = &c.host {
            host_map.insert(
                h.clone(),
                Dial {
                    host: at.postgres.host.clone(),
                    port: Some(at.postgres.port),
                },
            );
        }
    }
    let mut extra_lines = vec![
        // TCP only: the socket directory of the pod does not exist here.
        "unix_socket_dir =".to_string(),
        // The admin console, for SHOW POOLS/SERVERS in a failed scenario's diagnosis.
        format!("admin_users = {}", crate::pgbouncer::ADMIN_USER),
        // The chart turns connection logging off; the evidence the flow works (or where it
        // breaks) is in exactly these lines.
        "log_connections = 1".to_string(),
        "log_disconnections = 1".to_string(),
    ];
    // Without server_krb_spn the fork asks for postgres/<host of the [databases] line>; on
    // the platform that is the configured host, here it is the run's PostgreSQL. Name the
    // principal the platform would ask for, so a missing SPN behaves as it does there.
    let per_db_spn = |extras: &Option<String>| {
        extras
            .as_deref()
            .and_then(|e| harness_config::ini::parse_db_extras(e).ok())
            .is_some_and(|kv| {
                kv.iter()
                    .any(|(k, v)| k.eq_ignore_ascii_case("server_krb_spn") && !v.is_empty())
            })
    };
    let global_spn = harness_config::ini::last_setting(
        &harness_config::ini::settings(&extra_ini),
        "server_krb_spn",
    )
    .is_some_and(|v| !v.is_empty());
    let every_db_has_one =
        per_db_spn(&pg.extra_ini_metadata) && per_db_spn(&pg.extra_ini_result_backend);
    // The generic build has no such setting, and no default of the fork to stand in for.
    if !global_spn && !every_db_has_one && opts.build == crate::pgbouncer::Build::Kerberos {
        extra_lines.push(format!("server_krb_spn = {}", shape.names.server_spn));
    }
    let placement = Placement {
        listen_addr: at.listen.host.clone(),
        listen_port: at.listen.port,
        auth_file: at.auth_file.clone(),
        logfile: None,
        pidfile: None,
        unix_socket_dir: None,
        extra_lines,
        host_map,
        chart: Default::default(),
    };
    harness_config::render_pgbouncer_ini(&deployment, &placement)
        .map_err(|e| anyhow::anyhow!("rendering PgBouncer's ini from the deployment: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(dir: &str, listen: u16, pg: u16) -> PgbouncerPlacement {
        let loopback = "127.0.0.1";
        PgbouncerPlacement {
            listen: Endpoint {
                host: loopback.into(),
                port: listen,
            },
            auth_file: Path::new(dir).join("users.txt"),
            postgres: Endpoint {
                host: loopback.into(),
                port: pg,
            },
        }
    }

    fn opts(shape: &Shape) -> PgbouncerOptions {
        PgbouncerOptions {
            negotiate: shape.extra_ini_setting("server_gssauth_negotiate"),
            spn: shape.extra_ini_setting("server_krb_spn"),
            keytab: None,
            extra_ini: Vec::new(),
            metadata_extra: Vec::new(),
            build: Default::default(),
            krb5_libdefaults: Vec::new(),
            env: Vec::new(),
        }
    }

    /// The local file is the platform's file with only the placement changed: same lines in the
    /// same order once the harness section and the local addresses are taken out.
    #[test]
    fn the_local_ini_is_the_platform_ini_placed_locally() {
        let shape = Shape::default();
        let local =
            render_placed_ini(&shape, &opts(&shape), &at("/run/pgb", 16432, 15432)).unwrap();
        let platform = harness_config::render_for_platform(&shape.deployment).unwrap();
        let mut in_harness = false;
        let normalised: Vec<String> = local
            .lines()
            .filter(|l| {
                if l.starts_with("; ---- harness") {
                    in_harness = true;
                } else if l.starts_with("; ---- pgbouncerConfig.extraIni") {
                    in_harness = false;
                    return false;
                }
                !in_harness
            })
            .map(|l| {
                l.replace("host=127.0.0.1", "host=db.example.test")
                    .replace("port=15432", "port=5432")
                    .replace("listen_port = 16432", "listen_port = 6543")
                    .replace("listen_addr = 127.0.0.1", "listen_addr = *")
                    .replace("/run/pgb/users.txt", "/etc/pgbouncer/users.txt")
                    // The local tier runs the subchart's pools (ChartSettings::SUBCHART).
                    .replace(" pool_size=10 ", " pool_size=3 ")
                    .replace(" pool_size=5 ", " pool_size=2 ")
            })
            .collect();
        // The blank line that separates the harness section is the only other difference.
        let platform: Vec<&str> = platform.lines().collect();
        let normalised: Vec<&str> = normalised.iter().map(String::as_str).collect();
        assert_eq!(
            normalised
                .iter()
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>(),
            platform
                .iter()
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
        );
        assert!(local.ends_with(&shape.deployment.pgbouncer().extra_ini.unwrap()));
    }

    #[test]
    fn an_option_replaces_the_files_line_and_keeps_the_rest_verbatim() {
        let mut shape = Shape::default();
        let mut pg = shape.deployment.pgbouncer();
        pg.extra_ini = Some(
            "; from the customer's runbook\nserver_gssauth_negotiate=allow\nserver_krb_spn = postgres/db.example.test@EXAMPLE.TEST\nserver_lifetime = 600\n".into(),
        );
        shape.deployment.pgbouncer_config = Some(pg);
        let verbatim = render_placed_ini(&shape, &opts(&shape), &at("/d", 1, 2)).unwrap();
        assert!(verbatim.contains("\nserver_gssauth_negotiate=allow\n"));
        let mut o = opts(&shape);
        o.negotiate = Some("disable".into());
        let changed = render_placed_ini(&shape, &o, &at("/d", 1, 2)).unwrap();
        let extra = changed
            .split("; ---- pgbouncerConfig.extraIni, verbatim ----\n")
            .nth(1)
            .unwrap();
        assert_eq!(
            extra,
            "; from the customer's runbook\nserver_gssauth_negotiate = disable\nserver_krb_spn = postgres/db.example.test@EXAMPLE.TEST\nserver_lifetime = 600\n"
        );
    }

    #[test]
    fn without_an_spn_the_fork_s_default_names_the_configured_host() {
        let mut shape = Shape::default();
        let mut pg = shape.deployment.pgbouncer();
        pg.extra_ini = Some("server_gssauth_negotiate = allow\n".into());
        shape.deployment.pgbouncer_config = Some(pg);
        let ini = render_placed_ini(&shape, &opts(&shape), &at("/d", 1, 2)).unwrap();
        assert!(
            ini.contains("\nserver_krb_spn = postgres/db.example.test@EXAMPLE.TEST\n"),
            "{ini}"
        );
    }
}
