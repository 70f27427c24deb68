//! Sluice's HTTP server: binds the listener, routes requests to endpoint pipelines, serves
//! `/__health`, `/__debug/` and `/__echo/`, and drains in-flight requests on shutdown.

mod builtin;
mod client_ip;
mod clients;
mod conn;
mod h1;
mod router;
mod smuggling;
pub mod telemetry;
mod tls;

pub use clients::clients;
pub use h1::own_loop_takes;
pub use smuggling::guard_refuses;

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use sluice_config::Config;
use sluice_plugin::{Body, ForwardedFields, Registry};
use sluice_proxy::respond::{self, RenderOptions};
use sluice_proxy::{ProxyRequest, build_pipelines_with};
use sluice_stage::{Components, RequestHead, ResponseContext, SharedStage};
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
    /// The config could not be built into a gateway: a TLS certificate or key that does not
    /// load, an unknown plugin, rejected settings, routes.
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

/// A gateway serving on its listener: the current [`Gateway`] snapshot, which a reload swaps.
#[derive(Debug)]
pub struct RunningGateway {
    current: Arc<ArcSwap<Gateway>>,
    local_addr: ArcSwap<SocketAddr>,
    serving: tokio::sync::Mutex<Serving>,
    /// The telemetry exporters (Prometheus endpoints, OTLP pushers), stopped last. A reload
    /// keeps them: the snapshots it builds record into the same telemetry.
    exporters: sluice_telemetry::Exporters,
}

/// The accept loop that takes new connections, and the loops a reload retired that are still
/// draining their connections.
#[derive(Debug)]
struct Serving {
    local_addr: SocketAddr,
    listener: Arc<tokio::net::TcpListener>,
    max_connections: usize,
    accepting: AcceptLoop,
    draining: Vec<AcceptLoop>,
}

#[derive(Debug)]
struct AcceptLoop {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl AcceptLoop {
    fn spawn(
        listener: Arc<tokio::net::TcpListener>,
        current: Arc<ArcSwap<Gateway>>,
        max_connections: usize,
    ) -> Self {
        let (stop, watch) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, current, max_connections, watch));
        Self { stop, task }
    }

    /// Stops accepting and drains this loop's connections; resolves when they are done (or
    /// `max_shutdown_wait_time` has passed).
    async fn finish(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// What a reload changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reloaded {
    /// The digest of the config served before.
    pub from: String,
    /// The digest of the config served now.
    pub to: String,
    /// The address new connections are accepted on, when it changed.
    pub moved_to: Option<SocketAddr>,
}

impl RunningGateway {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        **self.local_addr.load()
    }

    /// The gateway serving new requests now.
    pub fn current(&self) -> Arc<Gateway> {
        self.current.load_full()
    }

    /// Serves `gateway` from now on: each request already running finishes on the snapshot it
    /// started with, every later one gets the new one, and the old snapshot (with its plugin
    /// instances) is dropped when its last request is done. A changed address is listened on
    /// before the old listener stops accepting; if it cannot be bound, nothing changes.
    ///
    /// # Errors
    /// [`StartError::Bind`] when the new address cannot be listened on.
    pub async fn reload(&self, gateway: Gateway) -> Result<Reloaded, StartError> {
        let mut serving = self.serving.lock().await;
        // The address moves when the config's does (a listener given to `serve` stays).
        let addr = gateway.listen_addr();
        let moved = addr != self.current.load().listen_addr();
        let max_connections = gateway.max_connections;
        let new_listener = if moved {
            let listener = bind(addr).await?;
            let local = listener.local_addr().map_err(StartError::Listener)?;
            Some((Arc::new(listener), local))
        } else {
            None
        };
        let from = self.current.load().digest.clone();
        let to = gateway.digest.clone();
        self.current.store(Arc::new(gateway));
        if new_listener.is_some() || max_connections != serving.max_connections {
            let (listener, local_addr) =
                new_listener.unwrap_or_else(|| (Arc::clone(&serving.listener), serving.local_addr));
            let accepting = AcceptLoop::spawn(
                Arc::clone(&listener),
                Arc::clone(&self.current),
                max_connections,
            );
            let retired = std::mem::replace(&mut serving.accepting, accepting);
            let _ = retired.stop.send(true);
            serving.draining.retain(|l| !l.task.is_finished());
            serving.draining.push(retired);
            serving.listener = listener;
            serving.local_addr = local_addr;
            self.local_addr.store(Arc::new(local_addr));
            serving.max_connections = max_connections;
        }
        Ok(Reloaded {
            from,
            to,
            moved_to: moved.then_some(serving.local_addr),
        })
    }

    /// Stops accepting, drains in-flight requests (up to `max_shutdown_wait_time`) and returns.
    pub async fn shutdown(self) {
        let serving = self.serving.into_inner();
        let mut loops = serving.draining;
        loops.push(serving.accepting);
        // Every loop stops accepting and drains at once; then each is awaited.
        for l in &loops {
            let _ = l.stop.send(true);
        }
        for l in loops {
            l.finish().await;
        }
        self.exporters.shutdown().await;
    }

    /// Where each Prometheus exporter listens, by name.
    pub fn prometheus_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.exporters.prometheus_addrs()
    }

    /// Serves until `signal` resolves, then shuts down.
    pub async fn serve_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        self.shutdown().await;
    }
}

