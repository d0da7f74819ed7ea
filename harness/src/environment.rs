//! The environment a scenario, `env up` or a bench works with, on any tier: the one object steps
//! use. It answers with endpoints, log cursors and waits, superuser SQL, PgBouncer's admin
//! console and ini, and the realm's principals and keys (add, rotate, replace the server's
//! keytab). Nothing that uses it knows a port number, a socket path, a directory layout or a
//! process id: those are the substrate's and the components' business.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::probe::sql::{self, Target};
use crate::stack::{PgbouncerOptions, Shape, Stack};
use crate::substrate::{Endpoint, LogCursor, Substrate, Tier};

/// The components of an environment whose logs steps read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Kdc,
    Postgres,
    Pgbouncer,
}

impl Component {
    pub const ALL: [Component; 3] = [Component::Kdc, Component::Postgres, Component::Pgbouncer];

    pub fn name(self) -> &'static str {
        match self {
            Component::Kdc => "kdc",
            Component::Postgres => "postgres",
            Component::Pgbouncer => "pgbouncer",
        }
    }
}

/// A row as the simple query protocol returns it: column name and text value.
pub type Row = Vec<(String, Option<String>)>;

pub struct Environment {
    stack: Stack,
    /// Components a fault adds beside the stack (a ticket-refresh sidecar), stopped first.
    sidecars: Vec<Box<dyn crate::substrate::Running>>,
}

impl Environment {
    /// The realm (with the client and service principals) and PostgreSQL (with the role and
    /// databases) on `substrate`; PgBouncer comes with [`Environment::start_pgbouncer`].
    pub async fn up(substrate: Arc<dyn Substrate>, dir: &Path, shape: Shape) -> Result<Self> {
        Ok(Environment {
            stack: Stack::up(substrate, dir, shape).await?,
            sidecars: Vec::new(),
        })
    }

    /// [`Environment::up`], then PgBouncer as the deployment configures it; on failure what was
    /// started is stopped again.
    pub async fn up_with_pgbouncer(
        substrate: Arc<dyn Substrate>,
        dir: &Path,
        shape: Shape,
    ) -> Result<Self> {
        let mut env = Self::up(substrate, dir, shape).await?;
        let opts = env.default_pgbouncer_options();
        if let Err(e) = env.start_pgbouncer(&opts).await {
            env.down().await;
            return Err(e);
        }
        Ok(env)
    }

    pub fn shape(&self) -> &Shape {
        &self.stack.shape
    }

    pub fn tier(&self) -> Tier {
        self.stack.substrate.tier()
    }

    /// The components below Airflow, for Airflow's own start (crate-internal).
    pub(crate) fn stack(&self) -> &Stack {
        &self.stack
    }

    // --- PgBouncer ---------------------------------------------------------------------------

    /// PgBouncer's Kerberos options as the deployment sets them (each field is one way to break
    /// it).
    pub fn default_pgbouncer_options(&self) -> PgbouncerOptions {
        self.stack.default_pgbouncer_options()
    }

    pub async fn start_pgbouncer(&mut self, opts: &PgbouncerOptions) -> Result<()> {
        self.stack.start_pgbouncer(opts).await
    }

    /// The ini PgBouncer runs with.
    pub async fn pgbouncer_ini(&self) -> Result<String> {
        self.pgbouncer()?.ini().await
    }

    /// Runs a command on PgBouncer's admin console (`SHOW POOLS`, `SHOW SERVERS`).
    pub async fn pgbouncer_admin(&self, command: &str) -> Result<Vec<Row>> {
        let admin = self
            .stack
            .admin_target()
            .context("PgBouncer is not running: its admin console is not there")?;
        let client = sql::connect(&admin, Duration::from_secs(3))
            .await
            .map_err(|e| anyhow::anyhow!("PgBouncer's admin console: {e}"))?;
        sql::simple_rows(&client, command).await
    }

    /// The login to PgBouncer's admin console (for `env shell`'s `pgbouncer-admin`).
    pub fn admin_target(&self) -> Option<Target> {
        self.stack.admin_target()
    }

