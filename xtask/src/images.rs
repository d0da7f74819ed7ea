//! `cargo xtask images`: the docker tier's images, built on this machine. A pinned Debian base
//! (mmdebstrap, imported only when its tag is missing, apt sources derived from the machine's),
//! or `debian:bookworm-slim` where a registry can be pulled (`--base`); then the Dockerfiles in
//! kdc/, postgres/, pgbouncer/ and airflow/ on it. Each image is tagged with a content hash of
//! its inputs (base image id, Dockerfile, context files, build arguments), so an image that is
//! there is up to date and skipped. The tags are written to target/images/manifest.json, which
//! is where the harness's docker substrate finds them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use sha2::{Digest, Sha256};

use crate::cargo;

/// The Debian release every image is built on; the local tier runs on the same one.
const SUITE: &str = "bookworm";
/// The registry image used instead of the mmdebstrap base with `--base pull`.
const PULLED_BASE: &str = "debian:bookworm-slim";
/// The repository prefix of every image the project builds.
const REPO: &str = "e2e-harness";
/// The Airflow versions with a committed lock file (airflow/requirements-<v>.lock).
const AIRFLOW_VERSIONS: &[&str] = &["3.3.2", "2.11.2"];
/// The machine's CA bundle, for pip behind an intercepting proxy; copied into the build context
/// at build time, never committed.
const HOST_CA: &str = "/etc/ssl/certs/ca-certificates.crt";

#[derive(Args, Debug, Clone)]
pub struct ImagesArgs {
    /// The base image: `debootstrap` (mmdebstrap of Debian bookworm from this machine's apt
    /// sources, no registry needed), `pull` (debian:bookworm-slim from a registry), or any image
    /// name already on the engine. Also E2E_BASE_IMAGE.
    #[arg(long, env = "E2E_BASE_IMAGE", default_value = "debootstrap")]
    pub base: String,
    /// Build only these images (kdc, postgres, pgbouncer, webhook, pgbouncer-generic,
    /// airflow-3.3.2, airflow-2.11.2);
    /// repeatable. Default: all.
    #[arg(long)]
    pub only: Vec<String>,
    /// Never install mmdebstrap; fail naming it instead.
    #[arg(long)]
    pub offline: bool,
}

/// One image: its Dockerfile and the files its build context holds.
struct Recipe {
    name: String,
    dockerfile: PathBuf,
    /// (file in the checkout, name in the build context)
    files: Vec<(PathBuf, String)>,
    args: Vec<(String, String)>,
    /// pip runs in the build and needs the machine's CA bundle.
    needs_ca: bool,
}

fn recipes(root: &Path) -> Result<Vec<Recipe>> {
    let mut out = vec![
        Recipe {
            name: "kdc".into(),
            dockerfile: root.join("kdc/Dockerfile"),
            files: vec![],
            args: vec![],
            needs_ca: false,
        },
        Recipe {
            name: "postgres".into(),
            dockerfile: root.join("postgres/Dockerfile"),
            files: vec![],
            args: vec![],
            needs_ca: false,
        },
        Recipe {
            name: "pgbouncer".into(),
            dockerfile: root.join("pgbouncer/Dockerfile"),
            files: ["build.sh", "gssapi-server-login.patch"]
                .iter()
                .map(|f| (root.join("pgbouncer").join(f), f.to_string()))
                .collect(),
            args: vec![],
            needs_ca: false,
        },
        // The kind tier's webhook: the binary cargo built here (see `ensure`), on the base.
        Recipe {
            name: "webhook".into(),
            dockerfile: root.join("kind/webhook/Dockerfile"),
            files: vec![(
                root.join("target/debug/kerberos-webhook"),
                "kerberos-webhook".into(),
            )],
            args: vec![],
            needs_ca: false,
        },
        Recipe {
            name: "pgbouncer-generic".into(),
            dockerfile: root.join("pgbouncer/Dockerfile.generic"),
            files: vec![],
            args: vec![],
            needs_ca: false,
        },
        Recipe {
            name: "redis".into(),
            dockerfile: root.join("airflow/Dockerfile.redis"),
            files: vec![],
            args: vec![],
            needs_ca: false,
        },
    ];
    for (v, name) in AIRFLOW_VERSIONS.iter().zip(airflow_images()) {
        let mut files = vec![(
            root.join(format!("airflow/requirements-{v}.lock")),
            "requirements.lock".to_string(),
        )];
        for dir in ["config", "dags"] {
            for f in sorted_files(&root.join("airflow").join(dir))? {
                let name = format!("{dir}/{}", f.file_name().unwrap().to_string_lossy());
                files.push((f, name));
            }
        }
        out.push(Recipe {
            name,
            dockerfile: root.join("airflow/Dockerfile"),
            files,
            args: vec![("AIRFLOW_VERSION".into(), v.to_string())],
            needs_ca: true,
        });
    }
    Ok(out)
}