/// Everything a request needs, built once from a config and never changed: the routes and
/// their pipelines (with their clients and plugin instances), the router's options and the
/// listener's settings. A reload builds a new one and swaps it in whole
/// ([`RunningGateway::reload`]).
#[derive(Debug)]
pub struct Gateway {
    /// Which config this is ([`sluice_config::Config::digest`]).
    digest: String,
    /// `listen_ip:port`.
    listen: SocketAddr,
    /// How connections are served (HTTP/1 limits, h2c).
    http: auto::Builder<TokioExecutor>,
    /// How a TLS connection that agreed on `h2` by ALPN is served.
    http2: auto::Builder<TokioExecutor>,
    /// HTTP/1 connections start on the gateway's own loop (h1.rs): off with `use_h2c`, whose
    /// preface hyper detects.
    own_http1: bool,
    /// How long a head may take from the moment a connection waits for it (hyper's
    /// `header_read_timeout` as set in [`http_builder`]).
    head_timeout: Duration,
    /// `max_shutdown_wait_time`.
    shutdown_wait: Duration,
    /// Go's server: an `idle_timeout` of 0 means `read_timeout`.
    idle_timeout: Option<Duration>,
    /// The largest request head (`max_header_bytes`, at least 8 KiB).
    max_head: usize,
    /// `sluice/server.max_connections`.
    max_connections: usize,
    /// The components' service stages (CORS, bot detector...), run before routing.
    service_stages: Vec<SharedStage>,
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
    /// The listener's TLS (`tls`), when on.
    tls: Option<tls::Acceptor>,
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

/// Builds every endpoint pipeline from `config` (plugins resolved through `registry`) and starts
/// serving on `listener`, or on `listen_ip:port` from the config when `None`, with the
/// telemetry the config asks for.
pub async fn start(
    config: Arc<Config>,
    registry: Registry,
    listener: Option<tokio::net::TcpListener>,
) -> Result<RunningGateway, StartError> {
    let telemetry = telemetry::from_config(&config);
    let gateway = Gateway::build_with(&config, &registry, &Components::new(), &telemetry).await?;
    serve_with(gateway, listener, &telemetry).await
}

/// Serves `gateway` on `listener`, or on its `listen_ip:port` when `None`, without telemetry.
///
/// # Errors
/// When the address cannot be listened on.
pub async fn serve(
    gateway: Gateway,
    listener: Option<tokio::net::TcpListener>,
) -> Result<RunningGateway, StartError> {
    serve_with(gateway, listener, &Telemetry::disabled()).await
}

/// [`serve`] with the telemetry `gateway` was built with: its exporters start here.
///
/// # Errors
/// When the address cannot be listened on, or an exporter cannot start.
pub async fn serve_with(
    gateway: Gateway,
    listener: Option<tokio::net::TcpListener>,
    telemetry: &Telemetry,
) -> Result<RunningGateway, StartError> {
    let exporters = telemetry.start().await.map_err(StartError::Telemetry)?;
    let listener = match listener {
        Some(listener) => listener,
        None => bind(gateway.listen_addr()).await?,
    };
    let local_addr = listener.local_addr().map_err(StartError::Listener)?;
    let listener = Arc::new(listener);
    let max_connections = gateway.max_connections;
    let current = Arc::new(ArcSwap::from_pointee(gateway));
    let accepting = AcceptLoop::spawn(Arc::clone(&listener), Arc::clone(&current), max_connections);
    tracing::info!(address = %local_addr, "listening");
    Ok(RunningGateway {
        current,
        local_addr: ArcSwap::from_pointee(local_addr),
        serving: tokio::sync::Mutex::new(Serving {
            local_addr,
            listener,
            max_connections,
            accepting,
            draining: Vec::new(),
        }),
        exporters,
    })
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, StartError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Bind(addr, e))
}

