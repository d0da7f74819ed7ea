//! `cargo xtask hygiene`: what a run leaves behind, proven on real runs. Three checks:
//!
//! - **interrupted**: a run is sent SIGINT (to its process group, as Ctrl-C does) at points this
//!   command chooses from a measured run: times spread over the runner's life, and the moments
//!   its k-th output lines appear. Afterwards no process of the run is left (this process is
//!   their child subreaper, so nothing can be reparented out of sight), no socket the run was
//!   seen listening on, no `/tmp/harness-*` directory it made, no System V shared memory its
//!   processes created, no docker container or network labelled for it; it exited non-zero and
//!   said why.
//! - **concurrent**: two runs at once both pass, in distinct run directories, on disjoint ports.
//! - **canary**: every run has `E2E_CANARY` set, so every generated secret contains it. The
//!   canary, the key bytes of every keytab the run wrote (raw, hex, base64), every SCRAM
//!   verifier and every private key found in the artifacts are searched for in the run's
//!   stdout and stderr and in every file it left: only the files that must hold a secret may,
//!   and those must be mode 0600. The measured run keeps its secrets (`--keep`) so the keytabs
//!   are there to read; the others must have deleted theirs.
//!
//! Each run is a narrow `cargo xtask e2e` (a few Kerberos and PgBouncer scenarios), so the whole
//! check takes about a minute after the build.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use clap::Args;
use serde_json::{json, Value};

use crate::cargo;

/// The scenarios each run executes: a direct GSS login with a planted password, the PgBouncer
/// path (users.txt, the injected keytab) and a stale keytab (a second key export).
const SCENARIOS: &str = "^(A password login is refused even when the role has a password|A client reaches PostgreSQL through PgBouncer as the Kerberos principal|The server keytab is stale after the service key was rotated)$";

/// Narrows the runs to the Kerberos stack (and keeps xtask from building the API server).
const TAGS: &str = "@kdc and not @airflow";

/// What the runner prints when it starts (xtask's line): time zero for the interrupt points.
const RUNNER_STARTED: &str = "xtask: running the scenarios";

/// How long an interrupted run may take to stop everything and exit.
const EXIT_LIMIT: Duration = Duration::from_secs(30);

pub const DEFAULT_POINTS: usize = 8;

#[derive(Args, Debug)]
pub struct HygieneArgs {
    /// How many interrupted runs (half at times spread over a measured run, half at its
    /// output lines).
    #[arg(long, default_value_t = DEFAULT_POINTS)]
    pub points: usize,
    /// Never install anything; fail naming what is missing.
    #[arg(long)]
    pub offline: bool,
}

/// One finding: what was left or leaked, and where.
#[derive(Debug, Clone)]
struct Leak {
    check: &'static str,
    what: String,
}

/// What the sampler saw of each run while it ran.
#[derive(Default)]
struct Seen {
    /// `(pid, start time)` → label of the run it belonged to.
    procs: HashMap<(i32, u64), String>,
    /// Socket inode → (label, `tcp:port` / `udp:port`).
    sockets: HashMap<u64, (String, String)>,
}

struct Sampler {
    roots: Mutex<Vec<(i32, String)>>,
    seen: Mutex<Seen>,
    stop: AtomicBool,
}

impl Sampler {
    fn start() -> Arc<Sampler> {
        let s = Arc::new(Sampler {
            roots: Mutex::new(Vec::new()),
            seen: Mutex::new(Seen::default()),
            stop: AtomicBool::new(false),
        });
        let t = s.clone();
        std::thread::spawn(move || {
            while !t.stop.load(Ordering::Relaxed) {
                t.tick();
                std::thread::sleep(Duration::from_millis(15));
            }
        });
        s
    }

    fn watch(&self, pid: u32, label: &str) {
        self.roots
            .lock()
            .unwrap()
            .push((pid as i32, label.to_string()));
    }

    fn unwatch(&self, pid: u32) {
        self.roots.lock().unwrap().retain(|(p, _)| *p != pid as i32);
    }

    fn tick(&self) {
        let roots = self.roots.lock().unwrap().clone();
        if roots.is_empty() {
            return;
        }
        let procs = processes();
        let listening = listening_sockets();
        let mut seen = self.seen.lock().unwrap();
        for (root, label) in roots {
            for p in descendants(&procs, root, true) {
                seen.procs.insert((p.pid, p.start), label.clone());
                for inode in socket_inodes(p.pid) {
                    if let Some(port) = listening.get(&inode) {
                        seen.sockets.insert(inode, (label.clone(), port.clone()));
                    }
                }
            }
        }
    }

    fn pids_of(&self, label: &str) -> HashSet<i32> {
        let seen = self.seen.lock().unwrap();
        seen.procs
            .iter()
            .filter(|(_, l)| *l == label)
            .map(|((pid, _), _)| *pid)
            .collect()
    }

    fn ports_of(&self, label: &str) -> BTreeSet<String> {
        let seen = self.seen.lock().unwrap();
        seen.sockets
            .values()
            .filter(|(l, _)| l == label)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

#[derive(Debug, Clone)]
struct Proc {
    pid: i32,
    ppid: i32,
    start: u64,
    state: char,
    cmd: String,
}

/// Every process on the machine, from /proc/<pid>/stat.
fn processes() -> Vec<Proc> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name may hold spaces and parentheses: fields start after the last ')'.
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let comm = stat[stat.find('(').map_or(0, |i| i + 1)..close].to_string();
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        if f.len() < 20 {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .replace('\0', " ")
                    .trim()
                    .to_string()
            })
            .ok()
            .filter(|c| !c.is_empty())
            .unwrap_or(comm);
        out.push(Proc {
            pid,
            ppid: f[1].parse().unwrap_or(0),
            start: f[19].parse().unwrap_or(0),
            state: f[0].chars().next().unwrap_or('?'),
            cmd,
        });
    }
    out
}

