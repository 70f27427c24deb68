//! `telemetry/opentelemetry` (krakend-otel's schema) and `telemetry/logging`
//! (krakend-gologging's), read for real: every field is honoured or refused at its JSON path.

use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;

use crate::extra::Block;
use crate::read::{Obj, Reader, index_path, kind, quote};

/// Paths krakend-otel skips when `skip_paths` is empty.
pub const DEFAULT_SKIP_PATHS: [&str; 4] = ["/__health", "/__debug/", "/__echo/", "/__stats/"];

/// `extra_config."telemetry/opentelemetry"` of the service, defaults applied as krakend-otel's
/// `UnsetFieldsToDefaults`.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenTelemetry {
    /// JSON path of the block, for messages.
    pub json_path: String,
    /// `service_name`, default the config's `name`, else `KrakenD`.
    pub service_name: String,
    /// `service_version`.
    pub service_version: String,
    /// `deploy_env` (`deployment.environment` resource attribute).
    pub deploy_env: String,
    /// `skip_paths` (exact paths and endpoint patterns left uninstrumented); an empty list in
    /// the file means [`DEFAULT_SKIP_PATHS`], a list holding only `""` means none.
    pub skip_paths: Vec<String>,
    /// `metric_reporting_period` (seconds, default 30): the OTLP push period.
    pub metric_reporting_period: Duration,
    /// `trace_sample_rate` from 0 to 1 (default 1).
    pub trace_sample_rate: f64,
    /// `exporters.prometheus`.
    pub prometheus: Vec<PrometheusExporter>,
    /// `exporters.otlp`.
    pub otlp: Vec<OtlpExporter>,
    /// `layers`.
    pub layers: Layers,
}

/// One `exporters.prometheus[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusExporter {
    /// `name` (unique among the exporters).
    pub name: String,
    /// `port`, default 9090.
    pub port: u16,
    /// `listen_ip` (or krakend-otel's `host`); all interfaces when absent.
    pub listen_ip: Option<IpAddr>,
    /// `process_metrics`: the `process_*` metrics.
    pub process_metrics: bool,
    /// `go_metrics`: accepted and ignored (there is no Go runtime to report on).
    pub go_metrics: bool,
    /// `disable_metrics`: the endpoint serves no gateway metrics.
    pub disable_metrics: bool,
}

/// One `exporters.otlp[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpExporter {
    /// `name` (unique among the exporters).
    pub name: String,
    /// `host` without its `http://` prefix, default `localhost`.
    pub host: String,
    /// `port`, default 4317.
    pub port: u16,
    /// `use_http`: OTLP over HTTP/protobuf instead of gRPC.
    pub use_http: bool,
    /// `disable_metrics`.
    pub disable_metrics: bool,
    /// `disable_traces`.
    pub disable_traces: bool,
    /// `custom_metric_reporting_period` (seconds; under 1 means the service's period).
    pub custom_metric_reporting_period: Option<Duration>,
}

/// `layers`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layers {
    /// `layers.global`.
    pub global: GlobalLayer,
    /// `layers.proxy`.
    pub proxy: ProxyLayer,
    /// `layers.backend`.
    pub backend: BackendLayer,
}

/// A `{"key": ..., "value": ...}` list (`static_attributes` and friends).
pub type Attributes = Vec<(String, String)>;

/// `layers.global`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GlobalLayer {
    /// `disable_metrics`.
    pub disable_metrics: bool,
    /// `disable_traces`.
    pub disable_traces: bool,
    /// `disable_propagation`: no `traceparent` read from clients.
    pub disable_propagation: bool,
    /// `report_headers`: request and response headers as span attributes.
    pub report_headers: bool,
    /// `skip_headers`: headers never reported.
    pub skip_headers: Vec<String>,
    /// `metrics_static_attributes`.
    pub metrics_static_attributes: Attributes,
    /// `traces_static_attributes`.
    pub traces_static_attributes: Attributes,
}

/// `layers.proxy`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProxyLayer {
    /// `disable_metrics`.
    pub disable_metrics: bool,
    /// `disable_traces`.
    pub disable_traces: bool,
    /// `report_headers`.
    pub report_headers: bool,
    /// `skip_headers`.
    pub skip_headers: Vec<String>,
    /// `metrics_static_attributes`.
    pub metrics_static_attributes: Attributes,
    /// `traces_static_attributes`.
    pub traces_static_attributes: Attributes,
}

