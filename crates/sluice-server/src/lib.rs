//! Sluice's HTTP server: binds the listener, routes requests to endpoint pipelines, serves
//! `/__health`, `/__debug/` and `/__echo/`, and drains in-flight requests on shutdown.

mod builtin;
mod client_ip;
mod conn;
mod router;
mod smuggling;
pub mod telemetry;

pub use smuggling::guard_refuses;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use sluice_config::Config;
use sluice_plugin::{Body, Registry, SharedExecutor};
use sluice_proxy::respond::{self, RenderOptions};
use sluice_proxy::{ProxyRequest, build_pipelines_with};
use sluice_telemetry::{RequestScope, Telemetry};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::client_ip::ClientIp;
use crate::router::{Lookup, Router};

/// The gateway's version, as it appears in `User-Agent` and `X-Sluice`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The largest client body the gateway reads (larger ones get 413).
pub const MAX_REQUEST_BODY_BYTES: usize = 16 << 20;

/// How long a client may take to send its body when `read_timeout` is not set (the spirit of
/// nginx's `client_body_timeout`): one byte every few seconds must not hold a request forever.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client may take to send a request head when `read_header_timeout` is not set
/// (hyper's own default).
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the gateway could not start.
#[derive(Debug)]
pub enum StartError {
    /// One or more endpoints could not be built (unknown plugin, rejected settings, routes).
    Pipeline(Vec<String>),
    /// The listener could not be bound (the address it tried, and why).
    Bind(SocketAddr, std::io::Error),
    /// The given listener has no local address.
    Listener(std::io::Error),
    /// A telemetry exporter could not start (its name, address and why).
    Telemetry(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Pipeline(errors) => f.write_str(&errors.join("\n")),
            StartError::Bind(addr, e) => write!(
                f,
                "cannot listen on {addr}: {e} (set another \"port\" or \"listen_ip\", or run with --port)"
            ),
            StartError::Listener(e) => write!(f, "cannot listen: {e}"),
            StartError::Telemetry(e) => f.write_str(e),
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
    /// The telemetry exporters (Prometheus endpoints, OTLP pushers), stopped last.
    exporters: sluice_telemetry::Exporters,
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
        self.exporters.shutdown().await;
    }

    /// Where each Prometheus exporter listens, by name.
    pub fn prometheus_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.exporters.prometheus_addrs()
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
    /// The deadline for reading a client body, from the moment its head was read.
    body_timeout: Duration,
    /// `write_timeout`, when set.
    write_timeout: Option<Duration>,
    /// Bytes of client bodies being buffered, process-wide (`max_buffered_body_bytes`).
    body_budget: Arc<Semaphore>,
    /// `router.error_body`: JSON bodies of the 404 and 405 answers (KrakenD CE).
    error_bodies: ErrorBodies,
    /// An access log line per request (target `sluice::access`), unless
    /// `router.disable_access_log`.
    access_log: bool,
    /// Request ids and the global layer's metrics (`telemetry/opentelemetry`).
    telemetry: telemetry::ServerTelemetry,
}

/// `router.error_body["404"]` and `["405"]`, serialised once.
#[derive(Debug, Default)]
struct ErrorBodies {
    not_found: Option<Bytes>,
    method_not_allowed: Option<Bytes>,
}

impl ErrorBodies {
    fn new(bodies: &std::collections::BTreeMap<String, serde_json::Value>) -> Self {
        let body = |status: &str| bodies.get(status).map(respond::error_body_json);
        Self {
            not_found: body("404"),
            method_not_allowed: body("405"),
        }
    }

    /// The router's own answer: gin's text, or the configured JSON body.
    fn answer(&self, status: StatusCode) -> Response<Body> {
        let configured = if status == StatusCode::NOT_FOUND {
            &self.not_found
        } else {
            &self.method_not_allowed
        };
        respond::router_error(status, configured.as_ref())
    }
}

/// Builds the pipelines with the default client made from the config's transport options.
pub fn default_client(config: &Config) -> SharedExecutor {
    Arc::new(sluice_client::DefaultClient::new(&config.transport))
}