/// `root`'s descendants (and `root` itself when `inclusive`).
fn descendants(procs: &[Proc], root: i32, inclusive: bool) -> Vec<Proc> {
    let mut children: HashMap<i32, Vec<&Proc>> = HashMap::new();
    for p in procs {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out = Vec::new();
    if inclusive {
        out.extend(procs.iter().find(|p| p.pid == root).cloned());
    }
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        for c in children.get(&pid).into_iter().flatten() {
            out.push((*c).clone());
            stack.push(c.pid);
        }
    }
    out
}

fn socket_inodes(pid: i32) -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let link = std::fs::read_link(e.path()).ok()?;
            let s = link.to_str()?;
            s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// Listening TCP sockets and bound, unconnected UDP sockets: inode → `tcp:port` / `udp:port`.
fn listening_sockets() -> HashMap<u64, String> {
    let mut out = HashMap::new();
    for (file, proto, state) in [
        ("/proc/net/tcp", "tcp", "0A"),
        ("/proc/net/tcp6", "tcp", "0A"),
        ("/proc/net/udp", "udp", "07"),
        ("/proc/net/udp6", "udp", "07"),
    ] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != state {
                continue;
            }
            let Some(port) = f[1]
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
            else {
                continue;
            };
            if let Ok(inode) = f[9].parse::<u64>() {
                if inode != 0 {
                    out.insert(inode, format!("{proto}:{port}"));
                }
            }
        }
    }
    out
}

/// Process groups of the runs under way, for [`on_signal`].
static LIVE: [std::sync::atomic::AtomicI32; 4] =
    [const { std::sync::atomic::AtomicI32::new(0) }; 4];

fn live_group(pgid: i32, on: bool) {
    for slot in &LIVE {
        let (from, to) = if on { (0, pgid) } else { (pgid, 0) };
        if slot
            .compare_exchange(from, to, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return;
        }
    }
}

/// Ctrl-C or a kill of this command: the runs are in process groups of their own, so they
/// would not hear it; pass it on (each stops what it started) and leave.
extern "C" fn on_signal(_: libc::c_int) {
    for slot in &LIVE {
        let g = slot.load(Ordering::SeqCst);
        if g > 0 {
            // SAFETY: killpg and _exit are async-signal-safe.
            unsafe { libc::killpg(g, libc::SIGINT) };
        }
    }
    unsafe { libc::_exit(130) };
}

/// Reaps every exited child of this process (orphans of a run are reparented here).
fn reap() {
    loop {
        // SAFETY: waitpid with WNOHANG on any child; no memory is shared.
        let r = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
        if r <= 0 {
            break;
        }
    }
}

/// A run of `cargo xtask e2e` being watched: its output with the time each line arrived.
struct Launch {
    label: String,
    child: Child,
    started: Instant,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    line_tx: Arc<Mutex<Option<mpsc::Sender<usize>>>>,
    stdout: PathBuf,
    stderr: PathBuf,
    readers: Vec<std::thread::JoinHandle<()>>,
}

struct Finished {
    label: String,
    exit: i32,
    seconds: f64,
    stdout: PathBuf,
    stderr: PathBuf,
    lines: Vec<(Instant, String)>,
    started: Instant,
}

impl Finished {
    fn runner_started(&self) -> Option<Instant> {
        self.lines
            .iter()
            .find(|(_, l)| l.starts_with(RUNNER_STARTED))
            .map(|(t, _)| *t)
    }

    fn artifacts(&self) -> Option<PathBuf> {
        self.lines
            .iter()
            .find_map(|(_, l)| l.strip_prefix("artifacts: "))
            .map(|p| PathBuf::from(p.trim()))
    }

    fn text(&self) -> String {
        self.lines
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

struct Ctx {
    exe: PathBuf,
    runner: PathBuf,
    dir: PathBuf,
    canary: String,
    offline: bool,
    sampler: Arc<Sampler>,
    /// Leftover processes already reported (by an earlier run's check), `(pid, start time)`.
    reported: Mutex<HashSet<(i32, u64)>>,
}

impl Ctx {
    fn launch(&self, label: &str, run_dir: Option<&Path>, extra: &[&str]) -> Result<Launch> {
        let mut cmd = Command::new(&self.exe);
        cmd.arg("e2e")
            .arg("--runner")
            .arg(&self.runner)
            .args(["--tags", TAGS, "--name", SCENARIOS])
            .args(extra);
        if let Some(d) = run_dir {
            cmd.arg("--run-dir").arg(d);
        }
        if self.offline {
            cmd.arg("--offline");
        }
        cmd.env("E2E_CANARY", &self.canary)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so SIGINT reaches the run the way Ctrl-C in a terminal
            // does (every process in the foreground group) and never this process.
            .process_group(0);
        let started = Instant::now();
        let mut child = cmd.spawn().context("starting `cargo xtask e2e`")?;
        self.sampler.watch(child.id(), label);
        live_group(child.id() as i32, true);
        let lines = Arc::new(Mutex::new(Vec::new()));
        let line_tx: Arc<Mutex<Option<mpsc::Sender<usize>>>> = Arc::new(Mutex::new(None));
        let stdout = self.dir.join(format!("{label}.stdout"));
        let stderr = self.dir.join(format!("{label}.stderr"));
        let mut readers = Vec::new();
        let pipes: [(Box<dyn std::io::Read + Send>, &PathBuf); 2] = [
            (Box::new(child.stdout.take().expect("piped")), &stdout),
            (Box::new(child.stderr.take().expect("piped")), &stderr),
        ];
        for (pipe, file) in pipes {
            let mut out = std::fs::File::create(file)?;
            let lines = lines.clone();
            let tx = line_tx.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let _ = writeln!(out, "{line}");
                    let n = {
                        let mut l = lines.lock().unwrap();
                        l.push((Instant::now(), line));
                        l.len()
                    };
                    if let Some(tx) = tx.lock().unwrap().as_ref() {
                        let _ = tx.send(n);
                    }
                }
            }));
        }
        Ok(Launch {
            label: label.to_string(),
            child,
            started,
            lines,
            line_tx,
            stdout,
            stderr,
            readers,
        })
    }

    fn finish(&self, mut l: Launch) -> Result<Finished> {
        let status = l.child.wait().context("waiting for `cargo xtask e2e`")?;
        let exited = Instant::now();
        // A process the run left behind may still hold its stdout: read what is there, and
        // let the leftovers check name the process rather than wait for it.
        for r in l.readers.drain(..) {
            while !r.is_finished() && exited.elapsed() < Duration::from_secs(2) {
                std::thread::sleep(Duration::from_millis(10));
            }
            if r.is_finished() {
                let _ = r.join();
            }
        }
        self.sampler.unwatch(l.child.id());
        live_group(l.child.id() as i32, false);
        let lines = l.lines.lock().unwrap().clone();
        Ok(Finished {
            label: l.label,
            exit: status.code().unwrap_or(-1),
            seconds: exited.duration_since(l.started).as_secs_f64(),
            stdout: l.stdout,
            stderr: l.stderr,
            lines,
            started: l.started,
        })
    }
}

