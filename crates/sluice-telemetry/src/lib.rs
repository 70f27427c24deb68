//! Sluice's telemetry, one layer for the whole gateway.
//!
//! [`Telemetry`] is built once from [`Settings`] (the composition root maps the config's
//! `telemetry/opentelemetry` onto them; this crate reads no config). The gateway asks it for
//! handles while it is built — one per route, per backend, per plugin — and each request only
//! updates the handles it holds: an atomic add per metric, no lookup by name, no lock.
//!
//! Metric names and attributes are krakend-otel's, written in Prometheus' text format as
//! OpenTelemetry's Prometheus exporter writes them ([`prometheus`]) and pushed over OTLP.
//! Labels come from the config (routes, url patterns, hosts, static attributes) or from small
//! closed sets (methods, status codes, outcomes), never from a raw request path.

mod exposition;
mod handles;
pub mod logging;
mod metrics;
mod otlp;
mod pb;
mod process;
pub mod prometheus;
mod request;
pub mod stdout;
pub mod trace;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use crate::exposition::prom_name;
pub use handles::{
    OutboundMetrics, PLUGIN_OUTCOMES, PluginMetrics, ReadMetrics, RoundTripEnd, RoundTripMetrics,
    RoundTripTarget, ServerMetrics, StageMetrics, StageOutcome,
};
pub use request::{REQUEST_ID_HEADER, RequestContext, RequestScope, RouteTelemetry, ipv4_text};
pub use trace::{
    AttrValue, SharedAttributes, Span, SpanKind, Status, Text, TraceParent, shared_attributes,
};

use crate::exposition::Resource;
use crate::handles::Groups;

/// The instrumentation scope every metric and span carries (krakend-otel's).
pub const SCOPE: &str = "io.krakend.krakend-otel";

/// A `(key, value)` attribute list from the config.
pub type Attributes = Vec<(String, String)>;

/// What the gateway's telemetry does, config-free.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `service.name`.
    pub service_name: String,
    /// `service.version`.
    pub service_version: String,
    /// `deployment.environment`, when set.
    pub deploy_env: String,
    /// Paths (exact request paths, or endpoint patterns) left uninstrumented.
    pub skip_paths: Vec<String>,
    /// Root spans sampled, from 0 to 1.
    pub trace_sample_rate: f64,
    /// Global layer options.
    pub global: GlobalSettings,
    /// Prometheus endpoints.
    pub prometheus: Vec<PrometheusSettings>,
    /// OTLP collectors.
    pub otlp: Vec<OtlpSettings>,
    /// How often OTLP metrics are pushed (each exporter may override it).
    pub metric_reporting_period: Duration,
}

/// `layers.global`.
#[derive(Debug, Clone, Default)]
pub struct GlobalSettings {
    /// No global layer metrics.
    pub disable_metrics: bool,
    /// No request span.
    pub disable_traces: bool,
    /// `traceparent` from clients ignored.
    pub disable_propagation: bool,
    /// Request and response headers as span attributes.
    pub report_headers: bool,
    /// Headers never reported (canonical or not; compared ignoring case).
    pub skip_headers: Vec<String>,
    /// Static metric attributes.
    pub metrics_static_attributes: Attributes,
    /// Static span attributes.
    pub traces_static_attributes: Attributes,
}

/// One Prometheus endpoint.
#[derive(Debug, Clone)]
pub struct PrometheusSettings {
    /// The exporter's name.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// `process_*` metrics.
    pub process_metrics: bool,
    /// Whether it serves the gateway's metrics (`disable_metrics` turns them off).
    pub gateway_metrics: bool,
}

/// One OTLP collector.
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    /// The exporter's name.
    pub name: String,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// HTTP/protobuf instead of gRPC.
    pub use_http: bool,
    /// Metrics pushed.
    pub metrics: bool,
    /// Spans sent.
    pub traces: bool,
    /// The push period of this exporter, when it has its own.
    pub period: Option<Duration>,
}

