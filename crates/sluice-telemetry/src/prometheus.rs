//! The Prometheus endpoint: `GET /metrics` on the exporter's own port, the text exposition
//! format (`text/plain; version=0.0.4`). Bounded: one connection at a time per scrape task,
//! a few concurrent connections at most, short read timeouts.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use http_body_util::Full;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use crate::{PrometheusSettings, Telemetry};

/// Connections served at once by one endpoint (more wait in the backlog).
const MAX_CONNECTIONS: usize = 16;

/// A running endpoint; dropping it stops it.
#[derive(Debug)]
pub(crate) struct Server {
    pub(crate) name: String,
    pub(crate) addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn serve(
    telemetry: Telemetry,
    settings: &PrometheusSettings,
) -> Result<Server, String> {
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .map_err(|e| {
            format!(
                "the Prometheus exporter {:?} cannot listen on {}: {e}",
                settings.name, settings.addr
            )
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("the Prometheus exporter {:?}: {e}", settings.name))?;
    let gateway = settings.gateway_metrics;
    let process = settings.process_metrics;
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let task = tokio::spawn(async move {
        loop {
            let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
                return;
            };
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let telemetry = telemetry.clone();
            let service =
                hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let telemetry = telemetry.clone();
                    async move {
                        let response = if request.uri().path() != "/metrics" {
                            text(StatusCode::NOT_FOUND, "404 page not found\n".into())
                        } else if request.method() != Method::GET
                            && request.method() != Method::HEAD
                        {
                            text(
                                StatusCode::METHOD_NOT_ALLOWED,
                                "405 method not allowed\n".into(),
                            )
                        } else {
                            let mut r = text(StatusCode::OK, telemetry.render(gateway, process));
                            r.headers_mut().insert(
                                header::CONTENT_TYPE,
                                http::HeaderValue::from_static(
                                    "text/plain; version=0.0.4; charset=utf-8",
                                ),
                            );
                            r
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
            tokio::spawn(async move {
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder.timer(TokioTimer::new());
                builder.header_read_timeout(Duration::from_secs(10));
                let _ = tokio::time::timeout(
                    Duration::from_secs(60),
                    builder.serve_connection(TokioIo::new(stream), service),
                )
                .await;
                drop(slot);
            });
        }
    });
    Ok(Server {
        name: settings.name.clone(),
        addr,
        task,
    })
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
