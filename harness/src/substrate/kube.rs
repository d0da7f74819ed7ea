//! The kind substrate: each component a pod of the project's image (the same tags the docker
//! substrate runs, `target/images/manifest.json`, loaded into the kind node at connect), in a
//! namespace per environment labelled with the run (`RUN_LABEL`). Each place has a ClusterIP
//! Service named from its family, made before any pod of the environment starts, and every pod
//! gets `hostAliases` mapping each host name placed so far to its Service's address: the
//! components dial each other by the configuration's names (`kdc.example.test`,
//! `db.example.test`), so GSSAPI asks for the same service principals as on docker.
//!
//! A place's directory is on this machine (the artifacts, as on docker) and reaches the pod by
//! `hostPath`: the kind node must see this machine's run directories at the same path, which
//! kind/cluster.yaml's `extraMounts` gives it (and this machine's /tmp, where the harness's
//! Unix socket directories are, at [`NODE_TMP`]). So an existing cluster that is not a kind
//! cluster made from that file (`--kubeconfig` to a real cluster) cannot serve this substrate;
//! [`Kube::connect`] refuses a kubeconfig whose context is not kind's.
//!
//! kube-rs makes the namespaces, Services and pods, follows the pods' logs and forwards their
//! ports; the kubectl CLI runs the tools (exec with stdin, one-off pods attached) and the sweep
//! that must work from a signal handler, as the docker CLI does on docker. Ports are forwarded
//! by kube-rs behind a loopback listener the harness binds itself: its port is known before the
//! first connection, and nothing outlives the process (`kubectl port-forward` would be a child
//! per port to stop, whose port is known only by parsing what it prints).
//!
//! Kubernetes cannot freeze a pod, so [`Running::pause`] is an error naming the tier: scenarios
//! that pause a component are not tagged @kind. Never run against a live cluster on the machine
//! it was written on (no kind, node image or kubelet there): the rendered objects are unit-tested
//! and accepted by a real kube-apiserver (features/apiserver.feature); everything that needs a
//! kubelet runs for the first time on a machine with kind.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::kube::api::{Api, DeleteParams, LogParams, Patch, PatchParams, PostParams};
use ::kube::Client;
use anyhow::{bail, Context, Result};
use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use serde_json::json;

use super::roles::{dialable, family, Roles};
use super::{Endpoint, LogCursor, Place, Running, Substrate, Tier, RUN_LABEL};
use crate::component::{Exec, ExecOutput, File, NamedPort, RunAs, Source, Spec};
use crate::tools;

/// Where this machine's /tmp is on the kind node (kind/cluster.yaml's `extraMounts`): the
/// harness's Unix socket directories live under /tmp ([`crate::scratch`]).
pub const NODE_TMP: &str = "/e2e-host-tmp";
/// The process that made a namespace: a later run sweeps what a process no longer alive left.
const PID_LABEL: &str = "e2e-harness.pid";
/// Which Service selects a pod (value: the Service's name).
const HOST_LABEL: &str = "e2e-harness.host";
/// The one container of every pod, as exec and the log name it.
const CONTAINER: &str = "main";
/// The field manager of what this substrate applies.
const FIELD_MANAGER: &str = "e2e-harness-kube";
const LOOPBACK: &str = "127.0.0.1";
/// A pod listens on every address of its own network namespace.
const ANY: &str = "0.0.0.0";
/// pg_hba's name for "the networks the server is on": the node's pod network (kind has one
/// node, so every pod is on it) and loopback, where forwarded ports arrive.
const SAME_NETWORK: &str = "samenet";
/// A ClusterIP Service must list a port: the one a Service has from its place until its
/// component starts with its own (the discard port; nothing listens there).
const PLACEHOLDER_PORT: u16 = 9;

/// The directory this machine's runs live under (`target/e2e`), which kind/cluster.yaml mounts
/// into the node at the same path (the kind plan fills in `${RUN_ROOT}` with it).
pub fn run_root() -> PathBuf {
    crate::run::workspace_root().join("target/e2e")
}

/// Where the kind node sees a path of this machine (a place's directory, a shared socket
/// directory): the same path under [`run_root`], [`NODE_TMP`] for /tmp; anything else the node
/// does not see.
pub fn node_path(p: &Path) -> Result<String> {
    let root = run_root();
    let mapped = if p.starts_with(&root) {
        p.to_path_buf()
    } else if let Ok(rest) = p.strip_prefix("/tmp") {
        Path::new(NODE_TMP).join(rest)
    } else {
        bail!(
            "{}: the kind node sees only {} and /tmp of this machine (kind/cluster.yaml's extraMounts); run with the default run directory",
            p.display(),
            root.display()
        );
    };
    path_str(&mapped)
}

/// The kind substrate of a run (see the module comment). The run-level value only makes
/// environments; each has its own namespace.
pub struct Kube {
    run: String,
    kubeconfig: PathBuf,
    roles: Roles,
    client: Arc<tokio::sync::OnceCell<Client>>,
    env: Option<Arc<Env>>,
}

/// One environment: its namespace, the host names of its places, its Services and pods.
struct Env {
    namespace: String,
    hosts: BTreeMap<String, String>,
    made: tokio::sync::OnceCell<()>,
    /// Host names asked for (a place, a component's host), with the Service that serves each:
    /// each is made before the next pod is created.
    wanted: Mutex<BTreeMap<String, String>>,
    /// Host names whose Service exists, with its ClusterIP: the pods' `hostAliases`.
    served: tokio::sync::Mutex<BTreeMap<String, String>>,
    places: Mutex<HashMap<String, PlaceState>>,
    pods: AtomicUsize,
}

#[derive(Default, Clone)]
struct PlaceState {
    /// Directories shared into the place: node path, path inside.
    shared: Vec<(String, String)>,
    /// Its running pods, oldest first (Airflow's place holds one per component), with the uid
    /// each runs as.
    running: Vec<(String, u32)>,
}

/// What a pod mounts from the node: a directory (the place, a shared directory) or a file over
/// the place's mount (read-only, as the chart and the injector mount configuration and keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMount {
    pub node_path: String,
    pub inside: String,
    pub read_only: bool,
    pub file: bool,
}

/// Everything a pod of this substrate is made from (see [`pod`]).
#[derive(Debug, Clone)]
pub struct PodPlan {
    pub namespace: String,
    pub name: String,
    pub run: String,
    /// The Service that selects it.
    pub service: String,
    pub image: String,
    /// The program, where the spec names one instead of the image's entrypoint.
    pub command: Option<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub uid: u32,
    pub working_dir: String,
    pub ports: Vec<NamedPort>,
    pub mounts: Vec<HostMount>,
    /// Host name -> ClusterIP.
    pub aliases: BTreeMap<String, String>,
    pub hostname: String,
    pub grace: Duration,
    /// A tool's pod: its stdin is attached.
    pub stdin: bool,
}