/// Metrics that are read when they are exported rather than counted by the gateway (a
/// plugin host's instance pool, say): registered once, asked at each export.
pub trait Collector: Send + Sync + std::fmt::Debug {
    /// The families as they are now.
    fn collect(&self) -> Vec<Family>;
}

/// One metric family a [`Collector`] reports.
#[derive(Debug, Clone)]
pub struct Family {
    /// OpenTelemetry-style name (`sluice.plugin.instances`); exported as Prometheus does
    /// (`_total` added to counters).
    pub name: String,
    /// Description.
    pub help: String,
    /// A monotonic counter, or a gauge.
    pub counter: bool,
    /// `(labels, value)` per series.
    pub samples: Vec<(Attributes, f64)>,
}

/// The gateway's telemetry: cheap to clone, shared by every handle.
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    inner: Option<Arc<Inner>>,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    /// Some exporter reports metrics.
    metrics: bool,
    groups: Groups,
    resource: Resource,
    collectors: Mutex<Vec<Arc<dyn Collector>>>,
    /// Some exporter takes spans.
    tracer: Option<Arc<trace::Tracer>>,
    /// `layers.global.traces_static_attributes`, shared by every request span.
    global_trace_attributes: trace::SharedAttributes,
    /// When the metrics started (OTLP cumulative start time).
    started: u64,
}