/// `layers.backend`.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendLayer {
    /// `metrics`.
    pub metrics: BackendMetrics,
    /// `traces`.
    pub traces: BackendTraces,
}

/// `layers.backend.metrics`. When the block is absent, `round_trip` and `read_payload` are on
/// (krakend-otel's defaults); when present, every switch not written is off (Go's zero values).
#[derive(Debug, Clone, PartialEq)]
pub struct BackendMetrics {
    /// `disable_stage`: no `krakend.backend.duration`.
    pub disable_stage: bool,
    /// `round_trip`: the `http.client.*` metrics.
    pub round_trip: bool,
    /// `read_payload`: the `http.client.response.read.*` metrics.
    pub read_payload: bool,
    /// `static_attributes`.
    pub static_attributes: Attributes,
}

/// `layers.backend.traces`, with the same defaults rule as [`BackendMetrics`].
#[derive(Debug, Clone, PartialEq)]
pub struct BackendTraces {
    /// `disable_stage`: no backend span.
    pub disable_stage: bool,
    /// `round_trip`: a client span for the request itself.
    pub round_trip: bool,
    /// `read_payload`: a span for reading the response body.
    pub read_payload: bool,
    /// `static_attributes`.
    pub static_attributes: Attributes,
    /// `report_headers`.
    pub report_headers: bool,
    /// `skip_headers`.
    pub skip_headers: Vec<String>,
}

impl Default for BackendLayer {
    fn default() -> Self {
        Self {
            metrics: BackendMetrics {
                disable_stage: false,
                round_trip: true,
                read_payload: true,
                static_attributes: Vec::new(),
            },
            traces: BackendTraces {
                disable_stage: false,
                round_trip: true,
                read_payload: true,
                static_attributes: Vec::new(),
                report_headers: false,
                skip_headers: Vec::new(),
            },
        }
    }
}

/// `telemetry/opentelemetry` of an endpoint: krakend-otel reads its `proxy` layer (replacing
/// the service's whole) and the static attributes of its `global` layer.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EndpointTelemetry {
    /// `proxy`, replacing the service's `layers.proxy` for this endpoint.
    pub proxy: Option<ProxyLayer>,
    /// `global.metrics_static_attributes`.
    pub metrics_static_attributes: Attributes,
    /// `global.traces_static_attributes`.
    pub traces_static_attributes: Attributes,
}

/// `extra_config."telemetry/logging"` of the service (krakend-gologging).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logging {
    /// `level`.
    pub level: LogLevel,
    /// `prefix`, written before each line (`module` in the logstash format).
    pub prefix: String,
    /// `stdout`.
    pub stdout: bool,
    /// `syslog`: the local syslog (`/dev/log`).
    pub syslog: bool,
    /// `syslog_facility`, default `local3` as krakend-gologging.
    pub syslog_facility: u8,
    /// `format`.
    pub format: LogFormat,
}

/// `telemetry/logging.level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// `DEBUG`.
    Debug,
    /// `INFO`.
    Info,
    /// `WARNING`.
    Warning,
    /// `ERROR`.
    Error,
    /// `CRITICAL`.
    Critical,
}

/// `telemetry/logging.format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFormat {
    /// `default`: `<prefix> <time> ▶ <LEVEL> <message>`.
    Default,
    /// `logstash`: one JSON object per line.
    Logstash,
    /// `custom` with its `custom_format` pattern (`%{time}`, `%{level}`, `%{message}`, ...).
    Custom(String),
}

const LEVELS: &[(&str, LogLevel)] = &[
    ("DEBUG", LogLevel::Debug),
    ("INFO", LogLevel::Info),
    ("WARNING", LogLevel::Warning),
    ("ERROR", LogLevel::Error),
    ("CRITICAL", LogLevel::Critical),
];

/// The `custom_format` verbs Sluice writes.
pub const CUSTOM_FORMAT_VERBS: [&str; 7] =
    ["time", "level", "message", "module", "pid", "program", "id"];

