//! A long-lived environment for working by hand: `cargo xtask env up` starts `harness env-serve`
//! in the background; it brings the stack up (and, with `--airflow`, Airflow behind PgBouncer),
//! describes it in `env.json` and `env.sh`, and tears it down on SIGTERM (`env down`) or SIGINT,
//! Airflow first.

use std::path::Path;

use anyhow::{Context, Result};

use crate::airflow::{Airflow, Options, Version};
use crate::secret::write_private;
use crate::stack::{Shape, Stack};

pub async fn serve(
    dir: &Path,
    deployment: Option<&Path>,
    values: Option<&Path>,
    airflow: Option<Version>,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::run::make_traversable(dir)?;
    let shape = match deployment {
        Some(f) => {
            // The same policy as the e2e runner: `--reproduce` (E2E_REPLAY=reproduce) builds a
            // broken file as written, so its failure can be poked at by hand.
            let policy: crate::replay::Policy =
                std::env::var("E2E_REPLAY").unwrap_or_default().parse()?;
            crate::replay::load(f, values, policy)?.shape
        }
        None => Shape::default(),
    };
    let mut stack = Stack::up(dir, shape).await?;
    let mut af: Option<Airflow> = None;
    let result = async {
        let opts = stack.default_pgbouncer_options();
        stack.start_pgbouncer(&opts).await?;
        if let Some(version) = airflow {
            println!("starting Airflow {} behind PgBouncer", version.pin());
            let a = af.insert(
                Airflow::start(&stack, &Options::new(version), &dir.join("airflow")).await?,
            );
            a.wait_healthy(std::time::Duration::from_secs(300)).await?;
        }
        describe(dir, &stack, af.as_ref())?;
        println!("environment ready: {}", dir.join("env.json").display());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    println!("stopping the environment");
    // Airflow before PgBouncer and PostgreSQL, or its scheduler hangs on a vanished database.
    if let Some(mut a) = af.take() {
        a.stop().await;
    }
    stack.down().await;
    let _ = std::fs::remove_file(dir.join("env.sh"));
    let _ = std::fs::remove_file(dir.join("env.json"));
    result
}

/// `env.json` for `env status` (no secrets), `env.sh` (0600) for `env shell`.
fn describe(dir: &Path, s: &Stack, af: Option<&Airflow>) -> Result<()> {
    let mut info = serde_json::json!({
        "pid": std::process::id(),
        "realm": s.shape.realm,
        "principal": s.shape.principal,
        "spn": s.shape.spn,
        "db_host": s.shape.db_host,
        "kdc_port": s.realm.port,
        "postgres_port": s.pg.port,
        "pgbouncer_port": s.pgbouncer_port,
        "metadata_alias": s.shape.metadata_alias(),
        "result_backend_alias": s.shape.result_backend_alias(),
        "logs": {
            "kdc": s.realm.log(),
            "postgres": s.pg.log,
            "pgbouncer": s.dir.join("pgbouncer/pgbouncer.log"),
        },
    });
    if let Some(a) = af {
        info["airflow"] = serde_json::json!({
            "version": a.version.pin(),
            "url": a.base_url,
            "admin_user": a.admin_user,
            "admin_password": "in env.sh as AIRFLOW_ADMIN_PASSWORD (mode 0600)",
            "logs": a.dir,
        });
    }
    std::fs::write(dir.join("env.json"), serde_json::to_string_pretty(&info)?)
        .context("writing env.json")?;
    let client_env = s.realm.client_env("shell", Some(&s.client_keytab));
    let mut sh = String::from(
        "# Sourced by `cargo xtask env shell`. Holds a password: mode 0600, do not share.\n",
    );
    for (k, v) in &client_env {
        sh += &format!("export {k}='{v}'\n");
    }
    sh += &format!(
        "export PGHOST=127.0.0.1 PGPORT={} PGUSER='{}' PGDATABASE='{}' PGPASSWORD='{}'\n",
        s.pgbouncer_port,
        s.shape.principal,
        s.shape.metadata_alias(),
        s.client_password.expose()
    );
    sh += &format!(
        "alias psql-direct=\"psql 'host={} hostaddr=127.0.0.1 port={} dbname={} user={}'\"\n",
        s.shape.db_host, s.pg.port, s.shape.metadata_db, s.shape.principal
    );
    sh += &format!(
        "alias pgbouncer-admin=\"PGPASSWORD='{}' psql -h 127.0.0.1 -p {} -U {} pgbouncer\"\n",
        s.pgbouncer
            .as_ref()
            .map(|p| p.admin_password.expose().to_string())
            .unwrap_or_default(),
        s.pgbouncer_port,
        crate::pgbouncer::ADMIN_USER
    );
    if let Some(a) = af {
        sh += &format!(
            "export AIRFLOW_URL='{}' AIRFLOW_ADMIN_USER='{}' AIRFLOW_ADMIN_PASSWORD='{}'\n",
            a.base_url,
            a.admin_user,
            a.admin_password.expose()
        );
    }
    sh += &format!("export PS1='[krb {}] \\w\\$ '\n", s.shape.realm);
    write_private(&dir.join("env.sh"), sh.as_bytes())
}
