//! Steps for the API server tier (features/apiserver.feature): a real kube-apiserver on etcd,
//! the reference webhook registered by URL with the run's CA, PgBouncer pods from the
//! configuration model created through it with kube-rs, and what comes back.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use cucumber::{given, then, when};
use harness::kube::manifests::{self, Target};
use harness::kube::{describe, pods, Cluster, Webhook};
use harness::secret::Secret;
use harness_config::{Deployment, Values};
use kerberos_webhook::inject::{
    KEYTAB_DIR, KEYTAB_FILE, KEYTAB_VOLUME, KRB5_DIR, KRB5_FILE, KRB5_VOLUME, TMP_VOLUME,
};
use serde_json::{json, Value};

use super::{context, within, World};

/// The API server, the webhook and what the scenario sent and got back.
#[derive(Default)]
pub struct KubeState {
    cluster: Option<Cluster>,
    webhook: Option<Webhook>,
    /// The pod as the harness sent it, and as the API server stored it.
    sent: Option<Value>,
    stored: Option<Value>,
    /// The manifests applied and the API server's answer for each.
    applied: Vec<(String, Result<(), String>)>,
    /// The kind tier's plan made for this scenario, and the objects its steps apply.
    plan: Option<(harness::kind::Options, harness::kind::plan::Plan)>,
    plan_objects: Vec<Value>,
}

impl KubeState {
    /// Everything started is stopped: the webhook, then the API server, then etcd.
    pub async fn stop(&mut self) {
        if let Some(mut w) = self.webhook.take() {
            w.stop();
        }
        if let Some(mut c) = self.cluster.take() {
            c.stop().await;
        }
        // The plan's keytabs and the objects holding them are this scenario's secrets.
        if let Some((o, _)) = self.plan.take() {
            let _ = std::fs::remove_dir_all(o.work.join("external/keytabs"));
            let _ = std::fs::remove_file(o.work.join("credentials.yaml"));
            let _ = std::fs::remove_file(o.work.join("houston-db.yaml"));
        }
    }
}

fn cluster(w: &World) -> Result<&Cluster> {
    w.kube.cluster.as_ref().context(
        "no API server: the scenario needs `Given a Kubernetes API server with the reference webhook registered ...` first",
    )
}

fn webhook(w: &mut World) -> Result<&mut Webhook> {
    w.kube
        .webhook
        .as_mut()
        .context("no webhook: the scenario needs the API server with the webhook registered first")
}

fn values(w: &World) -> Result<Values> {
    let p =
        w.config.values.clone().context(
            "no values: the scenario needs `Given the control plane values \"...\"` first",
        )?;
    harness_config::load_values(&p).map_err(|e| anyhow::anyhow!("{e}"))
}

fn deployment(w: &World) -> Result<Deployment> {
    let p: PathBuf = w.config.deployment.clone().context(
        "no deployment file: the scenario needs `Given the deployment file \"...\"` first",
    )?;
    harness_config::load_deployment(&p).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The krb5.conf the webhook mounts: the realm of the reference environment, the KDC and
/// database by the names the Kubernetes tier's Services give them.
fn krb5_conf(realm: &str) -> String {
    format!(
        "[libdefaults]\n  default_realm = {realm}\n  rdns = false\n  dns_canonicalize_hostname = false\n\
         [realms]\n  {realm} = {{\n    kdc = kdc:88\n  }}\n"
    )
}

#[given(
    "a Kubernetes API server with the reference webhook registered for the injector's selectors"
)]
async fn apiserver_with_webhook(w: &mut World) -> Result<()> {
    let v = values(w)?;
    let selectors = v
        .selectors()
        .filter(|s| !s.is_empty())
        .context(
            "the values have no `harness.injector.selectors`: the webhook would select nothing",
        )?
        .to_vec();
    let dir = w.dir()?.join("kube");
    let c = within(
        "starting etcd and kube-apiserver",
        Duration::from_secs(90),
        Cluster::start(
            &w.substrate()?,
            context::get().settings.kube_apiserver.as_deref(),
            &dir,
        ),
    )
    .await?;
    let cfg = manifests::webhook_config(&selectors);
    let hook = Webhook::start(&w.substrate()?, &dir.join("webhook"), &c.pki, cfg).await?;
    let mwc = manifests::mutating_webhook_configuration(
        &hook.config,
        &c.pki.ca_pem,
        &Target::Url(&hook.url),
    );
    c.apply(&mwc).await?;
    w.kube.cluster = Some(c);
    w.kube.webhook = Some(hook);
    Ok(())
}

