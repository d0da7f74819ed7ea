//! Carries a kind plan out on a machine that has kind, Helm, the node image and Astronomer's
//! images. Commands run with their output in the run's artifacts; everything that talks to the
//! Kubernetes API goes through kube-rs. A pod in a terminal state fails the step at once
//! (ImagePullBackOff and the like never recover by waiting), and every failure leaves the
//! evidence a support engineer asks for first: events, every pod's log, `kubectl describe` of
//! what is not ready. Teardown steps run whatever happened before them.
//!
//! Not exercised on the machine this was written on (no kind, node image or Astronomer images):
//! every line below `run` runs for the first time on a machine that has them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams, LogParams, Patch, PatchParams};
use kube::discovery::{Discovery, Scope};
use kube::Client;
use serde_json::{json, Value};

use super::houston::{self, Houston};
use super::plan::{Action, Phase, Plan, PodWait, Step};
use super::Options;

/// Waiting states a pod does not leave by itself.
pub const TERMINAL_REASONS: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "InvalidImageName",
];

const STEP_LIMIT: Duration = Duration::from_secs(20 * 60);

/// What the Houston steps learn and hand on.
#[derive(Default)]
struct Session {
    /// The KDC and PostgreSQL, up from the external step until the teardown.
    external: Option<super::external::External>,
    token: Option<String>,
    workspace: Option<String>,
    cluster: Option<String>,
}

pub async fn run(o: &Options, plan: &Plan) -> Result<()> {
    let evidence = o.work.join("evidence");
    std::fs::create_dir_all(&evidence)?;
    let (work, teardown): (Vec<&Step>, Vec<&Step>) =
        plan.steps.iter().partition(|s| s.phase != Phase::Teardown);
    let mut session = Session::default();
    let mut result = Ok(());
    for (i, step) in work.iter().enumerate() {
        eprintln!(
            "kind: {}/{} [{}] {}",
            i + 1,
            work.len(),
            step.phase,
            step.title
        );
        let started = Instant::now();
        if let Err(e) = one(o, step, &mut session, &evidence).await {
            eprintln!("kind: failed after {:.0?}: {e:#}", started.elapsed());
            collect_evidence(o, &evidence);
            result = Err(e.context(format!("kind tier step `{}`", step.title)));
            break;
        }
    }
    for step in teardown {
        eprintln!("kind: [teardown] {}", step.title);
        let done = match &step.action {
            Action::Run(a) => command(a, None, &evidence),
            Action::RemoveExternal { run } => {
                if let Some(mut e) = session.external.take() {
                    e.down().await;
                }
                super::external::remove_all(run).map(drop)
            }
            _ => Ok(()),
        };
        if let Err(e) = done {
            eprintln!("kind: teardown: {e:#}");
        }
    }
    super::external::scrub(o);
    result
}

fn kubeconfig(o: &Options) -> PathBuf {
    o.kubeconfig
        .clone()
        .unwrap_or_else(|| o.work.join("kubeconfig"))
}

async fn client(o: &Options) -> Result<Client> {
    let path = kubeconfig(o);
    let kc = kube::config::Kubeconfig::read_from(&path)
        .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .with_context(|| format!("the kubeconfig {}", path.display()))?;
    Ok(Client::try_from(cfg)?)
}

async fn one(o: &Options, step: &Step, s: &mut Session, evidence: &Path) -> Result<()> {
    match &step.action {
        Action::Run(argv) => command(argv, None, evidence),
        Action::Feed { argv, stdin } => command(argv, Some(stdin), evidence),
        Action::Apply(_) | Action::Credentials { .. } => {
            let objects = step.objects()?.unwrap_or_default();
            apply_objects(&client(o).await?, &step.title, &objects).await
        }
        Action::External {
            network,
            creds,
            databases,
            ..
        } => {
            s.external = Some(super::external::External::up(o, creds, databases, network).await?);
            Ok(())
        }
        Action::RemoveExternal { .. } => Ok(()),
        Action::Pods(w) => pods(&client(o).await?, w).await,
        Action::Job { namespace, name } => job(&client(o).await?, namespace, name).await,
        Action::Https {
            url,
            expect,
            authorized,
        } => {
            let token = match authorized {
                true => Some(s.token.as_deref().context(
                    "no Houston token: the createUser step did not run or returned none",
                )?),
                false => None,
            };
            https(o, url, expect, token).await
        }
        Action::Scenarios { kubeconfig } => scenarios(o, kubeconfig),
        Action::Browser { url } => {
            let token = s
                .token
                .as_deref()
                .context("no Houston token: the createUser step did not run or returned none")?;
            browser(o, url, token, evidence).await
        }
        Action::Graphql(doc) => graphql(o, doc, s).await,
    }
}