/// The Airflow images' names (`airflow-<version>`), one per lock file.
pub fn airflow_images() -> impl Iterator<Item = String> {
    AIRFLOW_VERSIONS.iter().map(|v| format!("airflow-{v}"))
}

fn sorted_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "py"))
        .collect();
    v.sort();
    Ok(v)
}

pub fn run(a: &ImagesArgs) -> Result<i32> {
    let manifest = ensure(a)?;
    println!("{}", serde_json::to_string_pretty(&manifest)?);
    Ok(0)
}

/// Builds what is missing and returns image name -> tag (also written to the manifest).
pub fn ensure(a: &ImagesArgs) -> Result<BTreeMap<String, String>> {
    let started = Instant::now();
    engine_answers()?;
    let root = cargo::root();
    let all = recipes(&root)?;
    for o in &a.only {
        if !all.iter().any(|r| &r.name == o) {
            let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
            bail!("--only {o}: no such image; use one of {}", names.join(", "));
        }
    }
    if a.only.is_empty() || a.only.iter().any(|o| o == "webhook") {
        cargo::run(
            "building the webhook for its image",
            &[
                "build",
                "--quiet",
                "-p",
                "kerberos-webhook",
                "--bin",
                "kerberos-webhook",
            ],
        )?;
    }
    let base = ensure_base(a)?;
    let base_id = image_id(&base)?.context("the base image vanished after it was made")?;
    let dir = root.join("target/images");
    std::fs::create_dir_all(&dir)?;
    let manifest_path = dir.join("manifest.json");
    let mut manifest: BTreeMap<String, String> = std::fs::read(&manifest_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    manifest.insert("base".into(), base.clone());
    for r in all
        .iter()
        .filter(|r| a.only.is_empty() || a.only.contains(&r.name))
    {
        let tag = format!("{REPO}/{}:{}", r.name, input_hash(r, &base_id)?);
        let t = Instant::now();
        if image_id(&tag)?.is_some() {
            eprintln!("images: {:<16} {tag} is built (skipped)", r.name);
        } else {
            eprintln!("images: {:<16} building {tag} ...", r.name);
            build(r, &base, &tag, &dir)?;
            eprintln!(
                "images: {:<16} built {tag} in {:.1} s",
                r.name,
                t.elapsed().as_secs_f64()
            );
        }
        manifest.insert(r.name.clone(), tag);
    }
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest)?)?;
    eprintln!(
        "images: done in {:.1} s; tags in {}",
        started.elapsed().as_secs_f64(),
        manifest_path.display()
    );
    Ok(manifest)
}

