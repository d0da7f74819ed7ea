//! Printing findings for people (text) and machines (JSON, schema `astro-kerberos-lint/v1`).

use crate::finding::{Finding, Severity};
use serde::Serialize;
use std::io::{self, Write};
use std::path::PathBuf;

pub const SCHEMA: &str = "astro-kerberos-lint/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(format!("unknown format `{other}` (text or json)")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Summary {
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
}

impl Summary {
    pub fn of(findings: &[Finding]) -> Summary {
        let count = |s| findings.iter().filter(|f| f.severity == s).count();
        Summary {
            errors: count(Severity::Error),
            warnings: count(Severity::Warning),
            infos: count(Severity::Info),
        }
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    schema: &'static str,
    files: &'a [PathBuf],
    findings: &'a [Finding],
    summary: Summary,
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `files` are the files that were linted (listed in the JSON, counted in the text summary).
pub fn print_report(
    findings: &[Finding],
    files: &[PathBuf],
    format: Format,
    out: &mut impl Write,
) -> io::Result<()> {
    let summary = Summary::of(findings);
    match format {
        Format::Json => {
            let report = JsonReport {
                schema: SCHEMA,
                files,
                findings,
                summary,
            };
            serde_json::to_writer_pretty(&mut *out, &report).map_err(io::Error::other)?;
            writeln!(out)
        }
        Format::Text => {
            for f in findings {
                writeln!(out, "{f}")?;
            }
            writeln!(
                out,
                "{}, {}, {} in {}",
                plural(summary.errors, "error"),
                plural(summary.warnings, "warning"),
                plural(summary.infos, "info"),
                plural(files.len(), "file")
            )
        }
    }
}
