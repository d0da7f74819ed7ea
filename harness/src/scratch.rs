//! Directories a run needs outside its run directory: Unix socket paths are limited to 107
//! bytes, too short for run directories, so sockets live under /tmp. Each is removed when its
//! owner drops it, and also listed here, because an interrupted run exits without running Drop:
//! the runner's Ctrl-C handler calls [`remove_all`].
//!
//! Names carry the runner's process id (`/tmp/harness-<what>-<pid>-XXXXXX`), so whoever finds
//! one left behind can tell which run made it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A private directory under /tmp, removed on drop (or by [`remove_all`]).
#[derive(Debug)]
pub struct Scratch(Option<tempfile::TempDir>);

/// Creates `/tmp/harness-<what>-<pid>-XXXXXX`.
pub fn tempdir(what: &str) -> Result<Scratch> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("harness-{what}-{}-", std::process::id()))
        .tempdir_in("/tmp")
        .with_context(|| format!("could not create a {what} directory under /tmp"))?;
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(dir.path().to_path_buf());
    Ok(Scratch(Some(dir)))
}

impl Scratch {
    pub fn path(&self) -> &Path {
        self.0.as_ref().expect("present until drop").path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            LIVE.lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|p| p != dir.path());
            let _ = dir.close();
        }
    }
}

/// Removes every scratch directory still live (an interrupted run); returns how many.
pub fn remove_all() -> usize {
    let dirs = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    for d in &dirs {
        let _ = std::fs::remove_dir_all(d);
    }
    dirs.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_for_the_process_and_removed_on_drop_or_by_remove_all() {
        let a = tempdir("test").unwrap();
        let name = a.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(&format!("harness-test-{}-", std::process::id())),
            "{name}"
        );
        let a_path = a.path().to_path_buf();
        drop(a);
        assert!(!a_path.exists());
        let b = tempdir("test").unwrap();
        let b_path = b.path().to_path_buf();
        assert!(remove_all() >= 1);
        assert!(!b_path.exists());
        drop(b); // already gone: dropping must not panic
    }
}
