//! What an interrupted runner leaves that no registry of its own covers: processes below it
//! that are not components (a tool such as `kadmin.local` caught mid-run: it shares the
//! runner's process group, gets the same SIGINT, and may hang in its handler instead of
//! exiting), and the System V shared memory segment every PostgreSQL postmaster keeps, which it
//! removes when it shuts down but not when it is killed.

/// The process ids below this process (from /proc), to know whose resources are whose once
/// they are killed.
pub fn descendants() -> Vec<i32> {
    descendants_of(std::process::id() as i32)
}

/// The process ids below `root`.
pub fn descendants_of(root: i32) -> Vec<i32> {
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
    let mut out = vec![root];
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

/// SIGKILLs every process still below this one, until none is left (a process may fork while
/// its siblings die); returns how many were killed.
pub fn kill_descendants() -> usize {
    kill_below(std::process::id() as i32)
}

/// SIGKILLs every process below `root`.
pub fn kill_below(root: i32) -> usize {
    let mut n = 0;
    for _ in 0..5 {
        let left = descendants_of(root);
        if left.is_empty() {
            break;
        }
        for pid in &left {
            // SAFETY: kill takes plain integers.
            if unsafe { libc::kill(*pid, libc::SIGKILL) } == 0 {
                n += 1;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn everything_below_a_process_is_killed() {
        let mut sh = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30 & wait"])
            .spawn()
            .unwrap();
        let root = sh.id() as i32;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while descendants_of(root).len() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(kill_below(root), 2);
        assert!(descendants_of(root).is_empty());
        // With its children gone, the shell's `wait` returns.
        sh.wait().unwrap();
    }
}
