//! The kind tier as an ordered plan: every command, API call and wait, with the files it uses.
//! `--dry-run` prints it; `execute` carries it out; the tests hold its order to the
//! documentation's (the two-step upgrade, the database before the deployment, the injector
//! before any PgBouncer pod exists).

use std::fmt;
use std::path::PathBuf;

use anyhow::{Context, Result};
use harness_config::Deployment;

use super::{houston, Options, Platform};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Cluster,
    External,
    Images,
    Injector,
    Platform,
    Deployment,
    Teardown,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Cluster => "cluster",
            Phase::External => "external KDC and database",
            Phase::Images => "images",
            Phase::Injector => "credential injector",
            Phase::Platform => "platform",
            Phase::Deployment => "deployment",
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
    /// Pods of a selector Ready (kube-rs), failing early on a terminal state.
    Pods(PodWait),
    /// A job of this name in the namespace completed.
    Job { namespace: String, name: String },
    /// An HTTPS endpoint through the ingress answering 200 (Houston's, Airflow's health).
    Https { url: String, expect: &'static str },
    /// A GraphQL document sent to Houston.
    Graphql(&'static houston::Document),
}

#[derive(Debug, Clone)]
pub struct Step {
    pub phase: Phase,
    pub title: String,
    pub action: Action,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Files the plan rendered into the run directory (secrets among them are mode 0600).
    pub files: Vec<PathBuf>,
}

/// The images the project builds for this tier with `cargo xtask images`: the customer's KDC and
/// database. (The reference webhook has no image recipe yet; see the README.)
pub const PROJECT_IMAGES: &[&str] = &["kdc", "postgres"];

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
                    .replace("${HTTPS_PORT}", &o.https_port.to_string()),
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

    // The customer's "external" KDC and database, on kind's Docker network so pods reach them
    // by host name, exactly as a customer's pods reach theirs.
    for (component, host) in [("kdc", "kdc.example.test"), ("postgres", "db.example.test")] {
        step(
            Phase::External,
            format!("start the {component} container as {host} on kind's network"),
            Action::Run(argv(&[
                "docker",
                "run",
                "--detach",
                "--name",
                &format!("{name}-{component}"),
                "--hostname",
                host,
                "--network",
                "kind",
                "--label",
                &format!("astro-e2e.run={name}"),
                &project_image(component),
            ])),
        );
    }
    let sql = w("database.sql");
    std::fs::write(&sql, database_sql(&deployment))?;
    files.push(sql.clone());
    step(
        Phase::External,
        "create the Kerberos role and the Airflow databases, as the documentation's step does"
            .into(),
        Action::Feed {
            argv: argv(&[
                "docker",
                "exec",
                "-i",
                &format!("{name}-postgres"),
                "psql",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "postgres",
                "-f",
                "-",
            ]),
            stdin: sql.clone(),
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
    // registered is never mutated.
    let injector = w("injector.yaml");
    std::fs::write(&injector, injector_manifest_note(o, &deployment))?;
    files.push(injector.clone());
    step(
        Phase::Injector,
        "apply the reference webhook (Deployment, Service, RBAC, MutatingWebhookConfiguration with the run's CA) and the Kerberos material (krb5.conf ConfigMap, keytab Secret) in the platform's and the deployment's namespaces".into(),
        Action::Apply(vec![injector]),
    );
    step(
        Phase::Injector,
        "the webhook is Ready".into(),
        Action::Pods(PodWait {
            namespace: "astro-e2e-injector".into(),
            selector: "app=krb-injector".into(),
            injected_env: None,
            log_line: None,
        }),
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
        },
    );
    if o.kubeconfig.is_none() {
        step(
            Phase::Teardown,
            "delete the kind cluster".into(),
            Action::Run(argv(&["kind", "delete", "cluster", "--name", name])),
        );
    }
    step(
        Phase::Teardown,
        "remove the KDC and database containers".into(),
        Action::Run(argv(&[
            "docker",
            "rm",
            "--force",
            "--volumes",
            &format!("{name}-kdc"),
            &format!("{name}-postgres"),
        ])),
    );
    Ok(Plan { steps, files })
}

/// The documentation's database step: a login role named exactly like the principal, each
/// database, and the grants (PostgreSQL 15 also needs them on schema `public`).
pub fn database_sql(d: &Deployment) -> String {
    let mut out = String::from("-- Written by the kind tier's plan from the deployment file.\n");
    let mut roles = Vec::new();
    for c in [
        &d.metadata_connection_json,
        &d.result_backend_connection_json,
    ]
    .into_iter()
    .flatten()
    {
        let c = &c.value;
        let (Some(user), Some(db)) = (c.user.as_deref(), c.db.as_deref()) else {
            continue;
        };
        if !roles.contains(&user.to_string()) {
            out += &format!("CREATE ROLE \"{user}\" LOGIN;\n");
            roles.push(user.to_string());
        }
        out += &format!(
            "SELECT 'CREATE DATABASE \"{db}\" OWNER \"{user}\"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{db}')\\gexec\n\\connect \"{db}\"\nGRANT ALL ON SCHEMA public TO \"{user}\";\n\\connect postgres\n"
        );
    }
    out
}

/// The platform values the kind tier adds to the customer's: its base domain and the ingress on
/// the node's ports. Everything Kerberos comes from the customer's values as written.
fn values_overlay(o: &Options) -> String {
    format!(
        "# Added by the kind tier to the control plane's values (not the customer's settings).\nglobal:\n  baseDomain: {}\n  tlsSecret: astronomer-tls\nnginx:\n  serviceType: NodePort\n  hostNetwork: true\n",
        o.base_domain
    )
}

/// Until the webhook's manifests are rendered here (harness::kube), the plan names them.
fn injector_manifest_note(o: &Options, d: &Deployment) -> String {
    format!(
        "# The reference webhook's objects for run {}, and the Kerberos material for namespaces {} and {}.\n",
        o.name,
        o.platform_namespace(),
        d.namespace.as_deref().unwrap_or("<deployment namespace>")
    )
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
                Action::Apply(files) => files
                    .iter()
                    .map(|f| format!("       apply (server-side) {}\n", f.display()))
                    .collect(),
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
                Action::Https { url, expect } => format!(
                    "       GET {url} -> 200{}\n",
                    if expect.is_empty() { String::new() } else { format!(", body shows `{expect}`") }
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
        let db = position(&p, "create the Kerberos role");
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
    fn the_database_step_creates_the_principal_role_and_each_database() {
        let (o, _) = plan(Platform::Software0377);
        let sql = std::fs::read_to_string(o.work.join("database.sql")).unwrap();
        assert_eq!(
            sql.matches("CREATE ROLE \"astro_user@EXAMPLE.TEST\" LOGIN;")
                .count(),
            1
        );
        assert!(sql.contains(
            "CREATE DATABASE \"kerberos_demo_airflow\" OWNER \"astro_user@EXAMPLE.TEST\""
        ));
        assert!(sql.contains("GRANT ALL ON SCHEMA public"));
    }
}
