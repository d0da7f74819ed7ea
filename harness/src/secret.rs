//! Per-run secrets: generated, written 0600, registered for redaction, never printed.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use rand::RngExt;

use crate::redact;

/// The hygiene test's canary (`E2E_CANARY`, planted by the runner's entry point): when set,
/// every generated secret starts with it, so one search finds a leak of any of them.
static CANARY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Makes every secret generated from now on contain `canary`. Test-only; the first call wins.
pub fn plant_canary(canary: &str) {
    let _ = CANARY.set(canary.to_string());
}

/// A generated secret. `Debug`/`Display` never show the value.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// 24 random alphanumeric characters, registered with the redactor before anyone can log it.
    pub fn generate() -> Self {
        let random: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        // Still 24 random characters after the canary: secrets stay distinct and unguessable.
        let value = match CANARY.get() {
            Some(c) => format!("{c}{random}"),
            None => random,
        };
        Self::adopt(value)
    }

    /// A secret the user supplied (a replayed configuration): kept as-is, still redacted.
    pub fn adopt(value: impl Into<String>) -> Self {
        let value = value.into();
        redact::register(&value);
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Writes a file only its owner can read (keytabs, users.txt, passwords).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("could not create private file {}", path.display()))?;
    f.write_all(contents)
        .with_context(|| format!("could not write {}", path.display()))
}
