//! Reading logs for error messages: the last lines of a file or a text, redacted.

use std::path::Path;

/// The last `n` lines of a log file, redacted.
pub fn tail(path: &Path, n: usize) -> String {
    last_lines(&std::fs::read_to_string(path).unwrap_or_default(), n)
}

/// The last `n` lines of `text`, redacted.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    crate::redact::redact(&lines[lines.len().saturating_sub(n)..].join("\n"))
}