/// Namespace, krb5.conf and keytab objects for `ns`, then the pod, created as a ReplicaSet
/// would create it. The keytab is random per-run bytes: with no node, nothing reads it (the
/// local tier proves a real keytab works).
async fn create_pod(w: &mut World, pod: Value) -> Result<Result<Value, String>> {
    let c = cluster(w)?;
    let ns = pod["metadata"]["namespace"]
        .as_str()
        .context("pod without namespace")?
        .to_string();
    let keytab = Secret::generate();
    for o in manifests::credential_objects(
        &ns,
        &krb5_conf(&w.shape.names.realm),
        keytab.expose().as_bytes(),
    ) {
        c.apply(&o).await?;
    }
    let got = c.create(&pod).await;
    w.kube.sent = Some(pod);
    Ok(match got {
        Ok(o) => {
            let v = serde_json::to_value(o)?;
            w.kube.stored = Some(v.clone());
            Ok(v)
        }
        Err(e) => Err(format!("{e:#}")),
    })
}

async fn create_expecting_success(w: &mut World, pod: Value) -> Result<()> {
    let what = describe(&pod);
    match create_pod(w, pod).await? {
        Ok(_) => Ok(()),
        Err(e) => bail!("the API server refused {what}: {e}"),
    }
}

#[when("the deployment's PgBouncer pod is created through the API server")]
async fn create_deployment_pod(w: &mut World) -> Result<()> {
    let pod = pods::deployment_pgbouncer(&deployment(w)?, &values(w)?);
    create_expecting_success(w, pod).await
}

#[when("Houston's PgBouncer pod is created through the API server")]
async fn create_houston_pod(w: &mut World) -> Result<()> {
    let pod = pods::houston_pgbouncer(&values(w)?);
    create_expecting_success(w, pod).await
}

fn stored(w: &World) -> Result<&Value> {
    w.kube
        .stored
        .as_ref()
        .context("no pod was stored: the scenario needs a pod created through the API server first")
}

fn container(pod: &Value) -> Result<&Value> {
    pod["spec"]["containers"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == "pgbouncer"))
        .context("the stored pod has no `pgbouncer` container")
}

fn named<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|e| e["name"] == name)
}

#[then(expr = "the stored pod has Kerberos credentials for uid {int}")]
async fn has_credentials(w: &mut World, uid: i64) -> Result<()> {
    let pod = stored(w)?;
    let spec = &pod["spec"];
    let c = container(pod)?;
    let vols = &spec["volumes"];
    let kt = named(vols, KEYTAB_VOLUME).with_context(|| {
        format!("the stored pod has no `{KEYTAB_VOLUME}` volume; volumes: {vols}")
    })?;
    ensure!(
        kt["secret"]["secretName"] == manifests::KEYTAB_SECRET,
        "the keytab volume does not come from Secret {}: {kt}",
        manifests::KEYTAB_SECRET
    );
    let cm = named(vols, KRB5_VOLUME).with_context(|| {
        format!("the stored pod has no `{KRB5_VOLUME}` volume; volumes: {vols}")
    })?;
    ensure!(
        cm["configMap"]["name"] == manifests::KRB5_CONFIG_MAP,
        "krb5.conf does not come from ConfigMap {}: {cm}",
        manifests::KRB5_CONFIG_MAP
    );
    let env = &c["env"];
    for (k, want) in [
        ("KRB5_CONFIG", format!("{KRB5_DIR}/{KRB5_FILE}")),
        (
            "KRB5_CLIENT_KTNAME",
            format!("FILE:{KEYTAB_DIR}/{KEYTAB_FILE}"),
        ),
    ] {
        let got = named(env, k).and_then(|e| e["value"].as_str());
        ensure!(
            got == Some(want.as_str()),
            "{k} is {got:?}, expected {want:?}; env: {env}"
        );
    }
    let mounts = &c["volumeMounts"];
    for (vol, path) in [(KRB5_VOLUME, KRB5_DIR), (KEYTAB_VOLUME, KEYTAB_DIR)] {
        let m = named(mounts, vol)
            .with_context(|| format!("`{vol}` is not mounted; mounts: {mounts}"))?;
        ensure!(
            m["mountPath"] == path,
            "`{vol}` is mounted at {}, expected {path}",
            m["mountPath"]
        );
    }
    // Readable by the pod's user: group-readable, the group being the pod's fsGroup (which
    // the kubelet adds to the container's groups); never world-readable.
    let mode = kt["secret"]["defaultMode"]
        .as_i64()
        .context("the keytab volume has no defaultMode")?;
    ensure!(
        mode & 0o040 != 0 && mode & 0o007 == 0,
        "keytab mode {mode:o}: must be group-readable and not world-readable"
    );
    ensure!(
        spec["securityContext"]["fsGroup"].is_i64(),
        "the pod has no fsGroup, so the keytab's group is root and uid {uid} cannot read it"
    );
    let run_as = c["securityContext"]["runAsUser"]
        .as_i64()
        .or(spec["securityContext"]["runAsUser"].as_i64());
    ensure!(
        run_as == Some(uid),
        "the pod runs as {run_as:?}, expected {uid}"
    );
    // Read-only root filesystem, and /tmp (the ticket cache) the only writable mount.
    ensure!(
        c["securityContext"]["readOnlyRootFilesystem"] == true,
        "the container's root filesystem is not read-only: {}",
        c["securityContext"]
    );
    let writable: Vec<&str> = mounts
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["readOnly"] != true)
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    ensure!(
        writable == ["/tmp"],
        "writable mounts are {writable:?}, expected only /tmp"
    );
    let tmp = named(vols, TMP_VOLUME);
    ensure!(
        tmp.is_some_and(|t| t.get("emptyDir").is_some()),
        "/tmp is not an emptyDir: {tmp:?}"
    );
    Ok(())
}