/// Where an interrupted run is stopped.
#[derive(Debug, Clone)]
enum Point {
    /// This long after the runner started.
    After(Duration),
    /// When the run's n-th output line (stdout and stderr together) appears.
    Line(usize),
}

impl Point {
    fn describe(&self) -> String {
        match self {
            Point::After(d) => format!("{:.2} s after the runner started", d.as_secs_f64()),
            Point::Line(n) => format!("at output line {n}"),
        }
    }
}

/// `n` points from a measured run: at the output lines that opened a burst of output (the
/// runner prints a feature's lines together once its scenarios are done), spread over them, and
/// the rest at times spread over the runner's life, each shifted within its slot by a
/// per-invocation offset so successive runs probe different moments.
fn choose_points(n: usize, runner_life: Duration, bursts: &[usize], seed: u64) -> Vec<Point> {
    let n_line = (n / 2).min(bursts.len());
    let n_time = n - n_line;
    let mut points = Vec::new();
    for i in 0..n_time {
        let jitter = ((seed >> (i % 16 * 4)) & 0xf) as f64 / 16.0;
        let frac = (i as f64 + 0.1 + 0.8 * jitter) / n_time as f64;
        points.push(Point::After(runner_life.mul_f64(frac.min(0.95))));
    }
    for i in 0..n_line {
        points.push(Point::Line(bursts[i * bursts.len() / n_line]));
    }
    points
}

/// The 1-based numbers of the lines after `from` that start a burst (more than 50 ms after the
/// line before), up to the last burst, which is the run's end.
fn bursts(lines: &[(Instant, String)], from: Instant) -> Vec<usize> {
    let mut out = Vec::new();
    for i in 1..lines.len() {
        if lines[i].0 >= from
            && lines[i].0.duration_since(lines[i - 1].0) > Duration::from_millis(50)
        {
            out.push(i + 1);
        }
    }
    out.pop();
    out
}

