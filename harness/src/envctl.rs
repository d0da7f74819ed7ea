//! A long-lived environment for working by hand: `cargo xtask env up` starts `harness env-serve`
//! in the background; it brings the stack up (and, with `--airflow`, Airflow behind PgBouncer),
//! describes it in `env.json` and `env.sh`, and tears it down on SIGTERM (`env down`) or SIGINT,
//! Airflow first.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::airflow::{Airflow, Knobs, Options, Version};
use crate::environment::{Component, Environment};
use crate::replay::Policy;
use crate::secret::write_private;
use crate::stack::Shape;
use crate::substrate::Substrate;

/// Serves an environment in `dir`: the reference one, or a replayed deployment file (with its
/// values and replay policy: `Reproduce` builds a broken file as written, so its failure can be
/// poked at by hand); with Airflow of a version, run with the given knobs.
pub async fn serve(
    substrate: Arc<dyn Substrate>,
    dir: &Path,
    deployment: Option<(&Path, Option<&Path>, Policy)>,
    airflow: Option<(Version, Knobs)>,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    crate::run::make_traversable(dir)?;
    let shape = match deployment {
        Some((f, values, policy)) => crate::replay::load(f, values, policy)?.shape,
        None => Shape::default(),
    };
    let mut env = Environment::up_with_pgbouncer(substrate, dir, shape).await?;
    let mut af: Option<Airflow> = None;
    let result = async {
        if let Some((version, knobs)) = airflow {
            println!("starting Airflow {} behind PgBouncer", version.pin());
            let opts = Options::new(version, knobs);
            let a = af.insert(Airflow::start(&env, &opts, &dir.join("airflow")).await?);
            a.wait_healthy(std::time::Duration::from_secs(300)).await?;
        }
        describe(dir, &env, af.as_ref())?;
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
    env.down().await;
    let _ = std::fs::remove_file(dir.join("env.sh"));
    let _ = std::fs::remove_file(dir.join("env.json"));
    result
}

/// `env.json` for `env status` (no secrets), `env.sh` (0600) for `env shell`.
fn describe(dir: &Path, env: &Environment, af: Option<&Airflow>) -> Result<()> {
    let shape = env.shape();
    let kdc = env.endpoint(Component::Kdc)?;
    let pg = env.endpoint(Component::Postgres)?;
    let pgb = env.endpoint(Component::Pgbouncer)?;
    let mut info = serde_json::json!({
        "pid": std::process::id(),
        "tier": env.tier().to_string(),
        "realm": shape.names.realm,
        "principal": shape.names.client_principal,
        "spn": shape.names.server_spn,
        "db_host": shape.names.db_host,
        "kdc": kdc.to_string(),
        "postgres": pg.to_string(),
        "pgbouncer": pgb.to_string(),
        "metadata_alias": shape.metadata_alias(),
        "result_backend_alias": shape.result_backend_alias(),
        "logs": {
            "kdc": env.log_file(Component::Kdc),
            "postgres": env.log_file(Component::Postgres),
            "pgbouncer": env.log_file(Component::Pgbouncer),
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
    let client_env = env.client_env("shell", Some(env.client_keytab()));
    let mut sh = String::from(
        "# Sourced by `cargo xtask env shell`. Holds a password: mode 0600, do not share.\n",
    );
    for (k, v) in &client_env {
        sh += &format!("export {k}='{v}'\n");
    }
    let metadata = env.metadata_target(env.client_password())?;
    sh += &format!(
        "export PGHOST={} PGPORT={} PGUSER='{}' PGDATABASE='{}' PGPASSWORD='{}'\n",
        metadata.host, metadata.port, metadata.user, metadata.database, metadata.password
    );
    // The SPN's host name, dialled at the server's address: what PgBouncer asks the KDC for.
    sh += &format!(
        "alias psql-direct=\"psql 'host={} hostaddr={} port={} dbname={} user={}'\"\n",
        shape.names.db_host,
        pg.host,
        pg.port,
        shape.names.metadata_db,
        shape.names.client_principal
    );
    if let Some(admin) = env.admin_target() {
        sh += &format!(
            "alias pgbouncer-admin=\"PGPASSWORD='{}' psql -h {} -p {} -U {} {}\"\n",
            admin.password, admin.host, admin.port, admin.user, admin.database
        );
    }
    if let Some(a) = af {
        sh += &format!(
            "export AIRFLOW_URL='{}' AIRFLOW_ADMIN_USER='{}' AIRFLOW_ADMIN_PASSWORD='{}'\n",
            a.base_url,
            a.admin_user,
            a.admin_password.expose()
        );
    }
    sh += &format!("export PS1='[krb {}] \\w\\$ '\n", shape.names.realm);
    write_private(&dir.join("env.sh"), sh.as_bytes())
}
