//! The pipeline's telemetry: handles resolved per endpoint and per backend when the pipelines
//! are built (krakend-otel's proxy and backend layers, and Sluice's plugin metrics), and the
//! timers that record them (a timer dropped before it finishes records a cancelled stage: the
//! client went away).

use std::sync::Arc;
use std::time::Duration;

use sluice_config::{BackendLayer, Config, Endpoint, ProxyLayer};
use sluice_plugin::{BackendRequest, BackendResponse, ErrorKind, ExecError, Instant};
use sluice_telemetry::{
    BackendLabels, PluginMetrics, ReadMetrics, RoundTripEnd, RoundTripMetrics, RoundTripTarget,
    RouteTelemetry, SharedAttributes, Span, SpanKind, StageMetrics, StageOutcome, Telemetry,
    TraceParent, shared_attributes,
};

use crate::error::ProxyError;

/// An endpoint's handles.
#[derive(Debug, Default)]
pub struct EndpointTelemetry {
    /// Global layer (`http.server.*` and the request span's route), recorded by the server.
    pub server: Option<Arc<RouteTelemetry>>,
    /// Proxy layer (`krakend.proxy.duration`).
    pub(crate) proxy: Option<Arc<StageMetrics>>,
    /// Proxy layer span.
    pub(crate) proxy_trace: Option<StageTrace>,
}

/// A backend's handles.
#[derive(Debug, Default)]
pub(crate) struct BackendTelemetry {
    pub(crate) stage: Option<Arc<StageMetrics>>,
    pub(crate) round_trip: Option<Arc<RoundTripMetrics>>,
    pub(crate) read: Option<Arc<ReadMetrics>>,
    pub(crate) plugin: Option<Arc<PluginMetrics>>,
    /// The backend span (krakend-otel's `backend` stage).
    pub(crate) stage_trace: Option<StageTrace>,
    /// The client span of the request itself (`round_trip`), default client only.
    pub(crate) round_trip_trace: Option<StageTrace>,
    /// The plugin's span (its outbound calls are its children).
    pub(crate) plugin_trace: Option<StageTrace>,
    /// `traceparent` sent to the backend (tracing on, `disable_propagation` off).
    pub(crate) propagate: bool,
}

/// What a span of one stage is named and carries, fixed at build time and shared by every
/// span of the stage (a recorded span holds references to them, an unsampled one nothing).
#[derive(Debug)]
pub(crate) struct StageTrace {
    name: Arc<str>,
    kind: SpanKind,
    attributes: SharedAttributes,
    report_headers: bool,
    skip_headers: Vec<String>,
}

impl StageTrace {
    fn new(
        name: &str,
        kind: SpanKind,
        attributes: &[(String, String)],
        report_headers: bool,
        skip_headers: Vec<String>,
    ) -> Self {
        Self {
            name: Arc::from(name),
            kind,
            attributes: shared_attributes(attributes),
            report_headers,
            skip_headers,
        }
    }

    /// Starts the stage's span under `parent`.
    pub(crate) fn start(&self, parent: &TraceParent, headers: Option<&http::HeaderMap>) -> Span {
        let mut span = parent.child(&self.name, self.kind);
        if span.is_recording() {
            span.set_shared(&self.attributes);
            if let Some(headers) = headers.filter(|_| self.report_headers) {
                span.set_headers("request", headers, &self.skip_headers);
            }
        }
        span
    }
}

/// Ends a proxy or backend span as krakend-otel does: the status code (500 on an error),
/// the error, whether the answer is complete.
pub(crate) fn end_stage(mut span: Span, error: Option<&ProxyError>, complete: bool) {
    if span.is_recording() {
        match error {
            Some(e) => {
                span.set_display("error", e);
                span.set("http.response.status_code", 500i64);
            }
            None => span.set("http.response.status_code", 200i64),
        }
        span.set("complete", complete);
    }
}

/// Whether the endpoint is left uninstrumented (`skip_paths` names it as written or in the
/// `:param` form krakend-otel compares).
fn skipped(telemetry: &Telemetry, endpoint: &Endpoint, route: &str) -> bool {
    telemetry.skips(&endpoint.endpoint) || telemetry.skips(route)
}