impl Telemetry {
    /// No telemetry at all: every handle is absent and costs nothing.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Telemetry as `settings` describe it (nothing starts until [`Telemetry::start`]).
    pub fn new(settings: Settings) -> Self {
        let metrics = settings.prometheus.iter().any(|p| p.gateway_metrics)
            || settings.otlp.iter().any(|o| o.metrics);
        let tracer = settings
            .otlp
            .iter()
            .any(|o| o.traces)
            .then(|| Arc::new(trace::Tracer::new(settings.trace_sample_rate)));
        let mut target_info = vec![
            ("service.name".to_owned(), settings.service_name.clone()),
            (
                "service.version".to_owned(),
                settings.service_version.clone(),
            ),
            ("telemetry.sdk.language".to_owned(), "rust".to_owned()),
            ("telemetry.sdk.name".to_owned(), "sluice".to_owned()),
            (
                "telemetry.sdk.version".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            ),
        ];
        if !settings.deploy_env.is_empty() {
            target_info.push((
                "deployment.environment".to_owned(),
                settings.deploy_env.clone(),
            ));
        }
        target_info.sort();
        Self {
            inner: Some(Arc::new(Inner {
                metrics,
                groups: Groups::new(),
                resource: Resource {
                    target_info,
                    scope: SCOPE.to_owned(),
                },
                collectors: Mutex::new(Vec::new()),
                tracer,
                global_trace_attributes: trace::shared_attributes(
                    &settings.global.traces_static_attributes,
                ),
                started: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0)),
                settings,
            })),
        }
    }

    /// The settings, when telemetry is on.
    pub fn settings(&self) -> Option<&Settings> {
        self.inner.as_deref().map(|i| &i.settings)
    }

    /// The tracer, when some exporter takes spans.
    pub fn tracer(&self) -> Option<&Arc<trace::Tracer>> {
        self.inner.as_deref().and_then(|i| i.tracer.as_ref())
    }

    /// The global layer's static span attributes, when telemetry is on.
    pub(crate) fn global_trace_attributes(&self) -> Option<&trace::SharedAttributes> {
        self.inner.as_deref().map(|i| &i.global_trace_attributes)
    }

    /// Whether any metric is recorded.
    pub fn metrics_enabled(&self) -> bool {
        self.inner.as_deref().is_some_and(|i| i.metrics)
    }

    /// Whether `path` (a request path or an endpoint pattern) is left uninstrumented.
    pub fn skips(&self, path: &str) -> bool {
        self.inner
            .as_deref()
            .is_none_or(|i| i.settings.skip_paths.iter().any(|p| p == path))
    }

    fn metrics_inner(&self) -> Option<&Inner> {
        self.inner.as_deref().filter(|i| i.metrics)
    }

    /// Registers a [`Collector`], asked at each scrape.
    pub fn register_collector(&self, collector: Arc<dyn Collector>) {
        if let Some(inner) = self.metrics_inner() {
            inner
                .collectors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(collector);
        }
    }

    /// Replaces `old` by `new` (a reload's new plugin host reports from now on; the old one is
    /// not kept alive by the telemetry). `new` is added when `old` is absent or `None`.
    pub fn replace_collector(&self, old: Option<&Arc<dyn Collector>>, new: Arc<dyn Collector>) {
        if let Some(inner) = self.metrics_inner() {
            let mut collectors = inner.collectors.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(old) = old {
                collectors.retain(|c| !Arc::ptr_eq(c, old));
            }
            collectors.push(new);
        }
    }

    /// Global layer metrics of an endpoint (`route` in krakend-otel's `:param` form, see
    /// [`endpoint_route`]), or of answers no endpoint gave (`None`). Absent when off.
    pub fn server_metrics(
        &self,
        route: Option<&str>,
        endpoint_attributes: &Attributes,
    ) -> Option<Arc<ServerMetrics>> {
        let inner = self.metrics_inner()?;
        if inner.settings.global.disable_metrics {
            return None;
        }
        let mut statics = inner.settings.global.metrics_static_attributes.clone();
        statics.extend(endpoint_attributes.iter().cloned());
        Some(Arc::new(ServerMetrics::new(
            &inner.groups.server,
            route.map(str::to_owned),
            statics,
        )))
    }

    /// The global layer of an endpoint: its metrics (see [`Telemetry::server_metrics`]) and
    /// what its request spans carry. `None` when telemetry is off or the endpoint is skipped.
    pub fn route(
        &self,
        route: &str,
        metrics_attributes: &Attributes,
        trace_attributes: &Attributes,
    ) -> Option<Arc<RouteTelemetry>> {
        let inner = self.inner.as_deref()?;
        if inner.settings.skip_paths.iter().any(|p| p == route) {
            return None;
        }
        Some(Arc::new(RouteTelemetry {
            metrics: self.server_metrics(Some(route), metrics_attributes),
            route: Arc::from(route),
            trace_attributes: trace::shared_attributes(trace_attributes),
        }))
    }

    /// `krakend.proxy.duration` of an endpoint.
    pub fn proxy_metrics(
        &self,
        method: &str,
        route: &str,
        statics: &Attributes,
    ) -> Option<Arc<StageMetrics>> {
        let inner = self.metrics_inner()?;
        let mut base = vec![
            ("http.request.method".to_owned(), method.to_owned()),
            ("http.route".to_owned(), route.to_owned()),
        ];
        base.extend(statics.iter().cloned());
        Some(Arc::new(StageMetrics::new(&inner.groups.proxy, base)))
    }

    /// The labels krakend-otel puts on every backend metric.
    fn backend_base(labels: &BackendLabels<'_>, statics: &Attributes) -> Vec<(String, String)> {
        let mut base = vec![
            ("http.request.method".to_owned(), labels.method.to_owned()),
            ("http.route".to_owned(), labels.url_pattern.to_owned()),
            (
                "krakend.endpoint.route".to_owned(),
                labels.endpoint_route.to_owned(),
            ),
            (
                "krakend.endpoint.method".to_owned(),
                labels.endpoint_method.to_owned(),
            ),
        ];
        base.extend(statics.iter().cloned());
        base
    }

    /// `krakend.backend.duration` of a backend.
    pub fn backend_metrics(
        &self,
        labels: &BackendLabels<'_>,
        statics: &Attributes,
    ) -> Option<Arc<StageMetrics>> {
        let inner = self.metrics_inner()?;
        Some(Arc::new(StageMetrics::new(
            &inner.groups.backend,
            Self::backend_base(labels, statics),
        )))
    }

    /// The `http.client.*` round-trip metrics of a backend; `hosts` are its configured hosts.
    pub fn round_trip_metrics(
        &self,
        labels: &BackendLabels<'_>,
        statics: &Attributes,
        hosts: &[String],
    ) -> Option<Arc<RoundTripMetrics>> {
        let inner = self.metrics_inner()?;
        let mut base = Self::backend_base(labels, statics);
        base.push(("clientname".to_owned(), labels.url_pattern.to_owned()));
        let hosts = hosts
            .iter()
            .filter_map(|h| {
                let uri: http::Uri = h.parse().ok()?;
                let port = uri
                    .port_u16()
                    .unwrap_or(if uri.scheme_str() == Some("https") {
                        443
                    } else {
                        80
                    });
                Some(handles::RoundTripHost {
                    address: uri.host()?.to_ascii_lowercase(),
                    port,
                    authority: uri.authority()?.as_str().to_owned(),
                })
            })
            .collect();
        Some(Arc::new(RoundTripMetrics::new(
            &inner.groups.round_trip,
            base,
            hosts,
        )))
    }

    /// The `http.client.response.read.*` metrics of a backend.
    pub fn read_metrics(
        &self,
        labels: &BackendLabels<'_>,
        statics: &Attributes,
    ) -> Option<Arc<ReadMetrics>> {
        let inner = self.metrics_inner()?;
        Some(Arc::new(ReadMetrics::new(
            &inner.groups,
            Self::backend_base(labels, statics),
        )))
    }

    /// `sluice.plugin.calls` of the plugin a backend names.
    pub fn plugin_metrics(
        &self,
        plugin: &str,
        labels: &BackendLabels<'_>,
    ) -> Option<Arc<PluginMetrics>> {
        let inner = self.metrics_inner()?;
        let mut base = Self::backend_base(labels, &Vec::new());
        base.push(("sluice.plugin".to_owned(), plugin.to_owned()));
        Some(Arc::new(PluginMetrics::new(&inner.groups.plugin, base)))
    }

    /// `sluice.plugin.outbound.*` of the plugin a backend names; `origins` are the origins its
    /// config allows (empty when it may call anywhere).
    pub fn outbound_metrics(
        &self,
        plugin: &str,
        labels: &BackendLabels<'_>,
        origins: Vec<String>,
    ) -> Option<Arc<OutboundMetrics>> {
        let inner = self.metrics_inner()?;
        let base = vec![
            ("sluice.plugin".to_owned(), plugin.to_owned()),
            (
                "krakend.endpoint.route".to_owned(),
                labels.endpoint_route.to_owned(),
            ),
            (
                "krakend.endpoint.method".to_owned(),
                labels.endpoint_method.to_owned(),
            ),
            ("http.route".to_owned(), labels.url_pattern.to_owned()),
        ];
        Some(Arc::new(OutboundMetrics::new(
            &inner.groups.outbound,
            base,
            origins,
        )))
    }

    /// Everything in Prometheus' text format: the gateway's metrics (when `gateway`), the
    /// collectors' and the process' (when `process`).
    pub fn render(&self, gateway: bool, process: bool) -> String {
        let mut out = String::new();
        if let Some(inner) = self.inner.as_deref() {
            if gateway && inner.metrics {
                exposition::write(&mut out, &inner.resource, &inner.groups.all());
                let collectors = inner
                    .collectors
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                for c in collectors {
                    exposition::write_families(&mut out, &c.collect());
                }
            }
            if process {
                process::write(&mut out);
            }
        }
        out
    }

    /// The metrics as an OTLP `ExportMetricsServiceRequest`.
    fn otlp_metrics(&self) -> Option<Vec<u8>> {
        let inner = self.metrics_inner()?;
        let families: Vec<Family> = inner
            .collectors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .iter()
            .flat_map(|c| c.collect())
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0));
        Some(otlp::encode_metrics(
            &inner.resource.target_info,
            &inner.groups.all(),
            &families,
            inner.started,
            now,
        ))
    }

    /// Starts the exporters (binds the Prometheus endpoints, spawns the OTLP pushers).
    ///
    /// # Errors
    /// When an endpoint cannot listen: the exporter's name, its address and why.
    pub async fn start(&self) -> Result<Exporters, String> {
        let mut exporters = Exporters::default();
        let Some(inner) = self.inner.as_deref() else {
            return Ok(exporters);
        };
        for p in &inner.settings.prometheus {
            let server = prometheus::serve(self.clone(), p).await?;
            exporters.prometheus.push(server);
        }
        let collectors: Vec<Arc<otlp::Collector>> = inner
            .settings
            .otlp
            .iter()
            .map(|o| Arc::new(otlp::Collector::new(o.clone())))
            .collect();
        let resource = inner.resource.target_info.clone();
        if let Some(tracer) = &inner.tracer {
            exporters.tasks.push(tokio::spawn(otlp::export_spans(
                Arc::clone(tracer),
                collectors.clone(),
                resource.clone(),
            )));
        }
        for c in collectors.iter().filter(|c| c.metrics()) {
            let period = c.period().unwrap_or(inner.settings.metric_reporting_period);
            let telemetry = self.clone();
            let c = Arc::clone(c);
            exporters.tasks.push(tokio::spawn(async move {
                let mut ticker = tokio::time::interval(period.max(Duration::from_secs(1)));
                ticker.tick().await;
                loop {
                    ticker.tick().await;
                    if let Some(message) = telemetry.otlp_metrics() {
                        c.send(false, message.into()).await;
                    }
                }
            }));
        }
        exporters.flush = inner
            .tracer
            .as_ref()
            .map(|t| (Arc::clone(t), collectors, resource));
        Ok(exporters)
    }
}

