//! The migrated metadata schema, made once per Airflow version and lock: `airflow db migrate`
//! through PgBouncer takes 2-4 s of CPU, restoring its `pg_dump` takes a fraction of that. Every
//! scenario gets a fresh PostgreSQL cluster, so the cache is a dump file, not a template database.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::venv::{cache_dir, lock_key, path_str};
use super::Version;
use crate::component::Exec;
use crate::stack::Stack;

/// pg_dump and psql are the harness's own clients of the server (beside it, as its superuser).
async fn run(tool: Exec) -> Result<()> {
    crate::tools::run(&tool, None).await.map(drop)
}

/// `target/airflow/template-<version>-<lock hash>-r<recipe>-<tier>.sql`: a changed lock means a new schema.
/// Bumped when what goes into a template changes (2: Airflow 2's FAB permissions synced), so
/// older dumps in target/ are not restored.
const RECIPE: u32 = 2;

/// Per tier too: each tier's PostgreSQL is another build (this machine's, the image's), and a
/// dump of one need not restore into the other (the image's 15.20 dumps column options that
/// this machine's 15.18 refuses).
pub fn path(version: Version, tier: crate::substrate::Tier) -> Result<PathBuf> {
    Ok(cache_dir().join(format!(
        "template-{}-{}-r{RECIPE}-{tier}.sql",
        version.pin(),
        lock_key(version)?
    )))
}

/// Dumps the freshly migrated metadata database (schema and Airflow's seed rows, no owners or
/// grants: the role differs between configurations). Written to a staging file and renamed, so a
/// concurrent run reads a whole dump or none.
pub async fn save(stack: &Stack, dest: &Path) -> Result<()> {
    let dir = dest.parent().context("bad template path")?;
    std::fs::create_dir_all(dir)?;
    let staging = tempfile::Builder::new()
        .prefix(".template-")
        .suffix(".sql")
        .tempfile_in(dir)?;
    run(Exec::new(
        "dumping the migrated Airflow schema",
        crate::tools::path("pg_dump")?,
    )
    .args(stack.pg.superuser_args()?)
    .args([
        "--no-owner",
        "--no-privileges",
        "-f",
        path_str(staging.path())?,
        &stack.shape.names.metadata_db,
    ]))
    .await?;
    staging
        .persist(dest)
        .with_context(|| format!("could not store the template at {}", dest.display()))?;
    Ok(())
}

/// Loads the dump into this stack's metadata database as the Kerberos role (so the role owns the
/// tables, as after a migration through PgBouncer), in one transaction.
pub async fn restore(stack: &Stack, dump: &Path) -> Result<()> {
    let set_role = format!(
        "SET ROLE \"{}\"",
        stack.shape.names.client_principal.replace('"', "\"\"")
    );
    run(Exec::new(
        "restoring the migrated Airflow schema",
        crate::tools::path("psql")?,
    )
    .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-1"])
    .args(stack.pg.superuser_args()?)
    .args([
        "-d",
        &stack.shape.names.metadata_db,
        "-c",
        &set_role,
        "-f",
        path_str(dump)?,
    ]))
    .await
    .with_context(|| {
        format!(
            "the cached schema {} may be damaged: delete it to migrate afresh",
            dump.display()
        )
    })?;
    Ok(())
}
