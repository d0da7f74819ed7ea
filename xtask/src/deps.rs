//! What the harness needs from the machine, which Debian package provides each piece, and how
//! to install what is missing.
//!
//! xtask deliberately does not depend on the `harness` crate: `harness` links libgssapi, whose
//! build needs libkrb5-dev and libclang, and those are exactly what xtask may have to install
//! first. So the package list lives here; the harness keeps its own table of the programs it runs
//! (harness/src/tools.rs) for its "not found" errors.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Why a package is needed, shown by `doctor` and when installing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Need {
    /// Building the Rust harness (libgssapi's bindgen and link step).
    Build,
    /// Building the Kerberos-capable PgBouncer from Debian's source.
    PgbouncerBuild,
    /// Running the local tier.
    Run,
    /// The Airflow flow (broker, browser).
    Airflow,
    /// Building kube-apiserver from Debian's source and running it on etcd (@apiserver).
    Apiserver,
}

impl Need {
    fn text(self) -> &'static str {
        match self {
            Need::Build => "building the harness",
            Need::PgbouncerBuild => "building PgBouncer with GSSAPI",
            Need::Run => "running the realm, PostgreSQL and PgBouncer",
            Need::Airflow => "running Airflow (broker, browser)",
            Need::Apiserver => "building and running kube-apiserver (@apiserver)",
        }
    }
}

pub struct Package {
    pub name: &'static str,
    pub need: Need,
    /// A file the package installs; checked instead of dpkg when present, so a machine that has
    /// the program from elsewhere is not forced to install the package.
    pub provides: Option<&'static str>,
}

const fn pkg(name: &'static str, need: Need, provides: Option<&'static str>) -> Package {
    Package {
        name,
        need,
        provides,
    }
}

pub const PACKAGES: &[Package] = &[
    pkg("pkg-config", Need::Build, Some("/usr/bin/pkg-config")),
    pkg("libkrb5-dev", Need::Build, None),
    pkg("libclang-dev", Need::Build, None),
    pkg("gcc", Need::Build, None),
    pkg("make", Need::PgbouncerBuild, None),
    pkg("patch", Need::PgbouncerBuild, None),
    pkg("xz-utils", Need::PgbouncerBuild, None),
    pkg("autoconf", Need::PgbouncerBuild, None),
    pkg("automake", Need::PgbouncerBuild, None),
    pkg("libtool", Need::PgbouncerBuild, None),
    pkg("dpkg-dev", Need::PgbouncerBuild, None),
    pkg("libevent-dev", Need::PgbouncerBuild, None),
    pkg("libssl-dev", Need::PgbouncerBuild, None),
    pkg("libc-ares-dev", Need::PgbouncerBuild, None),
    pkg("debian-archive-keyring", Need::PgbouncerBuild, None),
    pkg("krb5-kdc", Need::Run, Some("/usr/sbin/krb5kdc")),
    pkg(
        "krb5-admin-server",
        Need::Run,
        Some("/usr/sbin/kadmin.local"),
    ),
    pkg("krb5-user", Need::Run, Some("/usr/bin/kinit")),
    pkg(
        "postgresql-15",
        Need::Run,
        Some("/usr/lib/postgresql/15/bin/initdb"),
    ),
    pkg("openssl", Need::Run, Some("/usr/bin/openssl")),
    pkg("redis-server", Need::Airflow, Some("/usr/bin/redis-server")),
    pkg("chromium", Need::Airflow, Some("/usr/bin/chromium")),
    pkg("golang-go", Need::Apiserver, Some("/usr/bin/go")),
    pkg(
        "golang-github-modern-go-reflect2-dev",
        Need::Apiserver,
        None,
    ),
    pkg("jq", Need::Apiserver, Some("/usr/bin/jq")),
    pkg("rsync", Need::Apiserver, Some("/usr/bin/rsync")),
    pkg("etcd-server", Need::Apiserver, Some("/usr/bin/etcd")),
];

fn installed(p: &Package) -> bool {
    if let Some(f) = p.provides {
        if Path::new(f).exists() {
            return true;
        }
    }
    Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Abbrev}", p.name])
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).starts_with("ii"))
        .unwrap_or(false)
}

pub fn missing(needs: &[Need]) -> Vec<&'static Package> {
    PACKAGES
        .iter()
        .filter(|p| needs.contains(&p.need) && !installed(p))
        .collect()
}

fn is_debian() -> bool {
    Path::new("/etc/debian_version").exists()
}