pub fn run(a: &HygieneArgs) -> Result<i32> {
    let t0 = Instant::now();
    // Orphans of a run (a component whose parent died) are reparented to this process instead
    // of init, so none can leave unseen.
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        bail!("could not become the child subreaper of the runs (prctl)");
    }
    // SAFETY: the handler only reads atomics and calls async-signal-safe functions.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    crate::deps::ensure(
        &[
            crate::deps::Need::Build,
            crate::deps::Need::PgbouncerBuild,
            crate::deps::Need::Run,
        ],
        a.offline,
    )?;
    let runner = cargo::test_binary(
        "building the harness and its scenario runner",
        "harness",
        "e2e",
    )?;
    let stamp = crate::cargo::stamp();
    let dir = cargo::root().join("target/hygiene").join(&stamp);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let seed = seed();
    let ctx = Ctx {
        exe: crate::cargo::xtask_exe().context("locating the xtask binary")?,
        runner,
        dir: dir.clone(),
        canary: format!("HygCanary{:012x}", seed & 0xffff_ffff_ffff),
        offline: a.offline,
        sampler: Sampler::start(),
        reported: Mutex::new(HashSet::new()),
    };
    let mut leaks: Vec<Leak> = Vec::new();
    let mut report_runs: Vec<Value> = Vec::new();

    // 1. A measured run with its secrets kept: the baseline for the interrupt points, and the
    // keytabs whose key bytes become needles for every run.
    eprintln!("hygiene: measured run (secrets kept, canary planted) ...");
    let run_dir = dir.join("runs").join("measured");
    let l = ctx.launch("measured", Some(&run_dir), &["--keep"])?;
    let mut m = ctx.finish(l)?;
    // A first run builds PgBouncer (and more) once: its timing says nothing about later runs.
    if m.exit == 0 && m.lines.iter().any(|(_, l)| l.contains(": building")) {
        eprintln!("hygiene: the measured run built something first; measuring again");
        let _ = std::fs::remove_dir_all(&run_dir);
        let l = ctx.launch("measured", Some(&run_dir), &["--keep"])?;
        m = ctx.finish(l)?;
    }
    let mut run_leaks = Vec::new();
    if m.exit != 0 {
        run_leaks.push(Leak {
            check: "run",
            what: format!(
                "the measured run failed (exit {}); see {}",
                m.exit,
                m.stderr.display()
            ),
        });
    }
    run_leaks.extend(leftovers(&ctx, "measured", &run_dir));
    let needles = needles(&ctx.canary, &run_dir);
    run_leaks.extend(secrets(&m, &run_dir, &needles, true));
    let started = m
        .runner_started()
        .context("the measured run never started the runner")?;
    let runner_life = m.started + Duration::from_secs_f64(m.seconds) - started;
    let bursts = bursts(&m.lines, started);
    print_run(&m.label, "ran to the end", &m, &run_leaks);
    report_runs.push(run_json(&m, "measured", None, &run_leaks));
    leaks.extend(run_leaks);
    eprintln!(
        "hygiene: needles: the canary, {} keytab key(s), {} SCRAM verifier(s), {} private key(s)",
        needles.iter().filter(|n| n.kind == "keytab key").count() / 3,
        needles
            .iter()
            .filter(|n| n.kind == "SCRAM verifier")
            .count(),
        needles.iter().filter(|n| n.kind == "private key").count(),
    );

    // 2. Interrupted runs, at points chosen from the measured one.
    let points = choose_points(a.points, runner_life, &bursts, seed);
    eprintln!(
        "hygiene: {} interrupt points over the runner's {:.1} s and the {} bursts of its output before the end (lines {bursts:?}): {}",
        points.len(),
        runner_life.as_secs_f64(),
        bursts.len(),
        points.iter().map(Point::describe).collect::<Vec<_>>().join("; ")
    );
    for (i, p) in points.iter().enumerate() {
        let label = format!("interrupt-{}", i + 1);
        let run_dir = dir.join("runs").join(&label);
        let l = ctx.launch(&label, Some(&run_dir), &[])?;
        let (tx, rx) = mpsc::channel();
        *l.line_tx.lock().unwrap() = Some(tx);
        let pgid = l.child.id() as i32;
        let mut sent = None;
        let mut l = l;
        loop {
            if l.child.try_wait()?.is_some() {
                break;
            }
            let fire = match p {
                Point::Line(k) => l.lines.lock().unwrap().len() >= *k,
                Point::After(d) => {
                    let s = l
                        .lines
                        .lock()
                        .unwrap()
                        .iter()
                        .find(|(_, x)| x.starts_with(RUNNER_STARTED))
                        .map(|(t, _)| *t);
                    s.is_some_and(|s| s.elapsed() >= *d)
                }
            };
            if fire {
                // SAFETY: signalling the run's own process group.
                unsafe { libc::killpg(pgid, libc::SIGINT) };
                sent = Some(Instant::now());
                break;
            }
            let _ = rx.recv_timeout(Duration::from_millis(5));
        }
        let mut run_leaks = Vec::new();
        if let Some(at) = sent {
            while l.child.try_wait()?.is_none() {
                if at.elapsed() > EXIT_LIMIT {
                    // SAFETY: as above.
                    unsafe { libc::killpg(pgid, libc::SIGKILL) };
                    run_leaks.push(Leak {
                        check: "exit",
                        what: format!("did not exit within {EXIT_LIMIT:?} of SIGINT"),
                    });
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        *l.line_tx.lock().unwrap() = None;
        let f = ctx.finish(l)?;
        let outcome = match sent {
            Some(_) => {
                let said = f.lines.iter().any(|(_, x)| {
                    x.contains("e2e: interrupted") || x.contains("stopped by signal")
                });
                // The signal may land while a finished run is printing its summary; a run
                // that goes on for longer than that ignored it.
                let at = sent.expect("sent");
                let ended = f
                    .lines
                    .iter()
                    .find(|(_, x)| x.starts_with("e2e: ") && x.contains(" passed, "))
                    .map(|(t, _)| *t);
                let raced =
                    f.exit == 0 && ended.is_some_and(|e| e <= at + Duration::from_millis(500));
                if f.exit == 0 && !raced {
                    run_leaks.push(Leak {
                        check: "exit",
                        what: "exited 0 after SIGINT: the run went on as if not interrupted".into(),
                    });
                } else if f.exit != 0 && !said {
                    run_leaks.push(Leak {
                        check: "exit",
                        what: format!(
                            "exited {} after SIGINT without saying it was interrupted",
                            f.exit
                        ),
                    });
                }
                let before = f
                    .lines
                    .iter()
                    .rfind(|(t, _)| *t <= at)
                    .map(|(_, x)| format!(" after `{}`", short(x.trim())))
                    .unwrap_or_default();
                let exited = f.started + Duration::from_secs_f64(f.seconds);
                format!(
                    "SIGINT {}{before}, exit {} {:.1} s later{}",
                    p.describe(),
                    f.exit,
                    exited.saturating_duration_since(at).as_secs_f64(),
                    if raced {
                        " (the run had just finished)"
                    } else {
                        ""
                    }
                )
            }
            None => format!(
                "finished before the point ({}), exit {}",
                p.describe(),
                f.exit
            ),
        };
        run_leaks.extend(leftovers(&ctx, &label, &run_dir));
        run_leaks.extend(secrets(&f, &run_dir, &needles, false));
        print_run(&label, &outcome, &f, &run_leaks);
        report_runs.push(run_json(&f, "interrupted", Some(p.describe()), &run_leaks));
        leaks.extend(run_leaks);
    }

    // 3. Two runs at once, each making its own run directory as a user's run does.
    eprintln!("hygiene: two runs at once ...");
    // On the local tier, where the runs' own processes hold the ports (on docker the engine
    // publishes them; the interrupted runs cover the docker tier's containers and networks).
    let a1 = ctx.launch("concurrent-a", None, &["--tier", "local"])?;
    let b1 = ctx.launch("concurrent-b", None, &["--tier", "local"])?;
    let fa = ctx.finish(a1)?;
    let fb = ctx.finish(b1)?;
    let mut pair_leaks = Vec::new();
    let dirs: Vec<Option<PathBuf>> = [&fa, &fb].iter().map(|f| f.artifacts()).collect();
    for (f, d) in [&fa, &fb].iter().zip(&dirs) {
        let mut run_leaks = Vec::new();
        if f.exit != 0 {
            run_leaks.push(Leak {
                check: "concurrent",
                what: format!(
                    "failed beside another run (exit {}); see {}",
                    f.exit,
                    f.stdout.display()
                ),
            });
        }
        match d {
            Some(d) => {
                run_leaks.extend(secrets(f, d, &needles, false));
                run_leaks.extend(leftovers(&ctx, &f.label, d));
            }
            None => run_leaks.push(Leak {
                check: "concurrent",
                what: "printed no `artifacts:` line".into(),
            }),
        }
        print_run(&f.label, &format!("exit {}", f.exit), f, &run_leaks);
        report_runs.push(run_json(f, "concurrent", None, &run_leaks));
        pair_leaks.extend(run_leaks);
    }
    let per_run = pair_leaks.len();
    if let (Some(x), Some(y)) = (&dirs[0], &dirs[1]) {
        if x == y {
            pair_leaks.push(Leak {
                check: "concurrent",
                what: format!("both runs wrote into {}", x.display()),
            });
        }
    }
    let (pa, pb) = (
        ctx.sampler.ports_of("concurrent-a"),
        ctx.sampler.ports_of("concurrent-b"),
    );
    let shared: Vec<&String> = pa.intersection(&pb).collect();
    if pa.is_empty() || pb.is_empty() {
        pair_leaks.push(Leak {
            check: "concurrent",
            what: format!(
                "no listening port seen for one run (a: {}, b: {})",
                pa.len(),
                pb.len()
            ),
        });
    }
    if !shared.is_empty() {
        pair_leaks.push(Leak {
            check: "concurrent",
            what: format!("both runs listened on {shared:?}"),
        });
    }
    eprintln!(
        "hygiene: concurrent: run directories {} and {}; {} and {} ports, {} shared",
        dirs[0]
            .as_deref()
            .map_or("?".into(), |p| p.display().to_string()),
        dirs[1]
            .as_deref()
            .map_or("?".into(), |p| p.display().to_string()),
        pa.len(),
        pb.len(),
        shared.len()
    );
    for l in &pair_leaks[per_run..] {
        eprintln!("hygiene:   LEAK [{}] {}", l.check, l.what);
    }
    leaks.extend(pair_leaks);
    ctx.sampler.stop.store(true, Ordering::Relaxed);

    let summary = json!({
        "schema": "astro-kerberos-hygiene/v1",
        "seconds": (t0.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        "runs": report_runs.len(),
        "interrupt_points": points.iter().map(Point::describe).collect::<Vec<_>>(),
        "needles": {
            "canary": 1,
            "keytab_keys": needles.iter().filter(|n| n.kind == "keytab key").count() / 3,
            "scram_verifiers": needles.iter().filter(|n| n.kind == "SCRAM verifier").count(),
            "private_keys": needles.iter().filter(|n| n.kind == "private key").count(),
        },
        "concurrent_ports": [pa.len(), pb.len()],
        "leaks": leaks.iter().map(|l| json!({"check": l.check, "what": l.what})).collect::<Vec<_>>(),
        "samples": report_runs,
    });
    let text = serde_json::to_string_pretty(&summary)?;
    std::fs::write(dir.join("hygiene.json"), &text)?;
    println!(
        "{}",
        serde_json::to_string(&json!({
            "schema": "astro-kerberos-hygiene/v1",
            "runs": summary["runs"],
            "leaks": leaks.len(),
            "seconds": summary["seconds"],
            "report": dir.join("hygiene.json"),
        }))?
    );
    eprintln!(
        "hygiene: {} runs ({} interrupted, 2 concurrent), {} leak(s), {:.0} s; report {}",
        report_runs.len(),
        points.len(),
        leaks.len(),
        t0.elapsed().as_secs_f64(),
        dir.join("hygiene.json").display()
    );
    if leaks.is_empty() {
        // The runs' directories hold nothing but what was checked; keep only the report.
        let _ = std::fs::remove_dir_all(dir.join("runs"));
        for d in dirs.into_iter().flatten() {
            let _ = std::fs::remove_dir_all(d);
        }
        Ok(0)
    } else {
        Ok(1)
    }
}

fn print_run(label: &str, outcome: &str, f: &Finished, leaks: &[Leak]) {
    eprintln!(
        "hygiene: {label}: {outcome} in {:.1} s: {}",
        f.seconds,
        if leaks.is_empty() {
            "clean".to_string()
        } else {
            format!("{} leak(s)", leaks.len())
        }
    );
    for l in leaks {
        eprintln!("hygiene:   LEAK [{}] {}", l.check, l.what);
    }
}

fn run_json(f: &Finished, kind: &str, point: Option<String>, leaks: &[Leak]) -> Value {
    json!({
        "label": f.label,
        "kind": kind,
        "point": point,
        "exit": f.exit,
        "seconds": (f.seconds * 100.0).round() / 100.0,
        "leaks": leaks.iter().map(|l| format!("[{}] {}", l.check, l.what)).collect::<Vec<_>>(),
    })
}

/// Processes, listening sockets, /tmp directories, shared memory and containers of the run
/// `label` still there once it has exited (after a short grace for killed processes to die).
fn leftovers(ctx: &Ctx, label: &str, run_dir: &Path) -> Vec<Leak> {
    let pids = ctx.sampler.pids_of(label);
    let inodes: HashMap<u64, String> = {
        let seen = ctx.sampler.seen.lock().unwrap();
        seen.sockets
            .iter()
            .filter(|(_, (l, _))| l == label)
            .map(|(i, (_, p))| (*i, p.clone()))
            .collect()
    };
    let me = std::process::id() as i32;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        reap();
        let mut out = Vec::new();
        let procs = processes();
        let seen = ctx.sampler.seen.lock().unwrap();
        let reported = ctx.reported.lock().unwrap().clone();
        let mut left = Vec::new();
        for p in descendants(&procs, me, false) {
            if p.state != 'Z' && !reported.contains(&(p.pid, p.start)) {
                left.push((p.pid, p.start));
                out.push(Leak {
                    check: "process",
                    what: format!("pid {} `{}` still running", p.pid, short(&p.cmd)),
                });
            }
        }
        for p in &procs {
            if p.state != 'Z'
                && p.ppid != me
                && !reported.contains(&(p.pid, p.start))
                && seen
                    .procs
                    .get(&(p.pid, p.start))
                    .is_some_and(|l| l == label)
            {
                left.push((p.pid, p.start));
                out.push(Leak {
                    check: "process",
                    what: format!(
                        "pid {} `{}` still running (reparented to {})",
                        p.pid,
                        short(&p.cmd),
                        p.ppid
                    ),
                });
            }
        }
        drop(seen);
        let listening = listening_sockets();
        for (inode, port) in &inodes {
            if listening.contains_key(inode) {
                out.push(Leak {
                    check: "port",
                    what: format!("{port} still listening (socket {inode})"),
                });
            }
        }
        // A pid of the run that now names another live process was reused: not the run's.
        let seen = ctx.sampler.seen.lock().unwrap();
        let ours: HashSet<i32> = pids
            .iter()
            .copied()
            .filter(|pid| {
                procs
                    .iter()
                    .find(|p| p.pid == *pid)
                    .is_none_or(|p| seen.procs.contains_key(&(p.pid, p.start)))
            })
            .collect();
        drop(seen);
        out.extend(tmp_dirs(&ours, run_dir));
        out.extend(shared_memory(&ours));
        out.extend(docker(run_dir, &ours));
        if out.is_empty() || Instant::now() > deadline {
            ctx.reported.lock().unwrap().extend(left);
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn short(cmd: &str) -> String {
    if cmd.chars().count() > 100 {
        format!("{}...", cmd.chars().take(100).collect::<String>())
    } else {
        cmd.to_string()
    }
}

/// `/tmp/harness-<what>-<pid>-*` of the run's processes, and any `/tmp/harness-*` its artifacts
/// name.
fn tmp_dirs(pids: &HashSet<i32>, run_dir: &Path) -> Vec<Leak> {
    let mut found = BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir("/tmp") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix("harness-") else {
                continue;
            };
            let pid = rest.split('-').nth(1).and_then(|p| p.parse::<i32>().ok());
            if pid.is_some_and(|p| pids.contains(&p)) {
                found.insert(e.path());
            }
        }
    }
    for f in files(run_dir) {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        for (i, _) in text.match_indices("/tmp/harness-") {
            let p: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "/._-".contains(*c))
                .collect();
            let top: PathBuf = Path::new(&p).components().take(3).collect();
            if top.exists() {
                found.insert(top);
            }
        }
    }
    found
        .into_iter()
        .map(|p| Leak {
            check: "tmp",
            what: format!("{} left behind", p.display()),
        })
        .collect()
}

/// System V shared memory segments created by the run's processes (PostgreSQL keeps one;
/// a postmaster killed without shutting down leaves it).
fn shared_memory(pids: &HashSet<i32>) -> Vec<Leak> {
    let Ok(text) = std::fs::read_to_string("/proc/sysvipc/shm") else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let cpid: i32 = f.get(4)?.parse().ok()?;
            let attached: u32 = f.get(6)?.parse().ok()?;
            (pids.contains(&cpid) && attached == 0).then(|| Leak {
                check: "shm",
                what: format!(
                    "System V shared memory segment {} (key {}, {} bytes) of pid {cpid} left behind",
                    f[1], f[0], f[3]
                ),
            })
        })
        .collect()
}

