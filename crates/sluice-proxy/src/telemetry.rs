//! The pipeline's telemetry: handles resolved per endpoint and per backend when the pipelines
//! are built (krakend-otel's proxy and backend layers, and Sluice's plugin metrics), and the
//! timers that record them (a timer dropped before it finishes records a cancelled stage: the
//! client went away).

use std::sync::Arc;
use std::time::Duration;

use sluice_config::{BackendLayer, Config, Endpoint, ProxyLayer};
use sluice_plugin::{BackendRequest, BackendResponse, ErrorKind, ExecError, Instant};
use sluice_telemetry::{
    BackendLabels, PluginMetrics, ReadMetrics, RoundTripEnd, RoundTripMetrics, ServerMetrics,
    StageMetrics, StageOutcome, Telemetry,
};

/// An endpoint's handles.
#[derive(Debug, Default)]
pub struct EndpointTelemetry {
    /// Global layer (`http.server.*`), recorded by the server.
    pub server: Option<Arc<ServerMetrics>>,
    /// Proxy layer (`krakend.proxy.duration`).
    pub(crate) proxy: Option<Arc<StageMetrics>>,
}

/// A backend's handles.
#[derive(Debug, Default)]
pub(crate) struct BackendTelemetry {
    pub(crate) stage: Option<Arc<StageMetrics>>,
    pub(crate) round_trip: Option<Arc<RoundTripMetrics>>,
    pub(crate) read: Option<Arc<ReadMetrics>>,
    pub(crate) plugin: Option<Arc<PluginMetrics>>,
}

impl EndpointTelemetry {
    pub(crate) fn new(telemetry: &Telemetry, config: &Config, endpoint: &Endpoint) -> Self {
        if !telemetry.metrics_enabled() || telemetry.skips(&endpoint.endpoint) {
            return Self::default();
        }
        let route = sluice_telemetry::endpoint_route(&endpoint.endpoint);
        let overrides = endpoint.telemetry.as_ref();
        let service_proxy = config
            .opentelemetry
            .as_ref()
            .map(|o| o.layers.proxy.clone())
            .unwrap_or_default();
        let proxy: ProxyLayer = overrides
            .and_then(|o| o.proxy.clone())
            .unwrap_or(service_proxy);
        let endpoint_attributes = overrides
            .map(|o| o.metrics_static_attributes.clone())
            .unwrap_or_default();
        Self {
            server: telemetry.server_metrics(Some(&route), &endpoint_attributes),
            proxy: if proxy.disable_metrics {
                None
            } else {
                telemetry.proxy_metrics(
                    endpoint.method.as_str(),
                    &route,
                    &proxy.metrics_static_attributes,
                )
            },
        }
    }
}

impl BackendTelemetry {
    pub(crate) fn new(
        telemetry: &Telemetry,
        config: &Config,
        endpoint: &Endpoint,
        backend: &sluice_config::Backend,
    ) -> Self {
        if !telemetry.metrics_enabled() || telemetry.skips(&endpoint.endpoint) {
            return Self::default();
        }
        let layer: BackendLayer = backend.telemetry.clone().unwrap_or_else(|| {
            config
                .opentelemetry
                .as_ref()
                .map(|o| o.layers.backend.clone())
                .unwrap_or_default()
        });
        let url_pattern = sluice_telemetry::backend_route(&backend.url_pattern);
        let endpoint_route = sluice_telemetry::endpoint_route(&endpoint.endpoint);
        let labels = BackendLabels {
            method: backend.method.as_str(),
            url_pattern: &url_pattern,
            endpoint_route: &endpoint_route,
            endpoint_method: endpoint.method.as_str(),
        };
        let m = &layer.metrics;
        let statics = &m.static_attributes;
        // krakend-otel instruments the HTTP client; a plugin replaces that client, so its
        // backends have Sluice's plugin metrics instead of the round trip ones.
        let plugin = backend.plugin.as_ref();
        Self {
            stage: (!m.disable_stage)
                .then(|| telemetry.backend_metrics(&labels, statics))
                .flatten(),
            round_trip: (m.round_trip && plugin.is_none())
                .then(|| telemetry.round_trip_metrics(&labels, statics, &backend.host))
                .flatten(),
            read: m
                .read_payload
                .then(|| telemetry.read_metrics(&labels, statics))
                .flatten(),
            plugin: plugin.and_then(|p| telemetry.plugin_metrics(&p.name, &labels)),
        }
    }
}

