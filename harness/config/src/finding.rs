//! What a rule reports. Rule ids are stable: tickets, CI logs and the README refer to them.

use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// A rule's catalog entry; RULES.md is this table in prose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub id: &'static str,
    pub name: &'static str,
    pub severity: Severity,
    pub meaning: &'static str,
    pub fix: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable id, e.g. `KRB011`.
    pub rule: &'static str,
    /// Slug, e.g. `spn-host`.
    pub name: &'static str,
    pub severity: Severity,
    pub file: PathBuf,
    /// Field path in the file, e.g. `pgbouncerConfig.extraIni`.
    pub path: String,
    pub message: String,
    pub fix: String,
}

/// The text form lint prints and the harness repeats when it refuses a replay:
/// `error[KRB011 spn-host] file: path: message` and the fix on its own line.
impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}[{} {}] {}: {}: {}\n    fix: {}",
            self.severity.as_str(),
            self.rule,
            self.name,
            self.file.display(),
            self.path,
            self.message,
            self.fix
        )
    }
}

/// Collects the findings of one file.
pub(crate) struct Sink<'a> {
    pub file: &'a Path,
    pub out: Vec<Finding>,
}

impl<'a> Sink<'a> {
    pub fn new(file: &'a Path) -> Self {
        Sink {
            file,
            out: Vec::new(),
        }
    }

    pub fn add(
        &mut self,
        rule: &'static Rule,
        path: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.add_fix(rule, path, message, rule.fix);
    }

    pub fn add_fix(
        &mut self,
        rule: &'static Rule,
        path: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.out.push(Finding {
            rule: rule.id,
            name: rule.name,
            severity: rule.severity,
            file: self.file.to_path_buf(),
            path: path.into(),
            message: message.into(),
            fix: fix.into(),
        });
    }
}
