//! The kind tier as an ordered plan: every command, API call and wait, with the files it uses.
//! `--dry-run` prints it; `execute` carries it out; the tests hold its order to the
//! documentation's (the two-step upgrade, the database before the deployment, the injector
//! before any PgBouncer pod exists).

use std::fmt;
use std::path::PathBuf;

use anyhow::{Context, Result};
use harness_config::Deployment;

use super::houston_db::{self, HoustonDb};
use super::injector::{self, Credential};
use super::{houston, Options, Platform};
use crate::kube::manifests;
use crate::kube::pki::Pki;
use crate::kube::pods;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Cluster,
    External,
    Images,
    Injector,
    Tls,
    HoustonDb,
    Platform,
    Deployment,
    Scenarios,
    Teardown,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Cluster => "cluster",
            Phase::External => "external KDC and database",
            Phase::Images => "images",
            Phase::Injector => "credential injector",
            Phase::Tls => "ingress TLS",
            Phase::HoustonDb => "Houston's database",
            Phase::Platform => "platform",
            Phase::Deployment => "deployment",
            Phase::Scenarios => "scenarios",
            Phase::Teardown => "teardown",
        })
    }
}

/// What a pod wait looks for, beyond Ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodWait {
    pub namespace: String,
    pub selector: String,
    /// The webhook's mark on a mutated pod: this variable set in the PgBouncer container.
    pub injected_env: Option<&'static str>,
    /// A line the pod's log must show (PgBouncer's GSS login).
    pub log_line: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A command, argv as run.
    Run(Vec<String>),
    /// A command fed a file on its standard input.
    Feed { argv: Vec<String>, stdin: PathBuf },
    /// Server-side apply of every object in these files (kube-rs).
    Apply(Vec<PathBuf>),
    /// The krb5.conf ConfigMap and keytab Secret of each namespace, rendered at this step from
    /// the realm's krb5.conf and the keytabs the KDC exported (they do not exist when the plan
    /// is made), written to `file` (0600) and applied server-side.
    Credentials {
        krb5_conf: PathBuf,
        creds: Vec<Credential>,
        file: PathBuf,
    },
    /// The customer's KDC and PostgreSQL (`external.rs`): the realm with its principals and
    /// keytabs, the deployment's database, krb5.conf and the keytabs handed to the credentials
    /// step, then `databases` (`(database, owning role)`: Houston's), both containers joined to
    /// `network`. `lines` say what it does, for the printed plan.
    External {
        network: String,
        creds: Vec<Credential>,
        databases: Vec<(String, String)>,
        lines: Vec<String>,
    },
    /// Everything the external step made: stopped, and whatever carries the run's label removed.
    RemoveExternal { run: String },
    /// Pods of a selector Ready (kube-rs), failing early on a terminal state.
    Pods(PodWait),
    /// A job of this name in the namespace completed.
    Job { namespace: String, name: String },
    /// An HTTPS endpoint through the ingress answering 200 (Houston's, Airflow's health).
    /// `authorized`: sent with the token of the user the Houston steps created, as the
    /// deployment's ingress asks Houston (nginx `auth-url`, `/v1/authorization`) about every
    /// request; without it the answer is the platform's login, not Airflow.
    Https {
        url: String,
        expect: &'static str,
        authorized: bool,
    },
    /// Headless Chromium on this machine opens `url` through the ingress with the created
    /// user's Houston token on every request, and must see Airflow 3's health badges.
    Browser { url: String },
    /// The @kind scenarios on this cluster (the kind substrate: their own namespaces, the
    /// project's images), run by the scenario runner with the cluster's kubeconfig.
    Scenarios { kubeconfig: PathBuf },
    /// A GraphQL document sent to Houston.
    Graphql(&'static houston::Document),
}

#[derive(Debug, Clone)]
pub struct Step {
    pub phase: Phase,
    pub title: String,
    pub action: Action,
}