#[then(expr = "the stored pod carries the label {string} and no label {string}")]
async fn carries_label(w: &mut World, want: String, absent: String) -> Result<()> {
    let labels = &stored(w)?["metadata"]["labels"];
    let (k, v) = want
        .split_once(": ")
        .context("write the label as `key: value`")?;
    ensure!(labels[k] == v, "the pod's labels {labels} lack `{want}`");
    ensure!(
        labels.get(&absent).is_none(),
        "the pod's labels {labels} carry `{absent}`"
    );
    Ok(())
}

/// The fields of a pod the webhook could have changed.
fn mutable_parts(pod: &Value) -> Value {
    json!({"volumes": pod["spec"]["volumes"], "containers": pod["spec"]["containers"],
           "securityContext": pod["spec"]["securityContext"]})
}

#[then("the stored pod is the pod as sent, without Kerberos credentials")]
async fn untouched(w: &mut World) -> Result<()> {
    let pod = stored(w)?;
    let sent = w.kube.sent.as_ref().context("nothing was sent")?;
    ensure!(
        named(&pod["spec"]["volumes"], KEYTAB_VOLUME).is_none()
            && named(&container(pod)?["env"], "KRB5_CLIENT_KTNAME").is_none(),
        "the unselected pod was injected: {}",
        mutable_parts(pod)
    );
    // The API server defaults fields (imagePullPolicy, protocol, defaultMode, ...) and drops
    // empty lists; everything the harness set must come back as set, and nothing more.
    ensure!(
        subset(&mutable_parts(pod), &mutable_parts(sent)),
        "the stored pod differs from the pod sent in fields the harness set:\nsent   {}\nstored {}",
        mutable_parts(sent),
        mutable_parts(pod)
    );
    ensure!(
        pod["spec"]["volumes"].as_array().map(Vec::len)
            == sent["spec"]["volumes"].as_array().map(Vec::len),
        "the stored pod has other volumes than the pod sent: {}",
        pod["spec"]["volumes"]
    );
    Ok(())
}

/// Everything `want` says is in `have` (objects by key, lists element by element); an empty
/// list or null in `want` matches an absent field, as the API server omits them.
fn subset(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w.iter().all(|(k, wv)| match h.get(k) {
            Some(hv) => subset(hv, wv),
            None => wv.is_null() || wv.as_array().is_some_and(|a| a.is_empty()),
        }),
        (Value::Array(h), Value::Array(w)) => {
            h.len() == w.len() && h.iter().zip(w).all(|(a, b)| subset(a, b))
        }
        (Value::Null, Value::Array(w)) => w.is_empty(),
        _ => have == want,
    }
}

