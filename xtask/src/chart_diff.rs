//! `cargo xtask chart-diff`: render a real chart (a `helm pull` or a checkout of Astronomer's
//! airflow-chart, or of the platform chart) with Helm and the same values, and print every
//! difference from harness-config's model, one line each. Exit 0 when there is none, 1 when
//! there is, 2 when the comparison could not run.
//!
//! What is compared: every object the model renders, field by field (Secret data decoded, lists
//! of containers, volumes, mounts and env matched by `name`). What is not: `metadata.namespace`
//! (`helm template` leaves it out; the model sets it for `kubectl apply`), the pod template's
//! annotations (checksums of other objects) and containers the model leaves out on purpose
//! ([`NOT_MODELLED_CONTAINERS`]); those are named on stderr, not counted.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use clap::Args;
use harness_config::{load_deployment, load_values, render_bundle, Deployment, RenderedFile};
use serde::Deserialize as _;
use serde_json::Value;

/// Sidecars of the deployment chart's PgBouncer pod that no part of the Kerberos flow reads.
pub const NOT_MODELLED_CONTAINERS: &[&str] = &["metrics-exporter"];

#[derive(Args)]
pub struct ChartDiffArgs {
    /// The chart: a directory with Chart.yaml (its dependencies in charts/). The deployment
    /// chart (airflow-chart) is compared with the deployment's objects, the platform chart
    /// (`name: astronomer`) with Houston's PgBouncer.
    #[arg(long)]
    pub chart: PathBuf,
    /// The deployment variables; default fixtures/deployments/kerberos.yaml.
    #[arg(long, short = 'd')]
    pub deployment: Option<PathBuf>,
    /// The control plane's values; default fixtures/values.yaml.
    #[arg(long, short = 'v')]
    pub values: Option<PathBuf>,
    #[arg(long, value_parser = ["0.37.7", "1.1.0"])]
    pub platform: Option<String>,
    /// A Helm binary to use instead of the one xtask installs.
    #[arg(long, env = "HELM")]
    pub helm: Option<PathBuf>,
    #[arg(long)]
    pub offline: bool,
}

/// One difference: where, and the two sides (already redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub path: String,
    pub model: String,
    pub chart: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: model {} | chart {}",
            self.path, self.model, self.chart
        )
    }
}

fn short(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(v) => serde_json::to_string(v).unwrap_or_default(),
    }
}

/// Name of a list element when every element of both lists has one.
fn named(list: &[Value]) -> Option<Vec<&str>> {
    list.iter()
        .map(|e| e.get("name").and_then(Value::as_str))
        .collect()
}

/// Every leaf where `model` and `chart` differ, under `path`.
pub fn compare(
    path: &str,
    model: Option<&Value>,
    chart: Option<&Value>,
    out: &mut Vec<Difference>,
) {
    match (model, chart) {
        (Some(Value::Object(m)), Some(Value::Object(c))) => {
            let mut keys: Vec<&String> = m.keys().chain(c.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                compare(&format!("{path}.{k}"), m.get(k), c.get(k), out);
            }
        }
        (Some(Value::Array(m)), Some(Value::Array(c))) => match (named(m), named(c)) {
            (Some(mn), Some(cn)) => {
                let mut names: Vec<&str> = mn.iter().chain(cn.iter()).copied().collect();
                names.dedup();
                let mut seen = Vec::new();
                for n in names {
                    if seen.contains(&n) {
                        continue;
                    }
                    seen.push(n);
                    let pick = |l: &'_ [Value]| l.iter().find(|e| e["name"] == n).cloned();
                    compare(
                        &format!("{path}[{n}]"),
                        pick(m).as_ref(),
                        pick(c).as_ref(),
                        out,
                    );
                }
            }
            _ if m.len() == c.len() => {
                for (i, (a, b)) in m.iter().zip(c).enumerate() {
                    compare(&format!("{path}[{i}]"), Some(a), Some(b), out);
                }
            }
            _ => out.push(Difference {
                path: path.into(),
                model: short(model),
                chart: short(chart),
            }),
        },
        (m, c) if m == c => {}
        (Some(Value::String(m)), Some(Value::String(c)))
            if m.contains('\n') || c.contains('\n') =>
        {
            // A file (pgbouncer.ini, users.txt): name the first line that differs.
            let (ml, cl): (Vec<&str>, Vec<&str>) =
                (m.split('\n').collect(), c.split('\n').collect());
            let i = (0..ml.len().max(cl.len()))
                .find(|&i| ml.get(i) != cl.get(i))
                .unwrap_or(0);
            let line = |l: &[&str]| {
                l.get(i)
                    .map(|t| format!("{t:?}"))
                    .unwrap_or_else(|| "(end of file)".into())
            };
            out.push(Difference {
                path: format!("{path} line {}", i + 1),
                model: line(&ml),
                chart: line(&cl),
            });
        }
        (m, c) => out.push(Difference {
            path: path.into(),
            model: short(m),
            chart: short(c),
        }),
    }
}

