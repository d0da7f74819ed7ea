//! Airflow's configuration for one deployment, as the environment every component gets: both
//! database connections through PgBouncer's aliases (never PostgreSQL), the CeleryExecutor with its
//! broker, and per-run ports and secrets.

use std::path::Path;

use crate::probe::sql::Target;
use crate::secret::Secret;

use super::{pg_url, Version};

/// What the environment is made from; everything that must be unique per run is chosen by the
/// caller (ports, files); only the JWT and session secrets are generated here.
pub(super) struct Inputs<'a> {
    pub version: Version,
    /// The deployment's directory, as its components see it.
    pub dir: &'a Path,
    /// The DAGs folder and airflow/config (the PgBouncer connect arguments, the fork server),
    /// as the components see them.
    pub dags: &'a str,
    pub python_path: &'a str,
    /// Airflow's metadata connection (PgBouncer's `<release>-metadata` alias).
    pub metadata: &'a Target,
    /// Celery's result backend: a connection of its own, with its own user, password and
    /// database (PgBouncer's `<release>-result-backend` alias).
    pub result_backend: &'a Target,
    pub broker_url: String,
    /// The address the web server binds.
    pub bind: &'a str,
    pub api_port: u16,
    /// The web server as the other components dial it.
    pub base_url: &'a str,
    pub admin_user: &'a str,
    /// Airflow 3's SimpleAuthManager passwords file (written by the caller, 0600).
    pub passwords_file: &'a Path,
    /// The worker's and the triggerer's log servers (fixed 8793/8794 by default: two runs side by
    /// side would collide).
    pub log_server_ports: (u16, u16),
}

/// `[celery] operation_timeout`, seconds (see its use).
pub(super) const OPERATION_TIMEOUT_S: u32 = 10;

