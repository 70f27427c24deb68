//! The bridge between the config's `telemetry/opentelemetry` and [`sluice_telemetry`]: the
//! settings the composition root builds its [`Telemetry`] from, and what the server holds
//! per request (one call at the start of a request, one at its end).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::Method;
use sluice_config::Config;
use sluice_telemetry::{
    GlobalSettings, OtlpSettings, PrometheusSettings, RequestScope, ServerMetrics, Settings,
    Telemetry,
};

/// The telemetry settings `config` asks for (`None` without `telemetry/opentelemetry`).
pub fn settings(config: &Config) -> Option<Settings> {
    let otel = config.opentelemetry.as_ref()?;
    let global = &otel.layers.global;
    Some(Settings {
        service_name: otel.service_name.clone(),
        service_version: otel.service_version.clone(),
        deploy_env: otel.deploy_env.clone(),
        skip_paths: otel.skip_paths.clone(),
        trace_sample_rate: otel.trace_sample_rate,
        metric_reporting_period: otel.metric_reporting_period,
        global: GlobalSettings {
            disable_metrics: global.disable_metrics,
            disable_traces: global.disable_traces,
            disable_propagation: global.disable_propagation,
            report_headers: global.report_headers,
            skip_headers: global.skip_headers.clone(),
            metrics_static_attributes: global.metrics_static_attributes.clone(),
            traces_static_attributes: global.traces_static_attributes.clone(),
        },
        prometheus: otel
            .prometheus
            .iter()
            .map(|p| PrometheusSettings {
                name: p.name.clone(),
                addr: SocketAddr::new(p.listen_ip.unwrap_or(IpAddr::from([0, 0, 0, 0])), p.port),
                process_metrics: p.process_metrics,
                gateway_metrics: !p.disable_metrics,
            })
            .collect(),
        otlp: otel
            .otlp
            .iter()
            .map(|o| OtlpSettings {
                name: o.name.clone(),
                host: o.host.clone(),
                port: o.port,
                use_http: o.use_http,
                metrics: !o.disable_metrics,
                traces: !o.disable_traces,
                period: o.custom_metric_reporting_period,
            })
            .collect(),
    })
}

/// The telemetry `config` asks for (disabled without `telemetry/opentelemetry`).
pub fn from_config(config: &Config) -> Telemetry {
    settings(config).map_or_else(Telemetry::disabled, Telemetry::new)
}

/// What the server holds: the telemetry and the handle of answers no endpoint gave.
#[derive(Debug, Default)]
pub(crate) struct ServerTelemetry {
    pub(crate) telemetry: Telemetry,
    unrouted: Option<Arc<ServerMetrics>>,
    /// Backends get `X-Request-Id` only when the config asks for `telemetry/opentelemetry`
    /// (which sends `traceparent` too): otherwise, `telemetry/logging` included, backends see
    /// exactly KrakenD CE's headers (CE's own fixture configures logging and diffs them).
    forward_request_id: bool,
}

impl ServerTelemetry {
    pub(crate) fn new(telemetry: Telemetry, config: &Config) -> Self {
        Self {
            unrouted: telemetry.server_metrics(None, &Vec::new()),
            telemetry,
            forward_request_id: config.opentelemetry.is_some(),
        }
    }

    /// At the start of a request; `logged`: its access log line will be written (so it needs
    /// a request id even when backends get none).
    pub(crate) fn begin<B>(
        &self,
        request: &http::Request<B>,
        peer: SocketAddr,
        logged: bool,
    ) -> RequestScope {
        RequestScope::begin(
            &self.telemetry,
            request.method(),
            request.uri(),
            request.headers(),
            Some(peer.ip()),
            self.forward_request_id,
            logged,
        )
    }

    /// Whether request spans carry the answer's headers (`report_headers`).
    pub(crate) fn reports_headers(&self) -> bool {
        self.telemetry
            .settings()
            .is_some_and(|s| s.global.report_headers)
    }

    /// At its end: the status and the body size as far as known.
    pub(crate) fn end(
        &self,
        scope: &mut RequestScope,
        method: &Method,
        response: &http::Response<sluice_plugin::Body>,
    ) {
        let hint = hyper::body::Body::size_hint(response.body());
        let size = hint.exact().unwrap_or(hint.lower());
        scope.finish(
            method,
            response.status().as_u16(),
            size,
            response.headers(),
            &self.telemetry,
            self.unrouted.as_ref(),
        );
    }
}