/// Docker containers and networks labelled for the run, when a docker engine answers: the
/// docker tier labels them `e2e-harness.run=<run id>` and `e2e-harness.pid=<runner pid>`, so
/// either the run directory's name or a pid of the run identifies them.
fn docker(run_dir: &Path, pids: &HashSet<i32>) -> Vec<Leak> {
    let id = run_dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (what, args) in [
        ("container", vec!["ps", "-a"]),
        ("network", vec!["network", "ls"]),
    ] {
        let Ok(o) = Command::new("docker")
            .args(&args)
            .args([
                "--filter",
                "label=e2e-harness.run",
                "--format",
                "{{.ID}} {{.Labels}}",
            ])
            .stderr(Stdio::null())
            .output()
        else {
            return out; // no docker on this machine
        };
        if !o.status.success() {
            return out; // docker does not answer
        }
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let (obj, labels) = line.split_once(' ').unwrap_or((line, ""));
            let label = |k: &str| {
                labels
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
                    .map(str::to_string)
            };
            let by_run = label("e2e-harness.run").is_some_and(|r| r == id);
            let by_pid = label("e2e-harness.pid")
                .and_then(|p| p.parse::<i32>().ok())
                .is_some_and(|p| pids.contains(&p));
            if by_run || by_pid {
                out.push(Leak {
                    check: "docker",
                    what: format!("{what} {obj} labelled for the run ({labels}) left behind"),
                });
            }
        }
    }
    out
}

