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
    pub dir: &'a Path,
    pub metadata: &'a Target,
    pub metadata_alias: String,
    pub result_backend: &'a Target,
    pub result_backend_alias: String,
    pub broker_url: String,
    pub api_port: u16,
    pub admin_user: &'a str,
    /// Airflow 3's SimpleAuthManager passwords file (written by the caller, 0600).
    pub passwords_file: &'a Path,
    /// The worker's and the triggerer's log servers (fixed 8793/8794 by default: two runs side by
    /// side would collide).
    pub log_server_ports: (u16, u16),
}

pub(super) fn environment(i: &Inputs) -> Vec<(String, String)> {
    let base_url = format!("http://127.0.0.1:{}", i.api_port);
    let mut env: Vec<(String, String)> = vec![
        (
            "AIRFLOW_HOME".into(),
            i.dir.join("home").display().to_string(),
        ),
        (
            "AIRFLOW__CORE__DAGS_FOLDER".into(),
            crate::run::workspace_root()
                .join("airflow/dags")
                .display()
                .to_string(),
        ),
        // airflow/config: the PgBouncer connect arguments and the fork server.
        (
            "PYTHONPATH".into(),
            crate::run::workspace_root()
                .join("airflow/config")
                .display()
                .to_string(),
        ),
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
            pg_url(
                "postgresql",
                &i.metadata.user,
                &i.metadata.password,
                i.metadata.port,
                &i.metadata_alias,
            ),
        ),
        (
            "AIRFLOW__CELERY__RESULT_BACKEND".into(),
            pg_url(
                "db+postgresql",
                &i.result_backend.user,
                &i.result_backend.password,
                i.result_backend.port,
                &i.result_backend_alias,
            ),
        ),
        ("AIRFLOW__CELERY__BROKER_URL".into(), i.broker_url.clone()),
        ("AIRFLOW__CELERY__WORKER_CONCURRENCY".into(), "1".into()),
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
            let async_url = pg_url(
                "postgresql+asyncpg",
                &i.metadata.user,
                &i.metadata.password,
                i.metadata.port,
                &i.metadata_alias,
            );
            env.extend([
                ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS".into(), "harness_pgbouncer.SYNC".into()),
                ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC".into(), "harness_pgbouncer.ASYNC".into()),
                ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC".into(), format!("{async_url}?prepared_statement_cache_size=0")),
            ]);
            env.extend([
                ("AIRFLOW__API__HOST".into(), "127.0.0.1".into()),
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
            ("AIRFLOW__WEBSERVER__WEB_SERVER_HOST".into(), "127.0.0.1".into()),
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

    fn target(port: u16) -> Target {
        Target {
            host: "127.0.0.1".into(),
            port,
            user: "astro_user@EXAMPLE.TEST".into(),
            password: "pw".into(),
            database: "ignored".into(),
        }
    }

    fn env_for(version: Version) -> std::collections::HashMap<String, String> {
        let (pgbouncer, dir, passwords) = (target(6543), Path::new("/run/x"), Path::new("/run/p"));
        environment(&Inputs {
            version,
            dir,
            metadata: &pgbouncer,
            metadata_alias: "rel-metadata".into(),
            result_backend: &pgbouncer,
            result_backend_alias: "rel-result-backend".into(),
            broker_url: "redis://:s@127.0.0.1:7000/0".into(),
            api_port: 8088,
            admin_user: "admin",
            passwords_file: passwords,
            log_server_ports: (9001, 9002),
        })
        .into_iter()
        .collect()
    }

    #[test]
    fn both_connections_go_to_pgbouncer_aliases_with_the_celery_executor() {
        for version in [Version::Airflow3, Version::Airflow2] {
            let env = env_for(version);
            let conn = &env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"];
            let rb = &env["AIRFLOW__CELERY__RESULT_BACKEND"];
            assert_eq!(
                conn,
                "postgresql://astro_user%40EXAMPLE.TEST:pw@127.0.0.1:6543/rel-metadata"
            );
            assert_eq!(
                rb,
                "db+postgresql://astro_user%40EXAMPLE.TEST:pw@127.0.0.1:6543/rel-result-backend"
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
        assert_eq!(
            three["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"],
            "http://127.0.0.1:8088/execution/"
        );
        assert_eq!(
            three["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"],
            "/run/p"
        );
        assert!(
            three["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"].starts_with(
                "postgresql+asyncpg://astro_user%40EXAMPLE.TEST:pw@127.0.0.1:6543/rel-metadata?"
            )
        );
        let two = env_for(Version::Airflow2);
        assert_eq!(two["AIRFLOW__WEBSERVER__WEB_SERVER_PORT"], "8088");
        assert!(!two.contains_key("AIRFLOW__API__PORT"));
        assert!(!two.contains_key("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"));
    }
}
