//! OTLP export: spans (and metrics, pushed every `metric_reporting_period`) to collectors over
//! gRPC (HTTP/2 without TLS, the default) or HTTP/protobuf (`use_http`).
//!
//! The messages are encoded here, by hand, from the OTLP protobuf definitions
//! (`opentelemetry/proto/{trace,metrics,common,resource}/v1`): only encoding is needed, the
//! dozen message types are small, and it spares the gateway an SDK and a code generator. The
//! tests decode what is sent with the `opentelemetry-proto` crate's generated types.
//!
//! Bounded: spans wait in the tracer's queue (8192 at most), are sent in batches of 512 at
//! least every second, each send has a 10 s timeout, and a failed batch is dropped (logged at
//! most once a minute per exporter).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::metrics::{Group, Kind};
use crate::pb::{Pb, key_text, varint_len};
use crate::trace::Tracer;
use crate::{Family, OtlpSettings, SCOPE};

/// Spans sent per request at most.
pub(crate) const BATCH: usize = 512;

/// How long a send may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Messages.

fn resource(pb: &mut Pb, attributes: &[(String, String)]) {
    pb.message(1, |r| {
        for (k, v) in attributes {
            key_text(r, 1, k, v);
        }
    });
}

fn scope(pb: &mut Pb) {
    pb.message(1, |s| s.string(1, SCOPE));
}

/// An export request's protobuf message in two pieces, sent one after the other: a batch of
/// spans (hundreds of KiB) goes out as it was batched, never copied into its envelope.
#[derive(Debug, Clone, Default)]
pub(crate) struct Message {
    head: Bytes,
    tail: Bytes,
}

impl Message {
    fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }
}

impl From<Vec<u8>> for Message {
    fn from(whole: Vec<u8>) -> Self {
        Message {
            head: whole.into(),
            tail: Bytes::new(),
        }
    }
}

/// `ExportTraceServiceRequest` around `spans` (already encoded as they ended: the batch's
/// bytes): only the envelope's head is written here.
pub(crate) fn encode_spans(resource_attrs: &[(String, String)], spans: Bytes) -> Message {
    let mut head = Pb::default();
    resource(&mut head, resource_attrs);
    let mut scope_head = Pb::default();
    scope(&mut scope_head);
    let scope_spans = scope_head.0.len() + spans.len();
    let resource_spans = head.0.len() + 1 + varint_len(scope_spans as u64) + scope_spans;
    let mut pb = Pb(Vec::with_capacity(
        2 + varint_len(resource_spans as u64)
            + varint_len(scope_spans as u64)
            + head.0.len()
            + scope_head.0.len(),
    ));
    pb.key(1, 2);
    pb.varint(resource_spans as u64);
    pb.0.extend_from_slice(&head.0);
    pb.key(2, 2);
    pb.varint(scope_spans as u64);
    pb.0.extend_from_slice(&scope_head.0);
    Message {
        head: pb.0.into(),
        tail: spans,
    }
}

/// A request body of up to three pieces (a gRPC frame's prefix, then a [`Message`]).
#[derive(Debug)]
struct Pieces(std::collections::VecDeque<Bytes>);

impl http_body::Body for Pieces {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(
            self.get_mut()
                .0
                .pop_front()
                .map(|b| Ok(http_body::Frame::data(b))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0.iter().map(|b| b.len() as u64).sum())
    }
}

