//! The API server tier: etcd and a real kube-apiserver started through the run's substrate (own
//! PKI, token file, RBAC), the reference webhook served over HTTPS and registered as Kubernetes calls it, a
//! kube-rs client, and the manifests the harness renders. Pods are admitted, never run: there
//! is no node.

pub mod apiserver;
pub mod etcd;
pub mod manifests;
pub mod pki;
pub mod pods;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ::kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use anyhow::{Context, Result};
use serde_json::Value;

use self::apiserver::Apiserver;
use self::etcd::Etcd;
use self::pki::Pki;
use crate::component::RunAs;
use crate::substrate::{Place, Substrate};

/// The field manager of everything the harness applies.
pub const FIELD_MANAGER: &str = "e2e-harness";

/// etcd + kube-apiserver for one scenario, and a client logged in as the harness's admin.
pub struct Cluster {
    pub dir: PathBuf,
    pub pki: Pki,
    pub client: ::kube::Client,
    pub apiserver_log: PathBuf,
    apiserver: Option<Apiserver>,
    etcd: Option<Etcd>,
}

impl Cluster {
    /// `binary` is the kube-apiserver the run's settings name (`Settings::kube_apiserver`).
    pub async fn start(
        substrate: &Arc<dyn Substrate>,
        binary: Option<&Path>,
        dir: &Path,
    ) -> Result<Cluster> {
        let bin = apiserver::binary(binary)?;
        let pki = Pki::create(&dir.join("pki"))?;
        let etcd = Etcd::start(substrate, &dir.join("etcd")).await?;
        let mut api = Apiserver::start(
            substrate,
            &bin,
            &dir.join("apiserver"),
            &pki,
            &etcd.client_url,
        )
        .await?;
        let client = client(&api.url, &pki.ca_pem, api.token.expose())?;
        api.wait_ready(&client, Duration::from_secs(60)).await?;
        Ok(Cluster {
            dir: dir.to_path_buf(),
            pki,
            client,
            apiserver_log: api.log.clone(),
            apiserver: Some(api),
            etcd: Some(etcd),
        })
    }

    /// The API server first (it would log etcd errors while stopping), then etcd.
    pub async fn stop(&mut self) {
        if let Some(mut a) = self.apiserver.take() {
            a.running.stop().await;
        }
        if let Some(mut e) = self.etcd.take() {
            e.running.stop().await;
            // The store holds every Secret the scenario applied (keytabs among them).
            let _ = std::fs::remove_dir_all(self.dir.join("etcd/data"));
        }
    }

    /// An object as the API server stores it.
    pub async fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value> {
        let mut probe = serde_json::json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}});
        if let Some(ns) = namespace {
            probe["metadata"]["namespace"] = ns.into();
        }
        let (api, name) = self.api_for(&probe)?;
        let o = api
            .get(&name)
            .await
            .with_context(|| format!("reading {}", describe(&probe)))?;
        Ok(serde_json::to_value(o)?)
    }

    /// Server-side apply of one rendered object; the API server's refusal is the error.
    pub async fn apply(&self, obj: &Value) -> Result<DynamicObject> {
        let (api, name) = self.api_for(obj)?;
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(obj),
        )
        .await
        .with_context(|| format!("applying {}", describe(obj)))
    }

    /// Creates an object (a plain POST, the way a ReplicaSet creates its pods).
    pub async fn create(&self, obj: &Value) -> Result<DynamicObject> {
        let (api, _) = self.api_for(obj)?;
        let o: DynamicObject = serde_json::from_value(obj.clone())?;
        api.create(&Default::default(), &o)
            .await
            .map_err(anyhow::Error::from)
    }

    fn api_for(&self, obj: &Value) -> Result<(Api<DynamicObject>, String)> {
        let api_version = obj["apiVersion"]
            .as_str()
            .context("object without apiVersion")?;
        let kind = obj["kind"].as_str().context("object without kind")?;
        let name = obj["metadata"]["name"]
            .as_str()
            .with_context(|| format!("{kind} without metadata.name"))?
            .to_string();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        let api = match obj["metadata"]["namespace"].as_str() {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        };
        Ok((api, name))
    }
}

/// `Kind namespace/name`, for messages.
pub fn describe(obj: &Value) -> String {
    format!(
        "{} {}{}",
        obj["kind"].as_str().unwrap_or("?"),
        obj["metadata"]["namespace"]
            .as_str()
            .map(|n| format!("{n}/"))
            .unwrap_or_default(),
        obj["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// A kube-rs client for `url`, trusting only the run's CA, with a bearer token.
pub fn client(url: &str, ca_pem: &str, token: &str) -> Result<::kube::Client> {
    let mut cfg = ::kube::Config::new(url.parse().with_context(|| format!("bad URL {url}"))?);
    let ca = rustls_pem_der(ca_pem)?;
    cfg.root_cert = Some(vec![ca]);
    cfg.auth_info.token = Some(secrecy::SecretString::from(token.to_string()));
    cfg.read_timeout = Some(Duration::from_secs(30));
    ::kube::Client::try_from(cfg).context("building the kube client")
}

fn rustls_pem_der(pem: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .context("the CA certificate is not PEM")
}

/// The reference webhook, served in this process over HTTPS at the address and port the run's
/// substrate gives a place of its own, with a certificate from the run's CA: the same library
/// code the `kerberos-webhook` binary runs.
pub struct Webhook {
    pub url: String,
    pub config: kerberos_webhook::Config,
    server: Option<kerberos_webhook::Server>,
    place: Place,
    port: u16,
    tls: Arc<kerberos_webhook::tls::ServerConfig>,
}

impl Webhook {
    pub async fn start(
        substrate: &Arc<dyn Substrate>,
        dir: &Path,
        pki: &Pki,
        config: kerberos_webhook::Config,
    ) -> Result<Webhook> {
        let place = substrate.place("webhook", dir, RunAs::Invoker)?;
        let port = substrate.listen_port(&place, "https", 8443)?;
        let cert = pki.serving("webhook", &[place.host.as_str()])?;
        let tls = kerberos_webhook::tls::server_config(
            cert.cert_pem.as_bytes(),
            cert.key_pem.as_bytes(),
        )?;
        let mut w = Webhook {
            url: format!("https://{}:{port}/mutate", place.host),
            config,
            server: None,
            place,
            port,
            tls,
        };
        w.resume().await?;
        Ok(w)
    }

    /// Stops serving: the port refuses connections, as a webhook whose pods are gone.
    pub fn stop(&mut self) {
        self.server.take();
    }

    /// Serves again on the same port (the registration names it).
    pub async fn resume(&mut self) -> Result<()> {
        let bind = (self.place.bind.as_str(), self.port);
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("the webhook could not listen on {}:{}", bind.0, bind.1))?;
        self.server = Some(kerberos_webhook::serve(
            listener,
            self.tls.clone(),
            Arc::new(self.config.clone()),
        )?);
        Ok(())
    }
}