fn is_root() -> bool {
    // SAFETY-free check: `id -u` avoids a libc dependency for one number.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The apt-get invocation, through sudo when not root.
fn apt(args: &[&str]) -> Command {
    let mut c = if is_root() {
        Command::new("apt-get")
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", "apt-get"]);
        c
    };
    c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
    c
}

/// Installs the missing packages for `needs`, saying what and why; with `offline` it only names
/// them and fails.
pub fn ensure(needs: &[Need], offline: bool) -> Result<()> {
    let miss = missing(needs);
    if !miss.is_empty() {
        let names: Vec<&str> = miss.iter().map(|p| p.name).collect();
        let install_cmd = format!("apt-get install -y {}", names.join(" "));
        if offline {
            bail!("missing Debian packages (--offline, so not installing): {}\n  install them with: {install_cmd}", names.join(" "));
        }
        if !is_debian() {
            bail!("missing packages {} and this is not a Debian/Ubuntu machine; install their equivalents by hand", names.join(" "));
        }
        for p in &miss {
            eprintln!(
                "xtask: installing {} (needed for {})",
                p.name,
                p.need.text()
            );
        }
        // A fresh machine may have empty package lists; refresh them once, quietly.
        let update = apt(&["-q", "update"])
            .output()
            .context("running apt-get update")?;
        if !update.status.success() {
            bail!(
                "apt-get update failed (are you root or allowed `sudo -n`?):\n{}\n  run by hand: {install_cmd}",
                String::from_utf8_lossy(&update.stderr).trim()
            );
        }
        let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
        args.extend(names.iter().copied());
        let out = apt(&args).output().context("running apt-get install")?;
        if !out.status.success() {
            bail!(
                "apt-get install failed:\n{}\n  run by hand: {install_cmd}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        eprintln!("xtask: installed {}", names.join(" "));
    }
    if needs.contains(&Need::Run) {
        crate::reach::check(&crate::cargo::root())?;
    }
    if needs.contains(&Need::Airflow) {
        ensure_uv(offline)?;
    }
    Ok(())
}

/// `uv` installs Airflow from its lock file; it comes from PyPI.
pub fn uv_found() -> bool {
    Command::new("uv")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
        || Command::new("python3")
            .args(["-m", "uv", "--version"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
}

fn ensure_uv(offline: bool) -> Result<()> {
    if uv_found() {
        return Ok(());
    }
    if offline {
        bail!("uv is missing (--offline, so not installing): install it with `python3 -m pip install uv`");
    }
    eprintln!("xtask: installing uv from PyPI (needed to install Airflow from its lock file)");
    let out = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "uv"])
        .output()
        .context("running python3 -m pip install uv (is python3 with pip installed?)")?;
    if !out.status.success() {
        bail!(
            "installing uv failed:\n{}\n  run by hand: python3 -m pip install uv",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// `cargo xtask doctor`: everything the harness needs, found or missing, and how to fix it.
pub fn doctor(fix: bool, offline: bool) -> Result<bool> {
    let all = [
        Need::Build,
        Need::PgbouncerBuild,
        Need::Run,
        Need::Airflow,
        Need::Apiserver,
    ];
    let mut ok = true;
    println!("packages:");
    for p in PACKAGES {
        let found = installed(p);
        ok &= found;
        println!(
            "  {:<3} {:<24} {}",
            if found { "ok" } else { "--" },
            p.name,
            p.need.text()
        );
    }
    let uv = uv_found();
    ok &= uv;
    println!(
        "  {:<3} {:<24} installing Airflow from its lock file (PyPI)",
        if uv { "ok" } else { "--" },
        "uv"
    );
    let py = Command::new("python3")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok &= py;
    println!(
        "  {:<3} {:<24} Airflow's interpreter",
        if py { "ok" } else { "--" },
        "python3"
    );
    println!("{}", crate::apiserver::doctor_line());
    let docker = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    println!(
        "  {:<3} {:<24} the docker tier (not implemented yet; the local tier does not need it)",
        if docker { "ok" } else { "--" },
        "docker engine"
    );
    let clock = Command::new("timedatectl")
        .args(["show", "-p", "NTPSynchronized", "--value"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(c) = clock.filter(|c| !c.is_empty()) {
        println!("  clock synchronised: {c} (Kerberos rejects skew over 300 s; the local tier shares one clock)");
    }
    let reach = crate::reach::check(&crate::cargo::root());
    println!(
        "  {:<3} {:<24} the checkout, for the `postgres` user PostgreSQL runs as under root",
        if reach.is_ok() { "ok" } else { "--" },
        "reachable"
    );
    if let Err(e) = &reach {
        println!("doctor: {e}");
        ok = false;
    }
    if ok {
        println!("doctor: everything the local tier needs is here");
        return Ok(true);
    }
    let miss: Vec<&str> = missing(&all).iter().map(|p| p.name).collect();
    if fix {
        ensure(&all, offline)?;
        println!("doctor: installed what was missing");
        return Ok(true);
    }
    if !miss.is_empty() {
        println!(
            "doctor: missing; fix with `cargo xtask doctor --fix` or: apt-get install -y {}",
            miss.join(" ")
        );
    }
    if !uv {
        println!(
            "doctor: uv missing; fix with `cargo xtask doctor --fix` or: python3 -m pip install uv"
        );
    }
    Ok(false)
}