pub(super) fn environment(i: &Inputs) -> Vec<(String, String)> {
    let base_url = i.base_url.to_string();
    let mut env: Vec<(String, String)> = vec![
        (
            "AIRFLOW_HOME".into(),
            i.dir.join("home").display().to_string(),
        ),
        ("AIRFLOW__CORE__DAGS_FOLDER".into(), i.dags.into()),
        // airflow/config: the PgBouncer connect arguments and the fork server.
        ("PYTHONPATH".into(), i.python_path.into()),
        ("AIRFLOW__CORE__EXECUTOR".into(), "CeleryExecutor".into()),
        ("AIRFLOW__CORE__PARALLELISM".into(), "2".into()),
        ("AIRFLOW__CORE__LOAD_EXAMPLES".into(), "False".into()),
        (
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION".into(),
            "False".into(),
        ),
        (
            "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS".into(),
            "False".into(),
        ),
        (
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN".into(),
            pg_url("postgresql", i.metadata),
        ),
        (
            "AIRFLOW__CELERY__RESULT_BACKEND".into(),
            pg_url("db+postgresql", i.result_backend),
        ),
        ("AIRFLOW__CELERY__BROKER_URL".into(), i.broker_url.clone()),
        ("AIRFLOW__CELERY__WORKER_CONCURRENCY".into(), "1".into()),
        // The scheduler hands each task to Celery in a subprocess bounded by this (default 1 s),
        // and the hand-off stores a pending result through PgBouncer, whose first login to the
        // result-backend database is a GSSAPI round trip to the KDC: on 2 loaded cores that took
        // longer than 1 s and the task failed unrun ("Celery Task Timeout Error", 3 tries).
        (
            "AIRFLOW__CELERY__OPERATION_TIMEOUT".into(),
            OPERATION_TIMEOUT_S.to_string(),
        ),
        (
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER".into(),
            i.dir.join("logs").display().to_string(),
        ),
        // Both default to fixed ports (8793/8794): two runs side by side would collide.
        (
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT".into(),
            i.log_server_ports.0.to_string(),
        ),
        (
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT".into(),
            i.log_server_ports.1.to_string(),
        ),
    ];
    match i.version {
        Version::Airflow3 => {
            let async_url = pg_url("postgresql+asyncpg", i.metadata);
            env.extend([
                ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS".into(), "harness_pgbouncer.SYNC".into()),
                ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC".into(), "harness_pgbouncer.ASYNC".into()),
                ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC".into(), format!("{async_url}?prepared_statement_cache_size=0")),
            ]);
            env.extend([
                ("AIRFLOW__API__HOST".into(), i.bind.into()),
                ("AIRFLOW__API__PORT".into(), i.api_port.to_string()),
                ("AIRFLOW__API__BASE_URL".into(), base_url.clone()),
                ("AIRFLOW__API__WORKERS".into(), "1".into()),
                ("AIRFLOW__CORE__EXECUTION_API_SERVER_URL".into(), format!("{base_url}/execution/")),
                ("AIRFLOW__API_AUTH__JWT_SECRET".into(), Secret::generate().expose().into()),
                ("AIRFLOW__API__SECRET_KEY".into(), Secret::generate().expose().into()),
                (
                    "AIRFLOW__CORE__AUTH_MANAGER".into(),
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager".into(),
                ),
                ("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS".into(), format!("{}:admin", i.admin_user)),
                ("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE".into(), i.passwords_file.display().to_string()),
            ]);
        }
        Version::Airflow2 => env.extend([
            ("AIRFLOW__WEBSERVER__WEB_SERVER_HOST".into(), i.bind.into()),
            ("AIRFLOW__WEBSERVER__WEB_SERVER_PORT".into(), i.api_port.to_string()),
            ("AIRFLOW__WEBSERVER__BASE_URL".into(), base_url.clone()),
            ("AIRFLOW__WEBSERVER__WORKERS".into(), "1".into()),
            ("AIRFLOW__WEBSERVER__SECRET_KEY".into(), Secret::generate().expose().into()),
            (
                "AIRFLOW__API__AUTH_BACKENDS".into(),
                "airflow.providers.fab.auth_manager.api.auth.backend.basic_auth,airflow.api.auth.backend.session".into(),
            ),
        ]),
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two connections differ in every field, so a setting built from the wrong one shows.
    fn metadata() -> Target {
        Target {
            host: "pgbouncer.meta.test".into(),
            port: 6543,
            user: "astro_user@EXAMPLE.TEST".into(),
            password: "pw".into(),
            database: "rel-metadata".into(),
        }
    }

    fn result_backend() -> Target {
        Target {
            host: "pgbouncer.rb.test".into(),
            port: 6544,
            user: "celery_user@EXAMPLE.TEST".into(),
            password: "rb-pw".into(),
            database: "rel-result-backend".into(),
        }
    }

    fn env_for(version: Version) -> std::collections::HashMap<String, String> {
        let (dir, passwords) = (Path::new("/run/x"), Path::new("/run/p"));
        environment(&Inputs {
            version,
            dir,
            dags: "/code/dags",
            python_path: "/code/config",
            metadata: &metadata(),
            result_backend: &result_backend(),
            broker_url: "redis://:s@broker.test:7000/0".into(),
            bind: "web.test",
            api_port: 8088,
            base_url: "http://web.test:8088",
            admin_user: "admin",
            passwords_file: passwords,
            log_server_ports: (9001, 9002),
        })
        .into_iter()
        .collect()
    }

    #[test]
    fn each_connection_goes_to_its_own_pgbouncer_alias_with_the_celery_executor() {
        for version in [Version::Airflow3, Version::Airflow2] {
            let env = env_for(version);
            assert_eq!(
                env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
                "postgresql://astro_user%40EXAMPLE.TEST:pw@pgbouncer.meta.test:6543/rel-metadata"
            );
            assert_eq!(
                env["AIRFLOW__CELERY__RESULT_BACKEND"],
                "db+postgresql://celery_user%40EXAMPLE.TEST:rb-pw@pgbouncer.rb.test:6544/rel-result-backend"
            );
            assert_eq!(env["AIRFLOW__CORE__EXECUTOR"], "CeleryExecutor");
            assert_eq!(env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"], "9001");
            assert_eq!(env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"], "9002");
            // Kerberos is PgBouncer's business: Airflow gets no Kerberos setting at all.
            assert!(env.keys().all(|k| !k.starts_with("KRB5")), "{env:?}");
        }
    }

    #[test]
    fn each_version_gets_its_own_web_server_settings() {
        let three = env_for(Version::Airflow3);
        assert_eq!(three["AIRFLOW__API__PORT"], "8088");
        assert_eq!(three["AIRFLOW__API__HOST"], "web.test");
        assert_eq!(
            three["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"],
            "http://web.test:8088/execution/"
        );
        assert_eq!(
            three["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"],
            "/run/p"
        );
        assert!(three["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].starts_with(
            "postgresql+asyncpg://astro_user%40EXAMPLE.TEST:pw@pgbouncer.meta.test:6543/rel-metadata?"
        ));
        let two = env_for(Version::Airflow2);
        assert_eq!(two["AIRFLOW__WEBSERVER__WEB_SERVER_PORT"], "8088");
        assert_eq!(two["AIRFLOW__WEBSERVER__WEB_SERVER_HOST"], "web.test");
        assert!(!two.contains_key("AIRFLOW__API__PORT"));
        assert!(!two.contains_key("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"));
    }
}
