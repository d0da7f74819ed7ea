//! Steps for the configuration a user applies: lint it the way `cargo xtask lint` does, and build
//! the environment from it (replay), so the run shows what the platform would do with it.

use std::path::PathBuf;

use anyhow::{bail, ensure, Context as _, Result};
use cucumber::{gherkin::Step, given, then, when};
use harness::replay::{self, Policy};
use harness_config::{lint_main, Format, LintArgs};

use super::World;

/// The configuration files of one scenario and what lint said about them.
#[derive(Default)]
pub struct ConfigState {
    pub deployment: Option<PathBuf>,
    pub values: Option<PathBuf>,
    pub lint: Option<LintRun>,
}

pub struct LintRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Paths in scenarios are relative to the workspace root, as a person types them there.
fn resolve(path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    if p.is_absolute() {
        p
    } else {
        harness::run::workspace_root().join(p)
    }
}

fn deployment(w: &World) -> Result<PathBuf> {
    w.config
        .deployment
        .clone()
        .context("no deployment file: the scenario needs `Given the deployment file \"...\"` first")
}

#[given(expr = "the deployment file {string}")]
async fn deployment_file(w: &mut World, path: String) -> Result<()> {
    let p = resolve(&path);
    ensure!(
        p.is_file(),
        "the deployment file {} does not exist",
        p.display()
    );
    w.config.deployment = Some(p);
    Ok(())
}

/// A customer's file pasted into a ticket: written to the scenario's directory as given.
#[given("the customer's deployment file:")]
async fn customer_file(w: &mut World, step: &Step) -> Result<()> {
    let text = step
        .docstring
        .as_deref()
        .context("the step needs the file as a doc string (\"\"\" ... \"\"\")")?;
    let p = w.dir()?.join("customer-deployment.yaml");
    std::fs::write(&p, text.trim_start_matches('\n'))?;
    w.config.deployment = Some(p);
    Ok(())
}

#[given(expr = "the control plane values {string}")]
async fn values_file(w: &mut World, path: String) -> Result<()> {
    let p = resolve(&path);
    ensure!(
        p.is_file(),
        "the values file {} does not exist",
        p.display()
    );
    w.config.values = Some(p);
    Ok(())
}

#[when("the deployment is linted")]
async fn lint(w: &mut World) -> Result<()> {
    let args = LintArgs {
        deployment: Some(deployment(w)?),
        values: w.config.values.clone(),
        selectors: Vec::new(),
        format: Format::Json,
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = lint_main(&args, &mut out, &mut err);
    w.config.lint = Some(LintRun {
        code,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    });
    Ok(())
}

fn lint_run(w: &World) -> Result<&LintRun> {
    w.config
        .lint
        .as_ref()
        .context("lint has not run: the scenario needs `When the deployment is linted` first")
}

/// `(rule, severity, file, path)` of every finding in the JSON report.
fn findings(run: &LintRun) -> Result<Vec<(String, String, String, String)>> {
    let report: serde_json::Value = serde_json::from_str(&run.stdout).with_context(|| {
        format!(
            "lint's JSON report does not parse; stdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        )
    })?;
    ensure!(
        report["schema"] == harness_config::SCHEMA,
        "lint's report has schema {}, expected {}",
        report["schema"],
        harness_config::SCHEMA
    );
    let list = report["findings"]
        .as_array()
        .context("lint's report has no `findings` list")?;
    Ok(list
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("rule"), s("severity"), s("file"), s("path"))
        })
        .collect())
}

#[then(expr = "lint exits with {int}")]
async fn lint_exits(w: &mut World, code: i32) -> Result<()> {
    let run = lint_run(w)?;
    ensure!(
        run.code == code,
        "lint exited with {} instead of {code}; stdout:\n{}\nstderr:\n{}",
        run.code,
        run.stdout,
        run.stderr
    );
    Ok(())
}

#[then("lint reports no error and no warning")]
async fn lint_clean(w: &mut World) -> Result<()> {
    let run = lint_run(w)?;
    let loud: Vec<_> = findings(run)?
        .into_iter()
        .filter(|f| f.1 != "info")
        .collect();
    ensure!(
        run.code == 0 && loud.is_empty(),
        "lint (exit {}) reports {loud:?}",
        run.code
    );
    Ok(())
}

