//! The Kerberos stack of one scenario or one `env up`: realm, PostgreSQL and PgBouncer, started in
//! dependency order (PgBouncer needs the realm and the database) and stopped in reverse.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::pgbouncer::{Pgbouncer, PgbouncerSpec};
use crate::postgres::{Cluster, ClusterSpec};
use crate::realm::{Realm, RealmSpec};
use crate::secret::Secret;

/// The names an environment is built from. The reference configuration gives the defaults; a
/// replayed deployment file gives a customer's own.
#[derive(Debug, Clone)]
pub struct Shape {
    pub realm: String,
    /// The Kerberos principal PgBouncer logs in as; the PostgreSQL role has exactly this name.
    pub principal: String,
    /// The database host as configured (the SPN's host). Locally it is dialled at 127.0.0.1.
    pub db_host: String,
    /// The service principal the server's keytab holds.
    pub spn: String,
    pub release: String,
    pub metadata_db: String,
    pub result_backend_db: String,
    pub sslmode: String,
}

impl Default for Shape {
    fn default() -> Self {
        Shape::new("EXAMPLE.TEST", "astro_user", "db.example.test", "kerberos-demo")
    }
}

impl Shape {
    pub fn new(realm: &str, user: &str, db_host: &str, release: &str) -> Shape {
        Shape {
            realm: realm.into(),
            principal: format!("{user}@{realm}"),
            db_host: db_host.into(),
            spn: format!("postgres/{db_host}@{realm}"),
            release: release.into(),
            metadata_db: format!("{}_airflow", release.replace('-', "_")),
            result_backend_db: format!("{}_airflow", release.replace('-', "_")),
            sslmode: "prefer".into(),
        }
    }

    pub fn metadata_alias(&self) -> String {
        format!("{}-metadata", self.release)
    }

    pub fn result_backend_alias(&self) -> String {
        format!("{}-result-backend", self.release)
    }

    /// Replaces `{realm}`, `{principal}`, `{db_host}`, `{spn}`, `{release}` in scenario text, so
    /// the same feature files run against a replayed configuration.
    pub fn expand(&self, text: &str) -> String {
        text.replace("{realm}", &self.realm)
            .replace("{principal}", &self.principal)
            .replace("{db_host}", &self.db_host)
            .replace("{spn}", &self.spn)
            .replace("{release}", &self.release)
    }
}

/// How PgBouncer's Kerberos side is set up for one scenario; the defaults are the working
/// configuration, each field is one of the ways it breaks.
#[derive(Debug, Clone)]
pub struct PgbouncerOptions {
    /// `server_gssauth_negotiate` in extraIni; None leaves the line out (the fork's default).
    pub negotiate: Option<String>,
    /// `server_krb_spn` in extraIni; None leaves it out.
    pub spn: Option<String>,
    /// Which keytab the credential injector would mount; None injects nothing.
    pub keytab: Option<PathBuf>,
    /// The password Airflow's connection uses (users.txt is always the configured one).
    pub extra_ini: Vec<String>,
}

pub struct Stack {
    pub dir: PathBuf,
    pub shape: Shape,
    pub realm: Realm,
    pub pg: Cluster,
    pub pgbouncer: Option<Pgbouncer>,
    pub client_keytab: PathBuf,
    pub server_keytab: PathBuf,
    /// The password of the metadata/result-backend user in users.txt (what Airflow sends).
    pub client_password: Secret,
    /// The PgBouncer listen port, chosen once so configuration can name it before it starts.
    pub pgbouncer_port: u16,
}

impl Stack {
    /// Realm (with the client and service principals) and PostgreSQL (with the role and databases).
    pub async fn up(dir: &Path, shape: Shape) -> Result<Stack> {
        crate::realm::validate_principal(&shape.principal).context("the client principal")?;
        crate::realm::validate_principal(&shape.spn).context("the service principal (SPN)")?;
        let kdc_dir = dir.join("kdc");
        let secrets = dir.join("secrets");
        std::fs::create_dir_all(&kdc_dir)?;
        std::fs::create_dir_all(&secrets)?;
        crate::run::make_traversable(&kdc_dir)?;
        let realm = Realm::start(
            &kdc_dir,
            &RealmSpec { realm: shape.realm.clone(), hosts: vec![shape.db_host.clone(), "localhost".into()] },
        )
        .await?;
        let client_keytab = secrets.join("client.keytab");
        let server_keytab = secrets.join("server.keytab");
        realm
            .add_principals(&[(&shape.principal, &client_keytab), (&shape.spn, &server_keytab)])
            .await?;
        let pg_dir = dir.join("postgres");
        std::fs::create_dir_all(&pg_dir)?;
        let mut databases = vec![shape.metadata_db.clone()];
        if shape.result_backend_db != shape.metadata_db {
            databases.push(shape.result_backend_db.clone());
        }
        let pg = Cluster::start(
            &pg_dir,
            ClusterSpec {
                realm: shape.realm.clone(),
                host: shape.db_host.clone(),
                server_keytab: server_keytab.clone(),
                role: shape.principal.clone(),
                databases,
                krb5_conf: realm.krb5_conf.clone(),
            },
        )
        .await?;
        Ok(Stack {
            dir: dir.to_path_buf(),
            shape,
            realm,
            pg,
            pgbouncer: None,
            client_keytab,
            server_keytab,
            client_password: Secret::generate(),
            pgbouncer_port: crate::ports::free_port()?,
        })
    }