/// Secret `data` decoded, so a difference reads as text, not as base64.
fn decode_secret(v: &mut Value) {
    if v["kind"] != "Secret" {
        return;
    }
    if let Some(Value::Object(data)) = v.get_mut("data") {
        for val in data.values_mut() {
            if let Some(text) = val
                .as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .and_then(|b| String::from_utf8(b).ok())
            {
                *val = Value::String(text);
            }
        }
    }
}

/// What is deliberately not compared, removed from both sides; returns what was dropped.
fn strip_unmodelled(v: &mut Value) -> Vec<String> {
    let mut dropped = Vec::new();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("namespace");
    }
    if let Some(t) = v
        .pointer_mut("/spec/template/metadata")
        .and_then(Value::as_object_mut)
    {
        if t.remove("annotations").is_some() {
            dropped.push("spec.template.metadata.annotations".into());
        }
    }
    if let Some(Value::Array(cs)) = v.pointer_mut("/spec/template/spec/containers") {
        cs.retain(|c| {
            let n = c["name"].as_str().unwrap_or_default();
            let keep = !NOT_MODELLED_CONTAINERS.contains(&n);
            if !keep {
                dropped.push(format!("container {n}"));
            }
            keep
        });
    }
    dropped
}

/// The objects `helm template` printed, by `Kind/name`.
pub fn parse_objects(text: &str) -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).context("helm's output is not YAML")?;
        if v.is_null() {
            continue;
        }
        let key = format!(
            "{}/{}",
            v["kind"].as_str().unwrap_or("?"),
            v["metadata"]["name"].as_str().unwrap_or("?")
        );
        out.push((key, v));
    }
    Ok(out)
}

/// Every password of the deployment, in the forms a rendered file may hold it.
fn secrets(d: &Deployment) -> Vec<String> {
    let mut out = Vec::new();
    for c in [d.metadata(), d.result_backend()].into_iter().flatten() {
        if let Some(p) = c.pass.as_deref().filter(|p| p.len() > 2) {
            out.push(harness_config::render::airflow::encode(p));
            out.push(p.to_string());
        }
    }
    out
}

fn redact(text: String, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text, |t, s| t.replace(s.as_str(), "<pass>"))
}

/// The differences between the model's objects and the chart's, and what was not compared.
pub fn diff_objects(
    model: &[(String, Value)],
    chart: &[(String, Value)],
) -> (Vec<Difference>, Vec<String>) {
    let mut diffs = Vec::new();
    let mut skipped = Vec::new();
    for (key, m) in model {
        let Some((_, c)) = chart.iter().find(|(k, _)| k == key) else {
            diffs.push(Difference {
                path: key.clone(),
                model: "rendered".into(),
                chart: "(absent)".into(),
            });
            continue;
        };
        let (mut m, mut c) = (m.clone(), c.clone());
        decode_secret(&mut m);
        decode_secret(&mut c);
        strip_unmodelled(&mut m);
        for s in strip_unmodelled(&mut c) {
            skipped.push(format!("{key} {s}"));
        }
        compare(key, Some(&m), Some(&c), &mut diffs);
    }
    (diffs, skipped)
}

fn model_objects(files: &[RenderedFile], platform_chart: bool) -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for f in files.iter().filter(|f| f.kubernetes) {
        let houston = f.name.starts_with("houston-");
        if houston != platform_chart {
            continue;
        }
        out.extend(parse_objects(&f.text)?);
    }
    Ok(out)
}

fn chart_name(chart: &Path) -> Result<String> {
    let file = chart.join("Chart.yaml");
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "{} is not a chart: cannot read {}",
            chart.display(),
            file.display()
        )
    })?;
    let v: Value = serde_yaml::from_str(&text)
        .with_context(|| format!("{} does not parse", file.display()))?;
    Ok(v["name"].as_str().unwrap_or_default().to_string())
}