#[then(expr = "lint's {word} message names the pod labels {string}")]
async fn lint_names_labels(w: &mut World, rule: String, labels: String) -> Result<()> {
    let run = w.config.lint.as_ref().context("lint has not run")?;
    let report: Value = serde_json::from_str(&run.stdout).context("lint's JSON report")?;
    let msg = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["rule"] == rule.as_str())
        .and_then(|f| f["message"].as_str())
        .with_context(|| format!("lint reports no {rule}: {}", run.stdout))?;
    ensure!(
        msg.contains(&labels),
        "{rule} says `{msg}`, which does not name `{labels}`"
    );
    Ok(())
}

#[when("the webhook stops serving")]
async fn webhook_stops(w: &mut World) -> Result<()> {
    webhook(w)?.stop();
    Ok(())
}

#[when("the webhook serves again")]
async fn webhook_resumes(w: &mut World) -> Result<()> {
    webhook(w)?.resume().await
}

#[then(expr = "creating the deployment's PgBouncer pod is refused with {string}")]
async fn refused(w: &mut World, needle: String) -> Result<()> {
    let pod = pods::deployment_pgbouncer(&deployment(w)?, &values(w)?);
    match create_pod(w, pod).await? {
        Ok(p) => bail!(
            "the API server created the selected pod although the webhook is down (failurePolicy not Fail?): {}",
            mutable_parts(&p)
        ),
        Err(e) => ensure!(e.contains(&needle), "refused, but with `{e}`, not `{needle}`"),
    }
    Ok(())
}

#[then("a pod the injector does not select is still created")]
async fn unselected_created(w: &mut World) -> Result<()> {
    let mut pod = pods::deployment_pgbouncer(&deployment(w)?, &values(w)?);
    pod["metadata"]["name"] = json!("not-selected");
    pod["metadata"]["labels"] = json!({"app": "something-else"});
    create_expecting_success(w, pod).await
}

#[then("the deployment's PgBouncer pod is created with Kerberos credentials")]
async fn created_again(w: &mut World) -> Result<()> {
    create_deployment_pod(w).await?;
    has_credentials(w, pods::PGBOUNCER_UID).await
}

#[then("the webhook returns an empty patch for the stored pod")]
async fn empty_patch(w: &mut World) -> Result<()> {
    let pod = stored(w)?.clone();
    let cfg = &webhook(w)?.config;
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "again", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": pod["metadata"]["namespace"], "operation": "CREATE", "name": pod["metadata"]["name"],
            "userInfo": {"username": "harness"}, "object": pod}
    });
    let r = kerberos_webhook::review(cfg, &serde_json::to_vec(&review)?);
    let answer: Value = serde_json::from_slice(&r.body)?;
    let patch: Vec<u8> = answer["response"]["patch"]
        .as_array()
        .context("no patch in the answer")?
        .iter()
        .filter_map(|b| b.as_u64().map(|b| b as u8))
        .collect();
    let ops: Value = serde_json::from_slice(&patch)?;
    ensure!(
        ops.as_array().is_some_and(|a| a.is_empty()),
        "the webhook changes an already injected pod again: {ops}"
    );
    Ok(())
}

#[then("a copy of the stored pod created again comes back with the same spec")]
async fn copy_same(w: &mut World) -> Result<()> {
    let first = stored(w)?.clone();
    let mut copy = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("{}-again", first["metadata"]["name"].as_str().unwrap_or("pod")),
                     "namespace": first["metadata"]["namespace"], "labels": first["metadata"]["labels"]},
        "spec": first["spec"]});
    // The API server refuses a nodeName-less pod that names a node; nothing else is per-pod.
    copy["spec"].as_object_mut().map(|s| s.remove("nodeName"));
    create_expecting_success(w, copy).await?;
    let second = stored(w)?;
    ensure!(
        mutable_parts(&first) == mutable_parts(second),
        "mutated twice differs from mutated once:\nonce  {}\ntwice {}",
        mutable_parts(&first),
        mutable_parts(second)
    );
    Ok(())
}

