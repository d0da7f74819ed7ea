//! Pooled clients under load: N password clients through PgBouncer, each running `SELECT 1`
//! back to back (what `pgbench -S -c N` does), every completion time-stamped, so a stall of
//! PgBouncer's event loop shows as the longest time with no transaction completing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::probe::sql;

#[derive(Default)]
struct Shared {
    completions: Mutex<Vec<Instant>>,
    errors: Mutex<Vec<String>>,
    stop: AtomicBool,
}

pub struct Load {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub clients: usize,
}

impl Load {
    /// Connects every client first (each one's first query logs PgBouncer in to the server), so
    /// the pool is full before any fault starts; fails naming the first client that could not.
    pub async fn start(target: &sql::Target, clients: usize) -> Result<Load> {
        let shared = Arc::new(Shared::default());
        let mut conns = Vec::new();
        for i in 0..clients {
            let c = match sql::connect(target, Duration::from_secs(15)).await {
                Ok(c) => c,
                Err(e) => {
                    bail!("load client {i} of {clients} could not connect through PgBouncer: {e}")
                }
            };
            if let Err(e) = c.simple_query("SELECT 1").await {
                bail!(
                    "load client {i} of {clients}: first query failed: {}",
                    sql::error_text(&e)
                );
            }
            conns.push(c);
        }
        let tasks = conns
            .into_iter()
            .map(|c| {
                let shared = shared.clone();
                tokio::spawn(async move {
                    while !shared.stop.load(Ordering::Relaxed) {
                        match c.simple_query("SELECT 1").await {
                            Ok(_) => shared.completions.lock().unwrap().push(Instant::now()),
                            Err(e) => {
                                shared.errors.lock().unwrap().push(sql::error_text(&e));
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        Ok(Load {
            shared,
            tasks,
            clients,
        })
    }

    pub fn completed(&self) -> usize {
        self.shared.completions.lock().unwrap().len()
    }

    /// The errors pooled clients saw (each client stops at its first one).
    pub fn errors(&self) -> Vec<String> {
        self.shared.errors.lock().unwrap().clone()
    }

    /// The longest time within `[from, to]` in which no client completed a query.
    pub fn max_gap(&self, from: Instant, to: Instant) -> Gap {
        max_gap(&self.shared.completions.lock().unwrap(), from, to)
    }

    /// Stops the clients after their current query.
    pub async fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for mut t in self.tasks.drain(..) {
            // A client stuck in a query PgBouncer never answers is not waited for.
            if tokio::time::timeout(Duration::from_secs(5), &mut t)
                .await
                .is_err()
            {
                t.abort();
            }
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The longest stretch without a completion, and how many completions the window held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gap {
    pub longest: Duration,
    /// When the longest stretch began, relative to the window's start.
    pub at: Duration,
    pub completions: usize,
}

/// The window's edges count as boundaries: a window with no completion at all is one gap.
pub fn max_gap(times: &[Instant], from: Instant, to: Instant) -> Gap {
    let mut inside: Vec<Instant> = times
        .iter()
        .copied()
        .filter(|t| *t >= from && *t <= to)
        .collect();
    inside.sort();
    let completions = inside.len();
    let mut prev = from;
    let mut best = Gap {
        longest: Duration::ZERO,
        at: Duration::ZERO,
        completions,
    };
    for t in inside.into_iter().chain(std::iter::once(to)) {
        let d = t.saturating_duration_since(prev);
        if d > best.longest {
            best.longest = d;
            best.at = prev.saturating_duration_since(from);
        }
        prev = t;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_stretch_counts_the_window_edges() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let times = [ms(5), ms(10), ms(300), ms(310), ms(2000)];
        let g = max_gap(&times, ms(0), ms(400));
        assert_eq!(g.longest, Duration::from_millis(290));
        assert_eq!(g.at, Duration::from_millis(10));
        assert_eq!(g.completions, 4);
        // Nothing completed: the whole window is the gap.
        let g = max_gap(&times, ms(400), ms(1400));
        assert_eq!((g.longest, g.completions), (Duration::from_secs(1), 0));
        // The tail up to the window's end counts.
        let g = max_gap(&times, ms(0), ms(1000));
        assert_eq!(g.longest, Duration::from_millis(690));
    }
}
