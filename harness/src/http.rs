//! Every HTTP client the harness builds starts here. reqwest uses rustls without a bundled
//! crypto provider (ring is already in the tree for kube-rs; aws-lc-rs would be a second C
//! build), so the provider is installed once before the first client is built.

/// A client builder with the process's TLS crypto provider in place.
pub fn builder() -> reqwest::ClientBuilder {
    // Err only means another part of the process installed one first, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}
