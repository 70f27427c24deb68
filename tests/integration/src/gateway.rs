//! Starting a real gateway from a JSON config.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use sluice_plugin::Registry;
use sluice_server::RunningGateway;

/// A gateway serving on a loopback port.
#[derive(Debug)]
pub struct Gateway {
    /// Where it listens.
    pub addr: SocketAddr,
    running: RunningGateway,
}

impl Gateway {
    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `127.0.0.1:<port>`: what clients send as `Host`, so what backends get as
    /// `X-Forwarded-Host`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// Builds a whole new gateway from `config` (plugins from `registry`) and swaps it in, as
    /// SIGHUP does; the address stays.
    ///
    /// # Errors
    /// When the config is rejected or the gateway cannot be built.
    pub async fn reload(
        &self,
        config: &serde_json::Value,
        registry: &Registry,
    ) -> Result<sluice_server::Reloaded, StartFailure> {
        let config = parse_config(config).map_err(|d| StartFailure::Config(format!("{d}")))?;
        let gateway = sluice_server::Gateway::build(&config, registry)
            .await
            .map_err(StartFailure::Start)?;
        self.running
            .reload(gateway)
            .await
            .map_err(StartFailure::Start)
    }

    /// The digest of the config it serves now.
    pub fn digest(&self) -> String {
        self.running.current().digest().to_owned()
    }

    /// Stops it (draining in-flight requests).
    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}

/// Why a gateway did not start.
#[derive(Debug)]
pub enum StartFailure {
    /// The config was rejected; the diagnostics as text.
    Config(String),
    /// The server refused to start.
    Start(sluice_server::StartError),
}

impl fmt::Display for StartFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartFailure::Config(d) => write!(f, "config rejected: {d}"),
            StartFailure::Start(e) => write!(f, "gateway did not start: {e}"),
        }
    }
}

/// Parses `config` as the file `test.json`.
///
/// # Errors
/// The parser's diagnostics.
///
/// # Panics
/// If the value cannot be serialised (it always can).
pub fn parse_config(
    config: &serde_json::Value,
) -> Result<sluice_config::Config, sluice_config::Diagnostics> {
    let text = serde_json::to_string_pretty(config).expect("JSON serialises");
    sluice_config::parse_str(&text, Path::new("test.json"))
}

/// Parses `config` and starts a gateway on `127.0.0.1:0` with an empty plugin registry.
///
/// # Panics
/// If the config is rejected or the gateway does not start.
pub async fn start_gateway(config: serde_json::Value) -> Gateway {
    start_gateway_with_registry(config, Registry::new()).await
}

/// Like [`start_gateway`] with plugins.
///
/// # Panics
/// If the config is rejected or the gateway does not start.
pub async fn start_gateway_with_registry(config: serde_json::Value, registry: Registry) -> Gateway {
    match try_start_gateway(config, registry).await {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

/// Parses `config` knowing the namespaces `components` read, builds the gateway with them (and
/// `registry`'s plugins), and starts it on `127.0.0.1:0`; listening when this returns.
///
/// # Errors
/// When the config is rejected or the gateway cannot be built (the components' problems too).
///
/// # Panics
/// If no loopback port can be bound.
pub async fn try_start_gateway_with_components(
    config: serde_json::Value,
    registry: Registry,
    components: &sluice_stage::Components,
) -> Result<Gateway, StartFailure> {
    let text = serde_json::to_string_pretty(&config).expect("JSON serialises");
    let options = sluice_config::LoadOptions {
        components: components.namespaces(),
        ..sluice_config::LoadOptions::default()
    };
    let config = sluice_config::parse_str_with(&text, Path::new("test.json"), &options)
        .map_err(|d| StartFailure::Config(format!("{d}")))?;
    let telemetry = sluice_server::telemetry::from_config(&config);
    let gateway = sluice_server::Gateway::build_with(&config, &registry, components, &telemetry)
        .await
        .map_err(StartFailure::Start)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the gateway listener");
    let running = sluice_server::serve_with(gateway, Some(listener), &telemetry)
        .await
        .map_err(StartFailure::Start)?;
    Ok(Gateway {
        addr: running.local_addr(),
        running,
    })
}

/// Like [`try_start_gateway`], composed as `sluice run` composes it for gRPC: the config's
/// `grpc.catalog` loaded and the plugin `grpc` registered beside `registry`'s plugins.
///
/// # Errors
/// When the catalog or the config is rejected, or the server refuses to start.
///
/// # Panics
/// If no loopback port can be bound.
pub async fn try_start_gateway_with_grpc(
    config: serde_json::Value,
    mut registry: Registry,
) -> Result<Gateway, StartFailure> {
    let parsed = parse_config(&config).map_err(|d| StartFailure::Config(format!("{d}")))?;
    let grpc = sluice_grpc::GrpcPlugin::from_config(&parsed)
        .map_err(|errors| StartFailure::Config(errors.join("\n")))?;
    registry
        .register(sluice_config::namespace::GRPC_PLUGIN, Arc::new(grpc))
        .map_err(|e| StartFailure::Config(e.to_string()))?;
    try_start_gateway(config, registry).await
}

/// What `sluice check` reports for `config` with gRPC composed in: every problem, or none.
pub async fn check_with_grpc(config: &serde_json::Value) -> Vec<String> {
    let parsed = match parse_config(config) {
        Ok(parsed) => parsed,
        Err(d) => return d.to_string().lines().map(str::to_owned).collect(),
    };
    let mut registry = Registry::new();
    match sluice_grpc::GrpcPlugin::from_config(&parsed) {
        Ok(grpc) => {
            let _ = registry.register(sluice_config::namespace::GRPC_PLUGIN, Arc::new(grpc));
        }
        Err(errors) => return errors,
    }
    sluice_server::validate(&parsed, &registry)
        .await
        .err()
        .unwrap_or_default()
}

/// Parses `config` and starts a gateway on `127.0.0.1:0`; listening when this returns.
///
/// # Errors
/// When the config is rejected or the server refuses to start.
///
/// # Panics
/// If no loopback port can be bound.
pub async fn try_start_gateway(
    config: serde_json::Value,
    registry: Registry,
) -> Result<Gateway, StartFailure> {
    try_start_gateway_with(config, registry, |_| {}).await
}

/// Like [`try_start_gateway`], as `sluice run` composes it: the telemetry the config asks for,
/// handed to `prepare` (to register collectors) before the gateway starts.
///
/// # Errors
/// When the config is rejected or the server refuses to start.
///
/// # Panics
/// If no loopback port can be bound.
pub async fn try_start_gateway_with(
    config: serde_json::Value,
    registry: Registry,
    prepare: impl FnOnce(&sluice_telemetry::Telemetry),
) -> Result<Gateway, StartFailure> {
    let config = parse_config(&config).map_err(|d| StartFailure::Config(format!("{d}")))?;
    let telemetry = sluice_server::telemetry::from_config(&config);
    prepare(&telemetry);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the gateway listener");
    let gateway = sluice_server::Gateway::build_with(
        &config,
        &registry,
        &sluice_stage::Components::new(),
        &telemetry,
    )
    .await
    .map_err(StartFailure::Start)?;
    let running = sluice_server::serve_with(gateway, Some(listener), &telemetry)
        .await
        .map_err(StartFailure::Start)?;
    Ok(Gateway {
        addr: running.local_addr(),
        running,
    })
}
