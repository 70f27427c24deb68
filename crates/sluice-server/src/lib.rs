//! Sluice's HTTP server: binds the listener, routes requests to endpoint pipelines, serves
//! `/__health`, `/__debug/` and `/__echo/`, and drains in-flight requests on shutdown.

mod builtin;
mod client_ip;
mod router;
mod smuggling;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use sluice_config::Config;
use sluice_plugin::{Body, Registry, SharedExecutor};
use sluice_proxy::respond::{self, RenderOptions};
use sluice_proxy::{ProxyRequest, build_pipelines};

use crate::client_ip::ClientIp;
use crate::router::{Lookup, Router};

/// The gateway's version, as it appears in `User-Agent` and `X-Sluice`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The largest client body the gateway reads (larger ones get 413).
pub const MAX_REQUEST_BODY_BYTES: usize = 16 << 20;

/// Why the gateway could not start.
#[derive(Debug)]
pub enum StartError {
    /// One or more endpoints could not be built (unknown plugin, rejected settings, routes).
    Pipeline(Vec<String>),
    /// The listener could not be bound.
    Bind(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Pipeline(errors) => f.write_str(&errors.join("\n")),
            StartError::Bind(e) => write!(f, "cannot listen: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A gateway serving on its listener.
#[derive(Debug)]
pub struct RunningGateway {
    local_addr: SocketAddr,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningGateway {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, drains in-flight requests (up to `max_shutdown_wait_time`) and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }

    /// Serves until the task ends (after [`RunningGateway::shutdown`] from elsewhere, or
    /// `signal` resolving).
    pub async fn serve_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}

/// Everything a request needs, built once.
#[derive(Debug)]
struct Gateway {
    router: Router,
    render: RenderOptions,
    health_path: Option<String>,
    debug_endpoint: bool,
    echo_endpoint: bool,
    auto_options: bool,
    handle_method_not_allowed: bool,
    path_decoding_guard: bool,
    client_ip: ClientIp,
}

/// Builds the pipelines with the default client made from the config's transport options.
pub fn default_client(config: &Config) -> SharedExecutor {
    Arc::new(sluice_client::DefaultClient::new(&config.transport))
}

/// Builds every endpoint pipeline from `config` (plugins resolved through `registry`) and starts
/// serving on `listener`, or on `listen_ip:port` from the config when `None`.
pub async fn start(
    config: Arc<Config>,
    registry: Registry,
    listener: Option<tokio::net::TcpListener>,
) -> Result<RunningGateway, StartError> {
    let client = default_client(&config);
    let gateway = Arc::new(build(&config, &registry, &client)?);
    let listener = match listener {
        Some(listener) => listener,
        None => {
            let ip = config.listen_ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
            tokio::net::TcpListener::bind((ip, config.port))
                .await
                .map_err(StartError::Bind)?
        }
    };
    let local_addr = listener.local_addr().map_err(StartError::Bind)?;
    let (shutdown, watch) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, gateway, config, watch));
    tracing::info!(address = %local_addr, "listening");
    Ok(RunningGateway {
        local_addr,
        shutdown,
        task,
    })
}

/// Builds the routing table and pipelines; `check` uses this without binding anything.
pub fn validate(config: &Config, registry: &Registry) -> Result<(), Vec<String>> {
    let client = default_client(config);
    build(config, registry, &client)
        .map(|_| ())
        .map_err(|e| match e {
            StartError::Pipeline(errors) => errors,
            StartError::Bind(e) => vec![e.to_string()],
        })
}

fn build(
    config: &Config,
    registry: &Registry,
    client: &SharedExecutor,
) -> Result<Gateway, StartError> {
    let pipelines = build_pipelines(config, registry, client).map_err(StartError::Pipeline)?;
    let router_options = &config.router;
    let router = Router::new(
        pipelines,
        !router_options.disable_redirect_trailing_slash,
        !router_options.disable_redirect_fixed_path,
    )
    .map_err(|errors| {
        let file = config.source.display();
        StartError::Pipeline(errors.into_iter().map(|e| format!("{file}: {e}")).collect())
    })?;
    let version = if router_options.hide_version_header {
        HeaderValue::from_static("Version undefined")
    } else {
        HeaderValue::from_static(concat!("Version ", env!("CARGO_PKG_VERSION")))
    };
    Ok(Gateway {
        router,
        render: RenderOptions {
            return_error_msg: router_options.return_error_msg,
            version,
        },
        health_path: (!router_options.disable_health).then(|| {
            if router_options.health_path.is_empty() {
                "/__health".to_owned()
            } else {
                router_options.health_path.clone()
            }
        }),
        debug_endpoint: config.debug_endpoint,
        echo_endpoint: config.echo_endpoint,
        auto_options: router_options.auto_options,
        handle_method_not_allowed: !router_options.disable_handle_method_not_allowed,
        path_decoding_guard: !router_options.disable_path_decoding,
        client_ip: ClientIp::new(router_options),
    })
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    config: Arc<Config>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    {
        let mut http1 = builder.http1();
        http1.timer(TokioTimer::new());
        http1.max_buf_size(config.server.max_header_bytes.max(8192));
        if !config.server.read_header_timeout.is_zero() {
            http1.header_read_timeout(config.server.read_header_timeout);
        }
    }
    let builder = if config.server.use_h2c {
        builder
    } else {
        builder.http1_only()
    };
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let gateway = Arc::clone(&gateway);
        let service = hyper::service::service_fn(move |request| {
            let gateway = Arc::clone(&gateway);
            async move { Ok::<_, Infallible>(handle(&gateway, request, peer).await) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(smuggling::Guarded::new(stream)), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, peer = %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let wait = config.server.max_shutdown_wait_time;
    if tokio::time::timeout(wait, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?wait,
            "shutdown: in-flight requests still running, stopping anyway"
        );
    }
}

async fn handle(gateway: &Gateway, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    if gateway.health_path.as_deref() == Some(path) && parts.method == Method::GET {
        return builtin::health();
    }
    if (gateway.debug_endpoint && builtin::is_debug(path))
        || (gateway.echo_endpoint && builtin::is_echo(path))
    {
        let body = match read_body(body).await {
            Ok(body) => body,
            Err(response) => return response,
        };
        return if builtin::is_debug(path) {
            builtin::debug(&parts, &body)
        } else {
            builtin::echo(&parts, &body)
        };
    }
    let (routes, raw_params) = match gateway.router.lookup(path) {
        Lookup::Found(routes, params) => (routes, params),
        Lookup::Redirect(location) => return redirect(&parts, &location),
        Lookup::NotFound => return not_found(),
    };
    let Some(pipeline) = routes.get(&parts.method) else {
        if parts.method == Method::OPTIONS && gateway.auto_options {
            let mut response = Response::new(sluice_plugin::empty());
            if let Ok(allow) = HeaderValue::from_str(&routes.allow()) {
                response.headers_mut().insert(header::ALLOW, allow);
            }
            return response;
        }
        if !gateway.handle_method_not_allowed {
            return not_found();
        }
        let mut response = respond::text(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed");
        response.headers_mut().insert(
            respond::COMPLETED.clone(),
            HeaderValue::from_static("false"),
        );
        return response;
    };
    let mut params = Vec::with_capacity(raw_params.len());
    for (name, raw) in raw_params {
        match decode_param(&raw, gateway.path_decoding_guard) {
            Some(value) => params.push((name, value)),
            None => return respond::text(StatusCode::BAD_REQUEST, "error: encoded url params"),
        }
    }
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let client_ip = gateway.client_ip.resolve(&parts.headers, peer.ip());
    let accept = parts.headers.get(header::ACCEPT).cloned();
    let request = ProxyRequest {
        method: parts.method,
        params,
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
        client_ip,
    };
    let outcome = pipeline.call(&request).await;
    respond::render(pipeline, outcome, accept.as_ref(), &gateway.render)
}

/// Percent-decodes a path param. With the guard (KrakenD's default), a param that was encoded
/// at all, or holds `?`/`#`, is refused; malformed escapes are always refused.
fn decode_param(raw: &str, guard: bool) -> Option<String> {
    let bytes = raw.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return None;
        }
    }
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()?;
    if guard && (decoded != raw || decoded.contains(['?', '#'])) {
        return None;
    }
    Some(decoded.into_owned())
}

async fn read_body(body: Incoming) -> Result<Bytes, Response<Body>> {
    match Limited::new(body, MAX_REQUEST_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(respond::text(
            StatusCode::PAYLOAD_TOO_LARGE,
            "413 request entity too large",
        )),
        Err(_) => Err(respond::text(StatusCode::BAD_REQUEST, "400 bad request")),
    }
}

fn not_found() -> Response<Body> {
    let mut response = respond::text(StatusCode::NOT_FOUND, "404 page not found");
    response.headers_mut().insert(
        respond::COMPLETED.clone(),
        HeaderValue::from_static("false"),
    );
    response
}

/// gin's redirects: 301 for GET, 307 otherwise (so the method and body survive).
fn redirect(parts: &http::request::Parts, location: &str) -> Response<Body> {
    let status = if parts.method == Method::GET {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::TEMPORARY_REDIRECT
    };
    let target = match parts.uri.query() {
        Some(query) => format!("{location}?{query}"),
        None => location.to_owned(),
    };
    let mut response = Response::new(sluice_plugin::empty());
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(&target) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_decoding_guard() {
        assert_eq!(decode_param("abc", true).as_deref(), Some("abc"));
        assert_eq!(decode_param("a%20b", true), None);
        assert_eq!(decode_param("a%20b", false).as_deref(), Some("a b"));
        assert_eq!(decode_param("a%zz", false), None);
        assert_eq!(decode_param("a%2", false), None);
    }
}
