//! `telemetry/opentelemetry` with OTLP exporters: a real gRPC collector (tonic, with the
//! `opentelemetry-proto` services) and an HTTP/protobuf one inside the test. One request
//! through a WebAssembly plugin that calls two services gives the span tree
//! request -> proxy -> backend -> plugin -> the plugin's outbound calls; the services receive a
//! `traceparent` naming the span that called them; the client's `traceparent` is followed;
//! `trace_sample_rate` is honoured; metrics are pushed too.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{Value, json};
use sluice_integration::backend::{Backend, Received, Reply};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::plugins::registry;
use sluice_integration::*;

/// What a collector received.
#[derive(Debug, Default, Clone)]
struct Received2 {
    spans: Arc<Mutex<Vec<Span>>>,
    resource: Arc<Mutex<Vec<(String, String)>>>,
    metric_names: Arc<Mutex<Vec<String>>>,
}

impl Received2 {
    fn take_trace(&self, request: ExportTraceServiceRequest) {
        for rs in request.resource_spans {
            if let Some(resource) = rs.resource {
                let mut r = self.resource.lock().unwrap();
                for kv in resource.attributes {
                    if let Some(AnyValue::StringValue(v)) = kv.value.and_then(|v| v.value) {
                        r.push((kv.key, v));
                    }
                }
            }
            for ss in rs.scope_spans {
                assert_eq!(ss.scope.unwrap().name, "io.krakend.krakend-otel");
                self.spans.lock().unwrap().extend(ss.spans);
            }
        }
    }

    fn take_metrics(&self, request: ExportMetricsServiceRequest) {
        for rm in request.resource_metrics {
            for sm in rm.scope_metrics {
                for m in sm.metrics {
                    self.metric_names.lock().unwrap().push(m.name);
                }
            }
        }
    }