/// A value whose appearance is a leak, and what kind of secret it is.
struct Needle {
    kind: &'static str,
    bytes: Vec<u8>,
}

/// Every file under `dir` (symlinks not followed).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// The canary, and the secrets a kept run wrote that do not contain it: the key bytes of each
/// keytab (generated by the KDC), each SCRAM verifier (derived from a canary password) and
/// each private key.
fn needles(canary: &str, kept: &Path) -> Vec<Needle> {
    let mut out = vec![Needle {
        kind: "canary",
        bytes: canary.as_bytes().to_vec(),
    }];
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut seen = HashSet::new();
    for f in files(kept) {
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        for key in keytab_keys(&bytes) {
            if seen.insert(key.clone()) {
                let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
                out.push(Needle {
                    kind: "keytab key",
                    bytes: key.clone(),
                });
                out.push(Needle {
                    kind: "keytab key",
                    bytes: hex.into_bytes(),
                });
                out.push(Needle {
                    kind: "keytab key",
                    bytes: b64.encode(&key).into_bytes(),
                });
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        for v in scram_verifiers(&text) {
            if seen.insert(v.clone().into_bytes()) {
                out.push(Needle {
                    kind: "SCRAM verifier",
                    bytes: v.into_bytes(),
                });
            }
        }
        for k in private_keys(&text) {
            if seen.insert(k.clone().into_bytes()) {
                out.push(Needle {
                    kind: "private key",
                    bytes: k.into_bytes(),
                });
            }
        }
    }
    out
}

/// The key blocks of an MIT keytab (format 0x0502), or nothing if `b` is not one.
fn keytab_keys(b: &[u8]) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    if b.len() < 2 || b[0] != 5 || b[1] != 2 {
        return keys;
    }
    let be16 = |i: usize| -> Option<usize> {
        Some(u16::from_be_bytes(b.get(i..i + 2)?.try_into().ok()?) as usize)
    };
    let mut i = 2;
    while i + 4 <= b.len() {
        let len = i32::from_be_bytes(b[i..i + 4].try_into().unwrap());
        i += 4;
        if len == 0 {
            break;
        }
        if len < 0 {
            i += (-len) as usize; // a hole left by a deleted entry
            continue;
        }
        let end = i + len as usize;
        let entry = || -> Option<Vec<u8>> {
            let mut j = i;
            let components = be16(j)?;
            j += 2;
            let realm = be16(j)?;
            j += 2 + realm;
            for _ in 0..components {
                let n = be16(j)?;
                j += 2 + n;
            }
            j += 4 + 4 + 1; // name type, timestamp, 8-bit kvno
            j += 2; // enctype
            let klen = be16(j)?;
            j += 2;
            b.get(j..j + klen).map(<[u8]>::to_vec)
        };
        if let Some(k) = entry().filter(|k| k.len() >= 16) {
            keys.push(k);
        }
        i = end;
    }
    keys
}

/// `StoredKey:ServerKey` of every `SCRAM-SHA-256$<iter>:<salt>$<stored>:<server>` in `text`.
fn scram_verifiers(text: &str) -> Vec<String> {
    let b64 = |c: char| c.is_ascii_alphanumeric() || "+/=".contains(c);
    text.match_indices("SCRAM-SHA-256$")
        .filter_map(|(i, m)| {
            let rest = &text[i + m.len()..];
            let (_, after_salt) = rest.split_once('$')?;
            let keys: String = after_salt
                .chars()
                .take_while(|c| b64(*c) || *c == ':')
                .collect();
            keys.contains(':').then_some(keys).filter(|k| k.len() > 40)
        })
        .collect()
}

/// The first body line of every PEM private key in `text`.
fn private_keys(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.starts_with("-----BEGIN") && l.contains("PRIVATE KEY-----") {
            if let Some(body) = lines.next().filter(|b| b.len() >= 40) {
                out.push(body.trim().to_string());
            }
        }
    }
    out
}

