//! Spans: a request's, its proxy stage's, each backend call's, each plugin call's and each
//! outbound call a plugin makes, in one tree; W3C trace context (`traceparent`) read from
//! clients and sent to backends. Sampling is parent-based: a client's sampled flag is followed,
//! a new trace is sampled with `trace_sample_rate`. An unsampled request still carries ids (so
//! backends can continue the trace) but records nothing.
//!
//! Ended spans wait in a bounded queue (spans past it are dropped and counted) for the OTLP
//! exporter task ([`crate::otlp`]).
//!
//! Cost per request: an unsampled span is ids only (no allocation, no reference to the
//! tracer); a recorded one allocates its data and the few attribute values only the request
//! knows. Names and attributes fixed when the gateway is built (a stage's, the config's static
//! ones) are shared ([`SharedAttributes`], [`Text::Shared`]), attribute keys are constants.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue, Method};

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

    /// The `traceparent` header of this context (written on the stack, one copy into the
    /// header value).
    pub fn traceparent(&self) -> HeaderValue {
        let mut text = [0u8; 55];
        text[..3].copy_from_slice(b"00-");
        write_hex(&mut text[3..35], &self.trace_id);
        text[35] = b'-';
        write_hex(&mut text[36..52], &self.span_id);
        text[52..].copy_from_slice(if self.sampled { b"-01" } else { b"-00" });
        HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static("00"))
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

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(s: &mut String, bytes: &[u8]) {
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0x0f)] as char);
    }
}

/// Writes `bytes` in lower-case hex into `out` (twice as long).
fn write_hex(out: &mut [u8], bytes: &[u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0x0f)];
    }
}

thread_local! {
    /// The id generator's state, seeded once per thread from the OS-seeded `rand` generator.
    static ID_STATE: Cell<u64> = Cell::new(rand::random());
}