    /// The working PgBouncer configuration of the reference deployment.
    pub fn default_pgbouncer_options(&self) -> PgbouncerOptions {
        PgbouncerOptions {
            negotiate: Some("allow".into()),
            spn: Some(self.shape.spn.clone()),
            keytab: Some(self.client_keytab.clone()),
            extra_ini: Vec::new(),
        }
    }

    /// The deployment PgBouncer ini, in the shape the deployment chart renders it, placed locally.
    pub fn render_pgbouncer_ini(&self, opts: &PgbouncerOptions, dir: &Path) -> String {
        let s = &self.shape;
        let db_line = |alias: String, db: &str| {
            format!(
                "{alias} = host=127.0.0.1 dbname={db} port={} pool_size=5 user={}\n",
                self.pg.port, s.principal
            )
        };
        let mut ini = String::from("[databases]\n");
        ini += &db_line(s.metadata_alias(), &s.metadata_db);
        ini += &db_line(s.result_backend_alias(), &s.result_backend_db);
        ini += &format!(
            "\n[pgbouncer]\npool_mode = transaction\nlisten_port = {}\nlisten_addr = 127.0.0.1\nauth_type = scram-sha-256\nauth_file = {}\nignore_startup_parameters = extra_float_digits\nserver_tls_sslmode = {}\n",
            self.pgbouncer_port,
            dir.join("users.txt").display(),
            s.sslmode
        );
        ini += &Pgbouncer::harness_lines(dir, self.pgbouncer_port);
        ini += "; --- extraIni ---\n";
        if let Some(n) = &opts.negotiate {
            ini += &format!("server_gssauth_negotiate = {n}\n");
        }
        if let Some(spn) = &opts.spn {
            ini += &format!("server_krb_spn = {spn}\n");
        }
        for l in &opts.extra_ini {
            ini += l;
            ini += "\n";
        }
        ini
    }

    pub async fn start_pgbouncer(&mut self, opts: &PgbouncerOptions) -> Result<()> {
        let dir = self.dir.join("pgbouncer");
        std::fs::create_dir_all(&dir)?;
        crate::tools::give_to_service_user(&dir)?;
        // The credential injector's job: a keytab in the pod, readable by PgBouncer only.
        let mut krb_env = self.realm.client_env("pgbouncer", None);
        krb_env.retain(|(k, _)| k != "KRB5_CLIENT_KTNAME" && k != "KRB5CCNAME" && k != "KRB5_TRACE");
        krb_env.push(("KRB5CCNAME".into(), format!("FILE:{}", dir.join("krb5cc").display())));
        krb_env.push(("KRB5_TRACE".into(), dir.join("trace-pgbouncer.log").display().to_string()));
        let injected = dir.join("injected.keytab");
        match &opts.keytab {
            Some(kt) => {
                std::fs::copy(kt, &injected).with_context(|| format!("keytab {} is missing", kt.display()))?;
                crate::tools::give_to_service_user(&injected)?;
                krb_env.push(("KRB5_CLIENT_KTNAME".into(), format!("FILE:{}", injected.display())));
            }
            None => {
                krb_env.push(("KRB5_CLIENT_KTNAME".into(), format!("FILE:{}", dir.join("not-injected.keytab").display())));
            }
        }
        let ini = self.render_pgbouncer_ini(opts, &dir);
        let users = vec![(self.shape.principal.clone(), self.client_password.clone())];
        let pgb = Pgbouncer::start(&dir, PgbouncerSpec { ini, users, port: self.pgbouncer_port, krb_env }).await?;
        self.pgbouncer = Some(pgb);
        Ok(())
    }

    /// What Airflow does: a password login to PgBouncer's metadata alias.
    pub fn metadata_target(&self, password: &str) -> crate::probe::sql::Target {
        crate::probe::sql::Target {
            host: "127.0.0.1".into(),
            port: self.pgbouncer_port,
            user: self.shape.principal.clone(),
            password: password.into(),
            database: self.shape.metadata_alias(),
        }
    }

    pub fn admin_target(&self) -> Option<crate::probe::sql::Target> {
        let p = self.pgbouncer.as_ref()?;
        Some(crate::probe::sql::Target {
            host: "127.0.0.1".into(),
            port: self.pgbouncer_port,
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
        crate::redact::sweep(&self.dir);
    }
}
