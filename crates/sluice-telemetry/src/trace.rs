//! Spans: a request's, its proxy stage's, each backend call's, each plugin call's and each
//! outbound call a plugin makes, in one tree; W3C trace context (`traceparent`) read from
//! clients and sent to backends. Sampling is parent-based: a client's sampled flag is followed,
//! a new trace is sampled with `trace_sample_rate`. An unsampled request still carries ids (so
//! backends can continue the trace) but records nothing.
//!
//! Ended spans wait in a bounded queue (spans past it are dropped and counted) for the OTLP
//! exporter task ([`crate::otlp`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue};

/// The W3C trace context header.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Ended spans kept for export at most (the rest are dropped and counted).
pub(crate) const QUEUE_CAPACITY: usize = 8192;

/// A span's identity as it travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanContext {
    /// The trace.
    pub trace_id: [u8; 16],
    /// The span.
    pub span_id: [u8; 8],
    /// Whether the trace is recorded.
    pub sampled: bool,
}

impl SpanContext {
    /// Reads a `traceparent` header (version 00 and later versions' first four fields).
    pub fn from_traceparent(value: &HeaderValue) -> Option<Self> {
        let s = value.to_str().ok()?.trim();
        let mut parts = s.split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let span = parts.next()?;
        let flags = parts.next()?;
        if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let trace_id: [u8; 16] = hex(trace)?;
        let span_id: [u8; 8] = hex(span)?;
        let [flags]: [u8; 1] = hex(flags)?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The `traceparent` header of this context.
    pub fn traceparent(&self) -> HeaderValue {
        let mut s = String::with_capacity(55);
        s.push_str("00-");
        push_hex(&mut s, &self.trace_id);
        s.push('-');
        push_hex(&mut s, &self.span_id);
        s.push_str(if self.sampled { "-01" } else { "-00" });
        HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("00"))
    }

    /// The trace id in hex.
    pub fn trace_id_hex(&self) -> String {
        let mut s = String::with_capacity(32);
        push_hex(&mut s, &self.trace_id);
        s
    }
}

fn hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

fn push_hex(s: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0x0f)] as char);
    }
}

fn new_span_id() -> [u8; 8] {
    loop {
        let id: [u8; 8] = rand::random();
        if id != [0; 8] {
            return id;
        }
    }
}

fn new_trace_id() -> [u8; 16] {
    loop {
        let id: [u8; 16] = rand::random();
        if id != [0; 16] {
            return id;
        }
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// OTLP's span kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// Work inside the gateway.
    Internal = 1,
    /// The client's request.
    Server = 2,
    /// A request the gateway sends.
    Client = 3,
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// Text.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A list of strings (headers).
    Strs(Vec<String>),
}

impl From<&str> for AttrValue {
    fn from(s: &str) -> Self {
        AttrValue::Str(s.to_owned())
    }
}
impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        AttrValue::Str(s)
    }
}
impl From<bool> for AttrValue {
    fn from(b: bool) -> Self {
        AttrValue::Bool(b)
    }
}
impl From<i64> for AttrValue {
    fn from(i: i64) -> Self {
        AttrValue::Int(i)
    }
}
impl From<f64> for AttrValue {
    fn from(f: f64) -> Self {
        AttrValue::Float(f)
    }
}

/// A span's status.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Status {
    /// Not set.
    #[default]
    Unset,
    /// It went well.
    Ok,
    /// It failed, and why.
    Error(String),
}

/// An ended span, as exported.
#[derive(Debug, Clone)]
pub struct SpanData {
    /// Its identity.
    pub context: SpanContext,
    /// Its parent span, if any.
    pub parent: Option<[u8; 8]>,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: SpanKind,
    /// Start, Unix nanoseconds.
    pub start: u64,
    /// End, Unix nanoseconds.
    pub end: u64,
    /// Attributes.
    pub attributes: Vec<(String, AttrValue)>,
    /// Status.
    pub status: Status,
}

