//! The tidy test (in the spirit of rust-analyzer's `xtask/src/tidy.rs`), run by `cargo xtask test`
//! with xtask's unit tests: the rules of the tree that no compiler checks. Where a component
//! runs is the substrate's business (no loopback address and no local substrate named outside
//! `harness/src/substrate/`); settings are read at the edge (no environment variable read in a
//! library); and every Markdown link points at a file that is in the repository.

#![cfg(test)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// The repository's files (what git tracks, plus new files not yet added), without `target/`.
fn files(ext: &str) -> Vec<PathBuf> {
    let out = std::process::Command::new("git")
        .args(["ls-files", "--cached", "--others", "--exclude-standard"])
        .current_dir(root())
        .output()
        .expect("git ls-files");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.ends_with(ext))
        .map(|l| root().join(l))
        .filter(|p| p.exists())
        .collect()
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

/// The text of a Rust file up to its unit tests: test fixtures may spell out addresses.
fn code(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Lines of `files` containing any of `needles`, as `file:line: text`.
fn offending(files: &[PathBuf], needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for f in files {
        for (n, line) in code(f).lines().enumerate() {
            if needles.iter().any(|needle| line.contains(needle)) {
                found.push(format!("{}:{}: {}", rel(f), n + 1, line.trim()));
            }
        }
    }
    found
}

/// The harness's Rust sources outside the substrate module (library, binary and scenario steps).
fn above_the_substrate() -> Vec<PathBuf> {
    files(".rs")
        .into_iter()
        .filter(|p| {
            let r = rel(p);
            (r.starts_with("harness/src/") || r.starts_with("harness/tests/"))
                && !r.starts_with("harness/src/substrate/")
        })
        .collect()
}

#[test]
fn no_loopback_address_outside_the_substrate() {
    let found = offending(&above_the_substrate(), &["127.0.0.1", "localhost", "::1"]);
    assert!(
        found.is_empty(),
        "where a component listens and is dialled is the substrate's business (harness/src/substrate/); ask the component for its endpoint instead:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_local_substrate_is_named_only_by_the_substrate_module() {
    let found = offending(
        &above_the_substrate(),
        &["substrate::local", "local::Local"],
    );
    assert!(
        found.is_empty(),
        "only harness/src/substrate/ names the local substrate (`substrate::for_tier` picks it):\n{}",
        found.join("\n")
    );
}

/// Reads of the process environment that are not settings, each with its reason.
const ENV_READS_ALLOWED: &[(&str, &str)] = &[
    // The marker the harness sets on its own re-executed children (a process-level mechanism,
    // not a setting).
    ("harness/src/child.rs", "CHILD_VAR"),
    // Lists the inherited Kerberos variables to remove them from a probe's environment.
    ("harness/src/probe/gss.rs", "std::env::vars()"),
    // PATH, to find uv where pip put it.
    ("harness/src/airflow/venv.rs", "\"PATH\""),
];

#[test]
fn libraries_read_no_environment_variable() {
    let libraries: Vec<PathBuf> = files(".rs")
        .into_iter()
        .filter(|p| {
            let r = rel(p);
            (r.starts_with("harness/src/") && !r.starts_with("harness/src/bin/"))
                || r.starts_with("harness/config/src/")
        })
        .collect();
    let found: Vec<String> = offending(&libraries, &["env::var"])
        .into_iter()
        .filter(|hit| {
            !ENV_READS_ALLOWED
                .iter()
                .any(|(file, what)| hit.starts_with(&format!("{file}:")) && hit.contains(what))
        })
        .collect();
    assert!(
        found.is_empty(),
        "settings are parsed once at the edge (harness_config::settings, from xtask's flags) and passed in; a library reads no environment variable:\n{}",
        found.join("\n")
    );
}

/// `[text](target)` links of a Markdown text (inline links; images too).
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else { break };
        out.push(after[..end].trim().to_string());
        rest = &after[end..];
    }
    out
}

/// File names in backticks that name a Markdown file (`` `DESIGN.md` ``): a reader follows
/// them like links.
fn named_markdown(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| t.ends_with(".md") && !t.contains(char::is_whitespace))
        .map(str::to_string)
        .collect()
}

#[test]
fn markdown_links_point_at_files_in_the_repository() {
    let mut broken = Vec::new();
    for md in files(".md") {
        let text = std::fs::read_to_string(&md).unwrap_or_default();
        for name in named_markdown(&text) {
            let here = md.parent().unwrap_or(&root()).join(&name);
            if !here.exists() && !root().join(&name).exists() {
                broken.push(format!("{}: `{name}`", rel(&md)));
            }
        }
        for link in links(&text) {
            if link.contains("://") || link.starts_with('#') || link.starts_with("mailto:") {
                continue;
            }
            let path = link.split('#').next().unwrap_or_default();
            if path.is_empty() {
                continue;
            }
            let target = md.parent().unwrap_or(&root()).join(path);
            if !target.exists() {
                broken.push(format!("{}: ({link})", rel(&md)));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "Markdown links to files that are not in the repository:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_link_reader_finds_what_the_checks_need() {
    assert_eq!(
        links("see [a](a.md) and [b](dir/b.md#x), ![img](i.png), [web](https://e.test)"),
        ["a.md", "dir/b.md#x", "i.png", "https://e.test"]
    );
    assert_eq!(
        named_markdown("the design (`DESIGN.md`), `cargo xtask`, `a b.md`"),
        ["DESIGN.md"]
    );
}