/// Every object the harness renders for the Kubernetes tiers, namespaces first.
fn rendered(w: &World, c: &Cluster) -> Result<Vec<Value>> {
    let d = deployment(w)?;
    let v = values(w)?;
    let hook = w.kube.webhook.as_ref().context("no webhook")?;
    let cert = c.pki.serving(
        "webhook-in-cluster",
        &[
            "kerberos-webhook.kerberos-webhook.svc",
            "kerberos-webhook.kerberos-webhook.svc.cluster.local",
        ],
    )?;
    let mut all = manifests::webhook_objects(
        &hook.config,
        &cert.cert_pem,
        &cert.key_pem,
        manifests::WEBHOOK_IMAGE,
    );
    // Registered under another name: the URL registration of this scenario stays in force.
    let mut mwc =
        manifests::mutating_webhook_configuration(&hook.config, &c.pki.ca_pem, &Target::Service);
    mwc["metadata"]["name"] = json!("kerberos-webhook-in-cluster");
    all.push(mwc);
    let keytab = Secret::generate();
    for ns in [pods::deployment_namespace(&d), pods::houston_namespace(&v)] {
        all.extend(manifests::credential_objects(
            &ns,
            &krb5_conf(&w.shape.names.realm),
            keytab.expose().as_bytes(),
        ));
        all.extend(manifests::external_services(
            &ns,
            manifests::REFERENCE_KDC_HOST,
            &w.shape.names.db_host,
        ));
    }
    all.push(pods::as_deployment(&pods::deployment_pgbouncer(&d, &v)));
    all.push(pods::as_deployment(&pods::houston_pgbouncer(&v)));
    all.sort_by_key(|o| o["kind"] != "Namespace");
    Ok(all)
}

#[when("every manifest the harness renders is applied server-side")]
async fn apply_all(w: &mut World) -> Result<()> {
    let c = cluster(w)?;
    let mut applied = Vec::new();
    for o in rendered(w, c)? {
        let r = c.apply(&o).await.map(|_| ()).map_err(|e| format!("{e:#}"));
        applied.push((describe(&o), r));
    }
    w.kube.applied = applied;
    Ok(())
}

#[then(expr = "the API server accepts all {int} of them")]
async fn all_accepted(w: &mut World, n: usize) -> Result<()> {
    let refused: Vec<String> = w
        .kube
        .applied
        .iter()
        .filter_map(|(what, r)| r.as_ref().err().map(|e| format!("{what}: {e}")))
        .collect();
    ensure!(
        refused.is_empty(),
        "the API server refused:\n{}",
        refused.join("\n")
    );
    ensure!(
        w.kube.applied.len() == n,
        "{} manifests were applied, expected {n}: {:?}",
        w.kube.applied.len(),
        w.kube.applied.iter().map(|a| &a.0).collect::<Vec<_>>()
    );
    Ok(())
}

#[then(expr = "a Deployment with the misspelt field {string} is refused naming it")]
async fn misspelt_refused(w: &mut World, field: String) -> Result<()> {
    let c = cluster(w)?;
    let mut dep = pods::as_deployment(&pods::deployment_pgbouncer(&deployment(w)?, &values(w)?));
    dep["metadata"]["name"] = json!("misspelt");
    dep["spec"]["template"]["spec"]["containers"][0][&field] = json!({"runAsUser": 0});
    match c.apply(&dep).await {
        Ok(_) => bail!("the API server accepted a Deployment with `{field}`: server-side apply does not validate"),
        Err(e) => {
            let e = format!("{e:#}");
            ensure!(e.contains(&field), "refused, but the error does not name `{field}`: {e}");
        }
    }
    Ok(())
}

/// The kind tier's plan for the scenario's values and deployment, made in the scenario's
/// directory exactly as `cargo xtask e2e --tier kind` makes it.
#[when("the kind tier's plan is made for the deployment")]
async fn kind_plan(w: &mut World) -> Result<()> {
    let values = w.config.values.clone().context("no values")?;
    let deployment = w.config.deployment.clone().context("no deployment file")?;
    let dir = w.dir()?.join("kind-plan");
    let o = harness::kind::Options::new("astro-e2e-apiserver", &dir, &values, &deployment);
    let p = harness::kind::plan::build(&o, &[])?;
    w.kube.plan = Some((o, p));
    Ok(())
}

/// What the plan's external step leaves for the credentials step (krb5.conf, a keytab per
/// namespace) comes from this scenario's realm, by the same code; then every object of every
/// applying step goes to the real API server, in the plan's order.
#[when("every object the kind tier's plan applies is applied server-side")]
async fn apply_plan(w: &mut World) -> Result<()> {
    let (o, p) = w
        .kube
        .plan
        .as_ref()
        .context("no plan: the scenario needs `When the kind tier's plan is made ...` first")?;
    let Some(creds) = p.steps.iter().find_map(|s| match &s.action {
        harness::kind::plan::Action::External { creds, .. } => Some(creds.clone()),
        _ => None,
    }) else {
        bail!("the kind plan has no external step");
    };
    harness::kind::external::hand_over(w.env()?, o, &creds).await?;
    let mut objects = Vec::new();
    for step in &p.steps {
        if let Some(objs) = step.objects()? {
            objects.extend(objs);
        }
    }
    let c = cluster(w)?;
    let mut applied = Vec::new();
    for obj in &objects {
        let r = c.apply(obj).await.map(|_| ()).map_err(|e| format!("{e:#}"));
        applied.push((describe(obj), r));
    }
    w.kube.applied = applied;
    w.kube.plan_objects = objects;
    Ok(())
}