    /// Waits (at most 10 s) until `n` spans arrived.
    async fn spans(&self, n: usize) -> Vec<Span> {
        let started = Instant::now();
        loop {
            let spans = self.spans.lock().unwrap().clone();
            if spans.len() >= n || started.elapsed() > Duration::from_secs(10) {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tonic::async_trait]
impl TraceService for Received2 {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.take_trace(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Received2 {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.take_metrics(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// A gRPC OTLP collector on 127.0.0.1.
async fn grpc_collector() -> (SocketAddr, Received2) {
    let received = Received2::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(received.clone()))
        .add_service(MetricsServiceServer::new(received.clone()));
    tokio::spawn(async move {
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let _ = server.serve_with_incoming(incoming).await;
    });
    (addr, received)
}

/// An HTTP/protobuf OTLP collector (`/v1/traces`, `/v1/metrics`).
async fn http_collector() -> (Backend, Received2) {
    let received = Received2::default();
    let r = received.clone();
    let backend = Backend::start(move |req: Received| {
        let r = r.clone();
        async move {
            assert_eq!(req.header("content-type"), Some("application/x-protobuf"));
            match req.path.as_str() {
                "/v1/traces" => {
                    r.take_trace(ExportTraceServiceRequest::decode(req.body.as_ref()).unwrap())
                }
                "/v1/metrics" => {
                    r.take_metrics(ExportMetricsServiceRequest::decode(req.body.as_ref()).unwrap())
                }
                other => panic!("unexpected OTLP path {other}"),
            }
            Reply::new(200)
        }
    })
    .await;
    (backend, received)
}

async fn origin() -> Backend {
    Backend::start(|req: Received| async move {
        match req.path.as_str() {
            "/a" => Reply::json(200, &json!({"x": 1})),
            "/b" => Reply::json(200, &json!({"y": 2})),
            _ => Reply::json(200, &json!({"ok": true})),
        }
    })
    .await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            AnyValue::IntValue(i) => Some(i.to_string()),
            AnyValue::BoolValue(b) => Some(b.to_string()),
            other => Some(format!("{other:?}")),
        })
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// `traceparent` parts: (trace id, parent id, flags).
fn traceparent(req: &Received) -> (String, String, String) {
    let value = req
        .header("traceparent")
        .unwrap_or_else(|| panic!("no traceparent: {req:?}"));
    let parts: Vec<&str> = value.split('-').collect();
    assert_eq!(parts.len(), 4, "{value}");
    assert_eq!(parts[0], "00");
    (
        parts[1].to_owned(),
        parts[2].to_owned(),
        parts[3].to_owned(),
    )
}

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

fn config(otlp: Value, extra: Value, a: &Backend, b: &Backend) -> Value {
    let mut config = service(json!([
        endpoint(
            "/both",
            json!([backend(
                &a.url(),
                "/",
                json!({"extra_config": {"plugin/http-client": {
                    "name": "fan-out",
                    "fan-out": {"urls": [format!("{}/a", a.url()), format!("{}/b", b.url())]},
                    "allowed_hosts": [a.url(), b.url()]
                }}})
            )]),
            Value::Null
        ),
        endpoint(
            "/direct/{id}",
            json!([backend(&a.url(), "/users/{id}", Value::Null)]),
            Value::Null
        ),
    ]));
    let mut otel = json!({
        "service_name": "traced",
        "metric_reporting_period": 1,
        "exporters": {"otlp": [otlp]}
    });
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            otel[k] = v;
        }
    }
    config["extra_config"]["telemetry/opentelemetry"] = otel;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_span_tree_through_a_plugin_and_its_outbound_calls() {
    let (addr, collector) = grpc_collector().await;
    let a = origin().await;
    let b = origin().await;
    let gw = try_start_gateway_with(
        config(
            json!({"name": "grpc", "host": "127.0.0.1", "port": addr.port()}),
            json!({}),
            &a,
            &b,
        ),
        registry(),
        |_| {},
    )
    .await
    .unwrap();

    let client_traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let resp = request(
        http::Method::GET,
        &gw.url("/both"),
        &[("traceparent", client_traceparent.as_str())],
        "",
    )
    .await;
    assert_eq!(resp.status, 200);

    // request -> proxy -> backend -> plugin -> 2 outbound calls
    let spans = collector.spans(6).await;
    assert_eq!(spans.len(), 6, "{spans:#?}");
    for s in &spans {
        assert_eq!(hex(&s.trace_id), CLIENT_TRACE, "{s:#?}");
        assert!(s.end_time_unix_nano >= s.start_time_unix_nano);
    }
    // The request span is named after the path, the proxy span after the route: both "/both".
    assert_eq!(named(&spans, "/both").len(), 2);
    let request_span = spans.iter().find(|s| s.kind == 2).unwrap();
    assert_eq!(request_span.name, "/both");
    assert_eq!(hex(&request_span.parent_span_id), CLIENT_SPAN);
    assert_eq!(
        attr(request_span, "krakend.stage").as_deref(),
        Some("global")
    );
    assert_eq!(attr(request_span, "http.route").as_deref(), Some("/both"));
    assert_eq!(
        attr(request_span, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        attr(request_span, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(attr(request_span, "url.full").as_deref(), Some("/both"));
    // The proxy span: krakend-otel names it after the route; here both share "/both", so find
    // it by its stage.
    let proxy = spans
        .iter()
        .find(|s| attr(s, "krakend.stage").as_deref() == Some("proxy"))
        .unwrap();
    assert_eq!(proxy.parent_span_id, request_span.span_id);
    let backend_span = spans
        .iter()
        .find(|s| attr(s, "krakend.stage").as_deref() == Some("backend"))
        .unwrap();
    assert_eq!(backend_span.parent_span_id, proxy.span_id);
    assert_eq!(backend_span.name, "/");
    assert_eq!(
        attr(backend_span, "krakend.endpoint.route").as_deref(),
        Some("/both")
    );
    let plugin = spans.iter().find(|s| s.name == "plugin fan-out").unwrap();
    assert_eq!(plugin.parent_span_id, backend_span.span_id);
    assert_eq!(attr(plugin, "sluice.plugin").as_deref(), Some("fan-out"));
    let outbound: Vec<&Span> = spans
        .iter()
        .filter(|s| attr(s, "krakend.stage").as_deref() == Some("plugin-request"))
        .collect();
    assert_eq!(outbound.len(), 2);
    for span in &outbound {
        assert_eq!(span.parent_span_id, plugin.span_id);
        assert_eq!(span.kind, 3, "client");
    }
    // Each service got a traceparent naming the outbound span that called it.
    for service in [&a, &b] {
        let (trace, parent, flags) = traceparent(&service.last());
        assert_eq!(trace, CLIENT_TRACE);
        assert_eq!(flags, "01");
        let caller = outbound
            .iter()
            .find(|s| hex(&s.span_id) == parent)
            .unwrap_or_else(|| panic!("{parent} is not an outbound span"));
        assert_eq!(
            attr(caller, "http.response.status_code").as_deref(),
            Some("200")
        );
    }

    // Without a client context: a new trace; the default client's call has a client span
    // whose id the backend receives.
    let before = collector.spans.lock().unwrap().len();
    assert_eq!(get(&gw.url("/direct/7")).await.status, 200);
    let spans = collector.spans(before + 4).await;
    let new: Vec<Span> = spans[before..].to_vec();
    assert_eq!(new.len(), 4, "{new:#?}");
    let root = new.iter().find(|s| s.kind == 2).unwrap();
    assert!(
        root.parent_span_id.is_empty(),
        "a new trace's request span has no parent"
    );
    let round_trip = new
        .iter()
        .find(|s| attr(s, "krakend.stage").as_deref() == Some("backend-request"))
        .unwrap();
    assert_eq!(round_trip.kind, 3);
    assert_eq!(round_trip.name, "/users/:id");
    let (trace, parent, flags) = traceparent(&a.last());
    assert_eq!(trace, hex(&root.trace_id));
    assert_eq!(parent, hex(&round_trip.span_id));
    assert_eq!(flags, "01");

    // The resource, and metrics pushed over OTLP.
    assert!(
        collector
            .resource
            .lock()
            .unwrap()
            .contains(&("service.name".to_owned(), "traced".to_owned()))
    );
    let started = Instant::now();
    while !collector
        .metric_names
        .lock()
        .unwrap()
        .iter()
        .any(|n| n == "http.server.duration")
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no metrics pushed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_exporter_and_sampling() {
    let (collector_backend, collector) = http_collector().await;
    let a = origin().await;
    let b = origin().await;
    let port = collector_backend.addr().port();
    let gw = try_start_gateway_with(
        config(
            json!({"name": "http", "host": "http://127.0.0.1", "port": port, "use_http": true, "disable_metrics": true}),
            json!({"trace_sample_rate": 0}),
            &a,
            &b,
        ),
        registry(),
        |_| {},
    )
    .await
    .unwrap();

    // Sampled at 0: nothing recorded for new traces, but the backend still gets the context.
    assert_eq!(get(&gw.url("/direct/1")).await.status, 200);
    let (_, _, flags) = traceparent(&a.last());
    assert_eq!(flags, "00");
    // A client's sampled context is followed (parent-based sampling).
    let sampled = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let resp = request(
        http::Method::GET,
        &gw.url("/direct/2"),
        &[("traceparent", sampled.as_str())],
        "",
    )
    .await;
    assert_eq!(resp.status, 200);
    let spans = collector.spans(4).await;
    assert_eq!(
        spans.len(),
        4,
        "only the client-sampled request: {spans:#?}"
    );
    assert!(spans.iter().all(|s| hex(&s.trace_id) == CLIENT_TRACE));
    let (trace, _, flags) = traceparent(&a.last());
    assert_eq!((trace.as_str(), flags.as_str()), (CLIENT_TRACE, "01"));
    gw.shutdown().await;
    assert!(
        collector.metric_names.lock().unwrap().is_empty(),
        "disable_metrics"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_propagation_neither_reads_nor_sends_trace_context() {
    let (addr, collector) = grpc_collector().await;
    let a = origin().await;
    let b = origin().await;
    let gw = try_start_gateway_with(
        config(
            json!({"name": "grpc", "host": "127.0.0.1", "port": addr.port(), "disable_metrics": true}),
            json!({"layers": {"global": {"disable_propagation": true}}}),
            &a,
            &b,
        ),
        registry(),
        |_| {},
    )
    .await
    .unwrap();
    let client = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let resp = request(
        http::Method::GET,
        &gw.url("/direct/3"),
        &[("traceparent", client.as_str())],
        "",
    )
    .await;
    assert_eq!(resp.status, 200);
    assert!(a.last().header("traceparent").is_none());
    let spans = collector.spans(4).await;
    assert_eq!(spans.len(), 4);
    assert!(
        spans.iter().all(|s| hex(&s.trace_id) != CLIENT_TRACE),
        "the client's context is ignored"
    );
    gw.shutdown().await;
}

/// `report_headers`: the request span carries the answer's headers, a `no-op` answer's own
/// among them (the gateway hands those on unread, beside the answer's map, and puts them in the
/// map when something reads it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_headers_include_a_no_op_answers_backend_fields() {
    let (addr, collector) = grpc_collector().await;
    let a =
        Backend::start_sync(|_| Reply::new(200).header("x-from-backend", "kept").body("hi")).await;
    let mut config = service(json!([endpoint(
        "/raw",
        json!([backend(&a.url(), "/", json!({"encoding": "no-op"}))]),
        json!({"output_encoding": "no-op"})
    )]));
    config["extra_config"]["telemetry/opentelemetry"] = json!({
        "service_name": "traced",
        "exporters": {"otlp": [{"name": "grpc", "host": "127.0.0.1", "port": addr.port(),
                                "disable_metrics": true}]},
        "layers": {"global": {"report_headers": true}}
    });
    let gw = try_start_gateway_with(config, registry(), |_| {})
        .await
        .unwrap();
    let sampled = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let resp = request(
        http::Method::GET,
        &gw.url("/raw"),
        &[("traceparent", sampled.as_str())],
        "",
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-from-backend"), Some("kept"));
    let spans = collector.spans(3).await;
    let request_span = spans.iter().find(|s| s.kind == 2).unwrap();
    let reported = attr(request_span, "http.response.header.x-from-backend");
    assert!(
        reported.as_deref().is_some_and(|v| v.contains("kept")),
        "{reported:?} in {request_span:#?}"
    );
}
