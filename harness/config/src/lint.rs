//! The lint entry points: load, check, print, exit code.

use crate::finding::{Finding, Severity};
use crate::load::{self, LoadError};
use crate::model::{LabelSelector, StringMap};
use crate::report::{print_report, Format};
use crate::rules;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Lint a deployment file and/or a control-plane values file. `selectors` (the injector's pod
/// selectors, e.g. from a CLI flag) win over `harness.injector.selectors` in the values.
pub fn lint(
    deployment: Option<&Path>,
    values: Option<&Path>,
    selectors: Option<&[LabelSelector]>,
) -> Result<Vec<Finding>, LoadError> {
    let mut findings = Vec::new();
    let values_model = values.map(load::load_values).transpose()?;
    let selectors: Option<Vec<LabelSelector>> = selectors.map(<[_]>::to_vec).or_else(|| {
        values_model
            .as_ref()
            .and_then(|v| v.selectors())
            .map(<[_]>::to_vec)
    });
    if let Some(path) = deployment {
        let d = load::load_deployment(path)?;
        findings.extend(rules::check_deployment(path, &d, selectors.as_deref()));
        let raw = load::load_raw(path)?;
        findings.extend(rules::check_deployment_raw(path, &raw));
    }
    if let (Some(path), Some(v)) = (values, &values_model) {
        let templates = match v.templates_dir() {
            Some(dir) => {
                let base = path.parent().unwrap_or(Path::new("."));
                Some(load::load_houston_templates(&base.join(dir))?)
            }
            None => None,
        };
        findings.extend(rules::check_values(
            path,
            v,
            templates.as_ref(),
            selectors.as_deref(),
        ));
    }
    Ok(findings)
}

/// `k=v,k2=v2` → one selector (all pairs must match).
pub fn parse_selector(text: &str) -> Result<LabelSelector, String> {
    let mut labels = StringMap::default();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("selector `{pair}` is not key=value"))?;
        labels.0.insert(k.trim().to_string(), v.trim().to_string());
    }
    if labels.is_empty() {
        return Err(format!("selector `{text}` is empty"));
    }
    Ok(LabelSelector {
        match_labels: labels,
        ..Default::default()
    })
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LintArgs {
    pub deployment: Option<PathBuf>,
    pub values: Option<PathBuf>,
    /// Each entry is one selector `k=v,k2=v2`; a pod is injected when any of them matches.
    pub selectors: Vec<String>,
    pub format: Format,
}

impl LintArgs {
    /// `--deployment F --values F --selector k=v[,k=v] (repeatable) --format text|json`, for a
    /// caller without its own argument parser.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<LintArgs, String> {
        let mut out = LintArgs::default();
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
            match a.as_str() {
                "--deployment" | "-d" => out.deployment = Some(value(&a)?.into()),
                "--values" | "-v" => out.values = Some(value(&a)?.into()),
                "--selector" | "-s" => out.selectors.push(value(&a)?),
                "--format" | "-f" => out.format = value(&a)?.parse()?,
                other => return Err(format!("unknown argument `{other}`")),
            }
        }
        Ok(out)
    }
}

/// Run lint and print the report. Exit codes: 0 no error (warnings allowed), 1 at least one
/// error, 2 a file cannot be read or parsed, or the arguments are wrong.
pub fn lint_main(args: &LintArgs, out: &mut impl Write, err: &mut impl Write) -> i32 {
    if args.deployment.is_none() && args.values.is_none() {
        let _ = writeln!(err, "lint: give --deployment <file> and/or --values <file>");
        return 2;
    }
    let selectors = match args
        .selectors
        .iter()
        .map(|s| parse_selector(s))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "lint: {e}");
            return 2;
        }
    };
    let selectors = (!selectors.is_empty()).then_some(selectors);
    let findings = match lint(
        args.deployment.as_deref(),
        args.values.as_deref(),
        selectors.as_deref(),
    ) {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return 2;
        }
    };
    let files: Vec<PathBuf> = args
        .deployment
        .iter()
        .chain(args.values.iter())
        .cloned()
        .collect();
    if let Err(e) = print_report(&findings, &files, args.format, out) {
        let _ = writeln!(err, "lint: cannot write the report: {e}");
        return 2;
    }
    if findings.iter().any(|f| f.severity == Severity::Error) {
        1
    } else {
        0
    }
}