/// A pod as [`Kube::start`] creates it. The pod shares one process namespace, so the pause
/// container is PID 1 (it reaps what the component forks, as docker's init does) and the
/// component gets SIGTERM as an ordinary process; it never restarts (a component that exits is
/// a failure the harness reports); no service links or account token (variables a component
/// could mistake for its own, a credential it never needs).
pub fn pod(p: &PodPlan) -> Result<Pod> {
    let volumes: Vec<_> = p
        .mounts
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({
                "name": format!("m{i}"),
                "hostPath": {"path": m.node_path, "type": if m.file { "File" } else { "Directory" }},
            })
        })
        .collect();
    // readOnly only where it is true: the server stores a false one as absent, and the pod as
    // rendered is the pod as stored.
    let mounts: Vec<_> = p
        .mounts
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut v = json!({"name": format!("m{i}"), "mountPath": m.inside});
            if m.read_only {
                v["readOnly"] = json!(true);
            }
            v
        })
        .collect();
    let mut container = json!({
        "name": CONTAINER,
        "image": p.image,
        "imagePullPolicy": "IfNotPresent",
        "args": p.args,
        "env": p.env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        "workingDir": p.working_dir,
        "ports": p.ports.iter().map(|np| json!({"name": port_name(&np.name), "containerPort": np.port, "protocol": "TCP"})).collect::<Vec<_>>(),
        "volumeMounts": mounts,
        "securityContext": {"runAsUser": p.uid},
    });
    if let Some(c) = &p.command {
        container["command"] = json!([c]);
    }
    if p.stdin {
        container["stdin"] = json!(true);
        container["stdinOnce"] = json!(true);
    }
    let v = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": p.name,
            "namespace": p.namespace,
            "labels": {RUN_LABEL: p.run, HOST_LABEL: p.service},
        },
        "spec": {
            "hostname": host_label(&p.hostname),
            "hostAliases": p.aliases.iter().map(|(host, ip)| json!({"ip": ip, "hostnames": [host]})).collect::<Vec<_>>(),
            "shareProcessNamespace": true,
            "restartPolicy": "Never",
            "enableServiceLinks": false,
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": p.grace.as_secs().max(1),
            "containers": [container],
            "volumes": volumes,
        },
    });
    serde_json::from_value(v).context("internal: the rendered pod is not a Pod")
}

/// A place's Service: a ClusterIP selecting the pods labelled with its name, on `ports` (the
/// placeholder until its component starts).
pub fn service(namespace: &str, run: &str, name: &str, ports: &[NamedPort]) -> Result<Service> {
    let ports: Vec<_> = if ports.is_empty() {
        vec![json!({"name": "placeholder", "port": PLACEHOLDER_PORT, "protocol": "TCP"})]
    } else {
        ports
            .iter()
            .map(|p| json!({"name": port_name(&p.name), "port": p.port, "targetPort": p.port, "protocol": "TCP"}))
            .collect()
    };
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": {RUN_LABEL: run}},
        "spec": {"type": "ClusterIP", "selector": {HOST_LABEL: name}, "ports": ports},
    }))
    .context("internal: the rendered Service is not a Service")
}

/// Server-side applies a place's Service (see [`service`]), always by this substrate's field
/// manager: the ports it applies then replace the ones it applied before (the placeholder goes
/// when the component's own arrive), where a Service made by a plain create would keep them.
async fn apply_service(
    api: &Api<Service>,
    run: &str,
    name: &str,
    ports: &[NamedPort],
) -> Result<Service> {
    let namespace = api
        .namespace()
        .context("internal: a Service API without a namespace")?
        .to_string();
    Ok(api
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&service(&namespace, run, name, ports)?),
        )
        .await?)
}

/// An environment's namespace, labelled with the run and the process that made it.
pub fn namespace(name: &str, run: &str) -> Result<Namespace> {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {RUN_LABEL: run, PID_LABEL: std::process::id().to_string()}},
    }))
    .context("internal: the rendered Namespace is not a Namespace")
}

/// A Kubernetes name (RFC 1035 label: a Service's, a port's, a pod's host name): lowercase
/// letters, digits and `-`, starting with a letter, at most `max` long.
fn dns_label(s: &str, max: usize) -> String {
    let mut out: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert(0, 'x');
    }
    out.truncate(max);
    out.trim_end_matches('-').to_string()
}

/// A port's name (at most 15 characters).
fn port_name(s: &str) -> String {
    dns_label(s, 15)
}

/// A pod's host name: the first label of its host name (the full name is in `hostAliases`).
fn host_label(host: &str) -> String {
    dns_label(host.split('.').next().unwrap_or(host), 63)
}

/// The Service of `component` in `place`: the family for the place's own component,
/// `<family>-<component>` for the others (Airflow's scheduler, worker, ...).
fn service_name(place: &Place, component: &str) -> String {
    let fam = family(&place.name);
    if component == place.name || component == fam {
        dns_label(fam, 63)
    } else {
        dns_label(&format!("{fam}-{component}"), 63)
    }
}