impl EndpointTelemetry {
    pub(crate) fn new(telemetry: &Telemetry, config: &Config, endpoint: &Endpoint) -> Self {
        let route = sluice_telemetry::endpoint_route(&endpoint.endpoint);
        if telemetry.settings().is_none() || skipped(telemetry, endpoint, &route) {
            return Self::default();
        }
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
        let endpoint_trace_attributes = overrides
            .map(|o| o.traces_static_attributes.clone())
            .unwrap_or_default();
        let proxy_trace = (telemetry.tracer().is_some() && !proxy.disable_traces).then(|| {
            let mut attributes = vec![
                (
                    "http.request.method".to_owned(),
                    endpoint.method.to_string(),
                ),
                ("http.route".to_owned(), route.clone()),
            ];
            attributes.extend(proxy.traces_static_attributes.iter().cloned());
            attributes.push(("krakend.stage".to_owned(), "proxy".to_owned()));
            StageTrace::new(
                &route,
                SpanKind::Internal,
                &attributes,
                proxy.report_headers,
                proxy.skip_headers.clone(),
            )
        });
        Self {
            server: telemetry.route(&route, &endpoint_attributes, &endpoint_trace_attributes),
            proxy: if proxy.disable_metrics {
                None
            } else {
                telemetry.proxy_metrics(
                    endpoint.method.as_str(),
                    &route,
                    &proxy.metrics_static_attributes,
                )
            },
            proxy_trace,
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
        let route = sluice_telemetry::endpoint_route(&endpoint.endpoint);
        if telemetry.settings().is_none() || skipped(telemetry, endpoint, &route) {
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
        let tracing = telemetry.tracer().is_some();
        let t = &layer.traces;
        let trace_base = || {
            let mut attributes = vec![
                ("http.request.method".to_owned(), backend.method.to_string()),
                ("http.route".to_owned(), url_pattern.clone()),
                ("krakend.endpoint.route".to_owned(), endpoint_route.clone()),
                (
                    "krakend.endpoint.method".to_owned(),
                    endpoint.method.to_string(),
                ),
            ];
            attributes.extend(t.static_attributes.iter().cloned());
            attributes
        };
        let stage_trace = (tracing && !t.disable_stage).then(|| {
            let mut attributes = trace_base();
            attributes.push(("krakend.stage".to_owned(), "backend".to_owned()));
            StageTrace::new(
                &url_pattern,
                SpanKind::Internal,
                &attributes,
                t.report_headers,
                t.skip_headers.clone(),
            )
        });
        let round_trip_trace = (tracing && t.round_trip && plugin.is_none()).then(|| {
            let mut attributes = trace_base();
            attributes.push(("krakend.stage".to_owned(), "backend-request".to_owned()));
            StageTrace::new(
                &url_pattern,
                SpanKind::Client,
                &attributes,
                t.report_headers,
                t.skip_headers.clone(),
            )
        });
        let plugin_trace = plugin.filter(|_| tracing && !t.disable_stage).map(|p| {
            let mut attributes = trace_base();
            attributes.push(("sluice.plugin".to_owned(), p.name.clone()));
            attributes.push(("krakend.stage".to_owned(), "plugin".to_owned()));
            StageTrace::new(
                &format!("plugin {}", p.name),
                SpanKind::Internal,
                &attributes,
                false,
                Vec::new(),
            )
        });
        let propagate = tracing
            && !telemetry
                .settings()
                .is_some_and(|s| s.global.disable_propagation);
        if !telemetry.metrics_enabled() {
            return Self {
                stage_trace,
                round_trip_trace,
                plugin_trace,
                propagate,
                ..Self::default()
            };
        }
        Self {
            stage_trace,
            round_trip_trace,
            plugin_trace,
            propagate,
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
/// records a cancelled request. What the request is recorded under is read when it starts.
#[derive(Debug)]
pub(crate) struct RoundTripTimer<'a> {
    started: Option<Instant>,
    metrics: Option<(&'a RoundTripMetrics, RoundTripTarget, u64)>,
}

pub(crate) type ExecResult = Result<Result<BackendResponse, ExecError>, crate::backend::TimedOut>;

impl<'a> RoundTripTimer<'a> {
    pub(crate) fn start(
        metrics: Option<&'a RoundTripMetrics>,
        request: &BackendRequest,
        timed: bool,
    ) -> Self {
        let metrics = metrics.map(|m| {
            (
                m,
                m.target(&request.url, &request.method),
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

    /// Records the round trip; returns when it ended, when it was timed (the read of the
    /// body starts then).
    pub(crate) fn finish(mut self, result: &ExecResult) -> Option<Instant> {
        let ended = self.started.map(|_| Instant::now());
        let Some((m, target, size)) = self.metrics.take() else {
            return ended;
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
        let elapsed = match (self.started, ended) {
            (Some(started), Some(ended)) => ended.duration_since(started),
            _ => Duration::ZERO,
        };
        m.record_target(target, size, elapsed, end);
        ended
    }
}

impl Drop for RoundTripTimer<'_> {
    fn drop(&mut self) {
        if let Some((m, target, size)) = self.metrics.take() {
            let elapsed = self.elapsed();
            m.record_target(target, size, elapsed, RoundTripEnd::Canceled);
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

/// `sluice.plugin.outbound.*` of the plugin `backend` names (or of one plugin of its chain):
/// by the origins `extra` (that plugin's view of the `plugin/http-client` block) allows through
/// `allowed_hosts` (or the backend's own hosts).
pub(crate) fn outbound_metrics(
    telemetry: &Telemetry,
    endpoint: &Endpoint,
    backend: &sluice_config::Backend,
    plugin: &str,
    extra: &serde_json::Map<String, serde_json::Value>,
) -> Option<Arc<sluice_telemetry::OutboundMetrics>> {
    let route = sluice_telemetry::endpoint_route(&endpoint.endpoint);
    if !telemetry.metrics_enabled() || skipped(telemetry, endpoint, &route) {
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
    let origins = match sluice_plugin::AllowedHosts::from_extra(extra, &backend.host).ok()? {
        sluice_plugin::AllowedHosts::Any => Vec::new(),
        sluice_plugin::AllowedHosts::Only(list) => list.iter().map(ToString::to_string).collect(),
    };
    telemetry.outbound_metrics(plugin, &labels, origins)
}

/// `sluice.plugin.calls` of a hooks-mode plugin of `backend`'s chain (one per hook call; the
/// backend stage counts the whole call under the last plugin's name).
pub(crate) fn chain_link_metrics(
    telemetry: &Telemetry,
    endpoint: &Endpoint,
    backend: &sluice_config::Backend,
    plugin: &str,
) -> Option<Arc<PluginMetrics>> {
    let route = sluice_telemetry::endpoint_route(&endpoint.endpoint);
    if !telemetry.metrics_enabled() || skipped(telemetry, endpoint, &route) {
        return None;
    }
    let url_pattern = sluice_telemetry::backend_route(&backend.url_pattern);
    let labels = BackendLabels {
        method: backend.method.as_str(),
        url_pattern: &url_pattern,
        endpoint_route: &route,
        endpoint_method: endpoint.method.as_str(),
    };
    telemetry.plugin_metrics(plugin, &labels)
}