/// `telemetry/logging` of the service.
pub(crate) fn logging(r: &mut Reader<'_>, block: Option<&Block<'_>>) -> Option<Logging> {
    let block = block?;
    let o = r.as_object(block.value, block.path.clone())?;
    r.known_keys(
        &o,
        &[
            "level",
            "prefix",
            "stdout",
            "syslog",
            "syslog_facility",
            "format",
            "custom_format",
        ],
    );
    if o.get("level").is_none() {
        r.error(
            o.path_of("level"),
            "missing: expected one of \"DEBUG\", \"INFO\", \"WARNING\", \"ERROR\", \"CRITICAL\"",
        );
    }
    let level = r.choice(&o, "level", LEVELS).unwrap_or(LogLevel::Info);
    let facility = match r.string(&o, "syslog_facility") {
        None => 19,
        Some(name) => match name
            .strip_prefix("local")
            .and_then(|n| n.parse::<u8>().ok())
            .filter(|n| *n <= 7)
        {
            Some(n) => 16 + n,
            None => {
                r.error(
                    o.path_of("syslog_facility"),
                    format!("expected \"local0\" to \"local7\", found {}", quote(&name)),
                );
                19
            }
        },
    };
    let format = match r.choice(
        &o,
        "format",
        &[("default", 0u8), ("logstash", 1u8), ("custom", 2u8)],
    ) {
        Some(1) => LogFormat::Logstash,
        Some(2) => match r.string(&o, "custom_format").filter(|f| !f.is_empty()) {
            Some(pattern) => {
                check_custom_format(r, &o.path_of("custom_format"), &pattern);
                LogFormat::Custom(pattern)
            }
            None => {
                r.error(
                    o.path_of("custom_format"),
                    "missing: \"format\": \"custom\" needs a pattern such as \"%{time} %{level} %{message}\"",
                );
                LogFormat::Default
            }
        },
        _ => {
            if o.get("custom_format").is_some() {
                r.error(
                    o.path_of("custom_format"),
                    "read only with \"format\": \"custom\"; here it would be ignored",
                );
            }
            LogFormat::Default
        }
    };
    Some(Logging {
        level,
        prefix: r.string(&o, "prefix").unwrap_or_default(),
        stdout: r.bool(&o, "stdout"),
        syslog: r.bool(&o, "syslog"),
        syslog_facility: facility,
        format,
    })
}