/// Files a run must keep a secret in: the KDC's database, PostgreSQL's data directory, keytabs,
/// PgBouncer's users.txt (SCRAM verifiers), the TLS key, ticket caches and `secrets/`.
fn may_hold_secrets(rel: &Path) -> bool {
    let s = rel.to_string_lossy();
    let name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    rel.components().any(|c| {
        matches!(
            c.as_os_str().to_str(),
            Some("kdc-db" | "pgdata" | "secrets")
        )
    }) || name.ends_with(".keytab")
        || name.ends_with(".ccache")
        || name == "users.txt"
        || name == "server.key"
        || s.ends_with("/env.sh")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The secrets check of one run: no needle in its stdout or stderr; no needle in a file other
/// than those that must hold one, and those mode 0600; without `--keep` (`kept` false), no
/// keytab or private key left at all.
fn secrets(f: &Finished, run_dir: &Path, needles: &[Needle], kept: bool) -> Vec<Leak> {
    let mut out = Vec::new();
    for (stream, text) in [("stdout+stderr", f.text())] {
        for n in needles {
            if contains(text.as_bytes(), &n.bytes) {
                out.push(Leak {
                    check: "secret",
                    what: format!("a {} in the run's {stream}", n.kind),
                });
            }
        }
    }
    for file in files(run_dir) {
        let rel = file.strip_prefix(run_dir).unwrap_or(&file).to_path_buf();
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        let is_keytab = !keytab_keys(&bytes).is_empty();
        let text = String::from_utf8_lossy(&bytes);
        let is_private_key = !private_keys(&text).is_empty();
        let held: Vec<&str> = needles
            .iter()
            .filter(|n| contains(&bytes, &n.bytes))
            .map(|n| n.kind)
            .chain(is_keytab.then_some("keytab"))
            .chain(is_private_key.then_some("private key"))
            .chain((!scram_verifiers(&text).is_empty()).then_some("SCRAM verifier"))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if held.is_empty() {
            continue;
        }
        let kinds = held.join(", ");
        if !may_hold_secrets(&rel) {
            out.push(Leak {
                check: "secret",
                what: format!("{} holds a secret ({kinds})", rel.display()),
            });
        } else if mode & 0o077 != 0 {
            out.push(Leak {
                check: "secret",
                what: format!(
                    "{} holds a secret ({kinds}) but is mode {mode:04o}, not 0600",
                    rel.display()
                ),
            });
        } else if !kept && (is_keytab || is_private_key) {
            out.push(Leak {
                check: "secret",
                what: format!(
                    "{} ({kinds}) left behind by a run without --keep",
                    rel.display()
                ),
            });
        }
    }
    out
}

fn seed() -> u64 {
    use sha2::Digest;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let h = sha2::Sha256::digest(format!("{}-{}", now.as_nanos(), std::process::id()));
    u64::from_be_bytes(h[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_spread_over_time_and_lines() {
        let p = choose_points(
            8,
            Duration::from_secs(4),
            &[3, 9, 16, 20, 31],
            0x0123_4567_89ab_cdef,
        );
        assert_eq!(p.len(), 8);
        let times: Vec<f64> = p
            .iter()
            .filter_map(|p| match p {
                Point::After(d) => Some(d.as_secs_f64()),
                _ => None,
            })
            .collect();
        let lines: Vec<usize> = p
            .iter()
            .filter_map(|p| match p {
                Point::Line(n) => Some(*n),
                _ => None,
            })
            .collect();
        assert_eq!(times.len(), 4);
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
        assert!(
            times[0] < 1.0 && times[3] > 3.0 && times[3] <= 3.8,
            "{times:?}"
        );
        assert_eq!(lines, vec![3, 9, 16, 20]);
        // Fewer bursts than line points: the rest are times.
        let p = choose_points(6, Duration::from_secs(4), &[7], 0);
        assert_eq!(p.iter().filter(|p| matches!(p, Point::Line(7))).count(), 1);
        assert_eq!(p.len(), 6);
    }

    #[test]
    fn bursts_start_after_a_pause_and_exclude_the_end() {
        let t = Instant::now();
        let at = |ms: u64| (t + Duration::from_millis(ms), String::new());
        let lines = vec![at(0), at(1), at(300), at(301), at(900), at(901), at(2000)];
        assert_eq!(bursts(&lines, t), vec![3, 5]);
    }

    #[test]
    fn reads_keys_from_a_keytab() {
        // One entry: 1 component "u", realm "R", aes256 key of 32 bytes 0xAB.
        let mut e = Vec::new();
        e.extend(1u16.to_be_bytes());
        e.extend(1u16.to_be_bytes());
        e.push(b'R');
        e.extend(1u16.to_be_bytes());
        e.push(b'u');
        e.extend(1u32.to_be_bytes()); // name type
        e.extend(0u32.to_be_bytes()); // timestamp
        e.push(2); // kvno
        e.extend(18u16.to_be_bytes());
        e.extend(32u16.to_be_bytes());
        e.extend([0xab; 32]);
        let mut kt = vec![5, 2];
        kt.extend((e.len() as i32).to_be_bytes());
        kt.extend(&e);
        assert_eq!(keytab_keys(&kt), vec![vec![0xab; 32]]);
        assert!(keytab_keys(b"not a keytab").is_empty());
    }

    #[test]
    fn finds_scram_verifiers_and_private_keys() {
        let users = "\"u\" \"SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$U3RvcmVkS2V5U3RvcmVkS2V5U3RvcmVkS2V5U3RvcmU=:U2VydmVyS2V5U2VydmVyS2V5U2VydmVyS2V5U2VydmU=\"\n";
        let v = scram_verifiers(users);
        assert_eq!(v.len(), 1);
        assert!(v[0].starts_with("U3RvcmVk") && v[0].contains(':') && !v[0].contains('"'));
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            private_keys(pem),
            vec!["MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"]
        );
    }

    /// Needs a docker engine: `cargo test -p xtask -- --ignored docker`.
    #[test]
    #[ignore]
    fn docker_resources_labelled_for_the_run_are_found() {
        let id = format!("hygiene-test-{}", std::process::id());
        let net = Command::new("docker")
            .args([
                "network",
                "create",
                "--label",
                &format!("e2e-harness.run={id}"),
                &id,
            ])
            .output()
            .unwrap();
        assert!(
            net.status.success(),
            "{}",
            String::from_utf8_lossy(&net.stderr)
        );
        let found = docker(&Path::new("/runs").join(&id), &HashSet::new());
        let _ = Command::new("docker").args(["network", "rm", &id]).output();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].what.starts_with("network "), "{:?}", found[0]);
        assert!(docker(&Path::new("/runs").join(&id), &HashSet::new()).is_empty());
    }

    #[test]
    fn only_secret_files_may_hold_secrets() {
        for p in [
            "s/pgbouncer/users.txt",
            "s/kdc/kdc-db/principal",
            "s/postgres/pgdata/global/1260",
            "s/pgbouncer/injected.keytab",
            "s/kdc/client.ccache",
        ] {
            assert!(may_hold_secrets(Path::new(p)), "{p}");
        }
        for p in [
            "junit.xml",
            "cucumber.json",
            "s/pgbouncer/pgbouncer.log",
            "s/postgres/postgres.log",
            "s/diagnosis.txt",
        ] {
            assert!(!may_hold_secrets(Path::new(p)), "{p}");
        }
    }
}