/// Times a proxy or backend stage; dropped unfinished, it records a cancelled stage.
#[derive(Debug)]
pub(crate) struct StageTimer<'a> {
    metrics: Option<(&'a StageMetrics, Instant)>,
}

impl<'a> StageTimer<'a> {
    pub(crate) fn start(metrics: Option<&'a StageMetrics>) -> Self {
        Self {
            metrics: metrics.map(|m| (m, Instant::now())),
        }
    }

    pub(crate) fn finish(mut self, error: bool, complete: bool) {
        if let Some((m, started)) = self.metrics.take() {
            m.record(
                started.elapsed(),
                StageOutcome {
                    error,
                    canceled: false,
                    complete,
                },
            );
        }
    }
}

impl Drop for StageTimer<'_> {
    fn drop(&mut self) {
        if let Some((m, started)) = self.metrics.take() {
            m.record(
                started.elapsed(),
                StageOutcome {
                    error: false,
                    canceled: true,
                    complete: false,
                },
            );
        }
    }
}

/// Times one executor call (the round trip to the response head); dropped unfinished, it
/// records a cancelled request.
#[derive(Debug)]
pub(crate) struct RoundTripTimer<'a> {
    started: Option<Instant>,
    metrics: Option<(&'a RoundTripMetrics, http::Uri, http::Method, u64)>,
}

pub(crate) type ExecResult =
    Result<Result<BackendResponse, ExecError>, tokio::time::error::Elapsed>;

impl<'a> RoundTripTimer<'a> {
    pub(crate) fn start(
        metrics: Option<&'a RoundTripMetrics>,
        request: &BackendRequest,
        timed: bool,
    ) -> Self {
        let metrics = metrics.map(|m| {
            (
                m,
                request.url.clone(),
                request.method.clone(),
                request.body.len() as u64,
            )
        });
        Self {
            started: (timed || metrics.is_some()).then(Instant::now),
            metrics,
        }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.map(|s| s.elapsed()).unwrap_or_default()
    }

    pub(crate) fn finish(mut self, result: &ExecResult) {
        let Some((m, uri, method, size)) = self.metrics.take() else {
            return;
        };
        let end = match result {
            Err(_) => RoundTripEnd::TimedOut,
            Ok(Err(e)) if e.kind == ErrorKind::Timeout => RoundTripEnd::TimedOut,
            Ok(Err(_)) => RoundTripEnd::Failed,
            Ok(Ok(response)) => RoundTripEnd::Answered {
                status: response.status().as_u16(),
                content_length: response
                    .headers()
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok()),
            },
        };
        m.record(&uri, &method, size, self.elapsed(), end);
    }
}

impl Drop for RoundTripTimer<'_> {
    fn drop(&mut self) {
        if let Some((m, uri, method, size)) = self.metrics.take() {
            let elapsed = self.elapsed();
            m.record(&uri, &method, size, elapsed, RoundTripEnd::Canceled);
        }
    }
}

/// The `outcome` index ([`sluice_telemetry::PLUGIN_OUTCOMES`]) of a plugin call.
pub(crate) fn plugin_outcome(result: &ExecResult) -> usize {
    match result {
        Ok(Ok(_)) => 0,
        Err(_) => 2,
        Ok(Err(e)) => sluice_plugin::error_outcome(e.kind),
    }
}

/// `sluice.plugin.outbound.*` of the plugin `backend` names: by the origins its
/// `allowed_hosts` (or its own hosts) allow.
pub(crate) fn outbound_metrics(
    telemetry: &Telemetry,
    _config: &Config,
    endpoint: &Endpoint,
    backend: &sluice_config::Backend,
    plugin: &str,
) -> Option<Arc<sluice_telemetry::OutboundMetrics>> {
    if !telemetry.metrics_enabled() || telemetry.skips(&endpoint.endpoint) {
        return None;
    }
    let url_pattern = sluice_telemetry::backend_route(&backend.url_pattern);
    let endpoint_route = sluice_telemetry::endpoint_route(&endpoint.endpoint);
    let labels = BackendLabels {
        method: backend.method.as_str(),
        url_pattern: &url_pattern,
        endpoint_route: &endpoint_route,
        endpoint_method: endpoint.method.as_str(),
    };
    let extra = backend.plugin.as_ref().map(|p| &p.extra)?;
    let origins = match sluice_plugin::AllowedHosts::from_extra(extra, &backend.host).ok()? {
        sluice_plugin::AllowedHosts::Any => Vec::new(),
        sluice_plugin::AllowedHosts::Only(list) => list.iter().map(ToString::to_string).collect(),
    };
    telemetry.outbound_metrics(plugin, &labels, origins)
}