pub fn engine_answers() -> Result<()> {
    let out = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .context("the `docker` client is not installed (needed for the docker tier's images)")?;
    if !out.status.success() {
        bail!(
            "no Docker engine answers (`docker version`: {}); start it, or run the local tier",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The image id of `name`, or None when the engine does not have it.
fn image_id(name: &str) -> Result<Option<String>> {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", name])
        .output()
        .context("running docker image inspect")?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()))
}

fn input_hash(r: &Recipe, base_id: &str) -> Result<String> {
    let mut h = Sha256::new();
    let mut part = |label: &str, bytes: &[u8]| {
        h.update((label.len() as u64).to_le_bytes());
        h.update(label.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    part("base", base_id.as_bytes());
    part("Dockerfile", &read(&r.dockerfile)?);
    for (src, name) in &r.files {
        part(name, &read(src)?);
    }
    for (k, v) in &r.args {
        part(k, v.as_bytes());
    }
    if r.needs_ca {
        part("ca", &read(Path::new(HOST_CA))?);
    }
    Ok(hex(&h.finalize()[..8]))
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p)
        .with_context(|| format!("image input {} is missing or unreadable", p.display()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs `docker build` on a private context holding exactly the recipe's files, one progress
/// line per Dockerfile step, the whole output in target/images/<name>.build.log.
fn build(r: &Recipe, base: &str, tag: &str, dir: &Path) -> Result<()> {
    let ctx = dir.join(format!(".context-{}", r.name));
    let _ = std::fs::remove_dir_all(&ctx);
    std::fs::create_dir_all(&ctx)?;
    std::fs::copy(&r.dockerfile, ctx.join("Dockerfile"))?;
    for (src, name) in &r.files {
        let dest = ctx.join(name);
        std::fs::create_dir_all(dest.parent().unwrap())?;
        std::fs::copy(src, &dest).with_context(|| format!("copying {}", src.display()))?;
    }
    if r.needs_ca {
        std::fs::copy(HOST_CA, ctx.join("host-ca.crt")).with_context(|| {
            format!("{HOST_CA} is missing: pip in the image needs the machine's CA bundle (install ca-certificates)")
        })?;
    }
    let log_path = dir.join(format!("{}.build.log", r.name));
    let mut log = std::fs::File::create(&log_path)?;
    let mut cmd = Command::new("docker");
    // The legacy builder: the client on PATH may have no buildx, and BuildKit's `# syntax=`
    // would pull. Multi-stage and ARG-before-FROM work without it.
    cmd.env("DOCKER_BUILDKIT", "0")
        .args(["build", "--force-rm", "-t", tag, "--label"])
        .arg(format!("{REPO}.inputs={tag}"))
        .args(["--build-arg", &format!("BASE={base}")]);
    for (k, v) in &r.args {
        cmd.args(["--build-arg", &format!("{k}={v}")]);
    }
    let mut child = cmd
        .arg(&ctx)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running docker build")?;
    // stderr is small (errors); read it after stdout closes.
    let stderr = child.stderr.take().unwrap();
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
        s
    });
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap_or_default();
        writeln!(log, "{line}")?;
        if line.starts_with("Step ") {
            eprintln!("images: {:<16}   {}", r.name, truncate(&line, 110));
        }
    }
    let status = child.wait()?;
    let err = err_thread.join().unwrap_or_default();
    write!(log, "{err}")?;
    let _ = std::fs::remove_dir_all(&ctx);
    if !status.success() {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "building image {} failed ({status}); last lines of {}:\n{}",
            r.name,
            log_path.display(),
            tail.join("\n")
        );
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n).collect::<String>() + "…"
    }
}

/// The base image name, making it first when needed.
fn ensure_base(a: &ImagesArgs) -> Result<String> {
    match a.base.as_str() {
        "pull" => {
            if image_id(PULLED_BASE)?.is_none() {
                eprintln!("images: base             pulling {PULLED_BASE} ...");
                let st = Command::new("docker")
                    .args(["pull", PULLED_BASE])
                    .status()?;
                if !st.success() {
                    bail!("docker pull {PULLED_BASE} failed: no registry reachable? Use --base debootstrap to build the base on this machine");
                }
            }
            Ok(PULLED_BASE.into())
        }
        "debootstrap" => debootstrap_base(a.offline),
        other => {
            if image_id(other)?.is_none() {
                bail!("--base {other} (E2E_BASE_IMAGE): the engine has no such image; pull or import it first, or use --base debootstrap");
            }
            Ok(other.into())
        }
    }
}

/// The apt sources of the base: the machine's own Debian mirror and security mirror (from
/// /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list), with the suite pinned to
/// SUITE and its -updates and -security suites, so the images get current security fixes.
fn base_sources() -> Result<Vec<String>> {
    let (mut main, mut security) = (None, None);
    let deb822 = Path::new("/etc/apt/sources.list.d/debian.sources");
    let one_line = Path::new("/etc/apt/sources.list");
    if let Ok(text) = std::fs::read_to_string(deb822) {
        for stanza in text.split("\n\n") {
            let types_deb = stanza
                .lines()
                .any(|l| l.starts_with("Types:") && l.split_whitespace().any(|t| t == "deb"));
            let uri = stanza
                .lines()
                .find_map(|l| l.strip_prefix("URIs:"))
                .and_then(|u| u.split_whitespace().next());
            if let (true, Some(u)) = (types_deb, uri) {
                classify(u, &mut main, &mut security);
            }
        }
    }
    if main.is_none() {
        if let Ok(text) = std::fs::read_to_string(one_line) {
            for l in text.lines() {
                let mut w = l.split_whitespace().filter(|w| !w.starts_with('['));
                if w.next() == Some("deb") {
                    if let Some(u) = w.next() {
                        classify(u, &mut main, &mut security);
                    }
                }
            }
        }
    }
    let Some(main) = main else {
        bail!(
            "no Debian mirror found in {} or {}: the base image's apt sources are derived from them; give --base pull (debian:bookworm-slim) or an image of your own",
            deb822.display(),
            one_line.display()
        );
    };
    let mut v = vec![
        format!("deb {main} {SUITE} main"),
        format!("deb {main} {SUITE}-updates main"),
    ];
    if let Some(s) = security {
        v.push(format!("deb {s} {SUITE}-security main"));
    }
    Ok(v)
}

