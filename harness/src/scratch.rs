//! Directories a run needs outside its run directory: Unix socket paths are limited to 107
//! bytes, too short for run directories, so sockets live under /tmp. Each is removed when its
//! owner drops it, and also listed here, because an interrupted run exits without running Drop:
//! the runner's Ctrl-C handler calls [`remove_all`].
//!
//! Names carry the runner's process id (`/tmp/harness-<what>-<pid>-XXXXXX`), so whoever finds
//! one left behind can tell which run made it.
//!
//! The same goes for the System V shared memory segment every PostgreSQL postmaster keeps: it
//! removes it when it shuts down, not when it is killed, so an interrupted run removes the
//! segments its own processes created ([`descendants`], [`remove_shared_memory_of`]).

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

/// The process ids below this process (from /proc), to know whose resources are whose once
/// they are killed.
pub fn descendants() -> Vec<i32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // Fields after the command name, which may hold spaces and parentheses.
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1)?.parse::<i32>().ok());
            if let Some(ppid) = ppid {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut out = vec![std::process::id() as i32];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out.remove(0);
    out
}

/// Marks for removal every System V shared memory segment created by one of `pids`; returns
/// how many.
pub fn remove_shared_memory_of(pids: &[i32]) -> usize {
    let Ok(text) = std::fs::read_to_string("/proc/sysvipc/shm") else {
        return 0;
    };
    let mut n = 0;
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(id), Some(cpid)) = (
            f.get(1).and_then(|s| s.parse::<i32>().ok()),
            f.get(4).and_then(|s| s.parse::<i32>().ok()),
        ) else {
            continue;
        };
        if pids.contains(&cpid) {
            // SAFETY: IPC_RMID takes no buffer; the segment goes once nobody is attached.
            if unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) } == 0 {
                n += 1;
            }
        }
    }
    n
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

    #[test]
    fn a_child_is_a_descendant() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let found = descendants().contains(&(child.id() as i32));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(found);
    }
}