/// Builds every endpoint pipeline from `config` (plugins resolved through `registry`) and starts
/// serving on `listener`, or on `listen_ip:port` from the config when `None`, with the
/// telemetry the config asks for.
pub async fn start(
    config: Arc<Config>,
    registry: Registry,
    listener: Option<tokio::net::TcpListener>,
) -> Result<RunningGateway, StartError> {
    let telemetry = telemetry::from_config(&config);
    start_with(config, registry, listener, telemetry).await
}

/// [`start`] with the telemetry the composition root built (its exporters are started here).
pub async fn start_with(
    config: Arc<Config>,
    registry: Registry,
    listener: Option<tokio::net::TcpListener>,
    telemetry: Telemetry,
) -> Result<RunningGateway, StartError> {
    let client = default_client(&config);
    let gateway = Arc::new(build(&config, &registry, &client, &telemetry)?);
    let exporters = telemetry.start().await.map_err(StartError::Telemetry)?;
    let listener = match listener {
        Some(listener) => listener,
        None => {
            let ip = config.listen_ip.unwrap_or(IpAddr::from([0, 0, 0, 0]));
            let addr = SocketAddr::new(ip, config.port);
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| StartError::Bind(addr, e))?
        }
    };
    let local_addr = listener.local_addr().map_err(StartError::Listener)?;
    let (shutdown, watch) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, gateway, config, watch));
    tracing::info!(address = %local_addr, "listening");
    Ok(RunningGateway {
        local_addr,
        shutdown,
        task,
        exporters,
    })
}

/// Builds the routing table and pipelines; `check` uses this without binding anything.
pub fn validate(config: &Config, registry: &Registry) -> Result<(), Vec<String>> {
    let client = default_client(config);
    build(config, registry, &client, &Telemetry::disabled())
        .map(|_| ())
        .map_err(|e| match e {
            StartError::Pipeline(errors) => errors,
            other @ (StartError::Bind(..) | StartError::Listener(_) | StartError::Telemetry(_)) => {
                vec![other.to_string()]
            }
        })
}

fn build(
    config: &Config,
    registry: &Registry,
    client: &SharedExecutor,
    telemetry: &Telemetry,
) -> Result<Gateway, StartError> {
    let pipelines =
        build_pipelines_with(config, registry, client, telemetry).map_err(StartError::Pipeline)?;
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
        body_timeout: non_zero(config.server.read_timeout).unwrap_or(DEFAULT_READ_TIMEOUT),
        write_timeout: non_zero(config.server.write_timeout),
        error_bodies: ErrorBodies::new(&router_options.error_body),
        access_log: !router_options.disable_access_log,
        telemetry: telemetry::ServerTelemetry::new(telemetry.clone(), config),
        body_budget: Arc::new(Semaphore::new(
            config
                .sluice_server
                .max_buffered_body_bytes
                .min(Semaphore::MAX_PERMITS),
        )),
    })
}

fn non_zero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    config: Arc<Config>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let server = &config.server;
    // Go's server: an idle_timeout of 0 means read_timeout.
    let idle_timeout = non_zero(server.idle_timeout).or(non_zero(server.read_timeout));
    // hyper's buffer cannot be smaller than 8 KiB.
    let max_head = server.max_header_bytes.max(8192);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    {
        let mut http1 = builder.http1();
        http1.timer(TokioTimer::new());
        http1.max_buf_size(max_head);
        // hyper starts this timer as soon as the connection waits for a head, idle or not;
        // the idle wait has its own limit (conn.rs), so it is added here, not counted twice.
        let header = non_zero(server.read_header_timeout).unwrap_or(DEFAULT_HEADER_TIMEOUT);
        http1.header_read_timeout(header + idle_timeout.unwrap_or_default());
    }
    let builder = if server.use_h2c {
        builder
    } else {
        builder.http1_only()
    };
    // Connections past the cap wait in the listen backlog (not accepted) until one closes.
    let slots = Arc::new(Semaphore::new(
        config
            .sluice_server
            .max_connections
            .min(Semaphore::MAX_PERMITS),
    ));
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => slot,
            _ = shutdown.changed() => break,
        };
        let Ok(slot) = slot else { break };
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
        let tracks_requests = idle_timeout.is_some() || gateway.write_timeout.is_some();
        let gateway_for_conn = Arc::clone(&gateway);
        let state = Arc::new(conn::ConnState::default());
        let service_state = Arc::clone(&state);
        let service = hyper::service::service_fn(move |request| {
            let gateway = Arc::clone(&gateway_for_conn);
            // Requests in flight and write deadlines matter only to the idle and write limits:
            // without them, a request pays for neither.
            let tracked = tracks_requests
                .then(|| (service_state.start_request(), Arc::clone(&service_state)));
            async move {
                // Only what the line needs, and only when someone reads it.
                let access = (gateway.access_log
                    && tracing::enabled!(target: "sluice::access", tracing::Level::INFO))
                .then(|| request.uri().clone());
                // Telemetry: one call here and one at the end (telemetry.rs).
                let mut scope = gateway.telemetry.begin(&request, peer, access.is_some());
                let method = request.method().clone();
                let response = handle(&gateway, request, peer, &mut scope).await;
                gateway.telemetry.end(&mut scope, &method, &response);
                if let Some(uri) = access {
                    tracing::info!(
                        target: "sluice::access",
                        status = response.status().as_u16(),
                        method = %method,
                        path = %uri,
                        peer = %peer,
                        elapsed = ?scope.started().elapsed(),
                        request_id = scope.request_id(),
                        "request"
                    );
                }
                Ok::<_, Infallible>(finish(&gateway, response, tracked))
            }
        });
        let guarded = smuggling::Guarded::new(stream, max_head);
        let io = conn::Timed::new(guarded, state, idle_timeout);
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, peer = %peer, "connection ended with an error");
            }
            drop(slot);
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