#[then(expr = "the kind plan's keytab Secrets hold the keytabs the realm exported")]
async fn plan_keytabs(w: &mut World) -> Result<()> {
    use base64::Engine;
    let (_, p) = w.kube.plan.as_ref().context("no plan")?;
    let creds = p
        .steps
        .iter()
        .find_map(|s| match &s.action {
            harness::kind::plan::Action::Credentials { creds, .. } => Some(creds.clone()),
            _ => None,
        })
        .context("the kind plan has no credentials step")?;
    let c = cluster(w)?;
    for cred in &creds {
        let want = std::fs::read(&cred.keytab)?;
        let got = c
            .get(
                "v1",
                "Secret",
                Some(&cred.namespace),
                manifests::KEYTAB_SECRET,
            )
            .await?;
        let data = got["data"]["krb5.keytab"]
            .as_str()
            .context("the stored Secret has no krb5.keytab")?;
        let data = base64::engine::general_purpose::STANDARD.decode(data)?;
        ensure!(
            data == want,
            "the Secret {}/{} does not hold the keytab of {} the realm exported",
            cred.namespace,
            manifests::KEYTAB_SECRET,
            cred.principal
        );
    }
    Ok(())
}

/// Houston's Secrets as the API server stored them, under the names the chart mounts: the
/// Secret Houston's PgBouncer pod (built from the same values) mounts holds an ini whose
/// `[databases]` has the URL's database and a users.txt with the URL's login; the backend Secret
/// holds that URL with Prisma's PgBouncer parameters.
#[then("the kind plan's Houston Secrets are stored where Houston and its PgBouncer read them")]
async fn plan_houston_secrets(w: &mut World) -> Result<()> {
    use base64::Engine;
    use harness_config::render::houston::{database_aliases, parse_users_txt, DatabaseUrl};
    let v = values(w)?;
    let c = cluster(w)?;
    let ns = pods::houston_namespace(&v);
    let pod = pods::houston_pgbouncer(&v);
    let mounted = pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|vol| vol["secret"]["secretName"].as_str())
        .context("Houston's PgBouncer pod mounts no Secret")?
        .to_string();
    let data = |obj: &Value, key: &str| -> Result<String> {
        let b = obj["data"][key].as_str().with_context(|| {
            format!("the stored Secret {} has no {key}", obj["metadata"]["name"])
        })?;
        Ok(String::from_utf8(
            base64::engine::general_purpose::STANDARD.decode(b)?,
        )?)
    };
    let pgb = c.get("v1", "Secret", Some(&ns), &mounted).await?;
    let (ini, users) = (data(&pgb, "pgbouncer.ini")?, data(&pgb, "users.txt")?);
    let backend_name = v.houston_backend_secret_name();
    let backend = c.get("v1", "Secret", Some(&ns), &backend_name).await?;
    let url = Secret::adopt(data(&backend, "connection")?);
    let parsed = DatabaseUrl::parse(url.expose()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let user = parsed.user.clone().unwrap_or_default();
    ensure!(
        parse_users_txt(&users).contains(&user),
        "users.txt in {ns}/{mounted} has no line for `{user}`, the login of {ns}/{backend_name}"
    );
    let db = parsed.database.clone().unwrap_or_default();
    ensure!(
        database_aliases(&ini).contains(&db),
        "pgbouncer.ini in {ns}/{mounted} has no `[databases]` entry `{db}`, the database of {ns}/{backend_name}"
    );
    for line in [
        "server_gssauth_negotiate = allow",
        "auth_file = /etc/pgbouncer/users.txt",
    ] {
        ensure!(
            ini.lines().any(|l| l.trim() == line),
            "pgbouncer.ini in {ns}/{mounted} lacks `{line}`"
        );
    }
    for k in [
        "pgbouncer",
        "connection_limit",
        "pool_timeout",
        "prisma_connection_limit",
    ] {
        ensure!(
            parsed.param(k).is_some(),
            "the URL in {ns}/{backend_name} lacks `{k}`"
        );
    }
    Ok(())
}