/// 64 random bits for trace and span ids: splitmix64 over a per-thread counter. Ids need to be
/// unique and well spread (sampling reads the trace id), not unpredictable; a request makes
/// three to five of them, so the cryptographic generator behind `rand::random` is not worth
/// its cost here (request ids, UUIDs, still use it).
fn next_id() -> u64 {
    ID_STATE.with(|state| {
        let mut z = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

fn new_span_id() -> [u8; 8] {
    loop {
        let id = next_id();
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}

fn new_trace_id() -> [u8; 16] {
    loop {
        let id = u128::from(next_id()) << 64 | u128::from(next_id());
        if id != 0 {
            return id.to_be_bytes();
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

/// Text a span carries: a constant, shared with the gateway's build-time state, or the
/// request's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    /// A constant.
    Static(&'static str),
    /// Fixed when the gateway was built (a route, a stage's name).
    Shared(Arc<str>),
    /// Made for this request.
    Owned(String),
}

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        match self {
            Text::Static(s) => s,
            Text::Shared(s) => s,
            Text::Owned(s) => s,
        }
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text::Owned(s.to_owned())
    }
}
impl From<String> for Text {
    fn from(s: String) -> Self {
        Text::Owned(s)
    }
}
impl From<&Arc<str>> for Text {
    fn from(s: &Arc<str>) -> Self {
        Text::Shared(Arc::clone(s))
    }
}

/// An attribute's key: a constant, or (reported headers) made for the request.
pub type Key = Cow<'static, str>;

/// Attributes fixed when the gateway is built, shared by every span that carries them.
pub type SharedAttributes = Arc<[(Key, AttrValue)]>;

/// Shares `attributes` (from the config).
pub fn shared_attributes(attributes: &[(String, String)]) -> SharedAttributes {
    attributes
        .iter()
        .map(|(k, v)| {
            (
                Key::Owned(k.clone()),
                AttrValue::Str(Text::Owned(v.clone())),
            )
        })
        .collect()
}

/// A span's attributes in the order they were set: one, or a shared list.
#[derive(Debug, Clone)]
pub(crate) enum Attr {
    One(Key, AttrValue),
    Shared(SharedAttributes),
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// Text.
    Str(Text),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A list of strings (headers).
    Strs(Vec<String>),
}

impl AttrValue {
    /// A method: the standard ones are constants.
    pub fn method(method: &Method) -> Self {
        const STANDARD: [Method; 9] = [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::HEAD,
            Method::OPTIONS,
            Method::PATCH,
            Method::CONNECT,
            Method::TRACE,
        ];
        const NAMES: [&str; 9] = [
            "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
        ];
        match STANDARD.iter().position(|m| m == method) {
            Some(i) => AttrValue::from(NAMES[i]),
            None => AttrValue::from(method.as_str().to_owned()),
        }
    }
}

impl From<&'static str> for AttrValue {
    fn from(s: &'static str) -> Self {
        AttrValue::Str(Text::Static(s))
    }
}
impl From<String> for AttrValue {
    fn from(s: String) -> Self {
        AttrValue::Str(Text::Owned(s))
    }
}
impl From<&Arc<str>> for AttrValue {
    fn from(s: &Arc<str>) -> Self {
        AttrValue::Str(Text::Shared(Arc::clone(s)))
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
    pub name: Text,
    /// Its kind.
    pub kind: SpanKind,
    /// Start, Unix nanoseconds.
    pub start: u64,
    /// End, Unix nanoseconds.
    pub end: u64,
    /// Attributes, in the order they were set.
    pub(crate) attributes: Vec<Attr>,
    /// Status.
    pub status: Status,
}

impl SpanData {
    /// Its attributes, in the order they were set.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.attributes.iter().flat_map(|a| {
            let (one, shared) = match a {
                Attr::One(k, v) => (Some((k.as_ref(), v)), None),
                Attr::Shared(list) => (None, Some(list.iter().map(|(k, v)| (k.as_ref(), v)))),
            };
            one.into_iter().chain(shared.into_iter().flatten())
        })
    }
}

/// Where ended spans wait for export, and how new traces are sampled.
#[derive(Debug)]
pub struct Tracer {
    queue: Mutex<VecDeque<Box<SpanData>>>,
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

    fn push(&self, span: Box<SpanData>) {
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
    #[expect(
        clippy::vec_box,
        reason = "the spans as they ended, boxed: unboxing them would copy each"
    )]
    pub(crate) fn drain(&self, max: usize) -> Vec<Box<SpanData>> {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let n = queue.len().min(max);
        queue.drain(..n).collect()
    }

    /// Spans dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A context spans can be started under: the parent, and the tracer when the trace is sampled
/// (an unsampled trace never reaches the tracer, so its spans hold no reference to it).
#[derive(Debug, Clone)]
pub struct TraceParent {
    tracer: Option<Arc<Tracer>>,
    context: SpanContext,
}

impl TraceParent {
    /// The root of a request: the client's context (when `incoming` is given and valid) or a
    /// new trace, sampled as the tracer says.
    pub fn root(tracer: &Arc<Tracer>, incoming: Option<&HeaderValue>) -> Self {
        Self::root_of(tracer, incoming.and_then(SpanContext::from_traceparent))
    }

    fn root_of(tracer: &Arc<Tracer>, incoming: Option<SpanContext>) -> Self {
        let context = match incoming {
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
            tracer: context.sampled.then(|| Arc::clone(tracer)),
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

    /// A child span (recording only when the trace is sampled). `name` is converted only then.
    pub fn child(&self, name: impl Into<Text>, kind: SpanKind) -> Span {
        self.start(name, kind, false, 8)
    }

    fn start(&self, name: impl Into<Text>, kind: SpanKind, root: bool, capacity: usize) -> Span {
        let context = SpanContext {
            trace_id: self.context.trace_id,
            span_id: new_span_id(),
            sampled: self.context.sampled,
        };
        let recorded = self.tracer.as_ref().map(|tracer| {
            (
                Arc::clone(tracer),
                Box::new(SpanData {
                    context,
                    parent: self.is_remote(root),
                    name: name.into(),
                    kind,
                    start: now_nanos(),
                    end: 0,
                    attributes: Vec::with_capacity(capacity),
                    status: Status::Unset,
                }),
            )
        });
        Span { context, recorded }
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
        let incoming = incoming.and_then(SpanContext::from_traceparent);
        Self {
            remote: incoming.is_some(),
            parent: TraceParent::root_of(tracer, incoming),
        }
    }

    /// The request's span (room for the attributes a request span gets).
    pub fn span(&self, name: impl Into<Text>, kind: SpanKind) -> Span {
        self.parent.start(name, kind, !self.remote, 16)
    }

    /// The context, for a request whose request span is off.
    pub fn parent(&self) -> &TraceParent {
        &self.parent
    }
}

/// A span being recorded (or, unsampled, only carrying ids). Ends when dropped.
#[derive(Debug)]
pub struct Span {
    context: SpanContext,
    /// Where it goes when it ends, and what it records; `None` when the trace is unsampled.
    recorded: Option<(Arc<Tracer>, Box<SpanData>)>,
}

impl Span {
    /// Whether anything is recorded (attributes are skipped otherwise: build them only then).
    pub fn is_recording(&self) -> bool {
        self.recorded.is_some()
    }

    /// Its context.
    pub fn context(&self) -> SpanContext {
        self.context
    }

    /// A parent for its children.
    pub fn as_parent(&self) -> TraceParent {
        TraceParent {
            tracer: self.recorded.as_ref().map(|(t, _)| Arc::clone(t)),
            context: self.context,
        }
    }

    fn data(&mut self) -> Option<&mut SpanData> {
        self.recorded.as_mut().map(|(_, data)| &mut **data)
    }

    /// Sets an attribute.
    pub fn set(&mut self, key: &'static str, value: impl Into<AttrValue>) {
        if let Some(data) = self.data() {
            data.attributes
                .push(Attr::One(Key::Borrowed(key), value.into()));
        }
    }

    /// Sets every attribute of `attributes` (shared, not copied).
    pub fn set_shared(&mut self, attributes: &SharedAttributes) {
        if attributes.is_empty() {
            return;
        }
        if let Some(data) = self.data() {
            data.attributes.push(Attr::Shared(Arc::clone(attributes)));
        }
    }

    /// Adds `http.<direction>.header.<name>` attributes, except the skipped headers.
    pub fn set_headers(&mut self, direction: &str, headers: &HeaderMap, skip: &[String]) {
        let Some(data) = self.data() else {
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
            data.attributes.push(Attr::One(
                Key::Owned(format!("http.{direction}.header.{}", name.as_str())),
                AttrValue::Strs(values),
            ));
        }
    }

    /// Sets the status.
    pub fn set_status(&mut self, status: Status) {
        if let Some(data) = self.data() {
            data.status = status;
        }
    }

    /// Ends it (dropping it does the same).
    pub fn end(self) {}
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some((tracer, mut data)) = self.recorded.take() {
            data.end = now_nanos();
            tracer.push(data);
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
