//! The system programs the local tier needs, where Debian puts them, and which package provides
//! each: one table, used for running them, for `doctor`, and for every "not found" error; and
//! [`run`], which runs one to completion on this machine.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::component::{Exec, ExecOutput, RunAs};

pub struct Tool {
    pub name: &'static str,
    /// Debian package that ships it.
    pub package: &'static str,
    /// Where to look, in order; `{pg}` stands for `/usr/lib/postgresql/<newest>/bin`.
    pub candidates: &'static [&'static str],
    pub needed_for: &'static str,
}

pub const TOOLS: &[Tool] = &[
    Tool {
        name: "krb5kdc",
        package: "krb5-kdc",
        candidates: &["/usr/sbin/krb5kdc"],
        needed_for: "the KDC",
    },
    Tool {
        name: "kdb5_util",
        package: "krb5-kdc",
        candidates: &["/usr/sbin/kdb5_util"],
        needed_for: "creating the realm",
    },
    Tool {
        name: "kadmin.local",
        package: "krb5-admin-server",
        candidates: &["/usr/sbin/kadmin.local"],
        needed_for: "principals and keytabs",
    },
    Tool {
        name: "kinit",
        package: "krb5-user",
        candidates: &["/usr/bin/kinit"],
        needed_for: "getting tickets",
    },
    Tool {
        name: "klist",
        package: "krb5-user",
        candidates: &["/usr/bin/klist"],
        needed_for: "listing tickets",
    },
    Tool {
        name: "initdb",
        package: "postgresql-15",
        candidates: &["{pg}/initdb"],
        needed_for: "the PostgreSQL cluster",
    },
    Tool {
        name: "postgres",
        package: "postgresql-15",
        candidates: &["{pg}/postgres"],
        needed_for: "the PostgreSQL server",
    },
    Tool {
        name: "pg_ctl",
        package: "postgresql-15",
        candidates: &["{pg}/pg_ctl"],
        needed_for: "restarting PostgreSQL (@fault)",
    },
    Tool {
        name: "libfaketime",
        package: "libfaketime",
        // The thread-safe variant: the Kerberos-capable PgBouncer runs its GSS step on a thread.
        candidates: &[
            "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
            "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
        ],
        needed_for: "skewing PgBouncer's clock (@fault)",
    },
    Tool {
        name: "psql",
        package: "postgresql-client-15",
        candidates: &["{pg}/psql", "/usr/bin/psql"],
        needed_for: "the env shell",
    },
    Tool {
        name: "openssl",
        package: "openssl",
        candidates: &["/usr/bin/openssl"],
        needed_for: "the per-run TLS certificate",
    },
    Tool {
        name: "pgbench",
        package: "postgresql-15",
        candidates: &["{pg}/pgbench"],
        needed_for: "the re-login bench (gss_relogin_tps)",
    },
    Tool {
        name: "pg_dump",
        package: "postgresql-client-15",
        candidates: &["{pg}/pg_dump", "/usr/bin/pg_dump"],
        needed_for: "caching Airflow's migrated schema",
    },
    Tool {
        name: "redis-server",
        package: "redis-server",
        candidates: &["/usr/bin/redis-server"],
        needed_for: "Airflow's Celery broker",
    },
    Tool {
        name: "chromium",
        package: "chromium",
        candidates: &["/usr/bin/chromium"],
        needed_for: "the browser check of the Airflow UI",
    },
];

fn pg_bindir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, p)| p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, p)| p)
}

fn resolve(tool: &Tool) -> Option<PathBuf> {
    tool.candidates.iter().find_map(|c| {
        let p = if let Some(rest) = c.strip_prefix("{pg}/") {
            pg_bindir()?.join(rest)
        } else {
            PathBuf::from(c)
        };
        p.exists().then_some(p)
    })
}

/// The path of a system program, or an error naming the package that provides it.
pub fn path(name: &str) -> Result<PathBuf> {
    let Some(tool) = TOOLS.iter().find(|t| t.name == name) else {
        bail!("internal: no tool named {name} in the tool table");
    };
    match resolve(tool) {
        Some(p) => Ok(p),
        None => bail!(
            "{name} not found (needed for {}): install it with `apt-get install {}`, or run `cargo xtask doctor --fix`",
            tool.needed_for,
            tool.package
        ),
    }
}

/// When the harness runs as root, PostgreSQL and PgBouncer run as Debian's `postgres` user
/// (PostgreSQL refuses root). Returns that user's uid/gid, or None when not root.
pub fn service_user() -> Result<Option<(u32, u32)>> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match nix::unistd::User::from_name("postgres")? {
        Some(u) => Ok(Some((u.uid.as_raw(), u.gid.as_raw()))),
        None => bail!(
            "running as root, but there is no `postgres` user to run PostgreSQL as: install postgresql-15 (`apt-get install postgresql-15`) or run as an ordinary user"
        ),
    }
}

/// Hands a file or directory to the service user (a no-op when not root).
pub fn give_to_service_user(path: &Path) -> Result<()> {
    if let Some((uid, gid)) = service_user()? {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(|e| anyhow::anyhow!("could not chown {} to postgres: {e}", path.display()))?;
    }
    Ok(())
}

/// Where a tool is inside the project's images (Debian bookworm, as this machine: the first
/// place the table names, with PostgreSQL 15's directory for `{pg}`).
pub fn image_path(name: &str) -> Result<PathBuf> {
    let Some(tool) = TOOLS.iter().find(|t| t.name == name) else {
        bail!("internal: no tool named {name} in the tool table");
    };
    let first = tool
        .candidates
        .first()
        .context("internal: a tool with no candidate path")?;
    Ok(PathBuf::from(first.replace("{pg}", IMAGE_PG_BIN)))
}

/// PostgreSQL's programs in the project's postgres image (`postgres/Dockerfile`).
const IMAGE_PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Runs a short-lived program on this machine to completion (in `cwd`); on failure the error
/// names the command and carries its stderr. The local substrate's `exec` and the harness's own
/// clients (kinit, pg_dump) use it.
pub async fn run(tool: &Exec, cwd: Option<&Path>) -> Result<ExecOutput> {
    let mut cmd = tokio::process::Command::new(&tool.program);
    cmd.args(&tool.args)
        .envs(tool.env.iter().map(|(k, v)| (k, v)))
        .stdin(if tool.stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    if tool.run_as == RunAs::ServiceUser {
        if let Some((uid, gid)) = service_user()? {
            cmd.uid(uid).gid(gid);
        }
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("{}: could not run {}", tool.what, tool.program.display()))?;
    if let Some(input) = &tool.stdin {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().context("the tool's stdin")?;
        stdin.write_all(input).await?;
        drop(stdin);
    }
    let out = child.wait_with_output().await?;
    let output = ExecOutput {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    if !out.status.success() {
        bail!(
            "{} failed ({}): {} {}\n{}{}",
            tool.what,
            out.status,
            tool.program.display(),
            crate::redact::redact(&tool.args.join(" ")),
            crate::redact::redact(&output.stdout),
            crate::redact::redact(&output.stderr)
        );
    }
    Ok(output)
}