/// Refuses the go-logging verbs Sluice does not write.
fn check_custom_format(r: &mut Reader<'_>, path: &str, pattern: &str) {
    let mut rest = pattern;
    while let Some(start) = rest.find("%{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            r.error(path, "an unclosed %{ in the pattern");
            return;
        };
        let verb = &after[..end];
        let name = verb.split(':').next().unwrap_or(verb);
        if !CUSTOM_FORMAT_VERBS.contains(&name) {
            r.error(
                path,
                format!(
                    "%{{{verb}}} is not a verb Sluice writes; expected one of {}",
                    CUSTOM_FORMAT_VERBS
                        .iter()
                        .map(|v| format!("%{{{v}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        rest = &after[end + 1..];
    }
}

/// `telemetry/opentelemetry` of the service.
pub(crate) fn opentelemetry(
    r: &mut Reader<'_>,
    block: Option<&Block<'_>>,
    config_name: &str,
) -> Option<OpenTelemetry> {
    let block = block?;
    let o = r.as_object(block.value, block.path.clone())?;
    r.known_keys(
        &o,
        &[
            "service_name",
            "service_version",
            "deploy_env",
            "skip_paths",
            "metric_reporting_period",
            "trace_sample_rate",
            "exporters",
            "layers",
        ],
    );
    let service_name = r
        .string(&o, "service_name")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            if config_name.is_empty() {
                "KrakenD".to_owned()
            } else {
                config_name.to_owned()
            }
        });
    let skip_paths = match r.strings(&o, "skip_paths") {
        None => DEFAULT_SKIP_PATHS.map(str::to_owned).to_vec(),
        Some(list) if list.is_empty() => DEFAULT_SKIP_PATHS.map(str::to_owned).to_vec(),
        Some(list) => list.into_iter().filter(|p| !p.is_empty()).collect(),
    };
    let period = r
        .uint::<u64>(
            &o,
            "metric_reporting_period",
            "a whole number of seconds, at least 1",
        )
        .unwrap_or(30);
    if period == 0 {
        r.error(
            o.path_of("metric_reporting_period"),
            "expected a whole number of seconds, at least 1, found 0",
        );
    }
    let trace_sample_rate = match o.get("trace_sample_rate") {
        None => 1.0,
        Some(v) => match v.as_f64().filter(|f| (0.0..=1.0).contains(f)) {
            Some(rate) => rate,
            None => {
                r.error(
                    o.path_of("trace_sample_rate"),
                    format!("expected a number from 0 to 1, found {}", shown(v)),
                );
                1.0
            }
        },
    };
    let (prometheus, otlp) = match r.object(&o, "exporters") {
        Some(e) => exporters(r, &e),
        None => (Vec::new(), Vec::new()),
    };
    let layers = match r.object(&o, "layers") {
        None => Layers::default(),
        Some(l) => {
            r.known_keys(&l, &["global", "proxy", "backend"]);
            Layers {
                global: r
                    .object(&l, "global")
                    .map(|g| global_layer(r, &g))
                    .unwrap_or_default(),
                proxy: r
                    .object(&l, "proxy")
                    .map(|p| proxy_layer(r, &p))
                    .unwrap_or_default(),
                backend: r
                    .object(&l, "backend")
                    .map(|b| backend_layer(r, &b))
                    .unwrap_or_default(),
            }
        }
    };
    Some(OpenTelemetry {
        json_path: block.path.clone(),
        service_name,
        service_version: r.string(&o, "service_version").unwrap_or_default(),
        deploy_env: r.string(&o, "deploy_env").unwrap_or_default(),
        skip_paths,
        metric_reporting_period: Duration::from_secs(period.max(1)),
        trace_sample_rate,
        prometheus,
        otlp,
        layers,
    })
}

/// `telemetry/opentelemetry` of an endpoint: `proxy`, and `global`'s static attributes.
pub(crate) fn endpoint_telemetry(
    r: &mut Reader<'_>,
    block: Option<&Block<'_>>,
) -> Option<EndpointTelemetry> {
    let block = block?;
    let o = r.as_object(block.value, block.path.clone())?;
    for key in o.map.keys() {
        match key.as_str() {
            "proxy" | "global" => {}
            "backend" => r.error(
                o.path_of(key),
                "krakend-otel reads the backend layer from each backend's own \
                 \"telemetry/opentelemetry\", not the endpoint's; move it there",
            ),
            _ => {}
        }
    }
    r.known_keys(&o, &["proxy", "global", "backend"]);
    let mut endpoint = EndpointTelemetry {
        proxy: r.object(&o, "proxy").map(|p| proxy_layer(r, &p)),
        ..EndpointTelemetry::default()
    };
    if let Some(g) = r.object(&o, "global") {
        r.known_keys(
            &g,
            &["metrics_static_attributes", "traces_static_attributes"],
        );
        endpoint.metrics_static_attributes = attributes(r, &g, "metrics_static_attributes");
        endpoint.traces_static_attributes = attributes(r, &g, "traces_static_attributes");
    }
    Some(endpoint)
}

/// `telemetry/opentelemetry` of a backend: its `backend` layer, replacing the service's.
pub(crate) fn backend_telemetry(
    r: &mut Reader<'_>,
    block: Option<&Block<'_>>,
) -> Option<BackendLayer> {
    let block = block?;
    let o = r.as_object(block.value, block.path.clone())?;
    r.known_keys(&o, &["backend"]);
    r.object(&o, "backend").map(|b| backend_layer(r, &b))
}

fn exporters(r: &mut Reader<'_>, e: &Obj<'_>) -> (Vec<PrometheusExporter>, Vec<OtlpExporter>) {
    r.known_keys(e, &["prometheus", "otlp"]);
    let mut names: Vec<String> = Vec::new();
    let mut unique = |r: &mut Reader<'_>, o: &Obj<'_>| -> String {
        let name = r.string(o, "name").unwrap_or_default();
        if name.is_empty() {
            r.error(o.path_of("name"), "missing: every exporter needs a name");
        } else if names.contains(&name) {
            r.error(
                o.path_of("name"),
                format!("two exporters are named {}", quote(&name)),
            );
        } else {
            names.push(name.clone());
        }
        name
    };
    let mut prometheus = Vec::new();
    let path = e.path_of("prometheus");
    for (i, item) in r
        .array(e, "prometheus")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let Some(o) = r.as_object(item, index_path(&path, i)) else {
            continue;
        };
        r.known_keys(
            &o,
            &[
                "name",
                "port",
                "listen_ip",
                "host",
                "process_metrics",
                "go_metrics",
                "disable_metrics",
            ],
        );
        let name = unique(r, &o);
        if o.get("listen_ip").is_some() && o.get("host").is_some() {
            r.error(
                o.path_of("host"),
                "\"host\" and \"listen_ip\" both name the listening address; keep one",
            );
        }
        let key = if o.get("host").is_some() {
            "host"
        } else {
            "listen_ip"
        };
        let listen_ip = match r.string(&o, key).filter(|s| !s.is_empty()) {
            None => None,
            Some(ip) => match ip.parse() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    r.error(
                        o.path_of(key),
                        format!("expected an IP address to listen on, found {}", quote(&ip)),
                    );
                    None
                }
            },
        };
        prometheus.push(PrometheusExporter {
            name,
            port: port(r, &o, 9090),
            listen_ip,
            process_metrics: r.bool(&o, "process_metrics"),
            go_metrics: r.bool(&o, "go_metrics"),
            disable_metrics: r.bool(&o, "disable_metrics"),
        });
    }
    let mut otlp = Vec::new();
    let path = e.path_of("otlp");
    for (i, item) in r.array(e, "otlp").unwrap_or_default().iter().enumerate() {
        let Some(o) = r.as_object(item, index_path(&path, i)) else {
            continue;
        };
        r.known_keys(
            &o,
            &[
                "name",
                "host",
                "port",
                "use_http",
                "disable_metrics",
                "disable_traces",
                "custom_metric_reporting_period",
            ],
        );
        let name = unique(r, &o);
        let written = r.string(&o, "host").filter(|h| !h.is_empty());
        let host = match written {
            None => "localhost".to_owned(),
            Some(h) if h.starts_with("https://") => {
                r.error(
                    o.path_of("host"),
                    "OTLP over TLS (https://) is not implemented by Sluice; send to a local \
                     collector over plain http:// or a bare host name",
                );
                h
            }
            Some(h) => {
                let bare = h.strip_prefix("http://").unwrap_or(&h);
                let bare = bare.trim_end_matches('/');
                if bare.is_empty() || bare.contains(['/', '?', '#', '@']) {
                    r.error(
                        o.path_of("host"),
                        format!("expected a host name or address, found {}", quote(&h)),
                    );
                }
                bare.to_owned()
            }
        };
        let custom = r
            .uint::<u64>(
                &o,
                "custom_metric_reporting_period",
                "a whole number of seconds",
            )
            .filter(|s| *s >= 1)
            .map(Duration::from_secs);
        otlp.push(OtlpExporter {
            name,
            host,
            port: port(r, &o, 4317),
            use_http: r.bool(&o, "use_http"),
            disable_metrics: r.bool(&o, "disable_metrics"),
            disable_traces: r.bool(&o, "disable_traces"),
            custom_metric_reporting_period: custom,
        });
    }
    (prometheus, otlp)
}

