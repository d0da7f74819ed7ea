//! Reading configuration files. A file that cannot be read or parsed is not a finding: lint
//! stops with exit code 2 and says where (file, line, column) and what.

use crate::model::{Deployment, Values};
use serde::de::DeserializeOwned;
use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}{}: {message}", file.display(), Location(*location))]
    Parse {
        file: PathBuf,
        location: Option<(usize, usize)>,
        message: String,
    },
    #[error("{}: {message}", dir.display())]
    Templates { dir: PathBuf, message: String },
    /// A values.yaml given as the deployment file or the other way round: linting it as the
    /// wrong kind would bury the mistake under a screen of findings.
    #[error("{}: {message}", file.display())]
    WrongKind { file: PathBuf, message: String },
}

impl LoadError {
    pub fn file(&self) -> &Path {
        match self {
            LoadError::Read { file, .. }
            | LoadError::Parse { file, .. }
            | LoadError::WrongKind { file, .. } => file,
            LoadError::Templates { dir, .. } => dir,
        }
    }

    /// `(line, column)`, both from 1, when the parser knew them.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            LoadError::Parse { location, .. } => *location,
            _ => None,
        }
    }
}

struct Location(Option<(usize, usize)>);

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((l, c)) => write!(f, ":{l}:{c}"),
            None => Ok(()),
        }
    }
}

fn is_json(file: &Path) -> bool {
    file.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Parse `text` as YAML, or as JSON when the name ends in `.json` (JSON errors then point at the
/// JSON position rather than at YAML's idea of it).
pub fn parse_str<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, LoadError> {
    let parse = |location, message: String| LoadError::Parse {
        file: file.to_path_buf(),
        location,
        message,
    };
    if text.trim().is_empty() {
        return Err(parse(None, "the file is empty".into()));
    }
    if is_json(file) {
        serde_json::from_str(text).map_err(|e| {
            let msg = strip_location(&e.to_string());
            parse(Some((e.line(), e.column())), msg)
        })
    } else {
        serde_yaml::from_str(text).map_err(|e| {
            let loc = e.location().map(|l| (l.line(), l.column()));
            parse(loc, strip_location(&e.to_string()))
        })
    }
}

/// Both parsers append " at line L column C"; the location is reported separately.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}

fn read(file: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(file).map_err(|source| LoadError::Read {
        file: file.to_path_buf(),
        source,
    })
}

pub fn load_deployment(file: &Path) -> Result<Deployment, LoadError> {
    let d: Deployment = parse_str(file, &read(file)?)?;
    let nothing_modelled = d
        == Deployment {
            extra: d.extra.clone(),
            ..Default::default()
        };
    if nothing_modelled
        && ["global", "astronomer"]
            .iter()
            .any(|k| d.extra.contains_key(*k))
    {
        return Err(LoadError::WrongKind {
            file: file.to_path_buf(),
            message: "this looks like a control-plane values.yaml (top-level `global`/`astronomer`), not deployment \
                      variables; pass it as the values file"
                .into(),
        });
    }
    Ok(d)
}

/// The file as plain data, for the rules that judge what is written rather than the model.
pub fn load_raw(file: &Path) -> Result<serde_json::Value, LoadError> {
    parse_str(file, &read(file)?)
}

pub fn load_values(file: &Path) -> Result<Values, LoadError> {
    let v: Values = parse_str(file, &read(file)?)?;
    let deployment_keys = [
        "kerberosEnabled",
        "metadataConnectionJson",
        "resultBackendConnectionJson",
        "pgbouncerConfig",
    ];
    if let Some(k) = deployment_keys.iter().find(|k| v.extra.contains_key(**k)) {
        return Err(LoadError::WrongKind {
            file: file.to_path_buf(),
            message: format!(
                "this looks like deployment variables (top-level `{k}`), not a control-plane values.yaml; pass it as the deployment file"
            ),
        });
    }
    if let Some(version) = v.platform_version() {
        if let Err(why) = version.parse::<crate::Platform>() {
            return Err(LoadError::Parse {
                file: file.to_path_buf(),
                location: None,
                message: format!("harness.platform.version: {why}"),
            });
        }
    }
    Ok(v)
}

/// Houston's PgBouncer templates, `pgbouncer.ini.tmpl` and `users.txt.tmpl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoustonTemplates {
    pub dir: PathBuf,
    pub ini: String,
    pub users: String,
}

pub fn load_houston_templates(dir: &Path) -> Result<HoustonTemplates, LoadError> {
    Ok(HoustonTemplates {
        dir: dir.to_path_buf(),
        ini: read(&dir.join("pgbouncer.ini.tmpl"))?,
        users: read(&dir.join("users.txt.tmpl"))?,
    })
}
