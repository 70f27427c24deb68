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
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::metrics::{Group, Kind};
use crate::trace::{AttrValue, SpanData, Status, Tracer};
use crate::{Family, OtlpSettings, SCOPE};

/// Spans sent per request at most.
pub(crate) const BATCH: usize = 512;

/// How long a send may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Protobuf encoding.

#[derive(Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }

    fn uint(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v);
        }
    }

    fn int64(&mut self, field: u32, v: i64) {
        self.key(field, 0);
        self.varint(v as u64);
    }

    fn boolean(&mut self, field: u32, v: bool) {
        self.key(field, 0);
        self.varint(u64::from(v));
    }

    fn fixed64(&mut self, field: u32, v: u64) {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn double(&mut self, field: u32, v: f64) {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn bytes(&mut self, field: u32, v: &[u8]) {
        self.key(field, 2);
        self.varint(v.len() as u64);
        self.0.extend_from_slice(v);
    }

    fn string(&mut self, field: u32, v: &str) {
        if !v.is_empty() {
            self.bytes(field, v.as_bytes());
        }
    }

    /// A nested message, written in place: one byte is kept for its length (enough below 128
    /// bytes, most key-values), and the body is moved up only when the length needs more. No
    /// buffer per message, the bytes are the same as encoding it apart (minimal varints).
    fn message(&mut self, field: u32, build: impl FnOnce(&mut Pb)) {
        self.key(field, 2);
        let at = self.0.len();
        self.0.push(0);
        build(self);
        let len = self.0.len() - at - 1;
        if len < 0x80 {
            self.0[at] = len as u8;
            return;
        }
        let mut prefix = [0u8; 10];
        let mut n = 0;
        let mut v = len as u64;
        while v >= 0x80 {
            prefix[n] = (v as u8) | 0x80;
            v >>= 7;
            n += 1;
        }
        prefix[n] = v as u8;
        n += 1;
        let end = self.0.len();
        self.0.resize(end + n - 1, 0);
        self.0.copy_within(at + 1..end, at + n);
        self.0[at..at + n].copy_from_slice(&prefix[..n]);
    }
}

fn any_value(pb: &mut Pb, value: &AttrValue) {
    match value {
        AttrValue::Str(s) => pb.bytes(1, s.as_str().as_bytes()),
        AttrValue::Bool(b) => pb.boolean(2, *b),
        AttrValue::Int(i) => pb.int64(3, *i),
        AttrValue::Float(f) => pb.double(4, *f),
        AttrValue::Strs(list) => pb.message(5, |array| {
            for s in list {
                array.message(1, |v| v.bytes(1, s.as_bytes()));
            }
        }),
    }
}

fn key_value(pb: &mut Pb, field: u32, key: &str, value: &AttrValue) {
    pb.message(field, |kv| {
        kv.string(1, key);
        kv.message(2, |v| any_value(v, value));
    });
}

/// A `KeyValue` with a string value.
fn key_text(pb: &mut Pb, field: u32, key: &str, value: &str) {
    pb.message(field, |kv| {
        kv.string(1, key);
        kv.message(2, |v| v.bytes(1, value.as_bytes()));
    });
}

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

/// `ExportTraceServiceRequest` with `spans`.
pub(crate) fn encode_spans(
    resource_attrs: &[(String, String)],
    spans: &[Box<SpanData>],
) -> Vec<u8> {
    // About what a request's span takes, so the buffer rarely grows while it is written.
    let mut pb = Pb(Vec::with_capacity(256 + spans.len() * 512));
    pb.message(1, |rs| {
        resource(rs, resource_attrs);
        rs.message(2, |ss| {
            scope(ss);
            for span in spans {
                ss.message(2, |s| {
                    s.bytes(1, &span.context.trace_id);
                    s.bytes(2, &span.context.span_id);
                    if let Some(parent) = &span.parent {
                        s.bytes(4, parent);
                    }
                    s.string(5, span.name.as_str());
                    s.uint(6, span.kind as u64);
                    s.fixed64(7, span.start);
                    s.fixed64(8, span.end);
                    for (k, v) in span.attributes() {
                        key_value(s, 9, k, v);
                    }
                    match &span.status {
                        Status::Unset => {}
                        Status::Ok => s.message(15, |st| st.uint(3, 1)),
                        Status::Error(message) => s.message(15, |st| {
                            st.string(2, message);
                            st.uint(3, 2);
                        }),
                    }
                    // flags: the W3C trace flags (sampled).
                    s.key(16, 5);
                    s.0.extend_from_slice(&1u32.to_le_bytes());
                });
            }
        });
    });
    pb.0
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
    h1: Client<HttpConnector, Full<Bytes>>,
    h2: Client<HttpConnector, Full<Bytes>>,
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
    pub(crate) async fn send(&self, traces: bool, message: Bytes) {
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

    async fn try_send(&self, traces: bool, message: Bytes) -> Result<(), String> {
        let authority = format!("{}:{}", self.settings.host, self.settings.port);
        let (path, content_type, body, client) = if self.settings.use_http {
            let path = if traces { "/v1/traces" } else { "/v1/metrics" };
            (path, "application/x-protobuf", message, &self.h1)
        } else {
            let path = if traces {
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
            } else {
                "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
            };
            let mut framed = Vec::with_capacity(message.len() + 5);
            framed.push(0);
            framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
            framed.extend_from_slice(&message);
            (path, "application/grpc", Bytes::from(framed), &self.h2)
        };
        let mut request = http::Request::post(format!("http://{authority}{path}"))
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Full::new(body))
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
    loop {
        let batch = tracer.drain(BATCH);
        if batch.is_empty() {
            return;
        }
        let message = Bytes::from(encode_spans(resource, &batch));
        drop(batch);
        for c in collectors.iter().filter(|c| c.traces()) {
            c.send(true, message.clone()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        let mut pb = Pb::default();
        pb.varint(300);
        assert_eq!(pb.0, [0xac, 0x02]);
        let mut pb = Pb::default();
        pb.string(1, "hi");
        assert_eq!(pb.0, [0x0a, 2, b'h', b'i']);
    }

    /// Messages written in place are what encoding them apart and copying them in gives.
    #[test]
    fn nested_messages_in_place() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000] {
            let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut inner = Pb::default();
            inner.bytes(3, &body);
            let mut apart = Pb::default();
            apart.uint(1, 7);
            apart.bytes(2, &inner.0);
            let mut outer = Pb::default();
            outer.bytes(5, &apart.0);
            outer.uint(6, 1);

            let mut pb = Pb::default();
            pb.message(5, |m| {
                m.uint(1, 7);
                m.message(2, |i| i.bytes(3, &body));
            });
            pb.uint(6, 1);
            assert_eq!(pb.0, outer.0, "body of {len} bytes");
        }
    }
}