/// `ExportMetricsServiceRequest` with every series of `groups` and `families` (cumulative).
pub(crate) fn encode_metrics(
    resource_attrs: &[(String, String)],
    groups: &[Arc<Group>],
    families: &[Family],
    start: u64,
    now: u64,
) -> Vec<u8> {
    let mut pb = Pb::default();
    pb.message(1, |rm| {
        resource(rm, resource_attrs);
        rm.message(2, |sm| {
            scope(sm);
            for group in groups {
                let series = group.all();
                if series.is_empty() {
                    continue;
                }
                for def in &group.defs {
                    sm.message(2, |m| {
                        m.string(1, &def.name);
                        m.string(2, def.help);
                        let unit = match def.kind {
                            Kind::SecondsCounter(_) => "s",
                            _ if def.unit == "seconds" => "s",
                            _ => "",
                        };
                        m.string(3, unit);
                        let attrs = |p: &mut Pb, field: u32, labels: &[(String, String)]| {
                            for (k, v) in labels {
                                key_text(p, field, k, v);
                            }
                        };
                        match def.kind {
                            Kind::Counter(i) | Kind::SecondsCounter(i) => m.message(7, |sum| {
                                for (labels, cells) in &series {
                                    let raw = cells.counters[i]
                                        .load(std::sync::atomic::Ordering::Relaxed);
                                    sum.message(1, |dp| {
                                        attrs(dp, 7, labels);
                                        dp.fixed64(2, start);
                                        dp.fixed64(3, now);
                                        if matches!(def.kind, Kind::SecondsCounter(_)) {
                                            dp.double(4, raw as f64 / 1e9);
                                        } else {
                                            dp.key(6, 1);
                                            dp.0.extend_from_slice(&raw.to_le_bytes());
                                        }
                                    });
                                }
                                sum.uint(2, 2);
                                sum.boolean(3, true);
                            }),
                            Kind::Histogram(i) => m.message(9, |hist| {
                                for (labels, cells) in &series {
                                    let h = &cells.histograms[i];
                                    let (counts, count, total) = h.snapshot();
                                    hist.message(1, |dp| {
                                        attrs(dp, 9, labels);
                                        dp.fixed64(2, start);
                                        dp.fixed64(3, now);
                                        dp.fixed64(4, count);
                                        dp.double(5, total);
                                        dp.key(6, 2);
                                        dp.varint((counts.len() * 8) as u64);
                                        for c in &counts {
                                            dp.0.extend_from_slice(&c.to_le_bytes());
                                        }
                                        dp.key(7, 2);
                                        dp.varint((h.scale.bounds.len() * 8) as u64);
                                        for b in &h.scale.bounds {
                                            dp.0.extend_from_slice(&b.to_le_bytes());
                                        }
                                    });
                                }
                                hist.uint(2, 2);
                            }),
                        }
                    });
                }
            }
            for family in families {
                if family.samples.is_empty() {
                    continue;
                }
                sm.message(2, |m| {
                    m.string(1, &family.name);
                    m.string(2, &family.help);
                    let points = |p: &mut Pb| {
                        for (labels, value) in &family.samples {
                            p.message(1, |dp| {
                                for (k, v) in labels {
                                    key_text(dp, 7, k, v);
                                }
                                dp.fixed64(2, start);
                                dp.fixed64(3, now);
                                dp.double(4, *value);
                            });
                        }
                    };
                    if family.counter {
                        m.message(7, |sum| {
                            points(sum);
                            sum.uint(2, 2);
                            sum.boolean(3, true);
                        });
                    } else {
                        m.message(5, points);
                    }
                });
            }
        });
    });
    pb.0
}

// ---------------------------------------------------------------------------------------------
// Sending.

/// One collector, as the exporter task talks to it.
#[derive(Debug)]
pub(crate) struct Collector {
    settings: OtlpSettings,
    h1: Client<HttpConnector, Pieces>,
    h2: Client<HttpConnector, Pieces>,
    last_warning: std::sync::Mutex<Option<Instant>>,
}