/// The response as it leaves: `X-Sluice` set, and with the idle or write limits on, the write
/// deadline set and the request counted in flight until its body has been written.
fn finish(
    gateway: &Gateway,
    mut response: Response<Body>,
    tracked: Option<(conn::InFlight, Arc<conn::ConnState>)>,
) -> Response<Body> {
    // Every answer names the gateway, the router's own (404, 405, redirects, health) too.
    response
        .headers_mut()
        .entry(&respond::VERSION_HEADER)
        .or_insert_with(|| gateway.render.version.clone());
    // No hop-by-hop header to strip here: the gateway writes none, and the one answer that
    // carries a backend's headers (`no-op`) is stripped where it is rendered.
    let Some((in_flight, state)) = tracked else {
        return response;
    };
    let (parts, body) = response.into_parts();
    let body = match gateway.write_timeout {
        Some(timeout) => {
            let deadline = Instant::now() + timeout;
            state.set_write_deadline(deadline);
            sluice_plugin::with_deadline(body, deadline)
        }
        None => body,
    };
    Response::from_parts(
        parts,
        InFlightBody {
            body,
            _in_flight: in_flight,
        }
        .boxed_unsync(),
    )
}

/// A response body that keeps its request counted in flight until hyper drops it.
struct InFlightBody {
    body: Body,
    _in_flight: conn::InFlight,
}

impl hyper::body::Body for InFlightBody {
    type Data = Bytes;
    type Error = sluice_plugin::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

async fn handle(
    gateway: &Gateway,
    request: Request<Incoming>,
    peer: SocketAddr,
    scope: &mut RequestScope,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    if gateway.health_path.as_deref() == Some(path) && parts.method == Method::GET {
        return builtin::health();
    }
    // The body deadline runs from the end of the head, wherever the body is read.
    let body_deadline = Instant::now() + gateway.body_timeout;
    if (gateway.debug_endpoint && builtin::is_debug(path))
        || (gateway.echo_endpoint && builtin::is_echo(path))
    {
        let (body, _reserved) = match read_body(gateway, body, body_deadline).await {
            Ok(read) => read,
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
        Lookup::NotFound => return gateway.error_bodies.answer(StatusCode::NOT_FOUND),
    };
    let Some(pipeline) = routes.get(&parts.method) else {
        // (router answers are recorded under their status text, see telemetry.rs)
        if parts.method == Method::OPTIONS && gateway.auto_options {
            let mut response = Response::new(sluice_plugin::empty());
            if let Ok(allow) = HeaderValue::from_str(&routes.allow()) {
                response.headers_mut().insert(header::ALLOW, allow);
            }
            return response;
        }
        if !gateway.handle_method_not_allowed {
            return gateway.error_bodies.answer(StatusCode::NOT_FOUND);
        }
        return gateway.error_bodies.answer(StatusCode::METHOD_NOT_ALLOWED);
    };
    let mut params = Vec::with_capacity(raw_params.len());
    for (name, raw) in raw_params {
        match decode_param(&raw, gateway.path_decoding_guard) {
            Some(value) => params.push((name, value)),
            None => return respond::text(StatusCode::BAD_REQUEST, "error: encoded url params"),
        }
    }
    // The reservation is held until the pipeline is done with the body.
    let (body, _reserved) = match read_body(gateway, body, body_deadline).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    scope.set_route(pipeline.telemetry.server.as_ref());
    let client_ip = gateway.client_ip.resolve(&parts.headers, peer.ip());
    let accept = parts.headers.get(header::ACCEPT).cloned();
    let request = ProxyRequest {
        method: parts.method,
        params,
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body,
        client_ip,
        telemetry: scope.context().clone(),
    };
    let outcome = pipeline.call(&request).await;
    respond::render(pipeline, outcome, accept.as_ref(), &gateway.render)
}

/// Percent-decodes a path param. With the guard (KrakenD's default), a param that was encoded
/// at all, or holds `?`/`#`, is refused; malformed escapes are always refused, and so are `.` and
/// `..` segments (decoded), which would change the backend path the param is put into.
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
    if decoded
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return None;
    }
    Some(decoded.into_owned())
}