impl Kube {
    /// Reads the kubeconfig (`E2E_KUBECONFIG`), refuses one that is not a kind cluster's (its
    /// node would not see this machine's run directories), sweeps what killed runs left and
    /// gives the kind node the project's images.
    pub fn connect(
        kubeconfig: Option<&Path>,
        pgbouncer_image: Option<String>,
        run_id: Option<&str>,
    ) -> Result<Kube> {
        let kubeconfig = kubeconfig.context(
            "the kind tier's scenarios need a kind cluster made from kind/cluster.yaml: set E2E_KUBECONFIG to its kubeconfig (`kind create cluster --config <rendered kind/cluster.yaml> --kubeconfig <file>`)",
        )?;
        let cluster = kind_cluster(kubeconfig)?;
        for (tool, arg) in [("kubectl", "version --client"), ("kind", "version")] {
            Command::new(tool)
                .args(arg.split(' '))
                .output()
                .with_context(|| {
                    format!("the kind tier needs `{tool}` on PATH (README.md, \"The kind tier\")")
                })?;
        }
        let run = match run_id {
            Some(id) => id.to_string(),
            None => format!(
                "{}-{}",
                std::process::id(),
                hex::encode(rand::random::<[u8; 3]>())
            ),
        };
        let k = Kube {
            run,
            kubeconfig: kubeconfig.to_path_buf(),
            roles: Roles::built(Tier::Kind, pgbouncer_image),
            client: Arc::new(tokio::sync::OnceCell::new()),
            env: None,
        };
        // Every image a scenario needs, before any scenario starts.
        for c in ["kdc", "postgres", "pgbouncer"] {
            k.roles.role(c)?;
        }
        let swept = k.sweep_orphans();
        if swept > 0 {
            eprintln!("e2e: removed {swept} namespace(s) a killed run left");
        }
        // kind's node has its own image store: it is given ours (a no-op for an image it has).
        let mut load = Command::new("kind");
        load.args(["load", "docker-image", "--name", &cluster])
            .args(k.roles.all_images());
        let out = load
            .output()
            .context("could not run `kind load docker-image`")?;
        if !out.status.success() {
            bail!(
                "`kind load docker-image --name {cluster}` failed: {} (are the images built? `cargo xtask images`)",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(k)
    }

    async fn client(&self) -> Result<Client> {
        let path = self.kubeconfig.clone();
        self.client
            .get_or_try_init(|| async move {
                let kc = ::kube::config::Kubeconfig::read_from(&path).with_context(|| {
                    format!(
                        "E2E_KUBECONFIG={}: not a readable kubeconfig",
                        path.display()
                    )
                })?;
                let cfg = ::kube::Config::from_custom_kubeconfig(kc, &Default::default())
                    .await
                    .with_context(|| format!("E2E_KUBECONFIG={}", path.display()))?;
                Client::try_from(cfg).context("building the Kubernetes client")
            })
            .await
            .cloned()
    }

    fn env(&self) -> Result<&Arc<Env>> {
        self.env
            .as_ref()
            .context("internal: a kind place outside an environment (Stack::up makes one first)")
    }

    fn kubectl(&self, what: &str) -> Exec {
        Exec::new(what, "kubectl").args([
            "--kubeconfig".to_string(),
            path_str(&self.kubeconfig).unwrap_or_default(),
        ])
    }

    /// The namespace, then a Service for every host name asked for so far, so that the pod
    /// about to be created has all of them in its `hostAliases`.
    async fn ensure_services(&self) -> Result<(&Arc<Env>, BTreeMap<String, String>)> {
        let env = self.env()?;
        let client = self.client().await?;
        env.made
            .get_or_try_init(|| async {
                let ns: Api<Namespace> = Api::all(client.clone());
                ns.create(
                    &PostParams::default(),
                    &namespace(&env.namespace, &self.run)?,
                )
                .await
                .with_context(|| format!("creating the namespace {}", env.namespace))
                .map(drop)
            })
            .await?;
        let wanted = env.wanted.lock().expect("host registry").clone();
        let mut served = env.served.lock().await;
        let api: Api<Service> = Api::namespaced(client, &env.namespace);
        for (host, name) in wanted {
            if served.contains_key(&host) {
                continue;
            }
            let svc = match api.get_opt(&name).await? {
                Some(s) => s,
                None => apply_service(&api, &self.run, &name, &[])
                    .await
                    .with_context(|| format!("creating the Service {name} for {host}"))?,
            };
            let ip = svc
                .spec
                .and_then(|s| s.cluster_ip)
                .filter(|ip| !ip.is_empty() && ip != "None")
                .with_context(|| format!("the Service {name} has no ClusterIP"))?;
            served.insert(host, ip);
        }
        Ok((env, served.clone()))
    }

    fn want(&self, host: &str, service: String) {
        if let Some(env) = &self.env {
            env.wanted
                .lock()
                .expect("host registry")
                .entry(host.to_string())
                .or_insert(service);
        }
    }

    fn mounts(&self, place: &Place) -> Result<Vec<HostMount>> {
        let env = self.env()?;
        let mut v = vec![HostMount {
            node_path: node_path(&place.artifacts)?,
            inside: place.dir_str()?,
            read_only: false,
            file: false,
        }];
        if let Some(state) = env.places.lock().expect("place registry").get(&place.name) {
            for (node, inside) in &state.shared {
                v.push(HostMount {
                    node_path: node.clone(),
                    inside: inside.clone(),
                    read_only: false,
                    file: false,
                });
            }
        }
        Ok(v)
    }

    fn pod_name(&self, env: &Env, component: &str) -> String {
        let n = env.pods.fetch_add(1, Ordering::Relaxed);
        dns_label(&format!("{component}-{n}"), 63)
    }

    /// The namespaces of runs whose process is gone, deleted; returns how many.
    fn sweep_orphans(&self) -> usize {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["get", "namespaces", "-l", RUN_LABEL, "-o"])
            .arg(format!(
                "jsonpath={{range .items[*]}}{{.metadata.name}} {{.metadata.labels.{}}}{{\"\\n\"}}{{end}}",
                PID_LABEL.replace('.', "\\.")
            ))
            .output();
        let Ok(out) = out else { return 0 };
        let dead: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(_, pid)| !pid_alive(pid))
            .map(|(ns, _)| ns.to_string())
            .collect();
        if dead.is_empty() {
            return 0;
        }
        let _ = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["delete", "namespace", "--wait=false"])
            .args(&dead)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        dead.len()
    }
}

/// The kind cluster a kubeconfig's current context names (`kind-<name>`, as kind writes it);
/// any other context is refused, since its nodes do not see this machine's files.
fn kind_cluster(kubeconfig: &Path) -> Result<String> {
    let kc = ::kube::config::Kubeconfig::read_from(kubeconfig).with_context(|| {
        format!(
            "E2E_KUBECONFIG={}: not a readable kubeconfig",
            kubeconfig.display()
        )
    })?;
    let context = kc.current_context.clone().with_context(|| {
        format!(
            "E2E_KUBECONFIG={}: no current-context",
            kubeconfig.display()
        )
    })?;
    match context.strip_prefix("kind-") {
        Some(name) if !name.is_empty() => Ok(name.to_string()),
        _ => bail!(
            "E2E_KUBECONFIG={}: its context `{context}` is not a kind cluster's: the kind tier mounts this machine's run directories into pods by hostPath, which only a kind cluster made from kind/cluster.yaml (its extraMounts) can see",
            kubeconfig.display()
        ),
    }
}

#[async_trait]
impl Substrate for Kube {
    fn tier(&self) -> Tier {
        Tier::Kind
    }