fn port(r: &mut Reader<'_>, o: &Obj<'_>, default: u16) -> u16 {
    match r.uint::<u16>(o, "port", "a port number from 1 to 65535") {
        None | Some(0) => default,
        Some(p) => p,
    }
}

fn global_layer(r: &mut Reader<'_>, g: &Obj<'_>) -> GlobalLayer {
    r.known_keys(
        g,
        &[
            "disable_metrics",
            "disable_traces",
            "disable_propagation",
            "report_headers",
            "skip_headers",
            "metrics_static_attributes",
            "traces_static_attributes",
            "semantic_convention",
        ],
    );
    if let Some(conv) = r.string(g, "semantic_convention").filter(|c| !c.is_empty()) {
        r.error(
            g.path_of("semantic_convention"),
            format!(
                "semantic convention {} is not implemented by Sluice: it writes krakend-otel's \
                 default metric names; remove the field",
                quote(&conv)
            ),
        );
    }
    GlobalLayer {
        disable_metrics: r.bool(g, "disable_metrics"),
        disable_traces: r.bool(g, "disable_traces"),
        disable_propagation: r.bool(g, "disable_propagation"),
        report_headers: r.bool(g, "report_headers"),
        skip_headers: r.strings(g, "skip_headers").unwrap_or_default(),
        metrics_static_attributes: attributes(r, g, "metrics_static_attributes"),
        traces_static_attributes: attributes(r, g, "traces_static_attributes"),
    }
}

