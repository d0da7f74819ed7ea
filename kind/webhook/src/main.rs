//! `kerberos-webhook`: the reference credential-injection webhook as a program, for the
//! Deployment its manifests describe.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use kerberos_webhook::{serve, tls, Config};

#[derive(Parser)]
#[command(
    about = "Mutating admission webhook: Kerberos credentials for label-selected PgBouncer pods"
)]
struct Args {
    /// The YAML configuration (README.md, "Configuration").
    #[arg(
        long,
        env = "WEBHOOK_CONFIG",
        default_value = "/etc/kerberos-webhook/config.yaml"
    )]
    config: PathBuf,
    /// PEM certificate chain; its names must include the Service's DNS name.
    #[arg(
        long,
        env = "WEBHOOK_TLS_CERT",
        default_value = "/etc/kerberos-webhook/tls/tls.crt"
    )]
    tls_cert: PathBuf,
    #[arg(
        long,
        env = "WEBHOOK_TLS_KEY",
        default_value = "/etc/kerberos-webhook/tls/tls.key"
    )]
    tls_key: PathBuf,
    #[arg(long, env = "WEBHOOK_LISTEN", default_value = "0.0.0.0:8443")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let a = Args::parse();
    let cfg = Arc::new(Config::load(&a.config)?);
    let tls = tls::server_config_from_files(&a.tls_cert, &a.tls_key)?;
    let listener = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("could not listen on {}", a.listen))?;
    let server = serve(listener, tls, cfg.clone())?;
    tracing::info!(
        "serving https://{}/mutate for {} selector(s)",
        server.addr,
        cfg.selectors.len()
    );
    tokio::signal::ctrl_c().await?;
    server.stop();
    Ok(())
}
