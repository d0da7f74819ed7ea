//! The images `cargo xtask images` built on this machine, by component: its manifest
//! (`target/images/manifest.json`, component -> `e2e-harness/<name>:<hash of its inputs>`) is the
//! one place the docker and kind tiers learn the tags from.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where `cargo xtask images` lists what it built.
pub fn manifest_path() -> PathBuf {
    crate::run::workspace_root().join("target/images/manifest.json")
}

/// Every built image by component (empty when nothing was built).
pub fn manifest() -> BTreeMap<String, String> {
    std::fs::read_to_string(manifest_path())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// The tag of one component's image, or None when it has not been built here.
pub fn built(component: &str) -> Option<String> {
    manifest().get(component).cloned()
}
