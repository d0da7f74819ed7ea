//! The TLS server over real HTTPS on loopback: a per-test CA signs the server's certificate,
//! and a client that trusts only that CA posts AdmissionReviews, as the API server would.

use std::path::Path;
use std::sync::Arc;

use kerberos_webhook::{serve, tls, Config};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{crypto::ring, ClientConfig, RootCertStore};

struct Pki {
    ca_der: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

fn pki(sans: &[&str]) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "test webhook CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    Pki {
        ca_der: ca_cert.der().clone(),
        cert_pem: leaf.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn cfg() -> Arc<Config> {
    Arc::new(
        Config::parse(
            Path::new("test.yaml"),
            "selectors:\n  - matchLabels: {krb-inject: enabled}\nkrb5ConfigMap: k\nkeytabSecret: s\n",
        )
        .unwrap(),
    )
}

async fn start(p: &Pki) -> kerberos_webhook::Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = tls::server_config(p.cert_pem.as_bytes(), p.key_pem.as_bytes()).unwrap();
    serve(listener, tls, cfg()).unwrap()
}

/// One HTTP/1.1 request over TLS, trusting only `ca`; returns (status, body).
async fn request(
    addr: std::net::SocketAddr,
    ca: &CertificateDer<'static>,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let cc = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut s = tokio_rustls::TlsConnector::from(Arc::new(cc))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head");
    let status: u16 = String::from_utf8_lossy(&out[9..12]).parse().unwrap();
    Ok((status, out[split + 4..].to_vec()))
}

fn admission_review(labels: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "n", "operation": "CREATE", "name": "",
            "userInfo": {"username": "admin"},
            "object": {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "labels": labels},
                "spec": {"containers": [{"name": "pgbouncer", "image": "x"}]}}
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn mutates_over_https() {
    let p = pki(&["127.0.0.1"]);
    let server = start(&p).await;
    let (status, body) = request(
        server.addr,
        &p.ca_der,
        "POST",
        "/mutate",
        &admission_review(json!({"krb-inject": "enabled"})),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["response"]["uid"], "u-1");
    assert_eq!(v["response"]["allowed"], true);
    assert_eq!(v["response"]["patchType"], "JSONPatch");

    let (status, body) = request(
        server.addr,
        &p.ca_der,
        "POST",
        "/mutate",
        &admission_review(json!({"other": "x"})),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["response"]["allowed"], true);
    assert!(v["response"].get("patch").is_none());
}

#[tokio::test]
async fn malformed_body_gets_400_with_reason() {
    let p = pki(&["127.0.0.1"]);
    let server = start(&p).await;
    let (status, body) = request(server.addr, &p.ca_der, "POST", "/mutate", b"[1,2")
        .await
        .unwrap();
    assert_eq!(status, 400);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(v["response"]["status"]["message"]
        .as_str()
        .unwrap()
        .contains("not an AdmissionReview"));
    // The server is still there for the next caller.
    let (status, body) = request(server.addr, &p.ca_der, "GET", "/healthz", b"")
        .await
        .unwrap();
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
}

#[tokio::test]
async fn unknown_paths_and_methods_are_named() {
    let p = pki(&["127.0.0.1"]);
    let server = start(&p).await;
    let (status, _) = request(server.addr, &p.ca_der, "GET", "/mutate", b"")
        .await
        .unwrap();
    assert_eq!(status, 405);
    let (status, body) = request(server.addr, &p.ca_der, "GET", "/", b"")
        .await
        .unwrap();
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("POST /mutate"));
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_is_refused() {
    let p = pki(&["127.0.0.1"]);
    let other = pki(&["127.0.0.1"]);
    let server = start(&p).await;
    let err = request(server.addr, &other.ca_der, "GET", "/healthz", b"")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[tokio::test]
async fn a_certificate_without_the_dialled_ip_is_refused() {
    let p = pki(&["webhook.example.test"]);
    let server = start(&p).await;
    let err = request(server.addr, &p.ca_der, "GET", "/healthz", b"")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[tokio::test]
async fn stopping_closes_the_port() {
    let p = pki(&["127.0.0.1"]);
    let server = start(&p).await;
    let addr = server.addr;
    server.stop();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(request(addr, &p.ca_der, "GET", "/healthz", b"")
        .await
        .is_err());
}