#[then(expr = "lint reports {word} as {word} in the deployment file")]
async fn lint_reports(w: &mut World, rule: String, severity: String) -> Result<()> {
    let file = deployment(w)?.display().to_string();
    reported_in(w, &rule, &severity, &file)
}

/// Lint's report has `rule` with `severity` in `file`, naming the field.
pub(super) fn reported_in(w: &World, rule: &str, severity: &str, file: &str) -> Result<()> {
    let run = lint_run(w)?;
    let all = findings(run)?;
    let hit = all.iter().find(|f| f.0 == rule);
    let Some((_, sev, in_file, path)) = hit else {
        bail!(
            "lint does not report {rule}; it reports {:?}",
            all.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
    };
    ensure!(
        *sev == severity,
        "lint reports {rule} as {sev}, expected {severity}"
    );
    ensure!(
        *in_file == file,
        "lint reports {rule} in {in_file}, expected {file}"
    );
    ensure!(
        !path.is_empty(),
        "lint reports {rule} without naming the field"
    );
    Ok(())
}

#[then(expr = "lint stops with a message naming the file and {string}")]
async fn lint_stops(w: &mut World, needle: String) -> Result<()> {
    let run = lint_run(w)?;
    let file = deployment(w)?.display().to_string();
    ensure!(
        run.code == 2,
        "lint exited with {} instead of 2; stdout:\n{}",
        run.code,
        run.stdout
    );
    ensure!(
        run.stdout.is_empty(),
        "lint printed a report for a file it cannot read:\n{}",
        run.stdout
    );
    ensure!(
        run.stderr.contains(&file) && run.stderr.contains(&needle),
        "lint's message does not name {file} and `{needle}`: {}",
        run.stderr
    );
    Ok(())
}

#[then(expr = "replaying the deployment is refused naming {word}, the field and the fix")]
async fn replay_refused(w: &mut World, rule: String) -> Result<()> {
    let file = deployment(w)?;
    let e = match replay::load(&file, w.config.values.as_deref(), Policy::Refuse) {
        Ok(_) => bail!(
            "replaying {} was accepted, but it has a lint error ({rule})",
            file.display()
        ),
        Err(e) => format!("{e:#}"),
    };
    for needle in [
        format!("error[{rule} "),
        file.display().to_string(),
        "fix: ".into(),
    ] {
        ensure!(
            e.contains(&needle),
            "the refusal does not say `{needle}`:\n{e}"
        );
    }
    Ok(())
}

#[then("replaying the deployment is accepted")]
async fn replay_accepted(w: &mut World) -> Result<()> {
    let file = deployment(w)?;
    replay::load(&file, w.config.values.as_deref(), Policy::Refuse)
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("replaying {} was refused: {e:#}", file.display()))
}

async fn build(w: &mut World, policy: Policy) -> Result<()> {
    let file = deployment(w)?;
    let r = replay::load(&file, w.config.values.as_deref(), policy)?;
    // Scenario text ({principal}, {spn}, ...) now speaks of the replayed configuration.
    w.shape = r.shape.clone();
    w.up(r.shape).await?;
    super::pgbouncer::start(w, |_| {}).await
}

#[when("the environment is built from the deployment file")]
async fn build_clean(w: &mut World) -> Result<()> {
    build(w, Policy::Refuse).await
}

#[when("the environment is built from the deployment file as written, errors included")]
async fn build_as_written(w: &mut World) -> Result<()> {
    build(w, Policy::Reproduce).await
}

#[when(expr = "a client connects through PgBouncer to the {word} database as Airflow would")]
async fn client_connects_to(w: &mut World, which: String) -> Result<()> {
    let s = w.env()?;
    let pw = s.client_password().to_string();
    let target = match which.as_str() {
        "metadata" => s.metadata_target(&pw)?,
        "result-backend" => s.result_backend_target(&pw)?,
        other => bail!("no `{other}` database: write metadata or result-backend"),
    };
    super::pgbouncer::connect_as_user(w, &target).await
}

#[then(expr = "PgBouncer runs an ini that says {string}")]
async fn ini_says(w: &mut World, line: String) -> Result<()> {
    let line = w.x(&line);
    let ini = w.env()?.pgbouncer_ini().await?;
    ensure!(
        ini.lines().any(|l| l.trim() == line),
        "PgBouncer's ini has no line `{line}`; it is:\n{ini}"
    );
    Ok(())
}
