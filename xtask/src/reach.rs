//! When xtask runs as root, the harness runs PostgreSQL and PgBouncer as Debian's `postgres` user
//! (PostgreSQL refuses root), and their data, keytabs and logs live under this checkout's
//! `target/`. That user must be able to enter every directory above it. A checkout under `/root`
//! (mode 0700) or a `mktemp -d` directory is not enterable, and initdb would fail much later with
//! a bare "Permission denied"; this check names the directory and the fix before anything runs.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// The `postgres` user's uid and gid from /etc/passwd, when the user exists.
fn service_user() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == "postgres")
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

/// The directories at or above `dir` that a user with `uid`/`gid` cannot enter (supplementary
/// groups aside), with their modes.
pub fn not_enterable(dir: &Path, uid: u32, gid: u32) -> Vec<(PathBuf, u32)> {
    dir.ancestors()
        .filter_map(|d| {
            let md = std::fs::metadata(d).ok()?;
            let mode = md.mode() & 0o7777;
            let bit = if md.uid() == uid {
                0o100
            } else if md.gid() == gid {
                0o010
            } else {
                0o001
            };
            (mode & bit == 0).then(|| (d.to_path_buf(), mode))
        })
        .collect()
}

pub fn check(checkout: &Path) -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let Some((uid, gid)) = service_user() else {
        return Ok(()); // the package check names postgresql-15, which creates the user
    };
    let blocked = not_enterable(checkout, uid, gid);
    if blocked.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = blocked
        .iter()
        .map(|(d, m)| format!("{} (mode {m:04o})", d.display()))
        .collect();
    let chmod: Vec<String> = blocked
        .iter()
        .map(|(d, _)| d.display().to_string())
        .collect();
    bail!(
        "running as root, the harness runs PostgreSQL and PgBouncer as the `postgres` user, which cannot enter {}, so it cannot reach {}/target\n  \
         fix: clone the project where every user can enter (for example under /srv or /opt), or let users pass through without listing: chmod o+x {}",
        list.join(", "),
        checkout.display(),
        chmod.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_closed_directory_above_the_checkout_is_named() {
        let top = tempfile::tempdir().unwrap();
        let checkout = top.path().join("closed/project");
        std::fs::create_dir_all(&checkout).unwrap();
        let closed = top.path().join("closed");
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // A uid and gid that own nothing here, like `postgres` for a root-owned checkout.
        let blocked = not_enterable(&checkout, 4_000_001, 4_000_001);
        let names: Vec<&Path> = blocked.iter().map(|(d, _)| d.as_path()).collect();
        assert!(names.contains(&closed.as_path()), "{blocked:?}");
        assert!(!names.contains(&checkout.as_path()), "{blocked:?}");
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o711)).unwrap();
        let blocked = not_enterable(&checkout, 4_000_001, 4_000_001);
        assert!(blocked.iter().all(|(d, _)| d != &closed), "{blocked:?}");
    }
}