/// Runs a command with its output kept in the evidence; a failure names the command and quotes
/// the end of its output.
fn command(argv: &[String], stdin: Option<&Path>, evidence: &Path) -> Result<()> {
    let log = evidence.join(format!(
        "{}.log",
        argv.iter().take(3).cloned().collect::<Vec<_>>().join("-")
    ));
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(f) = stdin {
        cmd.stdin(std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?);
    }
    let out = cmd
        .output()
        .with_context(|| format!("could not run `{}`", argv[0]))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text += &String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::write(&log, &text);
    if !out.status.success() {
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        bail!(
            "`{}` failed ({}); its output is in {}:\n{}",
            argv.join(" "),
            out.status,
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(())
}

/// Server-side apply of objects, each with the API resource the server says its kind is (so a
/// kind this server does not serve is named, not guessed). `source` names where they came from.
async fn apply_objects(client: &Client, source: &str, objects: &[Value]) -> Result<()> {
    let discovery = Discovery::new(client.clone()).run().await?;
    let pp = PatchParams::apply("astro-e2e").force();
    for value in objects {
        let obj: DynamicObject = serde_json::from_value(value.clone())
            .with_context(|| format!("{source}: not a Kubernetes object"))?;
        let tm = obj
            .types
            .clone()
            .with_context(|| format!("{source}: an object without apiVersion/kind"))?;
        let gvk = kube::api::GroupVersionKind::try_from(&tm)?;
        let (ar, caps) = discovery.resolve_gvk(&gvk).with_context(|| {
            format!(
                "{source}: the server does not serve {} {}",
                tm.api_version, tm.kind
            )
        })?;
        let name = obj
            .metadata
            .name
            .clone()
            .context("an object without a name")?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Cluster => Api::all_with(client.clone(), &ar),
            Scope::Namespaced => Api::namespaced_with(
                client.clone(),
                obj.metadata.namespace.as_deref().unwrap_or("default"),
                &ar,
            ),
        };
        api.patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .with_context(|| format!("{source}: applying {} {name}", tm.kind))?;
    }
    Ok(())
}

/// Why a pod will not become ready by waiting, if it will not.
pub fn terminal_state(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let all = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for c in all {
        let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
        if let Some(w) = waiting {
            let reason = w.reason.as_deref().unwrap_or("");
            if TERMINAL_REASONS.contains(&reason) {
                return Some(format!(
                    "container {} of pod {}: {reason}: {}",
                    c.name,
                    pod.metadata.name.as_deref().unwrap_or("?"),
                    w.message.as_deref().unwrap_or("")
                ));
            }
        }
    }
    None
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Whether the webhook put `var` into every container of the pod that runs PgBouncer.
pub fn injected(pod: &Pod, var: &str) -> bool {
    pod.spec.as_ref().is_some_and(|s| {
        s.containers
            .iter()
            .any(|c| c.env.iter().flatten().any(|e| e.name == var))
    })
}

async fn pods(client: &Client, w: &PodWait) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(client.clone(), &w.namespace);
    let lp = ListParams::default().labels(&w.selector);
    let deadline = Instant::now() + STEP_LIMIT;
    loop {
        let list = api.list(&lp).await?;
        for p in &list.items {
            if let Some(t) = terminal_state(p) {
                bail!("{t}");
            }
        }
        let all_ready = !list.items.is_empty() && list.items.iter().all(ready);
        if all_ready {
            if let Some(var) = w.injected_env {
                if let Some(p) = list.items.iter().find(|p| !injected(p, var)) {
                    bail!(
                        "pod {} ({}) is running without {var}: the credential injector did not mutate it; compare its labels with the webhook's selectors (lint rule KRB017)",
                        p.metadata.name.as_deref().unwrap_or("?"),
                        w.selector
                    );
                }
            }
            match w.log_line {
                None => return Ok(()),
                Some(line) => {
                    let mut seen = true;
                    for p in &list.items {
                        let name = p.metadata.name.as_deref().unwrap_or("");
                        let log = api.logs(name, &LogParams::default()).await?;
                        seen &= log.contains(line);
                    }
                    if seen {
                        return Ok(());
                    }
                }
            }
        }
        if Instant::now() > deadline {
            bail!(
                "pods {} in {} not ready within {STEP_LIMIT:?}",
                w.selector,
                w.namespace
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn job(client: &Client, namespace: &str, name: &str) -> Result<()> {
    let api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let deadline = Instant::now() + STEP_LIMIT;
    loop {
        if let Some(j) = api.get_opt(name).await? {
            let st = j.status.unwrap_or_default();
            if st.succeeded.unwrap_or(0) > 0 {
                return Ok(());
            }
            if st.failed.unwrap_or(0) > 0 {
                bail!("job {name} in {namespace} failed; its pod's log is in the evidence");
            }
        }
        if Instant::now() > deadline {
            bail!("job {name} in {namespace} did not complete within {STEP_LIMIT:?}");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// A client that reaches the ingress on loopback under the platform's host names, trusting the
/// run's CA only.
fn ingress_client(o: &Options) -> Result<reqwest::Client> {
    let mut b = crate::http::builder().timeout(Duration::from_secs(30));
    // The ingress serves the run's certificate (the plan's astronomer-tls): trust that CA.
    let ca = o.pki_dir().join("ca.crt");
    let pem = std::fs::read(&ca)
        .with_context(|| format!("{}: the run's CA (the plan writes it)", ca.display()))?;
    b = b.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    let lo = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, o.https_port));
    for host in ["houston", "deployments", "app"] {
        b = b.resolve(&format!("{host}.{}", o.base_domain), lo);
    }
    Ok(b.build()?)
}

async fn https(o: &Options, url: &str, expect: &str, token: Option<&str>) -> Result<()> {
    let http = ingress_client(o)?;
    let deadline = Instant::now() + STEP_LIMIT;
    let mut last: String;
    loop {
        let mut req = http.get(url);
        if let Some(t) = token {
            // As astro-cli sends it: the bare token, no scheme.
            req = req.header("authorization", t);
        }
        match req.send().await {
            Ok(r) if r.status() == 200 => {
                let body = r.text().await.unwrap_or_default();
                if expect.is_empty() || body.contains(expect) {
                    return Ok(());
                }
                last = format!("HTTP 200 without `{expect}`: {body}");
            }
            Ok(r) => last = format!("HTTP {}", r.status()),
            Err(e) => last = format!("{e}"),
        }
        if Instant::now() > deadline {
            bail!("GET {url}: {last}");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn graphql(o: &Options, doc: &houston::Document, s: &mut Session) -> Result<()> {
    let mut h = Houston::new(&o.houston_url(), ingress_client(o)?);
    if let Some(t) = &s.token {
        h.authenticate(t);
    }
    let mutation = match o.platform {
        super::Platform::Software0377 => houston::CREATE_DEPLOYMENT.operation,
        super::Platform::Apc110 => houston::UPSERT_DEPLOYMENT.operation,
    };
    match doc.operation {
        "__type" => {
            let answer = h.send(doc, json!({})).await?;
            let missing = houston::missing_arguments(&answer, mutation);
            if !missing.is_empty() {
                bail!(
                    "Houston cannot create a Kerberos deployment:\n  {}",
                    missing.join("\n  ")
                );
            }
        }
        "createUser" => {
            let password = crate::secret::Secret::generate();
            let answer = h
                .send(
                    doc,
                    json!({"email": "e2e-admin@example.test", "password": password.expose(), "username": "e2e-admin"}),
                )
                .await?;
            s.token = answer["data"]["createUser"]["token"]["value"]
                .as_str()
                .map(str::to_string);
            if s.token.is_none() {
                bail!("createUser returned no token: Houston's database is not fresh (the first user is created unauthenticated only once)");
            }
        }
        "createWorkspace" => {
            let answer = h
                .send(doc, json!({"label": format!("e2e {}", o.name)}))
                .await?;
            s.workspace = answer["data"]["createWorkspace"]["id"]
                .as_str()
                .map(str::to_string);
        }
        "paginatedClusters" => {
            let answer = h.send(doc, json!({})).await?;
            s.cluster = answer["data"]["paginatedClusters"]["clusters"][0]["id"]
                .as_str()
                .map(str::to_string);
            if s.cluster.is_none() {
                bail!("Houston lists no cluster to place the deployment on");
            }
        }
        _ => {
            let text = std::fs::read_to_string(&o.deployment)?;
            let file: Value = serde_yaml::from_str(&text)
                .with_context(|| format!("{}", o.deployment.display()))?;
            let ws = s.workspace.as_deref().context("no workspace was created")?;
            let vars = houston::deployment_variables(&file, ws, s.cluster.as_deref());
            h.send(doc, vars).await?;
        }
    }
    Ok(())
}

/// The Airflow UI in a real browser, as the platform's user reaches it: through the ingress on
/// loopback, the run's certificate pinned (the run's CA is in no browser's store).
async fn browser(o: &Options, url: &str, token: &str, evidence: &Path) -> Result<()> {
    use crate::airflow::browser::{self, Login, Visit};
    let key = o
        .pki_dir()
        .join(format!("{}.key", super::injector::INGRESS_TLS_SECRET));
    let visit = Visit {
        url: url.to_string(),
        login: Login::Header {
            name: "authorization",
            value: crate::secret::Secret::adopt(token),
        },
        landmarks: browser::landmarks(crate::airflow::Version::Airflow3),
        label: "kind-airflow".into(),
        host_rules: Some(format!(
            "MAP *.{} {}",
            o.base_domain,
            std::net::Ipv4Addr::LOCALHOST
        )),
        trust_spki: Some(crate::kube::pki::Pki::spki_pin(&key)?),
    };
    let check = browser::visit_ui(&visit, evidence, Duration::from_secs(180)).await?;
    eprintln!(
        "kind: the browser saw Airflow's UI at {}; screenshot {}",
        check.url,
        check.screenshot.display()
    );
    Ok(())
}

/// Runs the scenario runner on this cluster with the kind substrate; its output is the user's.
fn scenarios(o: &Options, kubeconfig: &Path) -> Result<()> {
    let runner = o
        .runner
        .as_ref()
        .context("no scenario runner was given (`harness kind --runner PATH`; `cargo xtask e2e --tier kind` passes it)")?;
    let status = Command::new(runner)
        .current_dir(crate::run::workspace_root().join("harness"))
        .env("E2E_TIER", "kind")
        .env("E2E_KUBECONFIG", kubeconfig)
        .status()
        .with_context(|| format!("could not start the scenario runner {}", runner.display()))?;
    if !status.success() {
        bail!(
            "the @kind scenarios failed ({status}); each failed scenario's logs are in its directory under target/e2e/latest"
        );
    }
    Ok(())
}

/// Events, every pod's log and `kubectl describe` of what is not ready, into `dir`. Best effort:
/// a cluster that is half down still gives what it can.
fn collect_evidence(o: &Options, dir: &Path) {
    let kc = kubeconfig(o).display().to_string();
    let k = |args: &[&str], file: &str| {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kc)
            .args(args)
            .output();
        if let Ok(out) = out {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text += &String::from_utf8_lossy(&out.stderr);
            let _ = std::fs::write(dir.join(file), text);
        }
    };
    k(
        &[
            "get",
            "events",
            "--all-namespaces",
            "--sort-by=.lastTimestamp",
        ],
        "events.txt",
    );
    k(
        &["get", "pods", "--all-namespaces", "-o", "wide"],
        "pods.txt",
    );
    k(
        &["describe", "pods", "--all-namespaces"],
        "describe-pods.txt",
    );
    k(
        &[
            "logs",
            "--all-containers",
            "--prefix",
            "--namespace",
            o.platform_namespace(),
            "--selector",
            "release",
        ],
        "logs-platform.txt",
    );
    k(
        &["get", "mutatingwebhookconfigurations", "-o", "yaml"],
        "webhooks.yaml",
    );
    eprintln!("kind: evidence in {}", dir.display());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn image_pull_back_off_is_terminal_and_named() {
        let p = pod(
            json!({"metadata": {"name": "pgb-1"}, "status": {"containerStatuses": [
            {"name": "pgbouncer", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"waiting": {"reason": "ImagePullBackOff", "message": "pull access denied"}}}]}}),
        );
        let t = terminal_state(&p).unwrap();
        assert!(t.contains("pgbouncer") && t.contains("pgb-1") && t.contains("ImagePullBackOff"));
    }

    #[test]
    fn container_creating_is_not_terminal() {
        let p = pod(
            json!({"metadata": {"name": "pgb-1"}, "status": {"containerStatuses": [
            {"name": "pgbouncer", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"waiting": {"reason": "ContainerCreating"}}}]}}),
        );
        assert_eq!(terminal_state(&p), None);
    }

    #[test]
    fn the_injector_s_mark_is_read_from_the_container_env() {
        let with = pod(json!({"metadata": {"name": "a"}, "spec": {"containers": [
            {"name": "pgbouncer", "env": [{"name": "KRB5_CLIENT_KTNAME", "value": "/krb5/keytab"}]}]}}));
        let without = pod(
            json!({"metadata": {"name": "a"}, "spec": {"containers": [{"name": "pgbouncer"}]}}),
        );
        assert!(injected(&with, "KRB5_CLIENT_KTNAME"));
        assert!(!injected(&without, "KRB5_CLIENT_KTNAME"));
    }
}
