//! The run directory: every path a run creates lives under `target/e2e/<run-id>/`, and
//! `target/e2e/latest` points at the newest one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rand::RngExt;

#[derive(Debug, Clone)]
pub struct RunDir {
    pub id: String,
    pub root: PathBuf,
}

impl RunDir {
    /// Creates a fresh run directory under `base` (normally `<workspace>/target/e2e`).
    pub fn create(base: &Path) -> Result<RunDir> {
        let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
        let tag: u32 = rand::rng().random_range(0x1000..0xffff);
        let id = format!("{stamp}-{tag:04x}");
        let root = base.join(&id);
        std::fs::create_dir_all(&root)
            .with_context(|| format!("could not create run directory {}", root.display()))?;
        make_traversable(&root)?;
        let latest = base.join("latest");
        let _ = std::fs::remove_file(&latest);
        let _ = std::os::unix::fs::symlink(&id, &latest);
        Ok(RunDir { id, root })
    }

    /// Adopts an existing run directory (the e2e runner is handed one by xtask).
    pub fn open(root: &Path) -> Result<RunDir> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("could not create run directory {}", root.display()))?;
        let id = root
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        Ok(RunDir {
            id,
            root: root.to_path_buf(),
        })
    }

    /// A sub-directory (created) for one scenario or environment.
    pub fn subdir(&self, name: &str) -> Result<PathBuf> {
        let p = self.root.join(slug(name));
        std::fs::create_dir_all(&p).with_context(|| format!("could not create {}", p.display()))?;
        make_traversable(&p)?;
        Ok(p)
    }
}

/// The directory tree of a run must be traversable by the service user that runs PostgreSQL and
/// PgBouncer when the harness is root; secrets inside stay 0600.
pub fn make_traversable(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("could not set permissions on {}", p.display()))
}

/// A file-system friendly name: lower-case letters, digits and dashes.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let s = out.trim_matches('-').to_string();
    if s.len() > 60 {
        s[..60].trim_end_matches('-').to_string()
    } else {
        s
    }
}

/// The workspace root, found from this crate's manifest directory (works for tests and bins).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_path_safe() {
        assert_eq!(
            slug("A principal gets a ticket / keytab!"),
            "a-principal-gets-a-ticket-keytab"
        );
    }

    #[test]
    fn run_dirs_are_distinct_and_linked() {
        let base = tempfile::tempdir().unwrap();
        let a = RunDir::create(base.path()).unwrap();
        let b = RunDir::create(base.path()).unwrap();
        assert_ne!(a.root, b.root);
        let latest = std::fs::read_link(base.path().join("latest")).unwrap();
        assert_eq!(latest, PathBuf::from(&b.id));
    }
}
