//! What the whole run shares: the run directory, the settings and the substrate of the tier, the
//! configuration being exercised. `cargo xtask e2e` passes the settings in the environment
//! (E2E_*, parsed once here by `harness_config::settings`).

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context as _, Result};
use harness::run::RunDir;
use harness::stack::Shape;
use harness::substrate::{Substrate, Tier};
use harness_config::settings::Settings;

pub struct Ctx {
    pub run: RunDir,
    /// The run's settings, parsed once from the `E2E_*` variables `cargo xtask e2e` sets.
    pub settings: Settings,
    /// The tier the run was asked for (`auto` picks per scenario, see [`Ctx::substrate_for`]).
    pub tier: String,
    /// The substrates scenarios run on, in order of preference: one, or docker then local for
    /// `auto`.
    pub substrates: Vec<(Tier, std::sync::Arc<dyn Substrate>)>,
    pub shape: Shape,
    pub keep: bool,
    pub ci: bool,
    pub concurrency: usize,
    pub run_timeout: Duration,
}

static CTX: OnceLock<Ctx> = OnceLock::new();

pub fn get() -> &'static Ctx {
    CTX.get().expect("the e2e context is initialised in main")
}

pub fn init() -> Result<&'static Ctx> {
    // The runner is an edge: the one place that reads the process environment.
    let settings = Settings::from_vars(|k| std::env::var(k).ok())?;
    if let Some(c) = &settings.canary {
        harness::secret::plant_canary(c);
    }
    let base = harness::run::workspace_root().join("target/e2e");
    let run = match &settings.run_dir {
        Some(d) => RunDir::open(d)?,
        None => RunDir::create(&base)?,
    };
    let substrates = match settings.tier.as_str() {
        "auto" => {
            let docker = Settings {
                tier: "docker".into(),
                ..settings.clone()
            };
            let mut v = Vec::new();
            match harness::substrate::for_run(&docker, Some(&run.id)) {
                Ok(d) => v.push((Tier::Docker, d)),
                Err(e) => eprintln!("e2e: every scenario runs on the local tier: {e:#}"),
            }
            v.push((Tier::Local, harness::substrate::for_tier(Tier::Local)?));
            v
        }
        t => vec![(
            t.parse()?,
            harness::substrate::for_run(&settings, Some(&run.id))?,
        )],
    };
    // A replayed configuration: lint errors refuse the run unless E2E_REPLAY=reproduce asks to
    // run the breakage as written; E2E_VALUES supplies the injector's selectors.
    let values = settings.values.clone().map(from_workspace);
    let shape = match settings.deployment.clone() {
        Some(f) => {
            let replay =
                harness::replay::load(&from_workspace(f), values.as_deref(), settings.replay)?;
            for e in replay.errors() {
                eprintln!(
                    "e2e: replaying {} as written, with {} {} at {}: {}",
                    replay.file.display(),
                    e.rule,
                    e.name,
                    e.path,
                    e.message
                );
            }
            replay.shape
        }
        None => {
            if let Some(v) = &values {
                anyhow::bail!("E2E_VALUES={} needs E2E_DEPLOYMENT: the values only add the injector's selectors to a replayed deployment", v.display());
            }
            Shape::default()
        }
    };
    let ctx = Ctx {
        run,
        tier: settings.tier.clone(),
        substrates,
        shape,
        keep: settings.keep,
        ci: settings.ci,
        concurrency: settings.concurrency,
        run_timeout: Duration::from_secs(settings.run_timeout_min * 60),
        settings,
    };
    let n = &ctx.shape.names;
    std::fs::write(
        ctx.run.root.join("run.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "run_id": ctx.run.id,
            "tier": ctx.tier,
            "tiers": ctx.substrates.iter().map(|(t, _)| t.to_string()).collect::<Vec<_>>(),
            "realm": n.realm,
            "principal": n.client_principal,
            "db_host": n.db_host,
            "server_spn": n.server_spn,
            "requested_spn": n.requested_spn,
            "release": n.release_name,
            "deployment": ctx.settings.deployment,
            "values": ctx.settings.values,
            "replay": format!("{:?}", ctx.settings.replay).to_lowercase(),
        }))?,
    )?;
    Ok(CTX.get_or_init(|| ctx))
}

/// `cargo test` runs the runner in harness/, so a relative path typed at the workspace root
/// would not be found; xtask passes absolute paths.
fn from_workspace(p: PathBuf) -> PathBuf {
    if p.is_relative() && !p.exists() {
        harness::run::workspace_root().join(p)
    } else {
        p
    }
}

impl Ctx {
    /// Where a scenario runs: the first of the run's tiers that its tags allow (a scenario that
    /// names no tier runs anywhere); None when it runs on none of them.
    pub fn substrate_for<'a>(
        &self,
        tags: impl IntoIterator<Item = &'a String> + Clone,
    ) -> Option<(Tier, std::sync::Arc<dyn Substrate>)> {
        let named: Vec<Tier> = tags
            .into_iter()
            .filter_map(|t| match t.as_str() {
                "local" | "docker" | "kind" => t.parse().ok(),
                _ => None,
            })
            .collect();
        self.substrates
            .iter()
            .find(|(t, _)| named.is_empty() || named.contains(t))
            .cloned()
    }

    /// Stops everything every substrate of the run started (Ctrl-C, the run's time limit).
    pub fn kill_all(&self) -> usize {
        self.substrates.iter().map(|(_, s)| s.kill_all()).sum()
    }
}

pub fn finish_run(ctx: &Ctx) {
    harness::redact::sweep(&ctx.run.root);
}

/// An interrupted run (Ctrl-C, the run's limit) exits without finishing its scenarios or running
/// any Drop: stop every component, then do what each scenario's end would have done (secrets
/// masked in the artifacts and deleted unless `--keep`) and remove the directories outside the
/// run directory. Returns the number of process groups stopped.
pub fn abandon_run(ctx: &Ctx) -> usize {
    let ours = harness::orphans::descendants();
    let mut stopped = ctx.kill_all();
    harness::scratch::remove_all();
    if let Ok(entries) = std::fs::read_dir(&ctx.run.root) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                harness::environment::scrub(&e.path(), ctx.keep);
            }
        }
    }
    harness::redact::sweep(&ctx.run.root);
    // A scenario still bringing its environment up may have started a component meanwhile.
    let ours: Vec<i32> = ours
        .into_iter()
        .chain(harness::orphans::descendants())
        .collect();
    stopped += ctx.kill_all();
    // Tools the steps were running (they are not components, so kill_all does not know them).
    harness::orphans::kill_descendants();
    harness::scratch::remove_all();
    harness::orphans::remove_shared_memory_of(&ours);
    stopped
}

/// Which scenarios run: a cucumber tag expression and a scenario-name regex.
pub struct Selection {
    pub tags: Option<cucumber::gherkin::tagexpr::TagOperation>,
    pub name: Option<regex::Regex>,
}

impl Selection {
    pub fn from_settings(s: &Settings) -> Result<Selection> {
        let tags = match &s.tags {
            Some(t) => Some(t.parse().map_err(|e| {
                anyhow::anyhow!("--tags `{t}` is not a tag expression ({e:?}); write e.g. `@pgbouncer and not @airflow`")
            })?),
            None => None,
        };
        let name = match &s.name {
            Some(n) => Some(
                regex::Regex::new(n)
                    .with_context(|| format!("--name `{n}` is not a valid regex"))?,
            ),
            None => None,
        };
        Ok(Selection { tags, name })
    }
}