    fn environment(
        self: Arc<Self>,
        names: &harness_config::EnvironmentShape,
    ) -> Result<Arc<dyn Substrate>> {
        static ENVIRONMENTS: AtomicUsize = AtomicUsize::new(0);
        let n = ENVIRONMENTS.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(Kube {
            run: self.run.clone(),
            kubeconfig: self.kubeconfig.clone(),
            roles: self.roles.clone(),
            client: self.client.clone(),
            env: Some(Arc::new(Env {
                namespace: dns_label(&format!("e2e-{}-{n}", self.run), 63),
                hosts: super::roles::hosts(names),
                made: tokio::sync::OnceCell::new(),
                wanted: Mutex::new(BTreeMap::new()),
                served: tokio::sync::Mutex::new(BTreeMap::new()),
                places: Mutex::new(HashMap::new()),
                pods: AtomicUsize::new(0),
            })),
        }))
    }

    /// Deleting the namespace deletes everything in it (what a failed stop left too).
    async fn release(&self) {
        let Some(env) = &self.env else { return };
        if env.made.get().is_none() {
            return;
        }
        let Ok(client) = self.client().await else {
            return;
        };
        let api: Api<Namespace> = Api::all(client);
        if let Err(e) = api.delete(&env.namespace, &DeleteParams::default()).await {
            tracing::warn!("deleting the namespace {}: {e}", env.namespace);
        }
    }

    fn program(&self, place: &Place, tool: &str) -> Result<PathBuf> {
        let _ = self.roles.role(&place.name)?;
        tools::image_path(tool)
    }

    fn shipped(&self, place: &Place, rel: &str) -> Result<Option<PathBuf>> {
        self.roles.shipped(place, rel)
    }

    fn component_host(&self, place: &Place, component: &str) -> String {
        let host = super::roles::component_host(place, component);
        // Asked for before its component starts (Airflow's web server, dialled by the others):
        // its Service is made before the next pod, so that pod can resolve it.
        self.want(&host, service_name(place, component));
        host
    }

    fn share_dir(&self, place: &Place, dir: &Path) -> Result<String> {
        let env = self.env()?;
        let uid = self.roles.role(&place.name)?.uid;
        std::os::unix::fs::chown(dir, Some(uid), Some(uid))
            .with_context(|| format!("could not hand {} to uid {uid}", dir.display()))?;
        let node = node_path(dir)?;
        let mut places = env.places.lock().expect("place registry");
        let state = places.entry(place.name.clone()).or_default();
        let inside = format!("/run/e2e-shared-{}", state.shared.len());
        state.shared.push((node, inside.clone()));
        Ok(inside)
    }

    fn place(&self, name: &str, artifacts: &Path, owner: RunAs) -> Result<Place> {
        let env = self.env()?;
        let role = self.roles.role(name)?;
        std::fs::create_dir_all(artifacts)
            .with_context(|| format!("could not create {}", artifacts.display()))?;
        node_path(artifacts)?;
        crate::run::make_traversable(artifacts)?;
        std::os::unix::fs::chown(artifacts, Some(role.uid), Some(role.uid)).with_context(|| {
            format!("could not hand {} to uid {}", artifacts.display(), role.uid)
        })?;
        let host = env
            .hosts
            .get(family(name))
            .map(|h| dialable(h))
            .with_context(|| format!("internal: no host name for {name} in this environment"))?;
        let place = Place {
            name: name.into(),
            dir: PathBuf::from(role.dir),
            artifacts: artifacts.to_path_buf(),
            host: host.clone(),
            bind: ANY.into(),
            clients: SAME_NETWORK.into(),
            owner,
        };
        self.want(&host, service_name(&place, name));
        Ok(place)
    }

    fn listen_port(&self, _place: &Place, _name: &str, default: u16) -> Result<u16> {
        // A pod of its own: the program's well-known port, as in production.
        Ok(default)
    }

    async fn start(&self, place: &Place, spec: Spec) -> Result<Box<dyn Running>> {
        let host = self.component_host(place, &spec.name);
        let svc_name = service_name(place, &spec.name);
        let (env, aliases) = self.ensure_services().await?;
        for f in &spec.files {
            self.put_file(place, f.clone()).await?;
        }
        let client = self.client().await?;
        // The Service carries the component's own ports from now on (its ClusterIP stays).
        let services: Api<Service> = Api::namespaced(client.clone(), &env.namespace);
        apply_service(&services, &self.run, &svc_name, &spec.ports)
            .await
            .with_context(|| format!("giving the Service {svc_name} {}'s ports", spec.name))?;
        let role = self.roles.role(&place.name)?;
        let (image, command) = match &spec.source {
            Source::Program(p) => (role.image.clone(), Some(path_str(p)?)),
            Source::Image(i) => (i.clone(), None),
        };
        let mut mounts = self.mounts(place)?;
        // Over the place's own mount: what the chart and the injector mount read-only.
        for f in spec.files.iter().filter(|f| f.read_only) {
            mounts.push(HostMount {
                node_path: node_path(&place.artifacts.join(&f.path))?,
                inside: path_str(&place.path(&f.path))?,
                read_only: true,
                file: true,
            });
        }
        let uid = self.roles.uid(place, spec.run_as)?;
        let name = self.pod_name(env, &spec.name);
        let plan = PodPlan {
            namespace: env.namespace.clone(),
            name: name.clone(),
            run: self.run.clone(),
            service: svc_name,
            image: image.clone(),
            command,
            args: spec.args.clone(),
            env: spec.env.clone(),
            uid,
            working_dir: match &spec.cwd {
                Some(cwd) => path_str(&place.dir.join(cwd))?,
                None => place.dir_str()?,
            },
            ports: spec.ports.clone(),
            mounts,
            aliases,
            hostname: host.clone(),
            grace: spec.stop_grace,
            stdin: false,
        };
        let log = place.artifacts.join(format!("{}.log", spec.name));
        // Where this start's output begins in the (appended) log.
        let from = LogCursor(std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0));
        let pods: Api<Pod> = Api::namespaced(client, &env.namespace);
        pods.create(&PostParams::default(), &pod(&plan)?)
            .await
            .with_context(|| format!("{}: creating its pod of {image}", spec.name))?;
        env.places
            .lock()
            .expect("place registry")
            .entry(place.name.clone())
            .or_default()
            .running
            .push((name.clone(), uid));
        let state = Arc::new(Mutex::new(PodState::default()));
        let tasks = vec![
            tokio::spawn(watch(pods.clone(), name.clone(), state.clone())),
            tokio::spawn(follow_log(
                pods.clone(),
                name.clone(),
                log.clone(),
                state.clone(),
            )),
        ];
        let mut p = KubePod {
            name: spec.name.clone(),
            pod: name,
            place_name: place.name.clone(),
            peer_host: host,
            log,
            ports: spec.ports.iter().map(|p| (p.clone(), 0)).collect(),
            api: Some(pods),
            state,
            tasks,
            stop_grace: spec.stop_grace,
            env: env.clone(),
            kubeconfig: self.kubeconfig.clone(),
        };
        if let Err(e) = super::await_ready(&mut p, &spec.readiness, spec.ready_timeout, from).await
        {
            p.stop().await;
            return Err(e);
        }
        if let Err(e) = p.forward().await {
            p.stop().await;
            return Err(e);
        }
        Ok(Box::new(p))
    }

    async fn exec(&self, place: &Place, tool: Exec) -> Result<ExecOutput> {
        let (env, aliases) = self.ensure_services().await?;
        let role = self.roles.role(&place.name)?;
        let uid = self.roles.uid(place, tool.run_as)?;
        let running = env
            .places
            .lock()
            .expect("place registry")
            .get(&place.name)
            .and_then(|p| p.running.first().cloned());
        let program = path_str(&tool.program)?;
        // `env` sets the tool's variables and directory: `kubectl exec` has no flags for them.
        let mut inner = vec!["env".to_string(), "-C".into(), place.dir_str()?];
        inner.extend(tool.env.iter().map(|(k, v)| format!("{k}={v}")));
        inner.push(program);
        inner.extend(tool.args.iter().cloned());
        let mut kubectl = self.kubectl(&tool.what);
        match running {
            // Beside the running component, as its user (kadmin.local next to the KDC's
            // database).
            Some((pod, pod_uid)) if pod_uid == uid => {
                let mut args = vec!["exec".to_string(), "-n".into(), env.namespace.clone()];
                if tool.stdin.is_some() {
                    args.push("-i".into());
                }
                args.extend([pod, "-c".into(), CONTAINER.into(), "--".into()]);
                args.extend(inner);
                kubectl = kubectl.args(args);
            }
            // Before it runs (kdb5_util before the KDC, initdb before PostgreSQL), or as
            // another user than it runs as: a one-off pod of its image with the same place.
            _ => {
                let name = self.pod_name(env, &format!("tool-{}", family(&place.name)));
                let plan = PodPlan {
                    namespace: env.namespace.clone(),
                    name: name.clone(),
                    run: self.run.clone(),
                    service: "tool".into(),
                    image: role.image.clone(),
                    command: Some(inner[0].clone()),
                    args: inner[1..].to_vec(),
                    env: Vec::new(),
                    uid,
                    working_dir: place.dir_str()?,
                    ports: Vec::new(),
                    mounts: self.mounts(place)?,
                    aliases,
                    hostname: place.host.clone(),
                    grace: Duration::from_secs(1),
                    stdin: tool.stdin.is_some(),
                };
                let mut one_off = pod(&plan)?;
                // `kubectl run` attaches to the container named like the pod.
                if let Some(spec) = one_off.spec.as_mut() {
                    for c in &mut spec.containers {
                        c.name = name.clone();
                    }
                }
                let overrides = serde_json::to_string(&one_off)?;
                kubectl = kubectl.args([
                    "run".to_string(),
                    "-n".into(),
                    env.namespace.clone(),
                    name,
                    "--quiet".into(),
                    "--rm".into(),
                    "--attach".into(),
                    format!("--stdin={}", tool.stdin.is_some()),
                    "--restart=Never".into(),
                    "--pod-running-timeout=5m".into(),
                    format!("--image={}", role.image),
                    "--overrides".into(),
                    overrides,
                ]);
            }
        }
        if let Some(input) = &tool.stdin {
            kubectl = kubectl.stdin(input.clone());
        }
        tools::run(&kubectl, None).await
    }

    async fn put_file(&self, place: &Place, file: File) -> Result<()> {
        let uid = self.roles.role(&place.name)?.uid;
        super::write_placed(&place.artifacts.join(&file.path), &file, Some((uid, uid)))
    }

    async fn read_file(&self, place: &Place, rel: &str) -> Result<Vec<u8>> {
        let path = place.artifacts.join(rel);
        std::fs::read(&path).with_context(|| format!("could not read {}", path.display()))
    }

    /// Synchronous, for signal handlers: every namespace of the run, deleted with all in it.
    fn kill_all(&self) -> usize {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["delete", "namespace", "--wait=false", "-l"])
            .arg(format!("{RUN_LABEL}={}", self.run))
            .stderr(std::process::Stdio::null())
            .output();
        out.map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains("deleted"))
                .count()
        })
        .unwrap_or(0)
    }
}