fn proxy_layer(r: &mut Reader<'_>, p: &Obj<'_>) -> ProxyLayer {
    r.known_keys(
        p,
        &[
            "disable_metrics",
            "disable_traces",
            "report_headers",
            "skip_headers",
            "metrics_static_attributes",
            "traces_static_attributes",
        ],
    );
    ProxyLayer {
        disable_metrics: r.bool(p, "disable_metrics"),
        disable_traces: r.bool(p, "disable_traces"),
        report_headers: r.bool(p, "report_headers"),
        skip_headers: r.strings(p, "skip_headers").unwrap_or_default(),
        metrics_static_attributes: attributes(r, p, "metrics_static_attributes"),
        traces_static_attributes: attributes(r, p, "traces_static_attributes"),
    }
}

fn backend_layer(r: &mut Reader<'_>, b: &Obj<'_>) -> BackendLayer {
    r.known_keys(b, &["metrics", "traces"]);
    let defaults = BackendLayer::default();
    let metrics = match r.object(b, "metrics") {
        None => defaults.metrics,
        Some(m) => {
            r.known_keys(
                &m,
                &[
                    "disable_stage",
                    "round_trip",
                    "read_payload",
                    "detailed_connection",
                    "static_attributes",
                ],
            );
            refuse_detailed_connection(r, &m);
            BackendMetrics {
                disable_stage: r.bool(&m, "disable_stage"),
                round_trip: r.bool(&m, "round_trip"),
                read_payload: r.bool(&m, "read_payload"),
                static_attributes: attributes(r, &m, "static_attributes"),
            }
        }
    };
    let traces = match r.object(b, "traces") {
        None => defaults.traces,
        Some(t) => {
            r.known_keys(
                &t,
                &[
                    "disable_stage",
                    "round_trip",
                    "read_payload",
                    "detailed_connection",
                    "static_attributes",
                    "report_headers",
                    "skip_headers",
                ],
            );
            refuse_detailed_connection(r, &t);
            BackendTraces {
                disable_stage: r.bool(&t, "disable_stage"),
                round_trip: r.bool(&t, "round_trip"),
                read_payload: r.bool(&t, "read_payload"),
                static_attributes: attributes(r, &t, "static_attributes"),
                report_headers: r.bool(&t, "report_headers"),
                skip_headers: r.strings(&t, "skip_headers").unwrap_or_default(),
            }
        }
    };
    BackendLayer { metrics, traces }
}

/// `detailed_connection: true` asks for DNS, connection and TLS timings that Sluice's client
/// does not expose: refused rather than silently missing.
fn refuse_detailed_connection(r: &mut Reader<'_>, o: &Obj<'_>) {
    if r.bool(o, "detailed_connection") {
        r.error(
            o.path_of("detailed_connection"),
            "detailed connection timings (DNS, connection, TLS) are not implemented by Sluice; \
             set it to false or remove it",
        );
    }
}

/// `[{"key": "...", "value": "..."}]`; an empty key or value is refused (krakend-otel would
/// silently drop the pair).
fn attributes(r: &mut Reader<'_>, o: &Obj<'_>, key: &str) -> Attributes {
    let path = o.path_of(key);
    let mut out: Attributes = Vec::new();
    for (i, item) in r.array(o, key).unwrap_or_default().iter().enumerate() {
        let Some(kv) = r.as_object(item, index_path(&path, i)) else {
            continue;
        };
        r.known_keys(&kv, &["key", "value"]);
        let k = r.string(&kv, "key").unwrap_or_default();
        let v = r.string(&kv, "value").unwrap_or_default();
        if k.is_empty() || v.is_empty() {
            r.error(
                kv.path.clone(),
                "expected a non-empty \"key\" and \"value\" (krakend-otel drops the pair silently)",
            );
            continue;
        }
        if out.iter().any(|(existing, _)| *existing == k) {
            r.error(
                kv.path.clone(),
                format!("attribute {} is set twice", quote(&k)),
            );
            continue;
        }
        out.push((k, v));
    }
    out
}

fn shown(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        other => kind(other).to_owned(),
    }
}