fn classify(uri: &str, main: &mut Option<String>, security: &mut Option<String>) {
    let slot = if uri.contains("security") {
        security
    } else {
        main
    };
    if slot.is_none() {
        *slot = Some(uri.trim_end_matches('/').to_string());
    }
}

fn debootstrap_base(offline: bool) -> Result<String> {
    let sources = base_sources()?;
    let mut h = Sha256::new();
    h.update(SUITE);
    for s in &sources {
        h.update(s);
        h.update("\n");
    }
    let tag = format!("{REPO}/base:{SUITE}-{}", hex(&h.finalize()[..6]));
    // Re-importing gives a new id and would invalidate every image built on it.
    if image_id(&tag)?.is_some() {
        eprintln!("images: base             {tag} is there (skipped)");
        return Ok(tag);
    }
    crate::deps::ensure(&[crate::deps::Need::Images], offline)?;
    let t = Instant::now();
    eprintln!("images: base             making {tag} with mmdebstrap (Debian {SUITE} minbase, about a minute) ...");
    let mut deb = Command::new("mmdebstrap");
    deb.args(["--variant=minbase", "--format=tar", "--quiet", SUITE, "-"])
        .args(&sources)
        .stdout(Stdio::piped());
    let mut deb = deb.spawn().context("running mmdebstrap")?;
    let import = Command::new("docker")
        .args(["import", "--change", "CMD [\"bash\"]", "-", &tag])
        .stdin(deb.stdout.take().unwrap())
        .stdout(Stdio::null())
        .status()
        .context("running docker import")?;
    let made = deb.wait()?;
    if !made.success() || !import.success() {
        // A half-imported tarball must not pass for the base next time.
        let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
        bail!("making the base image failed (mmdebstrap: {made}, docker import: {import}); mmdebstrap's messages are above");
    }
    eprintln!(
        "images: base             made {tag} in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_and_main_mirrors_are_told_apart() {
        let (mut m, mut s) = (None, None);
        classify("http://mirror.invalid/debian-security/", &mut m, &mut s);
        classify("http://mirror.invalid/debian", &mut m, &mut s);
        classify("http://other.invalid/debian", &mut m, &mut s);
        assert_eq!(m.as_deref(), Some("http://mirror.invalid/debian"));
        assert_eq!(s.as_deref(), Some("http://mirror.invalid/debian-security"));
    }

    #[test]
    fn every_input_changes_the_tag() {
        let dir = tempfile::tempdir().unwrap();
        let df = dir.path().join("Dockerfile");
        let f = dir.path().join("a");
        std::fs::write(&df, "FROM x").unwrap();
        std::fs::write(&f, "1").unwrap();
        let r = |args: Vec<(String, String)>| Recipe {
            name: "t".into(),
            dockerfile: df.clone(),
            files: vec![(f.clone(), "a".into())],
            args,
            needs_ca: false,
        };
        let h0 = input_hash(&r(vec![]), "sha256:1").unwrap();
        assert_eq!(h0, input_hash(&r(vec![]), "sha256:1").unwrap());
        assert_ne!(h0, input_hash(&r(vec![]), "sha256:2").unwrap());
        assert_ne!(
            h0,
            input_hash(&r(vec![("V".into(), "1".into())]), "sha256:1").unwrap()
        );
        std::fs::write(&f, "2").unwrap();
        assert_ne!(h0, input_hash(&r(vec![]), "sha256:1").unwrap());
    }
}