/// A plain-text refusal that also closes the connection: the rest of the body is never read.
fn refuse(status: StatusCode, message: &'static str) -> Response<Body> {
    let mut response = respond::text(status, message);
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Reads a client body by `deadline` (408 after it), at most [`MAX_REQUEST_BODY_BYTES`] (413),
/// reserving its bytes in the process-wide budget as they arrive (503 at once when the budget is
/// spent; the whole declared `Content-Length` is reserved up front). The reservation is returned
/// with the body and released when dropped.
async fn read_body(
    gateway: &Gateway,
    mut body: Incoming,
    deadline: Instant,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), Response<Body>> {
    use hyper::body::Body as _;
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "413 request entity too large",
        )
    };
    let over_budget = || {
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "503 service unavailable: too many request bodies in flight",
        )
    };
    // Callers never ask for more than MAX_REQUEST_BODY_BYTES, well within u32.
    let reserve = |bytes: u64| {
        Arc::clone(&gateway.body_budget)
            .try_acquire_many_owned(u32::try_from(bytes).unwrap_or(u32::MAX))
            .ok()
    };
    let declared = body.size_hint().exact();
    let mut reserved = match declared {
        Some(n) if n > MAX_REQUEST_BODY_BYTES as u64 => return Err(too_large()),
        Some(0) => return Ok((Bytes::new(), None)),
        Some(n) => Some(reserve(n).ok_or_else(over_budget)?),
        None => None,
    };
    let mut buffer = bytes::BytesMut::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                return Err(refuse(
                    StatusCode::REQUEST_TIMEOUT,
                    "408 request timeout: the body was not sent in time",
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(refuse(StatusCode::BAD_REQUEST, "400 bad request")),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buffer.len() + data.len() > MAX_REQUEST_BODY_BYTES {
            return Err(too_large());
        }
        if declared.is_none() && !data.is_empty() {
            let more = reserve(data.len() as u64).ok_or_else(over_budget)?;
            match &mut reserved {
                Some(held) => held.merge(more),
                None => reserved = Some(more),
            }
        }
        buffer.extend_from_slice(&data);
    }
    Ok((buffer.freeze(), reserved))
}

/// gin's redirects (see [`respond::router_redirect`]), keeping the query.
fn redirect(parts: &http::request::Parts, location: &str) -> Response<Body> {
    let target = match parts.uri.query() {
        Some(query) => format!("{location}?{query}"),
        None => location.to_owned(),
    };
    respond::router_redirect(&parts.method, &target)
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
        for dots in ["..", ".", "%2e%2E", "a%2F..%2Fb", "a/../b", "./x"] {
            assert_eq!(decode_param(dots, false), None, "{dots}");
            assert_eq!(decode_param(dots, true), None, "{dots}");
        }
        assert_eq!(decode_param("..a", true).as_deref(), Some("..a"));
    }
}