/// What the API server last said about a pod.
#[derive(Debug, Default, Clone)]
struct PodState {
    /// The pod as last read; None before the first read.
    pod: Option<Pod>,
    /// It was read once and is gone now.
    gone: bool,
}

impl PodState {
    /// How it ended (terminated, failed, deleted, or stuck in a state waiting does not leave),
    /// or None while it starts or runs.
    fn ended(&self) -> Option<String> {
        if self.gone {
            return Some("the pod is gone".into());
        }
        let pod = self.pod.as_ref()?;
        if let Some(t) = crate::kind::execute::terminal_state(pod) {
            return Some(t);
        }
        let status = pod.status.as_ref()?;
        let terminated = status
            .container_statuses
            .iter()
            .flatten()
            .find_map(|c| c.state.as_ref().and_then(|s| s.terminated.as_ref()));
        if let Some(t) = terminated {
            return Some(format!(
                "exit code {}{}",
                t.exit_code,
                t.reason
                    .as_deref()
                    .map(|r| format!(", {r}"))
                    .unwrap_or_default()
            ));
        }
        match status.phase.as_deref() {
            Some(p @ ("Failed" | "Succeeded")) => Some(format!(
                "pod {p}{}",
                status
                    .reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )),
            _ => None,
        }
    }

    /// Whether its container has started (its log exists).
    fn started(&self) -> bool {
        self.pod
            .as_ref()
            .and_then(|p| p.status.as_ref())
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.state
                        .as_ref()
                        .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
                })
            })
    }
}