    fn pgbouncer(&self) -> Result<&crate::pgbouncer::Pgbouncer> {
        self.stack
            .pgbouncer
            .as_ref()
            .context("PgBouncer is not running: the scenario needs `Given PgBouncer ...` first")
    }

    // --- endpoints and logins ----------------------------------------------------------------

    /// Where the harness reaches a component.
    pub fn endpoint(&self, c: Component) -> Result<Endpoint> {
        match c {
            Component::Kdc => self.stack.realm.endpoint(),
            Component::Postgres => self.stack.pg.endpoint(),
            Component::Pgbouncer => self.pgbouncer()?.endpoint(),
        }
    }

    /// Where the other components reach a component (PgBouncer's `[databases]` host is
    /// PostgreSQL's).
    pub fn peer_endpoint(&self, c: Component) -> Result<Endpoint> {
        match c {
            Component::Postgres => self.stack.pg.peer_endpoint(),
            Component::Kdc => Ok(self.stack.realm.peer_endpoint()),
            Component::Pgbouncer => {
                bail!("no component dials the {} in this environment", c.name())
            }
        }
    }

    /// The password every connection user has in users.txt (what Airflow sends).
    pub fn client_password(&self) -> &str {
        self.stack.client_password.expose()
    }

    /// Airflow's metadata connection: a password login to PgBouncer's metadata alias.
    pub fn metadata_target(&self, password: &str) -> Result<Target> {
        self.stack.metadata_target(password)
    }

    /// Celery's result backend: its own user and PgBouncer's result-backend alias.
    pub fn result_backend_target(&self, password: &str) -> Result<Target> {
        self.stack.result_backend_target(password)
    }

    /// A password login straight to PostgreSQL (which must refuse it: GSSAPI only).
    pub fn direct_target(&self, user: &str, password: &str, database: &str) -> Result<Target> {
        let at = self.endpoint(Component::Postgres)?;
        Ok(Target {
            host: at.host,
            port: at.port,
            user: user.into(),
            password: password.into(),
            database: database.into(),
        })
    }

    // --- SQL as the superuser ----------------------------------------------------------------

    /// Runs statements as PostgreSQL's superuser in `db`.
    pub async fn superuser_execute(&self, db: &str, statements: &str) -> Result<()> {
        let client = self.stack.pg.superuser(db).await?;
        client
            .batch_execute(statements)
            .await
            .map_err(|e| anyhow::anyhow!("as the superuser in {db}: {}", sql::error_text(&e)))
    }

    /// A further database on the environment's PostgreSQL, owned by the login role `owner`
    /// (named exactly like its principal, created unless it exists), with its grants.
    pub async fn add_database(&mut self, db: &str, owner: &str) -> Result<()> {
        self.stack.pg.add_database(db, owner).await
    }

    /// Lets `role` log in to PostgreSQL with a password (the bench's password baseline only).
    pub async fn admit_password_role(&self, role: &str, password: &str) -> Result<()> {
        self.stack.pg.admit_password_role(role, password).await
    }

    /// A query as PostgreSQL's superuser in `db`.
    pub async fn superuser_rows(&self, db: &str, query: &str) -> Result<Vec<Row>> {
        let client = self.stack.pg.superuser(db).await?;
        sql::simple_rows(&client, query).await
    }

    // --- logs --------------------------------------------------------------------------------

    /// The end of a component's log now: assertions read what comes after it.
    pub fn log_cursor(&self, c: Component) -> LogCursor {
        match c {
            Component::Kdc => LogCursor(
                std::fs::metadata(self.stack.realm.log())
                    .map(|m| m.len())
                    .unwrap_or(0),
            ),
            Component::Postgres => self.stack.pg.log_cursor(),
            Component::Pgbouncer => self
                .stack
                .pgbouncer
                .as_ref()
                .map(|p| p.log_cursor())
                .unwrap_or_default(),
        }
    }