/// What names a backend in its metrics (krakend-otel's attributes).
#[derive(Debug, Clone, Copy)]
pub struct BackendLabels<'a> {
    /// The backend's method.
    pub method: &'a str,
    /// The backend's url_pattern, `:param` form.
    pub url_pattern: &'a str,
    /// The endpoint's pattern, `:param` form.
    pub endpoint_route: &'a str,
    /// The endpoint's method.
    pub endpoint_method: &'a str,
}

/// The running exporters; dropping them stops them.
#[derive(Debug, Default)]
pub struct Exporters {
    prometheus: Vec<prometheus::Server>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// What a last flush of spans needs.
    #[allow(clippy::type_complexity)]
    flush: Option<(
        Arc<trace::Tracer>,
        Vec<Arc<otlp::Collector>>,
        Vec<(String, String)>,
    )>,
}

impl Drop for Exporters {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Exporters {
    /// Where each Prometheus endpoint listens, by exporter name.
    pub fn prometheus_addrs(&self) -> Vec<(String, SocketAddr)> {
        self.prometheus
            .iter()
            .map(|s| (s.name.clone(), s.addr))
            .collect()
    }

    /// Stops them, sending the spans still queued (within the send timeout).
    pub async fn shutdown(mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some((tracer, collectors, resource)) = self.flush.take() {
            otlp::flush(&tracer, &collectors, &resource).await;
        }
    }
}

/// An endpoint's route as krakend-otel reports it (Lura's router form): `{param}` becomes
/// `:param`.
pub fn endpoint_route(pattern: &str) -> String {
    normalise(pattern, false)
}

/// A backend's url_pattern as krakend-otel reports it: `{param}` becomes `:param`, lower case
/// (Lura keeps it as `{{.Param}}`, which krakend-otel lower-cases).
pub fn backend_route(pattern: &str) -> String {
    normalise(pattern, true)
}

fn normalise(pattern: &str, lower: bool) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find('}') else {
            out.push_str(after);
            return out;
        };
        let inner = after[1..end].trim_start_matches('{');
        let inner = inner.trim_start_matches('.');
        out.push(':');
        if lower {
            out.push_str(&inner.to_ascii_lowercase());
        } else {
            out.push_str(inner);
        }
        rest = after[end..].trim_start_matches('}');
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(endpoint_route("/a/{userId}/b"), "/a/:userId/b");
        assert_eq!(backend_route("/a/{userId}"), "/a/:userid");
        assert_eq!(backend_route("/a/{{.Id}}"), "/a/:id");
        assert_eq!(endpoint_route("/plain"), "/plain");
    }
}
