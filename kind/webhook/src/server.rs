//! The HTTPS endpoint the API server calls: `POST /mutate` (AdmissionReview) and
//! `GET /healthz`. HTTP/1.1 over rustls; each connection on its own task, so one slow or
//! broken client never holds up another.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::review::review;

/// The API server sends at most 3 MiB of object; a review is a little more.
const MAX_BODY: usize = 4 << 20;

/// A running webhook; dropping it (or [`Server::stop`]) closes the listener and every
/// connection.
pub struct Server {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub fn stop(self) {}
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves on `listener` until the returned [`Server`] is dropped.
pub fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    cfg: Arc<Config>,
) -> std::io::Result<Server> {
    let addr = listener.local_addr()?;
    let acceptor = TlsAcceptor::from(tls);
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    continue;
                }
            };
            let acceptor = acceptor.clone();
            let cfg = cfg.clone();
            conns.spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::warn!("{peer}: TLS handshake failed: {e}");
                        return;
                    }
                };
                let svc = hyper::service::service_fn(move |req| handle(cfg.clone(), req));
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await
                {
                    tracing::debug!("{peer}: connection ended: {e}");
                }
            });
            // Reap finished connections so the set does not grow without bound.
            while conns.try_join_next().is_some() {}
        }
    });
    Ok(Server { addr, task })
}

fn text(status: StatusCode, body: impl Into<Bytes>, ctype: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", ctype)
        .body(Full::new(body.into()))
        .expect("static response parts")
}

async fn handle(
    cfg: Arc<Config>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n", "text/plain"),
        (&Method::POST, "/mutate") => {
            let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    return Ok(text(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("could not read the request body (limit {MAX_BODY} bytes): {e}\n"),
                        "text/plain",
                    ))
                }
            };
            let r = review(&cfg, &body);
            tracing::info!("{}", r.log);
            text(
                StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                r.body,
                "application/json",
            )
        }
        (_, "/mutate") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST an AdmissionReview to /mutate\n",
            "text/plain",
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "this is the Kerberos credential webhook: POST /mutate, GET /healthz\n",
            "text/plain",
        ),
    })
}