impl Collector {
    pub(crate) fn new(settings: OtlpSettings) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        Self {
            settings,
            h1: Client::builder(TokioExecutor::new()).build(connector.clone()),
            h2: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build(connector),
            last_warning: std::sync::Mutex::new(None),
        }
    }

    pub(crate) fn traces(&self) -> bool {
        self.settings.traces
    }

    pub(crate) fn metrics(&self) -> bool {
        self.settings.metrics
    }

    pub(crate) fn period(&self) -> Option<Duration> {
        self.settings.period
    }

    /// Sends a trace or metrics export request; failures are logged (rate limited).
    pub(crate) async fn send(&self, traces: bool, message: Message) {
        if let Err(e) = tokio::time::timeout(SEND_TIMEOUT, self.try_send(traces, message))
            .await
            .unwrap_or_else(|_| Err("timed out".to_owned()))
        {
            let mut last = self.last_warning.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                *last = Some(Instant::now());
                tracing::warn!(
                    exporter = %self.settings.name,
                    collector = %format!("{}:{}", self.settings.host, self.settings.port),
                    error = %e,
                    "OTLP export failed; the batch is dropped"
                );
            }
        }
    }

    async fn try_send(&self, traces: bool, message: Message) -> Result<(), String> {
        let authority = format!("{}:{}", self.settings.host, self.settings.port);
        let mut pieces = std::collections::VecDeque::with_capacity(3);
        let (path, content_type, client) = if self.settings.use_http {
            let path = if traces { "/v1/traces" } else { "/v1/metrics" };
            (path, "application/x-protobuf", &self.h1)
        } else {
            let path = if traces {
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
            } else {
                "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
            };
            // The gRPC frame: uncompressed, then the message's length.
            let len = u32::try_from(message.len()).map_err(|_| "message too large".to_owned())?;
            let mut prefix = [0u8; 5];
            prefix[1..].copy_from_slice(&len.to_be_bytes());
            pieces.push_back(Bytes::copy_from_slice(&prefix));
            (path, "application/grpc", &self.h2)
        };
        pieces.push_back(message.head);
        if !message.tail.is_empty() {
            pieces.push_back(message.tail);
        }
        let body = Pieces(pieces);
        let mut request = http::Request::post(format!("http://{authority}{path}"))
            .header(http::header::CONTENT_TYPE, content_type)
            .body(body)
            .map_err(|e| e.to_string())?;
        if !self.settings.use_http {
            request
                .headers_mut()
                .insert(http::header::TE, http::HeaderValue::from_static("trailers"));
        }
        let response = client.request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let grpc = !self.settings.use_http;
        let mut grpc_status = response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let collected = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        if let Some(s) = collected
            .trailers()
            .and_then(|t| t.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
        {
            grpc_status = Some(s.to_owned());
        }
        if !status.is_success() {
            return Err(format!("the collector answered {status}"));
        }
        if grpc && grpc_status.as_deref().is_some_and(|s| s != "0") {
            return Err(format!(
                "the collector answered grpc-status {}",
                grpc_status.unwrap_or_default()
            ));
        }
        Ok(())
    }
}

/// Sends spans from `tracer` to every collector that takes traces, until the task is aborted.
pub(crate) async fn export_spans(
    tracer: Arc<Tracer>,
    collectors: Vec<Arc<Collector>>,
    resource: Vec<(String, String)>,
) {
    loop {
        let _ = tokio::time::timeout(Duration::from_secs(1), tracer.ready.notified()).await;
        flush(&tracer, &collectors, &resource).await;
    }
}

/// Sends every queued span now.
pub(crate) async fn flush(
    tracer: &Tracer,
    collectors: &[Arc<Collector>],
    resource: &[(String, String)],
) {
    while let Some(batch) = tracer.drain() {
        let spans = Bytes::from(batch.into_bytes());
        let message = encode_spans(resource, spans.clone());
        for c in collectors.iter().filter(|c| c.traces()) {
            c.send(true, message.clone()).await;
        }
        drop(message);
        // The batch's buffer serves the next batch when every send has let go of it.
        if let Ok(mut buffer) = spans.try_into_mut() {
            buffer.clear();
            tracer.recycle(Vec::from(buffer));
        }
    }
}