    /// What a component logged after `cursor`. PostgreSQL's text is completed from its
    /// Kerberos trace when it cut a GSS message (see `Cluster::gss_log_since`).
    pub fn log_since(&self, c: Component, cursor: LogCursor) -> String {
        match c {
            Component::Kdc => {
                let text = std::fs::read(self.stack.realm.log()).unwrap_or_default();
                let start = (cursor.0 as usize).min(text.len());
                String::from_utf8_lossy(&text[start..]).into_owned()
            }
            Component::Postgres => self.stack.pg.gss_log_since(cursor),
            Component::Pgbouncer => self
                .stack
                .pgbouncer
                .as_ref()
                .map(|p| p.log_since(cursor))
                .unwrap_or_default(),
        }
    }

    /// The harness's copy of a component's log, for messages and the diagnosis.
    pub fn log_file(&self, c: Component) -> PathBuf {
        match c {
            Component::Kdc => self.stack.realm.log(),
            Component::Postgres => self.stack.pg.log(),
            Component::Pgbouncer => self
                .stack
                .pgbouncer
                .as_ref()
                .map(|p| p.log())
                .unwrap_or_else(|| self.stack.dir.join("pgbouncer/pgbouncer.log")),
        }
    }

    /// Waits until `needle` appears in a component's log after `cursor` (a server writes the
    /// line a moment after the client sees the outcome); returns the text since the cursor.
    pub async fn wait_log(
        &self,
        c: Component,
        cursor: LogCursor,
        needle: &str,
        timeout: Duration,
    ) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.log_since(c, cursor);
            if text.contains(needle) {
                return Ok(text);
            }
            if Instant::now() > deadline {
                bail!(
                    "the {} log ({}) has no line containing `{needle}` since the scenario started; it says:\n{}",
                    c.name(),
                    self.log_file(c).display(),
                    crate::logs::last_lines(&text, 12)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // --- the realm: principals and keys --------------------------------------------------------

    /// The keytab the credential injector hands PgBouncer (the client principal's).
    pub fn client_keytab(&self) -> &Path {
        &self.stack.client_keytab
    }

    /// The environment of a Kerberos client in the harness (`who` names its cache and trace)
    /// taking its identity from `keytab`; None gives it no credentials.
    pub fn client_env(&self, who: &str, keytab: Option<&Path>) -> Vec<(String, String)> {
        self.stack.realm.client_env(who, keytab)
    }

    /// `kinit` from a keytab, then `klist`'s listing.
    pub async fn kinit(&self, who: &str, principal: &str, keytab: &Path) -> Result<String> {
        self.stack.realm.kinit(who, principal, keytab).await
    }

    /// Adds a principal with a random key; returns its keytab (harness side, 0600).
    pub async fn add_principal(&self, principal: &str) -> Result<PathBuf> {
        let kt = self
            .stack
            .dir
            .join(format!("secrets/{}.keytab", crate::run::slug(principal)));
        self.stack
            .realm
            .add_principals(&[(principal, kt.as_path())])
            .await?;
        Ok(kt)
    }

    /// A new key for `principal` in the KDC (kvno + 1); the keytabs handed out go stale.
    pub async fn rotate_key(&self, principal: &str) -> Result<()> {
        self.stack.realm.bump_kvno(principal).await
    }

    /// The keys the KDC holds for `principal` now, exported without changing them to a new
    /// keytab (harness side, 0600); with `keep_old`, appended to the server's original keytab, as
    /// a server keeps the old key beside the new one during a rotation.
    pub async fn export_keys(&self, principal: &str, keep_old: bool) -> Result<PathBuf> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let kt = self.stack.dir.join(format!(
            "secrets/{}-{n}.keytab",
            crate::run::slug(principal)
        ));
        let old = keep_old.then_some(self.stack.server_keytab.as_path());
        self.stack.realm.export_keys(principal, &kt, old).await?;
        Ok(kt)
    }

    /// Replaces the database server's keytab (PostgreSQL reads it on every GSS login).
    pub async fn replace_server_keytab(&self, keytab: &Path) -> Result<()> {
        self.stack.pg.replace_keytab(keytab).await
    }

    // --- day-two faults (features/fault.feature) ---------------------------------------------

    /// Stops the KDC (the KDC-down fault); [`Environment::restart_kdc`] brings it back.
    pub async fn stop_kdc(&mut self) {
        self.stack.realm.stop().await;
    }

    /// The KDC back on the same port and database after [`Environment::stop_kdc`].
    pub async fn restart_kdc(&mut self) -> Result<()> {
        self.stack.realm.restart_kdc().await
    }

    /// The KDC stops answering without going away (it keeps its socket: a hung KDC).
    pub async fn pause_kdc(&self) -> Result<()> {
        self.stack.realm.pause_kdc().await
    }

    /// A paused KDC answers again.
    pub async fn resume_kdc(&self) -> Result<()> {
        self.stack.realm.resume_kdc().await
    }

    /// PostgreSQL stopped as an operator restarts it (fast shutdown) and started again on the
    /// same port and data; returns once it accepts connections.
    pub async fn restart_postgres(&mut self) -> Result<()> {
        self.stack.pg.restart().await
    }

    /// The log of a component started beside the stack (see [`Environment::adopt`]).
    pub fn sidecar_log(&self, name: &str) -> Option<String> {
        self.sidecars
            .iter()
            .find(|s| s.name() == name)
            .map(|s| s.log_since(LogCursor::default()))
    }

    /// Keeps a component started beside the stack until [`Environment::down`] (it stops first).
    pub(crate) fn adopt(&mut self, sidecar: Box<dyn crate::substrate::Running>) {
        self.sidecars.push(sidecar);
    }

    /// PgBouncer's next server login needs the KDC: the tickets it cached from the injected
    /// keytab go.
    pub fn forget_pgbouncer_tickets(&self) -> Result<()> {
        self.pgbouncer()?.forget_tickets()
    }

    // --- diagnosis and teardown ---------------------------------------------------------------

    /// What a person needs to see first when a scenario failed: PgBouncer's pools and servers,
    /// and the last lines of each component's log (redacted).
    pub async fn diagnosis(&self) -> String {
        let mut text = String::new();
        for q in ["SHOW POOLS", "SHOW SERVERS"] {
            let Ok(rows) = self.pgbouncer_admin(q).await else {
                break;
            };
            text += &format!("\n{q}:\n");
            for row in rows {
                let cells: Vec<String> = row
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("")))
                    .collect();
                text += &format!("  {}\n", cells.join(" "));
            }
        }
        for c in Component::ALL {
            let log = self.log_file(c);
            if log.exists() {
                text += &format!(
                    "\nlast lines of {} ({}):\n{}\n",
                    c.name(),
                    log.display(),
                    crate::logs::tail(&log, 12)
                );
            }
        }
        crate::redact::redact(&text)
    }

    /// Stops everything, newest first. Airflow must be stopped before (its scheduler hangs on
    /// a vanished database).
    pub async fn down(&mut self) {
        // A sidecar writing into PgBouncer's files must not outlive the cleanup of them.
        for mut s in self.sidecars.drain(..) {
            s.stop().await;
        }
        self.stack.down().await;
    }
}

/// After a scenario: secret material and bulky state under its directory go unless `keep`
/// (keytabs, the KDC database and PostgreSQL's data directory); logs, traces and rendered
/// configuration stay, redacted.
pub fn scrub(dir: &Path, keep: bool) {
    crate::redact::sweep(dir);
    if keep {
        return;
    }
    for sub in [
        "secrets",
        "kdc/kdc-db",
        "postgres/pgdata",
        "pgbouncer/injected.keytab",
        "pgbouncer/refresh.keytab",
        "pgbouncer/krb5cc.new",
        "postgres/server.keytab",
        "postgres/server.key",
    ] {
        let p: PathBuf = dir.join(sub);
        if p.is_dir() {
            let _ = std::fs::remove_dir_all(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
    }
}
