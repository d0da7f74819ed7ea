//! Redaction of secrets from everything the harness writes for people to read (logs, reports,
//! rendered configs). Secrets register themselves when created; artifacts are swept at the end.

use std::path::Path;
use std::sync::RwLock;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

pub const MASK: &str = "***";

pub fn register(secret: &str) {
    // Short values would mask ordinary words in logs; nothing we generate is that short.
    if secret.len() >= 6 {
        let mut s = SECRETS.write().expect("redaction registry poisoned");
        if !s.iter().any(|x| x == secret) {
            s.push(secret.to_string());
        }
    }
}

pub fn redact(text: &str) -> String {
    let secrets = SECRETS.read().expect("redaction registry poisoned");
    let mut out = text.to_string();
    for s in secrets.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
    }
    out
}

/// Rewrites every text file under `dir` with secrets masked. Files under a `secrets/` directory
/// and binary files (keytabs, databases) are skipped: they are mode 0600 and removed at teardown.
pub fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_symlink() {
            continue;
        }
        if ft.is_dir() {
            let name = entry.file_name();
            if name != "secrets" && name != "pgdata" && name != "kdc-db" {
                sweep(&path);
            }
        } else if ft.is_file() {
            if let Ok(text) = std::fs::read_to_string(&path) {
                let cleaned = redact(&text);
                if cleaned != text {
                    let _ = std::fs::write(&path, cleaned);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_registered_secrets_only() {
        register("s3cr3t-value-xyz");
        assert_eq!(
            redact("pass=s3cr3t-value-xyz user=bob"),
            "pass=*** user=bob"
        );
        register("abc"); // too short to register
        assert_eq!(redact("abc"), "abc");
    }
}