impl Step {
    /// The objects this step applies, in order, or None when it applies none. A credentials
    /// step renders its objects now, from what the realm step left, and writes them 0600: the
    /// executor and the API server tier's scenario both apply exactly this.
    pub fn objects(&self) -> Result<Option<Vec<serde_json::Value>>> {
        match &self.action {
            Action::Apply(files) => {
                let mut all = Vec::new();
                for f in files {
                    all.extend(injector::read_objects(f)?);
                }
                Ok(Some(all))
            }
            Action::Credentials {
                krb5_conf,
                creds,
                file,
            } => {
                let conf = std::fs::read_to_string(krb5_conf).with_context(|| {
                    format!(
                        "{} is missing: the realm step writes it",
                        krb5_conf.display()
                    )
                })?;
                let objects = injector::credentials(&conf, creds)?;
                injector::write_objects(file, &objects)?;
                Ok(Some(objects))
            }
            _ => Ok(None),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Files the plan rendered into the run directory (secrets among them are mode 0600).
    pub files: Vec<PathBuf>,
}

/// The images the project builds for this tier with `cargo xtask images`: the customer's KDC and
/// database, PgBouncer's (the docker substrate they run on checks for it at connect), and the
/// reference webhook, loaded into the node.
pub const PROJECT_IMAGES: &[&str] = &["kdc", "postgres", "pgbouncer", "webhook"];

/// The tag `cargo xtask images` gave one of the project's images (`target/images/manifest.json`),
/// or None when it has not been built on this machine.
pub fn built_image(component: &str) -> Option<String> {
    crate::images::built(component)
}

/// The image the plan runs for one of the project's components: the built tag, or the name
/// `cargo xtask images` will give it (preflight reports it missing).
pub fn project_image(component: &str) -> String {
    built_image(component)
        .unwrap_or_else(|| format!("e2e-harness/{component}:<cargo xtask images>"))
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Builds the plan and renders its files under `o.work`. `images` is the platform render's image
/// list (from `preflight::images_in`), empty when no chart was given.
pub fn build(o: &Options, images: &[String]) -> Result<Plan> {
    std::fs::create_dir_all(&o.work).with_context(|| format!("creating {}", o.work.display()))?;
    let deployment =
        harness_config::load_deployment(&o.deployment).map_err(|e| anyhow::anyhow!("{e}"))?;
    let values = harness_config::load_values(&o.values).map_err(|e| anyhow::anyhow!("{e}"))?;
    let selectors = values
        .selectors()
        .filter(|s| !s.is_empty())
        .with_context(|| {
            format!(
                "{}: no `harness.injector.selectors`: the webhook would select no PgBouncer pod; list the labels it must match",
                o.values.display()
            )
        })?
        .to_vec();
    let mut files = Vec::new();
    let mut steps = Vec::new();
    let mut step = |phase, title: String, action| {
        steps.push(Step {
            phase,
            title,
            action,
        })
    };
    let w = |name: &str| o.work.join(name);
    let s = |p: &PathBuf| p.display().to_string();
    let name = o.name.as_str();
    let ns = o.platform_namespace();
    let release = o.platform_release();

    // The cluster.
    let kubeconfig = match &o.kubeconfig {
        Some(k) => k.clone(),
        None => {
            let cluster = w("cluster.yaml");
            let template = std::fs::read_to_string(super::kind_dir().join("cluster.yaml"))
                .context("reading kind/cluster.yaml")?;
            std::fs::write(
                &cluster,
                template
                    .replace("${HTTP_PORT}", &o.http_port.to_string())
                    .replace("${HTTPS_PORT}", &o.https_port.to_string())
                    .replace("${RUN_ROOT}", &s(&crate::substrate::kube::run_root())),
            )?;
            files.push(cluster.clone());
            let kc = w("kubeconfig");
            step(
                Phase::Cluster,
                "create the kind cluster (its own kubeconfig, never ~/.kube/config)".into(),
                Action::Run(argv(&[
                    "kind",
                    "create",
                    "cluster",
                    "--name",
                    name,
                    "--config",
                    &s(&cluster),
                    "--kubeconfig",
                    &s(&kc),
                    "--wait",
                    "180s",
                ])),
            );
            kc
        }
    };

    // The customer's "external" KDC and database, on the Docker network of the cluster's nodes
    // so pods reach them by host name, exactly as a customer's pods reach theirs. Houston's
    // database is on the same server, its role named like Houston's principal.
    let creds = credentials(o, &values, &deployment)?;
    let hdb = HoustonDb::from_values(o, &values)?;
    check_houston_db(o, &deployment, &hdb)?;
    let databases = vec![(hdb.database.clone(), hdb.principal.clone())];
    let network = network_name(o);
    step(
        Phase::External,
        format!("the customer's KDC and PostgreSQL: realm, principals, keytabs and databases (the deployment's and Houston's) made by the harness's own realm and database code on the docker substrate, joined to the Docker network {network}"),
        Action::External {
            network: network.clone(),
            lines: external_lines(o, &deployment, &creds, &databases)?,
            creds: creds.clone(),
            databases,
        },
    );

    // Images: kind's node pulls nothing; everything it runs is loaded from the local engine.
    let mut all_images: Vec<String> = images.to_vec();
    all_images.push(project_image("webhook"));
    for image in &all_images {
        step(
            Phase::Images,
            format!("load {image} into the node"),
            Action::Run(argv(&[
                "kind",
                "load",
                "docker-image",
                "--name",
                name,
                image,
            ])),
        );
    }

    // The injector, before any PgBouncer pod exists: a pod created before its webhook is
    // registered is never mutated. Its certificate and the ingress's come from the run's CA.
    let pki = Pki::create(&o.pki_dir())?;
    files.push(pki.ca_file());
    let cfg = manifests::webhook_config(&selectors);
    let injector = w("injector.yaml");
    injector::write_objects(
        &injector,
        &injector::webhook(&cfg, &pki, &project_image("webhook"))?,
    )?;
    files.push(injector.clone());
    step(
        Phase::Injector,
        format!(
            "apply the reference webhook ({}: Deployment, Service, ServiceAccount, ConfigMap, TLS Secret) and its MutatingWebhookConfiguration with the run's CA",
            manifests::WEBHOOK_NAMESPACE
        ),
        Action::Apply(vec![injector]),
    );
    step(
        Phase::Injector,
        "apply the Kerberos material the webhook mounts (krb5.conf ConfigMap, keytab Secret) in the platform's and the deployment's namespaces".into(),
        Action::Credentials {
            krb5_conf: external_krb5_conf(o),
            creds,
            file: w("credentials.yaml"),
        },
    );
    step(
        Phase::Injector,
        "the webhook is Ready".into(),
        Action::Pods(PodWait {
            namespace: manifests::WEBHOOK_NAMESPACE.into(),
            selector: format!("app.kubernetes.io/name={}", manifests::WEBHOOK_NAME),
            injected_env: None,
            log_line: None,
        }),
    );

    // The ingress's certificate and the CA that signed it, before the chart that mounts them;
    // Houston's and Airflow's calls through the ingress trust that CA only.
    let ingress = w("ingress-tls.yaml");
    injector::write_objects(&ingress, &injector::ingress(ns, &o.base_domain, &pki)?)?;
    files.push(ingress.clone());
    step(
        Phase::Tls,
        format!(
            "apply the ingress's TLS Secret {} (the run's CA for {}) and the CA as Secret {}",
            injector::INGRESS_TLS_SECRET,
            injector::ingress_names(&o.base_domain).join(", "),
            injector::PRIVATE_CA_SECRET
        ),
        Action::Apply(vec![ingress]),
    );

    // Houston's PgBouncer configuration and database URL: Secrets the customer creates and the
    // chart only names, so they exist before step 1 creates the pods that mount them.
    let password = crate::secret::Secret::generate();
    let rendered = houston_db::render(o, &values, &hdb, &password, houston_db::scram_verifier)?;
    let houston_file = w("houston-db.yaml");
    injector::write_objects(&houston_file, &houston_db::objects(&hdb, &rendered))?;
    files.push(houston_file.clone());
    let hns = &hdb.namespace;
    step(
        Phase::HoustonDb,
        format!(
            "apply Houston's PgBouncer Secret {hns}/{} (pgbouncer.ini: [databases] {} as {}, GSSAPI to postgres/{}@{}; users.txt) and its database URL Secret {hns}/{} (connection, through {release}-pgbouncer:6543 with Prisma's PgBouncer parameters); the password is generated per run, never printed",
            hdb.pgbouncer_secret,
            hdb.database,
            hdb.principal,
            hdb.host,
            hdb.realm,
            hdb.backend_secret,
        ),
        Action::Apply(vec![houston_file]),
    );

    // The platform, in the documentation's two steps.
    let overlay = w("values-kind.yaml");
    std::fs::write(&overlay, values_overlay(o))?;
    files.push(overlay.clone());
    let chart = o
        .chart
        .as_ref()
        .map(|c| c.display().to_string())
        .unwrap_or_else(|| "<--astronomer-chart DIR>".into());
    let helm = |hooks: bool| {
        let mut a = argv(&[
            "helm",
            "upgrade",
            "--install",
            release,
            &chart,
            "--namespace",
            ns,
            "--create-namespace",
            "--kubeconfig",
            &s(&kubeconfig),
            "--values",
            &o.values.display().to_string(),
            "--values",
            &s(&overlay),
            "--timeout",
            "20m",
        ]);
        if !hooks {
            a.push("--no-hooks".into());
        }
        a
    };
    step(
        Phase::Platform,
        "step 1: helm upgrade --no-hooks (Houston's PgBouncer, without the migration job that would need it)".into(),
        Action::Run(helm(false)),
    );
    step(
        Phase::Platform,
        "Houston's PgBouncer is Ready and was given credentials by the webhook".into(),
        Action::Pods(PodWait {
            namespace: ns.into(),
            selector: format!("component=pgbouncer,release={release}"),
            injected_env: Some("KRB5_CLIENT_KTNAME"),
            log_line: None,
        }),
    );
    step(
        Phase::Platform,
        "step 2: helm upgrade with hooks (the database migration job runs through PgBouncer)"
            .into(),
        Action::Run(helm(true)),
    );
    step(
        Phase::Platform,
        "Houston's database migrations completed".into(),
        Action::Job {
            namespace: ns.into(),
            name: format!("{release}-houston-db-migrations"),
        },
    );
    step(
        Phase::Platform,
        "Houston's PgBouncer logged in to PostgreSQL over GSSAPI".into(),
        Action::Pods(PodWait {
            namespace: ns.into(),
            selector: format!("component=pgbouncer,release={release}"),
            injected_env: Some("KRB5_CLIENT_KTNAME"),
            log_line: Some("GSSAPI login to server succeeded"),
        }),
    );
    step(
        Phase::Platform,
        "Houston answers its health check through the ingress".into(),
        Action::Https {
            url: format!("{}/healthz", o.houston_url()),
            expect: "",
            authorized: false,
        },
    );

    // The deployment, through Houston's API only (the UI cannot create it).
    step(
        Phase::Deployment,
        "introspect Houston; stop naming each Kerberos field it lacks".into(),
        Action::Graphql(&houston::INTROSPECT),
    );
    step(
        Phase::Deployment,
        "create the first user (SystemAdmin on a fresh database); its token authenticates the rest"
            .into(),
        Action::Graphql(&houston::CREATE_USER),
    );
    step(
        Phase::Deployment,
        "create a workspace".into(),
        Action::Graphql(&houston::CREATE_WORKSPACE),
    );
    let create = match o.platform {
        Platform::Software0377 => &houston::CREATE_DEPLOYMENT,
        Platform::Apc110 => {
            step(
                Phase::Deployment,
                "find the cluster to place the deployment on".into(),
                Action::Graphql(&houston::CLUSTERS),
            );
            &houston::UPSERT_DEPLOYMENT
        }
    };
    step(
        Phase::Deployment,
        format!(
            "{} with the deployment file's variables ({})",
            create.operation,
            o.deployment.display()
        ),
        Action::Graphql(create),
    );
    let rel = deployment.release_name.clone().unwrap_or_default();
    let dns = deployment
        .namespace
        .clone()
        .unwrap_or_else(|| format!("{ns}-{rel}"));
    let labels = deployment
        .pgbouncer_config
        .as_ref()
        .and_then(|p| p.labels.as_ref())
        .map(|l| {
            l.iter()
                .map(|(k, v)| format!(",{k}={v}"))
                .collect::<String>()
        })
        .unwrap_or_default();
    step(
        Phase::Deployment,
        "the deployment's PgBouncer pod (selected by its labels) has credentials and logged in over GSSAPI".into(),
        Action::Pods(PodWait {
            namespace: dns,
            selector: format!("component=pgbouncer,release={rel}{labels}"),
            injected_env: Some("KRB5_CLIENT_KTNAME"),
            log_line: Some("GSSAPI login to server succeeded"),
        }),
    );
    let airflow = format!(
        "https://deployments.{}:{}/{rel}/airflow",
        o.base_domain, o.https_port
    );
    step(
        Phase::Deployment,
        "every component in Airflow's health JSON is healthy, through the ingress".into(),
        Action::Https {
            url: format!("{airflow}/api/v2/monitor/health"),
            expect: "healthy",
            authorized: true,
        },
    );
    step(
        Phase::Deployment,
        "a browser opens the Airflow UI through the ingress as the platform user and sees it healthy".into(),
        Action::Browser {
            url: format!("{airflow}/"),
        },
    );
    // The same feature files as the other tiers, on this cluster; a cluster that is not one
    // the harness made from kind/cluster.yaml lacks the mounts the kind substrate needs.
    if o.kubeconfig.is_none() {
        step(
            Phase::Scenarios,
            "the @kind scenarios on this cluster (the kind substrate: a namespace per environment, the project's images)".into(),
            Action::Scenarios {
                kubeconfig: kubeconfig.clone(),
            },
        );
    }
    if o.kubeconfig.is_none() {
        step(
            Phase::Teardown,
            "delete the kind cluster".into(),
            Action::Run(argv(&["kind", "delete", "cluster", "--name", name])),
        );
    }
    step(
        Phase::Teardown,
        "stop the KDC and PostgreSQL; remove every container and network labelled with the run"
            .into(),
        Action::RemoveExternal {
            run: name.to_string(),
        },
    );
    Ok(Plan { steps, files })
}

/// What the external step does, as the plan prints it: the realm's commands, the principals and
/// where each keytab goes, the database, and the network joins.
fn external_lines(
    o: &Options,
    d: &Deployment,
    creds: &[Credential],
    databases: &[(String, String)],
) -> Result<Vec<String>> {
    let n = harness_config::EnvironmentShape::from_deployment(d)
        .map_err(|e| anyhow::anyhow!("{}: {e}", o.deployment.display()))?;
    let kdc = n.component_host("kdc");
    let mut v = vec![
        format!(
            "images {} and {}; containers labelled {}={}",
            project_image("kdc"),
            project_image("postgres"),
            crate::substrate::docker::RUN_LABEL,
            o.name
        ),
        format!("{kdc}: kdb5_util create -s -r {} (a one-off container; the master key is generated, never printed), then krb5kdc on port 88", n.realm),
        format!("kadmin.local: addprinc -randkey {0}; ktadd (once) -> {1}", n.server_spn, "PostgreSQL's krb_server_keyfile (0600, owned by its uid)"),
    ];
    let mut seen = Vec::new();
    for c in creds {
        if !seen.contains(&c.principal) {
            v.push(format!(
                "kadmin.local: addprinc -randkey {}; ktadd (once) -> {} (0600)",
                c.principal,
                c.keytab.display()
            ));
            seen.push(c.principal.clone());
        }
    }
    let mut dbs = vec![n.metadata_db.clone()];
    if n.result_backend_db != n.metadata_db {
        dbs.push(n.result_backend_db.clone());
    }
    v.push(format!(
        "{}: PostgreSQL 15, GSSAPI only, as the server principal {}; role \"{}\" LOGIN owning {}",
        n.db_host,
        n.server_spn,
        n.client_principal,
        dbs.join(", ")
    ));
    for (db, role) in databases {
        v.push(format!(
            "{}: role \"{role}\" LOGIN owning {db} (Houston's database, through its PgBouncer)",
            n.db_host
        ));
    }
    v.push(format!(
        "krb5.conf as pods read it (the KDC as {kdc}:88) -> {}",
        external_krb5_conf(o).display()
    ));
    let network = network_name(o);
    for (what, host) in [("KDC", &kdc), ("PostgreSQL", &n.db_host)] {
        v.push(format!(
            "$ docker network connect --alias {host} {network} <the run's {what} container>"
        ));
    }
    Ok(v)
}

/// The network the external step joins, or what the flag would say when it is missing (the
/// dry run prints it; a live run stops in preflight).
fn network_name(o: &Options) -> String {
    o.external_network()
        .map(str::to_string)
        .unwrap_or_else(|| "<--external-network NAME>".into())
}

/// The kind tier runs one KDC and one PostgreSQL, made from the deployment's names: Houston's
/// database and principal must be on them.
fn check_houston_db(o: &Options, d: &Deployment, h: &HoustonDb) -> Result<()> {
    let n = harness_config::EnvironmentShape::from_deployment(d)
        .map_err(|e| anyhow::anyhow!("{}: {e}", o.deployment.display()))?;
    let (values, deployment) = (o.values.display(), o.deployment.display());
    if h.realm != n.realm {
        anyhow::bail!(
            "{values}: Houston's principal `{}` (global.pgbouncer.extraEnv.KERBEROS_USER) is in realm {}, but the KDC the kind tier runs is the deployment's ({deployment}): {}; use one realm",
            h.principal,
            h.realm,
            n.realm
        );
    }
    if h.host != n.db_host || h.port != 5432 {
        anyhow::bail!(
            "{values}: `harness.houston.database` is {}:{}, but the one PostgreSQL the kind tier runs is the deployment's ({deployment}) at {}:5432; set `harness.houston.database.host: {}` and `port: 5432`",
            h.host,
            h.port,
            n.db_host,
            n.db_host
        );
    }
    Ok(())
}

/// The platform values the kind tier adds to the customer's: its base domain, the ingress on
/// the node's ports with the run's certificate, and the run's CA as a private CA the platform
/// trusts. Everything Kerberos comes from the customer's values as written.
fn values_overlay(o: &Options) -> String {
    format!(
        "# Added by the kind tier to the control plane's values (not the customer's settings).\nglobal:\n  baseDomain: {}\n  tlsSecret: {}\n  privateCaCerts:\n    - {}\nnginx:\n  serviceType: NodePort\n  hostNetwork: true\n",
        o.base_domain,
        injector::INGRESS_TLS_SECRET,
        injector::PRIVATE_CA_SECRET
    )
}

/// Where the realm step leaves krb5.conf as pods read it (the KDC by its host name).
pub fn external_krb5_conf(o: &Options) -> PathBuf {
    o.work.join("external/krb5.conf")
}

/// Where the realm step leaves the keytab of `principal` for the Secret (harness side, 0600).
pub fn exported_keytab(o: &Options, principal: &str) -> PathBuf {
    o.work
        .join("external/keytabs")
        .join(format!("{}.keytab", crate::run::slug(principal)))
}

/// Houston's PgBouncer principal: the `KERBEROS_USER` the values give its container.
pub fn houston_principal(o: &Options, v: &harness_config::Values) -> Result<String> {
    v.global_pgbouncer()
        .and_then(|g| g.extra_env.as_ref())
        .and_then(|e| e.iter().find(|(k, _)| k.as_str() == "KERBEROS_USER"))
        .map(|(_, p)| p.clone())
        .with_context(|| {
            format!(
                "{}: no `global.pgbouncer.extraEnv.KERBEROS_USER`: it names the principal Houston's PgBouncer logs in as, whose keytab the kind tier exports",
                o.values.display()
            )
        })
}

/// Which keytab each namespace's PgBouncer pods get: Houston's principal in the platform's
/// namespace, the deployment's connection principal in the deployment's.
pub fn credentials(
    o: &Options,
    v: &harness_config::Values,
    d: &Deployment,
) -> Result<Vec<Credential>> {
    let client = harness_config::EnvironmentShape::from_deployment(d)
        .map_err(|e| anyhow::anyhow!("{}: {e}", o.deployment.display()))?
        .client_principal;
    let houston = houston_principal(o, v)?;
    Ok([
        (pods::houston_namespace(v), houston),
        (pods::deployment_namespace(d), client),
    ]
    .into_iter()
    .map(|(namespace, principal)| Credential {
        keytab: exported_keytab(o, &principal),
        namespace,
        principal,
    })
    .collect())
}

impl Plan {
    /// The plan as people read it: numbered steps by phase, each command or call, and the files.
    pub fn render(&self, o: &Options) -> String {
        let mut out = format!(
            "kind tier plan: run {}, Astronomer {}, {}\n",
            o.name,
            o.platform.version(),
            match &o.kubeconfig {
                Some(k) => format!("the existing cluster of {}", k.display()),
                None => "a new kind cluster".into(),
            }
        );
        let mut phase = None;
        for (i, s) in self.steps.iter().enumerate() {
            if phase != Some(s.phase) {
                out += &format!("\n[{}]\n", s.phase);
                phase = Some(s.phase);
            }
            out += &format!("{:>3}. {}\n", i + 1, s.title);
            out += &match &s.action {
                Action::Run(a) => format!("       $ {}\n", a.join(" ")),
                Action::Feed { argv, stdin } => {
                    format!("       $ {} < {}\n", argv.join(" "), stdin.display())
                }
                Action::External { lines, .. } => {
                    lines.iter().map(|l| format!("       {l}\n")).collect()
                }
                Action::RemoveExternal { run } => format!(
                    "       remove containers and networks labelled {}={run}\n",
                    crate::substrate::docker::RUN_LABEL
                ),
                Action::Apply(files) => files
                    .iter()
                    .map(|f| format!("       apply (server-side) {}\n", f.display()))
                    .collect(),
                Action::Credentials { krb5_conf, creds, file } => {
                    let mut t = format!(
                        "       write {} (0600, never printed) and apply it (server-side):\n",
                        file.display()
                    );
                    for c in creds {
                        t += &format!(
                            "         ConfigMap {}/{}: krb5.conf = {} (the realm's, KDC by host name)\n         Secret {}/{}: krb5.keytab = <redacted: the keytab of {} that kadmin.local ktadd exported in the KDC container, {}>\n",
                            c.namespace,
                            manifests::KRB5_CONFIG_MAP,
                            krb5_conf.display(),
                            c.namespace,
                            manifests::KEYTAB_SECRET,
                            c.principal,
                            c.keytab.display()
                        );
                    }
                    t
                }
                Action::Pods(p) => format!(
                    "       wait: pods {} in {} Ready{}{}; fail at once on ImagePullBackOff, CrashLoopBackOff, CreateContainerConfigError\n",
                    p.selector,
                    p.namespace,
                    p.injected_env.map(|e| format!(", {e} set")).unwrap_or_default(),
                    p.log_line.map(|l| format!(", log shows `{l}`")).unwrap_or_default()
                ),
                Action::Job { namespace, name } => {
                    format!("       wait: job {name} in {namespace} complete\n")
                }
                Action::Https { url, expect, authorized } => format!(
                    "       GET {url}{} -> 200{}\n",
                    if *authorized { " (authorization: the created user's Houston token)" } else { "" },
                    if expect.is_empty() { String::new() } else { format!(", body shows `{expect}`") }
                ),
                Action::Browser { url } => format!(
                    "       chromium {url} (authorization: the created user's Houston token; *.{} -> the loopback ingress; the ingress key pinned) -> the health badges; screenshot in evidence/\n",
                    o.base_domain
                ),
                Action::Scenarios { kubeconfig } => format!(
                    "       $ E2E_TIER=kind E2E_KUBECONFIG={} {}\n",
                    kubeconfig.display(),
                    o.runner
                        .as_ref()
                        .map(|r| r.display().to_string())
                        .unwrap_or_else(|| "<the scenario runner: cargo xtask e2e --tier kind builds it>".into())
                ),
                Action::Graphql(d) => format!(
                    "       POST {} {} (kind/houston/{})\n",
                    o.houston_url(),
                    d.operation,
                    d.file
                ),
            };
        }
        out += "\nfiles:\n";
        for f in &self.files {
            out += &format!("  {}\n", f.display());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(platform: Platform) -> (Options, Plan) {
        let dir = tempfile::tempdir().unwrap().keep();
        let root = crate::run::workspace_root();
        let mut o = Options::new(
            "astro-e2e-t1",
            &dir,
            &root.join("fixtures/values.yaml"),
            &root.join("fixtures/deployments/kerberos.yaml"),
        );
        o.platform = platform;
        o.http_port = 18080;
        o.https_port = 18443;
        let p = build(
            &o,
            &["registry.example.test/astronomer/ap-houston-api:0.37.7".into()],
        )
        .unwrap();
        (o, p)
    }

    fn position(p: &Plan, needle: &str) -> usize {
        p.steps
            .iter()
            .position(|s| s.title.contains(needle))
            .unwrap_or_else(|| panic!("no step `{needle}`"))
    }

    #[test]
    fn the_upgrade_runs_in_the_documented_two_steps_with_pgbouncer_between() {
        let (_, p) = plan(Platform::Software0377);
        let one = position(&p, "step 1: helm upgrade --no-hooks");
        let wait = position(&p, "Houston's PgBouncer is Ready");
        let two = position(&p, "step 2: helm upgrade with hooks");
        assert!(one < wait && wait < two);
        let Action::Run(a) = &p.steps[one].action else {
            panic!()
        };
        assert!(a.contains(&"--no-hooks".to_string()));
        let Action::Run(b) = &p.steps[two].action else {
            panic!()
        };
        assert!(!b.contains(&"--no-hooks".to_string()));
    }

    #[test]
    fn the_injector_and_the_database_come_before_any_pgbouncer_or_deployment() {
        let (_, p) = plan(Platform::Software0377);
        let injector = position(&p, "apply the reference webhook");
        let db = position(&p, "the customer's KDC and PostgreSQL");
        assert!(injector < position(&p, "step 1: helm upgrade"));
        assert!(db < position(&p, "createDeployment with the deployment file"));
    }

    #[test]
    fn each_platform_sends_its_own_mutation() {
        let (_, p) = plan(Platform::Software0377);
        assert!(p
            .steps
            .iter()
            .any(|s| s.title.starts_with("createDeployment")));
        assert!(!p.steps.iter().any(|s| s.title.contains("cluster to place")));
        let (_, p) = plan(Platform::Apc110);
        assert!(p
            .steps
            .iter()
            .any(|s| s.title.starts_with("upsertDeployment")));
        assert!(position(&p, "cluster to place") < position(&p, "upsertDeployment"));
    }

    #[test]
    fn the_deployment_pgbouncer_is_awaited_by_its_labels_in_its_namespace() {
        let (_, p) = plan(Platform::Software0377);
        let Action::Pods(w) = &p.steps[position(&p, "deployment's PgBouncer pod")].action else {
            panic!()
        };
        assert_eq!(w.namespace, "astronomer-kerberos-demo");
        assert_eq!(
            w.selector,
            "component=pgbouncer,release=kerberos-demo,krb-inject=enabled"
        );
        assert_eq!(w.log_line, Some("GSSAPI login to server succeeded"));
    }

    #[test]
    fn the_rendered_plan_names_every_command_and_file() {
        let (o, p) = plan(Platform::Software0377);
        let text = p.render(&o);
        assert!(text.contains("$ kind create cluster --name astro-e2e-t1 --config"));
        assert!(text.contains("kind load docker-image --name astro-e2e-t1 registry.example.test/astronomer/ap-houston-api:0.37.7"));
        assert!(text.contains("(kind/houston/create-deployment.graphql)"));
        let cluster = std::fs::read_to_string(o.work.join("cluster.yaml")).unwrap();
        assert!(cluster.contains("hostPort: 18443") && !cluster.contains("${"));
        for f in &p.files {
            assert!(text.contains(&f.display().to_string()), "{}", f.display());
        }
    }

    #[test]
    fn the_injector_file_holds_the_webhook_registered_with_the_run_ca() {
        let (o, p) = plan(Platform::Software0377);
        let Action::Apply(files) = &p.steps[position(&p, "apply the reference webhook")].action
        else {
            panic!()
        };
        let objs = injector::read_objects(&files[0]).unwrap();
        let ca = std::fs::read_to_string(o.pki_dir().join("ca.crt")).unwrap();
        let mwc = objs
            .iter()
            .find(|o| o["kind"] == "MutatingWebhookConfiguration")
            .unwrap();
        use base64::Engine;
        let bundle = base64::engine::general_purpose::STANDARD
            .decode(
                mwc["webhooks"][0]["clientConfig"]["caBundle"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(String::from_utf8(bundle).unwrap(), ca);
        // One webhook entry per selector of the values.
        assert_eq!(mwc["webhooks"].as_array().unwrap().len(), 2);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "injector.yaml holds the webhook's key");
        // The Ready wait selects the pods the Deployment makes.
        let dep = objs.iter().find(|o| o["kind"] == "Deployment").unwrap();
        let Action::Pods(w) = &p.steps[position(&p, "the webhook is Ready")].action else {
            panic!()
        };
        assert_eq!(w.namespace, dep["metadata"]["namespace"]);
        let (k, v) = w.selector.split_once('=').unwrap();
        assert_eq!(dep["spec"]["template"]["metadata"]["labels"][k], v);
    }

    #[test]
    fn the_ingress_secret_the_values_name_is_applied_before_the_platform() {
        let (o, p) = plan(Platform::Software0377);
        let at = position(&p, "apply the ingress's TLS Secret");
        assert!(at < position(&p, "step 1: helm upgrade"));
        let Action::Apply(files) = &p.steps[at].action else {
            panic!()
        };
        let objs = injector::read_objects(&files[0]).unwrap();
        let overlay = std::fs::read_to_string(o.work.join("values-kind.yaml")).unwrap();
        let overlay: serde_yaml::Value = serde_yaml::from_str(&overlay).unwrap();
        let named = overlay["global"]["tlsSecret"].as_str().unwrap();
        let secret = objs
            .iter()
            .find(|o| o["metadata"]["name"] == named)
            .unwrap_or_else(|| panic!("no Secret {named} in {}", files[0].display()));
        assert_eq!(secret["type"], "kubernetes.io/tls");
        assert_eq!(secret["metadata"]["namespace"], o.platform_namespace());
        let ca = overlay["global"]["privateCaCerts"][0].as_str().unwrap();
        assert!(objs.iter().any(|o| o["metadata"]["name"] == ca));
        // The Houston client trusts exactly this CA.
        assert!(o.pki_dir().join("ca.crt").is_file());
        for key in ["webhook.key", "astronomer-tls.key"] {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(o.pki_dir().join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(m & 0o777, 0o600, "{key}");
        }
    }

    #[test]
    fn each_namespace_gets_its_principal_s_keytab_and_the_plan_prints_none() {
        let (o, p) = plan(Platform::Software0377);
        let Action::Credentials { creds, .. } =
            &p.steps[position(&p, "apply the Kerberos material")].action
        else {
            panic!()
        };
        let pairs: Vec<(&str, &str)> = creds
            .iter()
            .map(|c| (c.namespace.as_str(), c.principal.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("astronomer", "houston@EXAMPLE.TEST"),
                ("astronomer-kerberos-demo", "astro_user@EXAMPLE.TEST")
            ]
        );
        let text = p.render(&o);
        assert!(text.contains("krb5.keytab = <redacted: the keytab of houston@EXAMPLE.TEST"));
        // The keytabs do not exist when the plan is made: nothing secret can be in it.
        assert!(creds.iter().all(|c| !c.keytab.exists()));
        assert!(position(&p, "apply the Kerberos material") < position(&p, "step 1: helm upgrade"));
    }

    #[test]
    fn the_realm_step_makes_every_keytab_the_credentials_step_reads() {
        let (o, p) = plan(Platform::Software0377);
        let ext = position(&p, "the customer's KDC and PostgreSQL");
        let creds_at = position(&p, "apply the Kerberos material");
        assert!(ext < creds_at);
        let Action::External {
            creds,
            lines,
            databases,
            ..
        } = &p.steps[ext].action
        else {
            panic!()
        };
        assert_eq!(
            databases,
            &[("houston".to_string(), "houston@EXAMPLE.TEST".to_string())]
        );
        let Action::Credentials {
            creds: read,
            krb5_conf,
            ..
        } = &p.steps[creds_at].action
        else {
            panic!()
        };
        assert_eq!(creds, read);
        assert_eq!(krb5_conf, &external_krb5_conf(&o));
        let text = lines.join("\n");
        for needle in [
            "kdb5_util create -s -r EXAMPLE.TEST",
            "addprinc -randkey postgres/db.example.test@EXAMPLE.TEST",
            "addprinc -randkey astro_user@EXAMPLE.TEST",
            "addprinc -randkey houston@EXAMPLE.TEST",
            "role \"astro_user@EXAMPLE.TEST\" LOGIN owning kerberos_demo_airflow",
            "role \"houston@EXAMPLE.TEST\" LOGIN owning houston",
            "docker network connect --alias kdc.example.test kind",
            "docker network connect --alias db.example.test kind",
        ] {
            assert!(text.contains(needle), "no `{needle}` in:\n{text}");
        }
        // The teardown removes what the step made, by the run's label.
        let last = p.steps.last().unwrap();
        assert_eq!(
            last.action,
            Action::RemoveExternal {
                run: o.name.clone()
            }
        );
    }

    use crate::kind::houston_db::tests::decoded;

    #[test]
    fn houston_s_secrets_are_applied_before_the_platform_and_never_printed() {
        let (o, p) = plan(Platform::Software0377);
        let at = position(&p, "apply Houston's PgBouncer Secret");
        assert_eq!(p.steps[at].phase, Phase::HoustonDb);
        assert!(at < position(&p, "step 1: helm upgrade --no-hooks"));
        assert!(position(&p, "the customer's KDC and PostgreSQL") < at);
        let Action::Apply(files) = &p.steps[at].action else {
            panic!()
        };
        assert_eq!(files, &[o.work.join("houston-db.yaml")]);
        assert!(p.files.contains(&files[0]));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "houston-db.yaml holds Houston's password"
        );
        let objs = injector::read_objects(&files[0]).unwrap();
        let named = |n: &str| {
            objs.iter()
                .find(|x| x["kind"] == "Secret" && x["metadata"]["name"] == n)
                .unwrap_or_else(|| panic!("no Secret {n}"))
        };
        // The names the values give the chart (global.pgbouncer.secretName,
        // astronomer.houston.backendSecretName), in the platform's namespace.
        let pgb = named("astronomer-pgbouncer-config");
        let backend = named("astronomer-houston-kerberos-backend");
        for x in [pgb, backend] {
            assert_eq!(x["metadata"]["namespace"], o.platform_namespace());
        }
        let users = decoded(pgb, "users.txt");
        assert!(users.starts_with("\"houston\" \"SCRAM-SHA-256$"), "{users}");
        let ini = decoded(pgb, "pgbouncer.ini");
        assert!(ini.contains("\nserver_krb_spn = postgres/db.example.test@EXAMPLE.TEST\n"));
        let url = decoded(backend, "connection");
        let password = url
            .split_once("houston:")
            .and_then(|(_, r)| r.split_once('@'))
            .map(|(p, _)| p.to_string())
            .unwrap();
        assert_eq!(password.len(), 24, "a generated password");
        let text = p.render(&o);
        assert!(
            !text.contains(&password),
            "the plan prints Houston's password"
        );
        assert!(text.contains("houston-db.yaml"));
        assert!(text.contains("[Houston's database]"));
        // A second plan, a second password.
        let (_, q) = plan(Platform::Software0377);
        let Action::Apply(other) = &q.steps[at].action else {
            panic!()
        };
        let other = injector::read_objects(&other[0]).unwrap();
        assert_ne!(decoded(&other[2], "connection"), url);
    }

    #[test]
    fn airflow_is_asked_with_houston_s_token_and_the_scenarios_run_last_on_our_own_cluster() {
        let (o, p) = plan(Platform::Software0377);
        let health = position(&p, "Airflow's health JSON");
        let Action::Https { authorized, .. } = &p.steps[health].action else {
            panic!()
        };
        assert!(
            *authorized,
            "the deployment's ingress asks Houston about every request"
        );
        let Action::Https { authorized, .. } =
            &p.steps[position(&p, "Houston answers its health check")].action
        else {
            panic!()
        };
        assert!(!*authorized);
        let scenarios = position(&p, "the @kind scenarios");
        let browser = position(&p, "a browser opens the Airflow UI through the ingress");
        assert!(health < browser && browser < scenarios);
        assert!(scenarios < position(&p, "delete the kind cluster"));
        let Action::Scenarios { kubeconfig } = &p.steps[scenarios].action else {
            panic!()
        };
        assert_eq!(kubeconfig, &o.work.join("kubeconfig"));
        assert!(p.render(&o).contains("$ E2E_TIER=kind E2E_KUBECONFIG="));
        // Another cluster lacks the kind substrate's mounts: no scenarios there.
        let mut other = o.clone();
        other.kubeconfig = Some(o.work.join("elsewhere"));
        other.external_network = Some("nodes".into());
        let p = build(&other, &[]).unwrap();
        assert!(!p.steps.iter().any(|s| s.phase == Phase::Scenarios));
    }

    #[test]
    fn an_existing_cluster_s_network_is_the_flag_s() {
        let dir = tempfile::tempdir().unwrap();
        let root = crate::run::workspace_root();
        let mut o = Options::new(
            "astro-e2e-t2",
            dir.path(),
            &root.join("fixtures/values.yaml"),
            &root.join("fixtures/deployments/kerberos.yaml"),
        );
        o.kubeconfig = Some(dir.path().join("kubeconfig"));
        let network = |o: &Options| {
            let p = build(o, &[]).unwrap();
            let Action::External { network, lines, .. } =
                &p.steps[position(&p, "the customer's KDC and PostgreSQL")].action
            else {
                panic!()
            };
            (network.clone(), lines.join("\n"))
        };
        let (n, lines) = network(&o);
        assert_eq!(n, "<--external-network NAME>");
        assert!(lines.contains("--alias db.example.test <--external-network NAME>"));
        o.external_network = Some("ci-nodes".into());
        let (n, lines) = network(&o);
        assert_eq!(n, "ci-nodes");
        assert!(lines.contains("--alias kdc.example.test ci-nodes"));
    }

    #[test]
    fn houston_s_database_must_be_on_the_server_the_tier_runs() {
        let dir = tempfile::tempdir().unwrap();
        let root = crate::run::workspace_root();
        let text = std::fs::read_to_string(root.join("fixtures/values.yaml")).unwrap();
        // The check comes before the templates (relative to the values file) are read.
        let values = dir.path().join("values.yaml");
        std::fs::write(
            &values,
            text.replace(
                "      host: db.example.test\n",
                "      host: other.example.test\n",
            ),
        )
        .unwrap();
        let o = Options::new(
            "astro-e2e-t3",
            dir.path(),
            &values,
            &root.join("fixtures/deployments/kerberos.yaml"),
        );
        let e = format!("{:#}", build(&o, &[]).unwrap_err());
        assert!(
            e.contains("harness.houston.database")
                && e.contains("other.example.test:5432")
                && e.contains("host: db.example.test"),
            "{e}"
        );
    }
}