#[then(expr = "the kind plan's {word} with the misspelt field {string} is refused naming it")]
async fn plan_misspelt(w: &mut World, kind: String, field: String) -> Result<()> {
    let mut obj = w
        .kube
        .plan_objects
        .iter()
        .find(|o| o["kind"] == kind.as_str())
        .cloned()
        .with_context(|| format!("the kind plan applies no {kind}"))?;
    obj["spec"]["template"]["spec"]["containers"][0][&field] = json!({"runAsUser": 0});
    match cluster(w)?.apply(&obj).await {
        Ok(_) => bail!("the API server accepted the plan's {kind} with `{field}`"),
        Err(e) => {
            let e = format!("{e:#}");
            ensure!(
                e.contains(&field),
                "refused, but the error does not name `{field}`: {e}"
            );
        }
    }
    Ok(())
}

/// The namespace the kind substrate's objects are created in (the API server is the scenario's).
const SUBSTRATE_NS: &str = "e2e-kind-substrate";

/// What the kind substrate creates for an environment and its KDC, by its own rendering code.
#[when(
    "the kind substrate's namespace, KDC Service and KDC pod are created through the API server"
)]
async fn substrate_objects(w: &mut World) -> Result<()> {
    let c = cluster(w)?;
    let rendered =
        harness::substrate::kube::apply_sample(&c.client, SUBSTRATE_NS, "apiserver-check").await?;
    let stored = c.get("v1", "Pod", Some(SUBSTRATE_NS), "kdc-0").await?;
    w.kube.sent = Some(serde_json::to_value(rendered)?);
    w.kube.stored = Some(stored);
    Ok(())
}

#[then("the stored KDC pod is the kind substrate's pod, with the KDC Service's ClusterIP as kdc.example.test")]
async fn substrate_pod_stored(w: &mut World) -> Result<()> {
    let c = cluster(w)?;
    let sent = w.kube.sent.as_ref().context("no pod was sent")?;
    let stored = w.kube.stored.as_ref().context("no pod was stored")?;
    let svc = c.get("v1", "Service", Some(SUBSTRATE_NS), "kdc").await?;
    let ip = svc["spec"]["clusterIP"]
        .as_str()
        .context("the KDC Service has no clusterIP")?;
    ensure!(
        stored["spec"]["hostAliases"] == json!([{"ip": ip, "hostnames": ["kdc.example.test"]}]),
        "the stored pod's hostAliases are {}, not kdc.example.test at the Service's {ip}",
        stored["spec"]["hostAliases"]
    );
    ensure!(
        svc["spec"]["ports"][0]["port"] == json!(88)
            && svc["spec"]["ports"].as_array().map(Vec::len) == Some(1),
        "the KDC Service's ports are {}, not the KDC's 88 alone",
        svc["spec"]["ports"]
    );
    // What the substrate relies on comes back as it was sent (none of it dropped or defaulted
    // away by the server).
    for path in [
        "/spec/volumes",
        "/spec/containers/0/volumeMounts",
        "/spec/containers/0/securityContext/runAsUser",
        "/spec/containers/0/ports",
        "/spec/containers/0/command",
        "/spec/containers/0/args",
        "/spec/containers/0/env",
        "/spec/containers/0/workingDir",
        "/spec/shareProcessNamespace",
        "/spec/restartPolicy",
        "/spec/hostname",
        "/metadata/labels",
    ] {
        ensure!(
            stored.pointer(path).is_some() && stored.pointer(path) == sent.pointer(path),
            "the stored pod's {path} is {:?}, the substrate sent {:?}",
            stored.pointer(path),
            sent.pointer(path)
        );
    }
    ensure!(
        stored["metadata"]["labels"][harness::substrate::RUN_LABEL] == json!("apiserver-check"),
        "the stored pod does not carry the run label: {}",
        stored["metadata"]["labels"]
    );
    let ns = c.get("v1", "Namespace", None, SUBSTRATE_NS).await?;
    ensure!(
        ns["metadata"]["labels"][harness::substrate::RUN_LABEL] == json!("apiserver-check"),
        "the namespace does not carry the run label: {}",
        ns["metadata"]["labels"]
    );
    Ok(())
}