/// Builds the routing table and pipelines; `check` uses this without binding anything.
pub async fn validate(config: &Config, registry: &Registry) -> Result<(), Vec<String>> {
    Gateway::build(config, registry)
        .await
        .map(|_| ())
        .map_err(|e| match e {
            StartError::Pipeline(errors) => errors,
            other @ (StartError::Bind(..) | StartError::Listener(_) | StartError::Telemetry(_)) => {
                vec![other.to_string()]
            }
        })
}

impl Gateway {
    /// Builds what `config` describes: the listener's settings and TLS, the backend clients,
    /// the routes and every endpoint pipeline (plugins resolved through `registry`). Nothing is
    /// bound. A plugin's set-up (a component's `init`) runs on the caller's runtime.
    ///
    /// # Errors
    /// [`StartError::Pipeline`] with every problem found.
    pub async fn build(config: &Config, registry: &Registry) -> Result<Gateway, StartError> {
        Self::build_with(config, registry, &Components::new(), &Telemetry::disabled()).await
    }

    /// [`Gateway::build`] with the gateway's components (JWT, CORS, rate limits...): the
    /// service's stages, each endpoint's, and the layers around each backend; and the
    /// telemetry every route, backend and plugin records into.
    ///
    /// # Errors
    /// [`StartError::Pipeline`] with every problem found.
    pub async fn build_with(
        config: &Config,
        registry: &Registry,
        components: &Components,
        telemetry: &Telemetry,
    ) -> Result<Gateway, StartError> {
        // Every problem at once: TLS, clients, the service's stages, the endpoints.
        let tls = tls::Acceptor::from_config(config);
        let clients = clients(config);
        let service_stages = components.service_stages(config);
        // Without the clients, the pipelines are not built (the clients' errors say why).
        let pipelines = match &clients {
            Ok(clients) => {
                build_pipelines_with(config, registry, clients, components, telemetry).await
            }
            Err(_) => Err(Vec::new()),
        };
        let (tls, service_stages, pipelines) = match (tls, clients, service_stages, pipelines) {
            (Ok(tls), Ok(_), Ok(stages), Ok(pipelines)) => (tls, stages, pipelines),
            (tls, clients, stages, pipelines) => {
                let mut errors = tls.err().unwrap_or_default();
                errors.extend(clients.err().unwrap_or_default());
                errors.extend(
                    stages
                        .err()
                        .unwrap_or_default()
                        .iter()
                        .map(ToString::to_string),
                );
                errors.extend(pipelines.err().unwrap_or_default());
                return Err(StartError::Pipeline(errors));
            }
        };
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
        let server = &config.server;
        let idle_timeout = non_zero(server.idle_timeout).or(non_zero(server.read_timeout));
        // hyper's buffer cannot be smaller than 8 KiB.
        let max_head = server.max_header_bytes.max(8192);
        let http = http_builder(config, idle_timeout, max_head);
        Ok(Gateway {
            digest: config.digest.clone(),
            listen: SocketAddr::new(
                config.listen_ip.unwrap_or(IpAddr::from([0, 0, 0, 0])),
                config.port,
            ),
            http: if config.server.use_h2c {
                http.clone()
            } else {
                http.clone().http1_only()
            },
            http2: http.http2_only(),
            own_http1: !config.server.use_h2c,
            head_timeout: head_timeout(config, idle_timeout),
            tls,
            shutdown_wait: server.max_shutdown_wait_time,
            idle_timeout,
            max_head,
            max_connections: config
                .sluice_server
                .max_connections
                .min(Semaphore::MAX_PERMITS),
            service_stages,
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

    /// Which config this gateway was built from ([`sluice_config::Config::digest`]).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Where it listens: `listen_ip:port` (all addresses when `listen_ip` is not set).
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }
}

/// How connections are served: HTTP/1 head limits and timers, HTTP/2 head limits (the caller
/// narrows it to HTTP/1 without `use_h2c`, or to HTTP/2 for TLS connections that chose it).
fn http_builder(
    config: &Config,
    idle_timeout: Option<Duration>,
    max_head: usize,
) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    {
        let mut http1 = builder.http1();
        http1.timer(TokioTimer::new());
        http1.max_buf_size(max_head);
        http1.header_read_timeout(head_timeout(config, idle_timeout));
    }
    // `max_header_bytes` bounds HTTP/2 heads too, as in Go's server.
    builder
        .http2()
        .max_header_list_size(u32::try_from(max_head).unwrap_or(u32::MAX));
    builder
}

/// hyper starts its head timer as soon as the connection waits for a head, idle or not; the
/// idle wait has its own limit (conn.rs), so it is added here, not counted twice.
fn head_timeout(config: &Config, idle_timeout: Option<Duration>) -> Duration {
    let header = non_zero(config.server.read_header_timeout).unwrap_or(DEFAULT_HEADER_TIMEOUT);
    header + idle_timeout.unwrap_or_default()
}

fn non_zero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// Accepts connections on `listener` until `stop`, each served with the settings of the
/// snapshot current when it was accepted and each request with the snapshot current when it
/// arrived; then drains its connections.
async fn accept_loop(
    listener: Arc<tokio::net::TcpListener>,
    current: Arc<ArcSwap<Gateway>>,
    max_connections: usize,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // Connections past the cap wait in the listen backlog (not accepted) until one closes.
    let slots = Arc::new(Semaphore::new(max_connections));
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
        let settings = current.load_full();
        let requests = Requests {
            current: Arc::clone(&current),
            state: Arc::new(conn::ConnState::default()),
            tracked: settings.idle_timeout.is_some() || settings.write_timeout.is_some(),
            peer,
        };
        let watcher = graceful.watcher();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            // The TLS handshake (when on) runs here, by its deadline, holding the slot.
            let Some((stream, h2)) = tls::wrap(settings.tls.as_ref(), stream, peer).await else {
                return drop(slot);
            };
            let state = Arc::clone(&requests.state);
            // HTTP/1 (without h2c) is served by the gateway itself until a request it leaves
            // to hyper (h1.rs), which then takes the connection with every byte read so far.
            let (stream, read) = if settings.own_http1 && !h2 {
                let io = conn::Timed::new(stream, Arc::clone(&state), settings.idle_timeout);
                let limits = h1::Limits {
                    max_head: settings.max_head,
                    head_timeout: settings.head_timeout,
                };
                let served = h1::serve(io, limits, shutdown, |request| requests.serve(request));
                match served.await {
                    h1::Ended::Closed => return drop((slot, watcher)),
                    h1::Ended::HandOver(io, read) => (io.into_inner(), read),
                }
            } else {
                (stream, Bytes::new())
            };
            // With TLS, HTTP/2 is agreed by ALPN before the first byte: such a connection is
            // served as HTTP/2 only, any other as without TLS.
            let builder = if h2 { &settings.http2 } else { &settings.http };
            // After TLS the guard reads the decrypted bytes; an HTTP/2 connection starts with
            // its preface, which turns the guard off.
            let guarded =
                smuggling::Guarded::new(conn::Prefixed::new(read, stream), settings.max_head);
            let io = conn::Timed::new(guarded, state, settings.idle_timeout);
            let service = hyper::service::service_fn(move |request| {
                let answer = requests.serve(request);
                // hyper writes the map alone.
                async move { Ok::<_, Infallible>(forwarded_into_map(answer.await)) }
            });
            let connection = builder.serve_connection(TokioIo::new(io), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(error = %e, peer = %peer, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    let wait = current.load().shutdown_wait;
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

/// `response` with the backend's fields it hands on as they came ([`ForwardedFields`]) put in
/// its map: for whatever reads or writes the map alone.
fn forwarded_into_map(response: Response<Body>) -> Response<Body> {
    if response.extensions().get::<ForwardedFields>().is_none() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    ForwardedFields::into_map(&mut parts.extensions, &mut parts.headers);
    Response::from_parts(parts, body)
}

/// What every request of one connection needs, whichever server (h1.rs or hyper) reads it.
struct Requests {
    current: Arc<ArcSwap<Gateway>>,
    state: Arc<conn::ConnState>,
    /// Requests in flight and write deadlines matter only to the idle and write limits:
    /// without them, a request pays for neither.
    tracked: bool,
    peer: SocketAddr,
}

impl Requests {
    /// The answer to `request`, on the snapshot current now for the request's whole life,
    /// whatever a reload does meanwhile.
    fn serve<B>(&self, request: Request<B>) -> impl Future<Output = Response<Body>> + Send + use<B>
    where
        B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static,
    {
        let gateway = self.current.load_full();
        let tracked = self
            .tracked
            .then(|| (self.state.start_request(), Arc::clone(&self.state)));
        let peer = self.peer;
        // Only what the line needs, and only when someone reads it.
        let access = (gateway.access_log
            && tracing::enabled!(target: "sluice::access", tracing::Level::INFO))
        .then(|| request.uri().clone());
        // Telemetry: one call here and one at the end (telemetry.rs).
        let mut scope = gateway.telemetry.begin(&request, peer, access.is_some());
        // The head is split before the future is made, which then holds it for the request's
        // life and lends it to the stages below. Moved into it and down through each `async
        // fn`, it was copied twice a level (argument, then local) into state that is cold by
        // the time a request comes back to it.
        let (mut parts, body) = request.into_parts();
        async move {
            let mut response = handle(&gateway, &mut parts, body, peer, &mut scope).await;
            let method = parts.method;
            if gateway.telemetry.reports_headers() {
                response = forwarded_into_map(response);
            }
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
            finish(&gateway, response, tracked)
        }
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

/// A client's request body, as either server hands it over (hyper's `Incoming`, or h1.rs's
/// empty body).
trait ClientBody: hyper::body::Body<Data = Bytes> + Send + Unpin {}

impl<B: hyper::body::Body<Data = Bytes> + Send + Unpin> ClientBody for B {}

async fn handle<B: ClientBody>(
    gateway: &Gateway,
    parts: &mut http::request::Parts,
    body: B,
    peer: SocketAddr,
    scope: &mut RequestScope,
) -> Response<Body> {
    let client_ip = gateway.client_ip.resolve(&parts.headers, peer.ip());
    if gateway.service_stages.is_empty() {
        return route(gateway, parts, body, client_ip, scope).await;
    }
    // The components' service stages (CORS preflight, bot detector...) see every request,
    // before routing, and every answer on its way out.
    let seen =
        sluice_stage::any_on_response(&gateway.service_stages).then(|| SeenRequest::of(parts));
    let mut no_params = Vec::new();
    let mut head = RequestHead {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        route: None,
        params: &mut no_params,
        headers: &mut parts.headers,
        client_ip,
    };
    let response = match sluice_stage::run_on_request(&gateway.service_stages, &mut head).await {
        Err(answer) => respond::early(answer),
        Ok(()) => route(gateway, parts, body, client_ip, scope).await,
    };
    match seen {
        Some(seen) => seen.on_response(&gateway.service_stages, response),
        None => response,
    }
}

/// What stages' `on_response` see of a request, kept before the request is consumed.
struct SeenRequest {
    method: Method,
    headers: http::HeaderMap,
}

impl SeenRequest {
    fn of(parts: &http::request::Parts) -> Self {
        Self {
            method: parts.method.clone(),
            headers: parts.headers.clone(),
        }
    }

    /// `response` after `stages`' `on_response`.
    fn on_response(&self, stages: &[SharedStage], response: Response<Body>) -> Response<Body> {
        let context = ResponseContext {
            method: &self.method,
            request_headers: &self.headers,
        };
        let (mut parts, body) = response.into_parts();
        // The stages see (and may change) every field.
        ForwardedFields::into_map(&mut parts.extensions, &mut parts.headers);
        sluice_stage::run_on_response(stages, &context, &mut parts);
        Response::from_parts(parts, body)
    }
}

async fn route<B: ClientBody>(
    gateway: &Gateway,
    parts: &mut http::request::Parts,
    body: B,
    client_ip: IpAddr,
    scope: &mut RequestScope,
) -> Response<Body> {
    let path = parts.uri.path();
    if gateway.health_path.as_deref() == Some(path) && parts.method == Method::GET {
        return builtin::health(&gateway.digest);
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
            builtin::debug(parts, &body)
        } else {
            builtin::echo(parts, &body)
        };
    }
    let (routes, raw_params) = match gateway.router.lookup(path) {
        Lookup::Found(routes, params) => (routes, params),
        Lookup::Redirect(location) => return redirect(parts, &location),
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
    scope.set_route(pipeline.telemetry.server.as_ref());
    // The request is kept for the stages' `on_response` only when one of them acts on it.
    let seen = sluice_stage::any_on_response(&pipeline.stages).then(|| SeenRequest::of(parts));
    let response = call(
        gateway,
        pipeline,
        parts,
        params,
        body,
        body_deadline,
        client_ip,
        scope,
    )
    .await;
    match seen {
        Some(seen) => seen.on_response(&pipeline.stages, response),
        None => response,
    }
}

/// The endpoint's stages, the body, the pipeline and the render.
#[expect(
    clippy::too_many_arguments,
    reason = "the request's parts as route() split them; a struct would only rename them"
)]
async fn call<B: ClientBody>(
    gateway: &Gateway,
    pipeline: &sluice_proxy::EndpointPipeline,
    parts: &mut http::request::Parts,
    mut params: Vec<(String, String)>,
    body: B,
    body_deadline: Instant,
    client_ip: IpAddr,
    scope: &RequestScope,
) -> Response<Body> {
    let stages = &pipeline.stages;
    // One view of the request for both phases (the body is read in between).
    let mut head = RequestHead {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        route: Some(&pipeline.endpoint.endpoint),
        params: &mut params,
        headers: &mut parts.headers,
        client_ip,
    };
    if !stages.is_empty()
        && let Err(answer) = sluice_stage::run_on_request(stages, &mut head).await
    {
        return respond::early(answer);
    }
    // The reservation is held until the pipeline is done with the body.
    let (body, _reserved) = match read_body(gateway, body, body_deadline).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    if !stages.is_empty()
        && let Err(answer) = sluice_stage::run_on_body(stages, &head, &body).await
    {
        return respond::early(answer);
    }
    // Read only where the render negotiates (a lookup each request otherwise).
    let accept = (pipeline.output_encoding() == sluice_config::OutputEncoding::Negotiate)
        .then(|| parts.headers.get(header::ACCEPT).cloned())
        .flatten();
    let request = ProxyRequest {
        method: parts.method.clone(),
        params,
        query: parts.uri.query().map(str::to_owned),
        // Only the answer's side reads the head after this (its method).
        headers: std::mem::take(&mut parts.headers),
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
async fn read_body<B: ClientBody>(
    gateway: &Gateway,
    mut body: B,
    deadline: Instant,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), Response<Body>> {
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
    // Sized for the declared length from the second frame on (its bytes are reserved already).
    let mut whole = sluice_plugin::BodyBuffer::default();
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
        if whole.len() + data.len() > MAX_REQUEST_BODY_BYTES {
            return Err(too_large());
        }
        if declared.is_none() && !data.is_empty() {
            let more = reserve(data.len() as u64).ok_or_else(over_budget)?;
            match &mut reserved {
                Some(held) => held.merge(more),
                None => reserved = Some(more),
            }
        }
        whole.push(data, declared.map_or(0, |n| n as usize));
    }
    Ok((whole.finish(), reserved))
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