/// Keeps `state` up to date with the pod (twice a second) until it is gone.
async fn watch(api: Api<Pod>, name: String, state: Arc<Mutex<PodState>>) {
    loop {
        match api.get_opt(&name).await {
            Ok(Some(p)) => state.lock().expect("pod state").pod = Some(p),
            Ok(None) => {
                state.lock().expect("pod state").gone = true;
                return;
            }
            Err(e) => tracing::debug!("reading pod {name}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Appends the pod's output to its log file, from when its container starts until it ends.
async fn follow_log(api: Api<Pod>, name: String, log: PathBuf, state: Arc<Mutex<PodState>>) {
    use futures::AsyncBufReadExt;
    use std::io::Write;
    loop {
        let (started, ended) = {
            let s = state.lock().expect("pod state");
            (s.started(), s.gone)
        };
        if ended {
            return;
        }
        if started {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let Ok(mut file) = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&log)
    else {
        tracing::warn!("could not open log {}", log.display());
        return;
    };
    let params = LogParams {
        container: Some(CONTAINER.into()),
        follow: true,
        ..Default::default()
    };
    let stream = match api.log_stream(&name, &params).await {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(file, "e2e: could not follow the log of pod {name}: {e}");
            return;
        }
    };
    let mut lines = stream.lines();
    use futures::TryStreamExt;
    while let Ok(Some(line)) = lines.try_next().await {
        let _ = writeln!(file, "{line}");
    }
}

/// A running component: a pod of the environment.
struct KubePod {
    name: String,
    pod: String,
    place_name: String,
    peer_host: String,
    log: PathBuf,
    /// Its ports, with the loopback port each is forwarded from once it is ready.
    ports: Vec<(NamedPort, u16)>,
    api: Option<Api<Pod>>,
    state: Arc<Mutex<PodState>>,
    /// The watch, the log and the port forwards.
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop_grace: Duration,
    env: Arc<Env>,
    kubeconfig: PathBuf,
}

impl KubePod {
    fn port(&self, name: &str) -> Result<&(NamedPort, u16)> {
        self.ports
            .iter()
            .find(|(p, _)| p.name == name)
            .with_context(|| format!("internal: {} has no port named `{name}`", self.name))
    }

    /// A loopback listener per port; each connection to it is a port-forward stream of its own.
    async fn forward(&mut self) -> Result<()> {
        let api = self.api.clone().context("the pod is gone")?;
        for (p, local) in &mut self.ports {
            let listener = tokio::net::TcpListener::bind((LOOPBACK, 0))
                .await
                .context("binding a loopback port to forward")?;
            *local = listener.local_addr()?.port();
            let (api, pod, port) = (api.clone(), self.pod.clone(), p.port);
            self.tasks.push(tokio::spawn(async move {
                while let Ok((mut conn, _)) = listener.accept().await {
                    let (api, pod) = (api.clone(), pod.clone());
                    tokio::spawn(async move {
                        let mut pf = match api.portforward(&pod, &[port]).await {
                            Ok(pf) => pf,
                            Err(e) => {
                                tracing::debug!("forwarding to {pod}:{port}: {e}");
                                return;
                            }
                        };
                        if let Some(mut upstream) = pf.take_stream(port) {
                            let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
                        }
                        pf.abort();
                    });
                }
            }));
        }
        Ok(())
    }

    fn forget(&self) {
        if let Some(p) = self
            .env
            .places
            .lock()
            .expect("place registry")
            .get_mut(&self.place_name)
        {
            p.running.retain(|(c, _)| c != &self.pod);
        }
    }
}

#[async_trait]
impl super::Starting for KubePod {
    fn exited(&mut self) -> Result<Option<String>> {
        Ok(self.state.lock().expect("pod state").ended())
    }

    /// Inside the pod: a forwarded port answers a connect even when nothing listens behind it.
    async fn port_answers(&self, port: &str) -> Result<bool> {
        if !self.state.lock().expect("pod state").started() {
            return Ok(false);
        }
        let port = self.port(port)?.0.port;
        let mut kubectl = tokio::process::Command::new("kubectl");
        kubectl.arg("--kubeconfig").arg(&self.kubeconfig).args([
            "exec",
            "-n",
            &self.env.namespace,
            &self.pod,
            "-c",
            CONTAINER,
            "--",
        ]);
        Ok(super::roles::port_answers_inside(kubectl, port).await)
    }
}

#[async_trait]
impl Running for KubePod {
    fn name(&self) -> &str {
        &self.name
    }

    fn endpoint(&self, port: &str) -> Result<Endpoint> {
        Ok(Endpoint {
            host: LOOPBACK.into(),
            port: self.port(port)?.1,
        })
    }

    fn peer_endpoint(&self, port: &str) -> Result<Endpoint> {
        Ok(Endpoint {
            host: self.peer_host.clone(),
            port: self.port(port)?.0.port,
        })
    }

    fn log_file(&self) -> PathBuf {
        self.log.clone()
    }

    fn is_running(&mut self) -> bool {
        self.api.is_some() && self.state.lock().expect("pod state").ended().is_none()
    }

    fn remains(&self) -> bool {
        !self.state.lock().expect("pod state").gone
    }

    async fn pause(&self) -> Result<()> {
        bail!(
            "{}: the kind tier cannot freeze a pod (Kubernetes has no pause); a scenario that pauses a component runs on the local or docker tier, untagged @kind",
            self.name
        )
    }

    async fn resume(&self) -> Result<()> {
        bail!(
            "{}: the kind tier cannot freeze a pod, so there is nothing to resume",
            self.name
        )
    }

    /// Deleted with its grace (SIGTERM, then SIGKILL); waits until the pod is gone.
    async fn stop(&mut self) {
        let Some(api) = self.api.take() else { return };
        let grace = self.stop_grace.as_secs().max(1);
        let dp = DeleteParams {
            grace_period_seconds: Some(grace as u32),
            ..Default::default()
        };
        if let Err(e) = api.delete(&self.pod, &dp).await {
            tracing::warn!("deleting the pod of {}: {e}", self.name);
        }
        let deadline = Instant::now() + Duration::from_secs(grace + 30);
        while Instant::now() < deadline {
            if matches!(api.get_opt(&self.pod).await, Ok(None)) {
                self.state.lock().expect("pod state").gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.forget();
    }
}

impl Drop for KubePod {
    fn drop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        if self.api.take().is_some() {
            // Dropped without a stop (a panic during teardown): deleted without waiting.
            let _ = Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args([
                    "delete",
                    "pod",
                    "--wait=false",
                    "-n",
                    &self.env.namespace,
                    &self.pod,
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
            self.forget();
        }
    }
}

fn pid_alive(pid: &str) -> bool {
    pid.parse::<i32>()
        .is_ok_and(|p| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok())
}

fn path_str(p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_string)
        .with_context(|| format!("path {} is not UTF-8", p.display()))
}

/// The objects the @apiserver scenario has a real API server accept: an environment's
/// namespace, the KDC place's Service, and the KDC's pod with that Service's ClusterIP in its
/// `hostAliases`, rendered by the functions [`Kube::start`] uses, from the KDC's role. Returns
/// the pod as rendered (for the scenario to compare with what the server stored).
pub async fn apply_sample(client: &Client, namespace_name: &str, run: &str) -> Result<Pod> {
    let roles = Roles::with(
        Tier::Kind,
        None,
        BTreeMap::from([("kdc".to_string(), "e2e-harness/kdc:sample".to_string())]),
    );
    let role = roles.role("kdc")?;
    let ns: Api<Namespace> = Api::all(client.clone());
    ns.create(&PostParams::default(), &namespace(namespace_name, run)?)
        .await
        .with_context(|| format!("creating the namespace {namespace_name}"))?;
    let services: Api<Service> = Api::namespaced(client.clone(), namespace_name);
    let svc = apply_service(&services, run, "kdc", &[])
        .await
        .context("creating the KDC's Service")?;
    let ports = [NamedPort {
        name: "kdc".into(),
        port: 88,
    }];
    apply_service(&services, run, "kdc", &ports)
        .await
        .context("giving the KDC's Service its port")?;
    let ip = svc
        .spec
        .and_then(|s| s.cluster_ip)
        .context("the KDC's Service has no ClusterIP")?;
    let root = run_root().join(run).join("kdc");
    let plan = PodPlan {
        namespace: namespace_name.into(),
        name: "kdc-0".into(),
        run: run.into(),
        service: "kdc".into(),
        image: role.image,
        command: Some("/usr/sbin/krb5kdc".into()),
        args: vec!["-n".into()],
        env: vec![("KRB5_CONFIG".into(), format!("{}/krb5.conf", role.dir))],
        uid: role.uid,
        working_dir: role.dir.clone(),
        ports: ports.to_vec(),
        mounts: vec![
            HostMount {
                node_path: path_str(&root)?,
                inside: role.dir.clone(),
                read_only: false,
                file: false,
            },
            HostMount {
                node_path: path_str(&root.join("kdc.conf"))?,
                inside: format!("{}/kdc.conf", role.dir),
                read_only: true,
                file: true,
            },
        ],
        aliases: BTreeMap::from([("kdc.example.test".to_string(), ip)]),
        hostname: "kdc.example.test".into(),
        grace: Duration::from_secs(5),
        stdin: false,
    };
    let rendered = pod(&plan)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace_name);
    pods.create(&PostParams::default(), &rendered)
        .await
        .context("creating the KDC's pod")?;
    Ok(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> PodPlan {
        PodPlan {
            namespace: "e2e-r-0".into(),
            name: "postgres-3".into(),
            run: "20261201-195952-1a2b".into(),
            service: "postgres".into(),
            image: "e2e-harness/postgres:0a1b".into(),
            command: Some("/usr/lib/postgresql/17/bin/postgres".into()),
            args: vec!["-D".into(), "/e2e/postgres/pgdata".into()],
            env: vec![("KRB5_KTNAME".into(), "/e2e/postgres/server.keytab".into())],
            uid: 999,
            working_dir: "/e2e/postgres".into(),
            ports: vec![NamedPort {
                name: "postgres".into(),
                port: 5432,
            }],
            mounts: vec![
                HostMount {
                    node_path: "/w/target/e2e/r/s/postgres".into(),
                    inside: "/e2e/postgres".into(),
                    read_only: false,
                    file: false,
                },
                HostMount {
                    node_path: "/w/target/e2e/r/s/postgres/server.keytab".into(),
                    inside: "/e2e/postgres/server.keytab".into(),
                    read_only: true,
                    file: true,
                },
            ],
            aliases: BTreeMap::from([
                ("db.example.test".to_string(), "10.96.0.12".to_string()),
                ("kdc.example.test".to_string(), "10.96.0.11".to_string()),
            ]),
            hostname: "db.example.test".into(),
            grace: Duration::from_secs(5),
            stdin: false,
        }
    }

    #[test]
    fn the_pod_maps_every_placed_host_name_to_its_service() {
        let p = pod(&plan()).unwrap();
        let spec = p.spec.unwrap();
        let aliases: Vec<(String, Vec<String>)> = spec
            .host_aliases
            .unwrap()
            .into_iter()
            .map(|a| (a.ip, a.hostnames.unwrap_or_default()))
            .collect();
        assert_eq!(
            aliases,
            vec![
                (
                    "10.96.0.12".to_string(),
                    vec!["db.example.test".to_string()]
                ),
                (
                    "10.96.0.11".to_string(),
                    vec!["kdc.example.test".to_string()]
                ),
            ]
        );
        assert_eq!(spec.hostname.as_deref(), Some("db"));
    }

    #[test]
    fn the_pod_mounts_the_place_by_host_path_and_files_read_only_over_it() {
        let p = pod(&plan()).unwrap();
        let spec = p.spec.unwrap();
        let volumes = spec.volumes.unwrap();
        let hp: Vec<(String, Option<String>)> = volumes
            .iter()
            .map(|v| {
                let h = v.host_path.clone().unwrap();
                (h.path, h.type_)
            })
            .collect();
        assert_eq!(
            hp,
            vec![
                (
                    "/w/target/e2e/r/s/postgres".to_string(),
                    Some("Directory".to_string())
                ),
                (
                    "/w/target/e2e/r/s/postgres/server.keytab".to_string(),
                    Some("File".to_string())
                ),
            ]
        );
        let c = &spec.containers[0];
        let mounts: Vec<(String, String, bool)> = c
            .volume_mounts
            .clone()
            .unwrap()
            .into_iter()
            .map(|m| (m.name, m.mount_path, m.read_only.unwrap_or(false)))
            .collect();
        assert_eq!(
            mounts,
            vec![
                ("m0".to_string(), "/e2e/postgres".to_string(), false),
                (
                    "m1".to_string(),
                    "/e2e/postgres/server.keytab".to_string(),
                    true
                ),
            ]
        );
        // Every mount names a volume of the pod.
        for m in c.volume_mounts.iter().flatten() {
            assert!(volumes.iter().any(|v| v.name == m.name), "{}", m.name);
        }
    }

    #[test]
    fn the_pod_runs_the_program_as_the_roles_user_with_its_ports_and_labels() {
        let p = pod(&plan()).unwrap();
        let labels = p.metadata.labels.unwrap();
        assert_eq!(labels[RUN_LABEL], "20261201-195952-1a2b");
        assert_eq!(labels[HOST_LABEL], "postgres");
        let spec = p.spec.unwrap();
        assert_eq!(spec.share_process_namespace, Some(true));
        assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
        assert_eq!(spec.termination_grace_period_seconds, Some(5));
        let c = &spec.containers[0];
        assert_eq!(c.name, CONTAINER);
        assert_eq!(c.image.as_deref(), Some("e2e-harness/postgres:0a1b"));
        assert_eq!(
            c.command.as_deref(),
            Some(&["/usr/lib/postgresql/17/bin/postgres".to_string()][..])
        );
        assert_eq!(c.args.as_ref().unwrap()[0], "-D");
        assert_eq!(c.working_dir.as_deref(), Some("/e2e/postgres"));
        assert_eq!(c.security_context.as_ref().unwrap().run_as_user, Some(999));
        let ports: Vec<(Option<String>, i32)> = c
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.clone(), p.container_port))
            .collect();
        assert_eq!(ports, vec![(Some("postgres".to_string()), 5432)]);
        let env = c.env.as_ref().unwrap();
        assert_eq!(env[0].name, "KRB5_KTNAME");
        assert_eq!(env[0].value.as_deref(), Some("/e2e/postgres/server.keytab"));
    }

    #[test]
    fn a_service_selects_its_pods_by_name_and_has_a_port_before_its_component_starts() {
        let s = service("ns", "run", "pgbouncer", &[]).unwrap();
        let spec = s.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.selector.unwrap()[HOST_LABEL], "pgbouncer");
        assert_eq!(spec.ports.unwrap()[0].port, i32::from(PLACEHOLDER_PORT));
        let s = service(
            "ns",
            "run",
            "pgbouncer",
            &[NamedPort {
                name: "pgbouncer".into(),
                port: 6543,
            }],
        )
        .unwrap();
        let p = &s.spec.unwrap().ports.unwrap()[0];
        assert_eq!((p.name.as_deref(), p.port), (Some("pgbouncer"), 6543));
        assert_eq!(s.metadata.labels.unwrap()[RUN_LABEL], "run");
    }

    #[test]
    fn services_are_named_from_the_family_and_names_are_kubernetes_labels() {
        let place = Place {
            name: "airflow-3.3.2".into(),
            dir: "/opt/airflow/run".into(),
            artifacts: "/x".into(),
            host: "airflow.example.test".into(),
            bind: ANY.into(),
            clients: SAME_NETWORK.into(),
            owner: RunAs::Invoker,
        };
        assert_eq!(service_name(&place, "airflow-3.3.2"), "airflow");
        assert_eq!(service_name(&place, "api-server"), "airflow-api-server");
        assert_eq!(dns_label("Dag_Processor", 63), "dag-processor");
        assert_eq!(dns_label("3rd", 63), "x3rd");
        assert_eq!(port_name("triggerer-logs-port"), "triggerer-logs");
        assert_eq!(host_label("db.example.test"), "db");
    }

    #[test]
    fn the_node_sees_run_directories_at_their_path_and_tmp_at_its_mount() {
        let under = run_root().join("r/s/kdc");
        assert_eq!(node_path(&under).unwrap(), under.to_str().unwrap());
        assert_eq!(
            node_path(Path::new("/tmp/harness-pg-1-abc")).unwrap(),
            format!("{NODE_TMP}/harness-pg-1-abc")
        );
        let e = format!("{:#}", node_path(Path::new("/srv/elsewhere")).unwrap_err());
        assert!(e.contains("extraMounts"), "{e}");
    }

    /// kind/cluster.yaml mounts what [`node_path`] maps to, and nothing else stands for it.
    #[test]
    fn the_kind_cluster_mounts_the_run_root_and_tmp_where_the_substrate_expects() {
        let yaml = std::fs::read_to_string(crate::kind::kind_dir().join("cluster.yaml")).unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(
            &yaml
                .replace("${HTTP_PORT}", "1")
                .replace("${HTTPS_PORT}", "2"),
        )
        .unwrap();
        let mounts = &doc["nodes"][0]["extraMounts"];
        let pairs: Vec<(String, String)> = mounts
            .as_sequence()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["hostPath"].as_str().unwrap().to_string(),
                    m["containerPath"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert!(
            pairs.contains(&("${RUN_ROOT}".into(), "${RUN_ROOT}".into())),
            "{pairs:?}"
        );
        assert!(
            pairs.contains(&("/tmp".into(), NODE_TMP.into())),
            "{pairs:?}"
        );
    }

    #[test]
    fn a_kubeconfig_that_is_not_kinds_is_refused_naming_the_variable_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let kc = |ctx: &str| {
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: {ctx}\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\ncontexts:\n- name: {ctx}\n  context:\n    cluster: c\n    user: u\nusers:\n- name: u\n  user: {{}}\n"
            )
        };
        let f = dir.path().join("kubeconfig");
        std::fs::write(&f, kc("kind-astro-e2e")).unwrap();
        assert_eq!(kind_cluster(&f).unwrap(), "astro-e2e");
        std::fs::write(&f, kc("prod-eks")).unwrap();
        let e = format!("{:#}", kind_cluster(&f).unwrap_err());
        assert!(
            e.contains("E2E_KUBECONFIG") && e.contains("hostPath"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            kind_cluster(&dir.path().join("missing")).unwrap_err()
        );
        assert!(e.contains("E2E_KUBECONFIG") && e.contains("missing"), "{e}");
        let e = Kube::connect(None, None, None).err().unwrap();
        assert!(format!("{e:#}").contains("set E2E_KUBECONFIG"), "{e:#}");
    }

    #[test]
    fn a_pod_that_cannot_pull_its_image_has_ended_with_the_reason() {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "kdc-0"},
            "status": {"phase": "Pending", "containerStatuses": [{
                "name": "main", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}
            }]}
        }))
        .unwrap();
        let s = PodState {
            pod: Some(p),
            gone: false,
        };
        assert!(s.ended().unwrap().contains("ImagePullBackOff"));
        assert_eq!(PodState::default().ended(), None);
        let exited: Pod = serde_json::from_value(json!({
            "metadata": {"name": "kdc-0"},
            "status": {"phase": "Failed", "containerStatuses": [{
                "name": "main", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 1, "reason": "Error"}}
            }]}
        }))
        .unwrap();
        let s = PodState {
            pod: Some(exited),
            gone: false,
        };
        assert_eq!(s.ended().as_deref(), Some("exit code 1, Error"));
    }
}