/// Where ended spans wait for export, and how new traces are sampled.
#[derive(Debug)]
pub struct Tracer {
    queue: Mutex<VecDeque<SpanData>>,
    dropped: AtomicU64,
    /// Woken when a batch is ready.
    pub(crate) ready: tokio::sync::Notify,
    /// Root traces sampled when the trace id's first 8 bytes are below this.
    threshold: u64,
    always: bool,
}

impl Tracer {
    pub(crate) fn new(sample_rate: f64) -> Self {
        let rate = sample_rate.clamp(0.0, 1.0);
        Self {
            queue: Mutex::new(VecDeque::new()),
            dropped: AtomicU64::new(0),
            ready: tokio::sync::Notify::new(),
            threshold: (rate * u64::MAX as f64) as u64,
            always: rate >= 1.0,
        }
    }

    fn sample(&self, trace_id: &[u8; 16]) -> bool {
        if self.always {
            return true;
        }
        let mut first = [0u8; 8];
        first.copy_from_slice(&trace_id[..8]);
        u64::from_be_bytes(first) < self.threshold
    }

    fn push(&self, span: SpanData) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.len() >= QUEUE_CAPACITY {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        queue.push_back(span);
        if queue.len() >= crate::otlp::BATCH {
            self.ready.notify_one();
        }
    }

    /// Up to `max` ended spans, oldest first.
    pub(crate) fn drain(&self, max: usize) -> Vec<SpanData> {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let n = queue.len().min(max);
        queue.drain(..n).collect()
    }

    /// Spans dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A context spans can be started under: the tracer and the parent.
#[derive(Debug, Clone)]
pub struct TraceParent {
    tracer: Arc<Tracer>,
    context: SpanContext,
}

impl TraceParent {
    /// The root of a request: the client's context (when `incoming` is given and valid) or a
    /// new trace, sampled as the tracer says.
    pub fn root(tracer: &Arc<Tracer>, incoming: Option<&HeaderValue>) -> Self {
        let context = match incoming.and_then(SpanContext::from_traceparent) {
            Some(parent) => parent,
            None => {
                let trace_id = new_trace_id();
                SpanContext {
                    sampled: tracer.sample(&trace_id),
                    trace_id,
                    // A root has no parent span: this id is never a span's, it only names the
                    // trace for a request whose request span is off.
                    span_id: new_span_id(),
                }
            }
        };
        Self {
            tracer: Arc::clone(tracer),
            context,
        }
    }

    /// Whether the parent came from a client (so the first span has a parent id).
    fn is_remote(&self, root: bool) -> Option<[u8; 8]> {
        (!root).then_some(self.context.span_id)
    }

    /// The context.
    pub fn context(&self) -> SpanContext {
        self.context
    }

    /// A child span (recording only when the trace is sampled).
    pub fn child(&self, name: impl Into<String>, kind: SpanKind) -> Span {
        self.start(name, kind, false)
    }

    fn start(&self, name: impl Into<String>, kind: SpanKind, root: bool) -> Span {
        let context = SpanContext {
            trace_id: self.context.trace_id,
            span_id: new_span_id(),
            sampled: self.context.sampled,
        };
        let data = self.context.sampled.then(|| {
            Box::new(SpanData {
                context,
                parent: self.is_remote(root),
                name: name.into(),
                kind,
                start: now_nanos(),
                end: 0,
                attributes: Vec::new(),
                status: Status::Unset,
            })
        });
        Span {
            tracer: Arc::clone(&self.tracer),
            context,
            data,
        }
    }

    /// Puts this context in `headers` as `traceparent`.
    pub fn inject(&self, headers: &mut HeaderMap) {
        headers.insert(TRACEPARENT, self.context.traceparent());
    }
}

/// A request's root: either a client-given context (the request span is its child) or a new
/// trace (the request span has no parent).
#[derive(Debug, Clone)]
pub struct TraceRoot {
    parent: TraceParent,
    remote: bool,
}

impl TraceRoot {
    /// See [`TraceParent::root`].
    pub fn new(tracer: &Arc<Tracer>, incoming: Option<&HeaderValue>) -> Self {
        let remote = incoming.and_then(SpanContext::from_traceparent).is_some();
        Self {
            parent: TraceParent::root(tracer, incoming),
            remote,
        }
    }

