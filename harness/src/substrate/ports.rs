//! Free loopback ports for the local substrate, picked at run time so two runs side by side
//! never collide.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;

use anyhow::{Context, Result};

/// Ports this process already handed out. The kernel may give the same ephemeral port to two
/// quick `bind(0)` calls once the first listener is closed; remembering them avoids handing the
/// same port to two components of concurrent scenarios.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port on 127.0.0.1 that nothing listens on right now and that this process has not handed out.
pub fn free_port() -> Result<u16> {
    for _ in 0..64 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .context("could not bind a loopback socket to find a free port")?;
        let port = listener.local_addr()?.port();
        let mut guard = HANDED_OUT.lock().expect("port registry poisoned");
        if guard.get_or_insert_with(HashSet::new).insert(port) {
            return Ok(port);
        }
    }
    anyhow::bail!("could not find a free loopback port after 64 attempts")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_distinct() {
        let a: HashSet<u16> = (0..50).map(|_| free_port().unwrap()).collect();
        assert_eq!(a.len(), 50);
    }
}