/// The differences, redacted, between the model and `args.chart`.
pub fn differences(args: &ChartDiffArgs) -> Result<Vec<String>> {
    let root = crate::cargo::root();
    let dpath = args
        .deployment
        .clone()
        .unwrap_or_else(|| root.join("fixtures/deployments/kerberos.yaml"));
    let vpath = args
        .values
        .clone()
        .unwrap_or_else(|| root.join("fixtures/values.yaml"));
    let d = load_deployment(&dpath)?;
    let v = load_values(&vpath)?;
    let platform = crate::render::platform(args.platform.as_deref(), Some(&v))?;
    let files = render_bundle(&d, Some(&v), platform)?;
    let platform_chart = chart_name(&args.chart)? == "astronomer";
    let model = model_objects(&files, platform_chart)?;
    if model.is_empty() {
        bail!("the model renders nothing to compare with this chart (Houston's PgBouncer needs global.pgbouncer.enabled: true)");
    }

    let helm = match &args.helm {
        Some(h) => h.clone(),
        None => crate::deps::helm(args.offline)?,
    };
    let work = root
        .join("target/chart-diff")
        .join(std::process::id().to_string());
    std::fs::create_dir_all(&work)?;
    let mut cmd = Command::new(&helm);
    cmd.arg("template");
    if platform_chart {
        cmd.arg(v.platform_release())
            .arg(&args.chart)
            .arg("-f")
            .arg(&vpath);
        let ns = v
            .harness
            .as_ref()
            .and_then(|h| h.platform.as_ref()?.namespace.clone())
            .unwrap_or_else(|| v.platform_release().to_string());
        cmd.args(["--namespace", &ns]);
    } else {
        let values = files
            .iter()
            .find(|f| f.name == "values.yaml")
            .context("the bundle has no values.yaml")?;
        let vfile = work.join("values.yaml");
        crate::render::write_secret_file(&vfile, &values.text)?;
        let release = d.release_name.clone().unwrap_or_default();
        let ns = harness_config::render::airflow::namespace(&d)?;
        cmd.arg(&release)
            .arg(&args.chart)
            .arg("-f")
            .arg(&vfile)
            .args(["--namespace", &ns]);
    }
    eprintln!(
        "xtask: rendering {} with {} (platform {platform})",
        args.chart.display(),
        helm.display()
    );
    let out = cmd
        .output()
        .with_context(|| format!("running {}", helm.display()));
    let _ = std::fs::remove_dir_all(&work);
    let out = out?;
    if !out.status.success() {
        bail!(
            "helm template failed:\n{}",
            redact(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
                &secrets(&d)
            )
        );
    }
    let chart = parse_objects(&String::from_utf8_lossy(&out.stdout))?;
    let (diffs, skipped) = diff_objects(&model, &chart);
    for s in skipped {
        eprintln!("not compared (not modelled): {s}");
    }
    let hidden = secrets(&d);
    Ok(diffs
        .iter()
        .map(|diff| redact(diff.to_string(), &hidden))
        .collect())
}

pub fn run(args: &ChartDiffArgs) -> Result<i32> {
    let diffs = differences(args)?;
    for line in &diffs {
        println!("{line}");
    }
    eprintln!(
        "{} difference(s) between the model and {}",
        diffs.len(),
        args.chart.display()
    );
    Ok(i32::from(!diffs.is_empty()))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), &target)?;
        }
    }
    Ok(())
}

/// Part of `cargo xtask test`: chart-diff against the project's own small chart
/// (fixtures/charts/deployment) finds nothing, and finds exactly the broken line once the
/// chart is broken (the subchart's own pool defaults, 10 / 5, instead of airflow-chart's).
pub fn self_test(offline: bool) -> Result<()> {
    let root = crate::cargo::root();
    let helm = crate::deps::helm(offline)?;
    let args = |chart: PathBuf| ChartDiffArgs {
        chart,
        deployment: None,
        values: None,
        platform: None,
        helm: Some(helm.clone()),
        offline,
    };
    eprintln!("xtask: chart-diff against the project's test chart (fixtures/charts/deployment)");
    let clean = differences(&args(root.join("fixtures/charts/deployment")))?;
    if !clean.is_empty() {
        bail!(
            "chart-diff finds differences between the model and fixtures/charts/deployment:\n{}",
            clean.join("\n")
        );
    }
    let broken = root.join("target/chart-diff/broken-chart");
    let _ = std::fs::remove_dir_all(&broken);
    copy_dir(&root.join("fixtures/charts/deployment"), &broken)?;
    let values = broken.join("values.yaml");
    let text =
        std::fs::read_to_string(&values)?.replace("metadataPoolSize: 3", "metadataPoolSize: 10");
    std::fs::write(&values, text)?;
    let found = differences(&args(broken.clone()))?;
    let _ = std::fs::remove_dir_all(&broken);
    let want = "Secret/kerberos-demo-pgbouncer-config.data.pgbouncer.ini line 5: model";
    if found.len() != 1 || !found[0].starts_with(want) || !found[0].contains("pool_size=10") {
        bail!("chart-diff should report exactly the pool_size line of a chart with the subchart's pools; it reported:\n{}", found.join("\n"));
    }
    Ok(())
}