    /// The request's span.
    pub fn span(&self, name: impl Into<String>, kind: SpanKind) -> Span {
        self.parent.start(name, kind, !self.remote)
    }

    /// The context, for a request whose request span is off.
    pub fn parent(&self) -> &TraceParent {
        &self.parent
    }
}

/// A span being recorded (or, unsampled, only carrying ids). Ends when dropped.
#[derive(Debug)]
pub struct Span {
    tracer: Arc<Tracer>,
    context: SpanContext,
    data: Option<Box<SpanData>>,
}

impl Span {
    /// Whether anything is recorded (attributes are skipped otherwise: build them only then).
    pub fn is_recording(&self) -> bool {
        self.data.is_some()
    }

    /// Its context.
    pub fn context(&self) -> SpanContext {
        self.context
    }

    /// A parent for its children.
    pub fn as_parent(&self) -> TraceParent {
        TraceParent {
            tracer: Arc::clone(&self.tracer),
            context: self.context,
        }
    }

    /// Sets an attribute.
    pub fn set(&mut self, key: &str, value: impl Into<AttrValue>) {
        if let Some(data) = &mut self.data {
            data.attributes.push((key.to_owned(), value.into()));
        }
    }

    /// Sets every attribute of `attributes`.
    pub fn set_all(&mut self, attributes: &[(String, String)]) {
        if let Some(data) = &mut self.data {
            for (k, v) in attributes {
                data.attributes.push((k.clone(), AttrValue::Str(v.clone())));
            }
        }
    }

    /// Adds `http.<direction>.header.<name>` attributes, except the skipped headers.
    pub fn set_headers(&mut self, direction: &str, headers: &HeaderMap, skip: &[String]) {
        let Some(data) = &mut self.data else {
            return;
        };
        for name in headers.keys() {
            if skip.iter().any(|s| s.eq_ignore_ascii_case(name.as_str())) {
                continue;
            }
            let values = headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            data.attributes.push((
                format!("http.{direction}.header.{}", name.as_str()),
                AttrValue::Strs(values),
            ));
        }
    }

    /// Sets the status.
    pub fn set_status(&mut self, status: Status) {
        if let Some(data) = &mut self.data {
            data.status = status;
        }
    }

    /// Ends it (dropping it does the same).
    pub fn end(self) {}
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(mut data) = self.data.take() {
            data.end = now_nanos();
            self.tracer.push(*data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trip() {
        let v = HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let ctx = SpanContext::from_traceparent(&v).expect("valid");
        assert!(ctx.sampled);
        assert_eq!(ctx.traceparent(), v);
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            assert!(
                SpanContext::from_traceparent(&HeaderValue::from_static(bad)).is_none(),
                "{bad}"
            );
        }
    }

    #[test]
    fn sampling_and_tree() {
        let never = Arc::new(Tracer::new(0.0));
        let root = TraceRoot::new(&never, None);
        let span = root.span("x", SpanKind::Server);
        assert!(!span.is_recording());
        drop(span);
        assert!(never.drain(10).is_empty());

        let always = Arc::new(Tracer::new(1.0));
        let incoming =
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let root = TraceRoot::new(&always, Some(&incoming));
        let request = root.span("req", SpanKind::Server);
        let child = request.as_parent().child("backend", SpanKind::Internal);
        let child_ctx = child.context();
        drop(child);
        drop(request);
        let spans = always.drain(10);
        assert_eq!(spans.len(), 2);
        assert_eq!(
            spans[1].parent,
            Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
        );
        assert_eq!(spans[0].parent, Some(spans[1].context.span_id));
        assert_eq!(spans[0].context, child_ctx);
        // An unsampled client context is followed.
        let unsampled =
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
        assert!(
            !TraceRoot::new(&always, Some(&unsampled))
                .span("r", SpanKind::Server)
                .is_recording()
        );
    }
}
