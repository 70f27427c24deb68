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
//! tracer). A recorded one encodes each attribute into OTLP's protobuf as it is set (values
//! borrowed from the request, no copy of their own), into a buffer reused from span to span;
//! when it ends, it is written into the export batch. Attributes fixed when the gateway is
//! built (a stage's, the config's static ones) are encoded once ([`SharedAttributes`]).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::pb::{Pb, delimited_len, key_bool, key_double, key_int, key_text, key_text_parts};

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
#[inline]
pub(crate) fn write_hex(out: &mut [u8], bytes: &[u8]) {
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

/// Unix time in nanoseconds, for span times.
fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
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

/// Attributes fixed when the gateway is built (the config's static ones, a stage's), shared
/// by every span that carries them: encoded once, copied into each span as bytes.
#[derive(Debug, Clone, Default)]
pub struct SharedAttributes(Arc<[u8]>);

impl SharedAttributes {
    /// No attribute.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Shares `attributes` (from the config).
pub fn shared_attributes(attributes: &[(String, String)]) -> SharedAttributes {
    let mut pb = Pb::default();
    for (k, v) in attributes {
        attribute(&mut pb, k, AttrValue::Str(v));
    }
    SharedAttributes(pb.0.into())
}

/// An attribute value, encoded as soon as it is set (so it may borrow the request).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttrValue<'a> {
    /// Text.
    Str(&'a str),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
}

impl AttrValue<'_> {
    /// A method.
    pub fn method(method: &Method) -> AttrValue<'_> {
        AttrValue::Str(method.as_str())
    }
}

impl<'a> From<&'a str> for AttrValue<'a> {
    fn from(s: &'a str) -> Self {
        AttrValue::Str(s)
    }
}
impl<'a> From<&'a String> for AttrValue<'a> {
    fn from(s: &'a String) -> Self {
        AttrValue::Str(s)
    }
}
impl<'a> From<&'a Arc<str>> for AttrValue<'a> {
    fn from(s: &'a Arc<str>) -> Self {
        AttrValue::Str(s)
    }
}
impl From<bool> for AttrValue<'_> {
    fn from(b: bool) -> Self {
        AttrValue::Bool(b)
    }
}
impl From<i64> for AttrValue<'_> {
    fn from(i: i64) -> Self {
        AttrValue::Int(i)
    }
}
impl From<f64> for AttrValue<'_> {
    fn from(f: f64) -> Self {
        AttrValue::Float(f)
    }
}

/// Field 9 of OTLP's `Span`: one `KeyValue`.
const SPAN_ATTRIBUTE: u32 = 9;

/// Writes one span attribute (`KeyValue { key, value: AnyValue }`).
#[inline(always)]
fn attribute(pb: &mut Pb, key: &str, value: AttrValue<'_>) {
    match value {
        AttrValue::Str(text) => key_text(pb, SPAN_ATTRIBUTE, key, text),
        AttrValue::Bool(b) => key_bool(pb, SPAN_ATTRIBUTE, key, b),
        AttrValue::Int(i) => key_int(pb, SPAN_ATTRIBUTE, key, i),
        AttrValue::Float(f) => key_double(pb, SPAN_ATTRIBUTE, key, f),
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

/// Ended spans, encoded as OTLP `Span` messages (each a `ScopeSpans.spans` field), in the
/// order they ended: one export request's worth at most.
#[derive(Debug, Default)]
pub(crate) struct SpanBatch {
    pb: Pb,
    spans: usize,
}

impl SpanBatch {
    /// The encoded spans.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.pb.0
    }

    /// The encoded spans, to send (the buffer comes back through [`Tracer::recycle`]).
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.pb.0
    }

    /// How many spans it holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.spans
    }
}

/// The queue of ended spans: batches, oldest first.
#[derive(Debug, Default)]
struct Queue {
    batches: VecDeque<SpanBatch>,
    spans: usize,
    /// An exported batch's buffer, kept for the next one (a batch is a few hundred KiB).
    spare: Option<Pb>,
}

/// Where ended spans wait for export, and how new traces are sampled.
#[derive(Debug)]
pub struct Tracer {
    queue: Mutex<Queue>,
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
            queue: Mutex::new(Queue::default()),
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

    /// Queues an ended span: `write` encodes its fields, `len` bytes, into the batch.
    fn push(&self, len: usize, write: impl FnOnce(&mut Pb)) {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if queue.spans >= QUEUE_CAPACITY {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        queue.spans += 1;
        if queue
            .batches
            .back()
            .is_none_or(|b| b.spans >= crate::otlp::BATCH)
        {
            let pb = queue.spare.take().unwrap_or_default();
            queue.batches.push_back(SpanBatch { pb, spans: 0 });
        }
        let Some(batch) = queue.batches.back_mut() else {
            return;
        };
        batch.pb.key(2, 2);
        batch.pb.varint(len as u64);
        let at = batch.pb.0.len();
        write(&mut batch.pb);
        debug_assert_eq!(batch.pb.0.len() - at, len, "a span's length as worked out");
        batch.spans += 1;
        if batch.spans == crate::otlp::BATCH {
            self.ready.notify_one();
        }
    }

    /// The oldest batch of ended spans.
    pub(crate) fn drain(&self) -> Option<SpanBatch> {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let batch = queue.batches.pop_front()?;
        queue.spans -= batch.spans;
        Some(batch)
    }

    /// Gives an exported batch's buffer back, for the next batch.
    pub(crate) fn recycle(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        queue.spare.get_or_insert(Pb(buffer));
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
        self.start(name, kind, false)
    }

    fn start(&self, name: impl Into<Text>, kind: SpanKind, root: bool) -> Span {
        let context = SpanContext {
            trace_id: self.context.trace_id,
            span_id: new_span_id(),
            sampled: self.context.sampled,
        };
        let recorded = self.tracer.as_ref().map(|tracer| Recording {
            tracer: Arc::clone(tracer),
            parent: self.is_remote(root),
            name: name.into(),
            kind,
            start: now_nanos(),
            attributes: Pb(attribute_buffer()),
            status: Status::Unset,
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

    /// The request's span.
    pub fn span(&self, name: impl Into<Text>, kind: SpanKind) -> Span {
        self.parent.start(name, kind, !self.remote)
    }

    /// The context, for a request whose request span is off.
    pub fn parent(&self) -> &TraceParent {
        &self.parent
    }
}

thread_local! {
    /// Attribute buffers of ended spans, reused by the next spans started on this thread.
    static SPARE_BUFFERS: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Buffers kept per thread, and the largest kept (a span that reported many headers).
const SPARE_BUFFERS_MAX: usize = 64;
const SPARE_BUFFER_BYTES_MAX: usize = 16 << 10;

fn attribute_buffer() -> Vec<u8> {
    SPARE_BUFFERS
        .try_with(|spare| spare.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| Vec::with_capacity(512))
}

fn recycle_buffer(mut buffer: Vec<u8>) {
    if buffer.capacity() > SPARE_BUFFER_BYTES_MAX {
        return;
    }
    buffer.clear();
    let _ = SPARE_BUFFERS.try_with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < SPARE_BUFFERS_MAX {
            spare.push(buffer);
        }
    });
}

/// What a sampled span records until it ends: its attributes are encoded as they are set.
#[derive(Debug)]
struct Recording {
    tracer: Arc<Tracer>,
    parent: Option<[u8; 8]>,
    name: Text,
    kind: SpanKind,
    /// Unix nanoseconds.
    start: u64,
    /// `KeyValue` messages (field 9 of `Span`), in the order they were set.
    attributes: Pb,
    status: Status,
}

/// A span being recorded (or, unsampled, only carrying ids). Ends when dropped.
#[derive(Debug)]
pub struct Span {
    context: SpanContext,
    /// What it records; `None` when the trace is unsampled.
    recorded: Option<Recording>,
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
            tracer: self.recorded.as_ref().map(|r| Arc::clone(&r.tracer)),
            context: self.context,
        }
    }

    /// Sets an attribute.
    pub fn set<'a>(&mut self, key: &str, value: impl Into<AttrValue<'a>>) {
        if let Some(r) = &mut self.recorded {
            attribute(&mut r.attributes, key, value.into());
        }
    }

    /// Sets a text attribute written by `value`'s `Display` (straight into the span).
    pub fn set_display(&mut self, key: &str, value: impl fmt::Display) {
        if let Some(r) = &mut self.recorded {
            r.attributes.message(SPAN_ATTRIBUTE, |kv| {
                kv.string(1, key);
                kv.message(2, |v| {
                    v.message(1, |text| {
                        let _ = write!(text, "{value}");
                    });
                });
            });
        }
    }

    /// Sets a URL attribute, written as `Uri`'s `Display` writes it (without its formatting
    /// machinery: the backend URL is reported on every traced request).
    pub fn set_uri(&mut self, key: &str, uri: &http::Uri) {
        if let Some(r) = &mut self.recorded {
            let scheme = uri.scheme_str();
            let (query_mark, query) = match uri.query() {
                Some(query) => ("?", query),
                None => ("", ""),
            };
            let parts = [
                scheme.unwrap_or(""),
                if scheme.is_some() { "://" } else { "" },
                uri.authority().map_or("", |a| a.as_str()),
                uri.path(),
                query_mark,
                query,
            ];
            key_text_parts(&mut r.attributes, SPAN_ATTRIBUTE, key, &parts);
        }
    }

    /// Sets every attribute of `attributes`.
    pub fn set_shared(&mut self, attributes: &SharedAttributes) {
        if let Some(r) = &mut self.recorded {
            r.attributes.0.extend_from_slice(&attributes.0);
        }
    }

    /// Adds `http.<direction>.header.<name>` attributes (each a list of its values), except
    /// the skipped headers.
    pub fn set_headers(&mut self, direction: &str, headers: &HeaderMap, skip: &[String]) {
        let Some(r) = &mut self.recorded else {
            return;
        };
        for name in headers.keys() {
            if skip.iter().any(|s| s.eq_ignore_ascii_case(name.as_str())) {
                continue;
            }
            r.attributes.message(SPAN_ATTRIBUTE, |kv| {
                kv.message(1, |key| {
                    let _ = write!(key, "http.{direction}.header.{}", name.as_str());
                });
                kv.message(2, |v| {
                    v.message(5, |array| {
                        for value in headers.get_all(name) {
                            let text = String::from_utf8_lossy(value.as_bytes());
                            array.message(1, |v| v.bytes(1, text.as_bytes()));
                        }
                    });
                });
            });
        }
    }

    /// Sets the status.
    pub fn set_status(&mut self, status: Status) {
        if let Some(r) = &mut self.recorded {
            r.status = status;
        }
    }

    /// Ends it (dropping it does the same).
    pub fn end(self) {}
}

impl Drop for Span {
    fn drop(&mut self) {
        let Some(r) = self.recorded.take() else {
            return;
        };
        let end = now_nanos();
        let context = &self.context;
        let name = r.name.as_str();
        // The fixed-size fields are gathered on the stack and appended at once: ids (and the
        // parent's), then kind (below 128: one byte), start and end.
        let mut ids = [0u8; 38];
        ids[..2].copy_from_slice(&[1 << 3 | 2, 16]);
        ids[2..18].copy_from_slice(&context.trace_id);
        ids[18..20].copy_from_slice(&[2 << 3 | 2, 8]);
        ids[20..28].copy_from_slice(&context.span_id);
        let ids = match &r.parent {
            Some(parent) => {
                ids[28..30].copy_from_slice(&[4 << 3 | 2, 8]);
                ids[30..].copy_from_slice(parent);
                &ids[..]
            }
            None => &ids[..28],
        };
        let mut times = [0u8; 20];
        times[..2].copy_from_slice(&[6 << 3, r.kind as u8]);
        times[2] = 7 << 3 | 1;
        times[3..11].copy_from_slice(&r.start.to_le_bytes());
        times[11] = 8 << 3 | 1;
        times[12..].copy_from_slice(&end.to_le_bytes());
        // `Status { code: OK }`.
        const STATUS_OK: [u8; 4] = [15 << 3 | 2, 2, 3 << 3, 1];
        // flags (field 16, fixed32: the W3C trace flags, sampled).
        const FLAGS: [u8; 6] = [0x85, 0x01, 1, 0, 0, 0];
        let status = match &r.status {
            Status::Unset => 0,
            Status::Ok => STATUS_OK.len(),
            Status::Error(message) => {
                let text = if message.is_empty() {
                    0
                } else {
                    delimited_len(message.len())
                };
                delimited_len(text + 2)
            }
        };
        let name_len = if name.is_empty() {
            0
        } else {
            delimited_len(name.len())
        };
        let len = ids.len() + name_len + times.len() + r.attributes.0.len() + status + FLAGS.len();
        r.tracer.push(len, |s| {
            s.0.extend_from_slice(ids);
            s.string(5, name);
            s.0.extend_from_slice(&times);
            s.0.extend_from_slice(&r.attributes.0);
            match &r.status {
                Status::Unset => {}
                Status::Ok => s.0.extend_from_slice(&STATUS_OK),
                Status::Error(message) => s.message(15, |st| {
                    st.string(2, message);
                    st.uint(3, 2);
                }),
            }
            s.0.extend_from_slice(&FLAGS);
        });
        recycle_buffer(r.attributes.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `set_uri` writes what `set_display` of the URL writes.
    #[test]
    fn uri_attribute() {
        let tracer = Arc::new(Tracer::new(1.0));
        for uri in [
            "http://a.b:8080/p/q?x=1&y",
            "https://h/",
            "/only/path?q",
            "/",
            "http://h",
            "*",
        ] {
            let uri: http::Uri = uri.parse().expect("uri");
            let mut ours = TraceRoot::new(&tracer, None).span("a", SpanKind::Client);
            ours.set_uri("url.full", &uri);
            let mut shown = TraceRoot::new(&tracer, None).span("a", SpanKind::Client);
            shown.set_display("url.full", &uri);
            let (Some(a), Some(b)) = (&ours.recorded, &shown.recorded) else {
                panic!("recorded");
            };
            assert_eq!(a.attributes.0, b.attributes.0, "{uri}");
        }
    }

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
        assert!(never.drain().is_none());

        let always = Arc::new(Tracer::new(1.0));
        let incoming =
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let root = TraceRoot::new(&always, Some(&incoming));
        let mut request = root.span("req", SpanKind::Server);
        request.set("n", 7i64);
        request.set_display("d", 42);
        let child = request.as_parent().child("backend", SpanKind::Internal);
        let child_ctx = child.context();
        drop(child);
        drop(request);
        let batch = always.drain().expect("two spans");
        assert_eq!(batch.len(), 2);
        let spans = decode::spans(batch.bytes());
        assert_eq!(
            spans[1].parent.as_deref(),
            Some(&[0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7][..])
        );
        assert_eq!(spans[0].parent.as_deref(), Some(&spans[1].span_id[..]));
        assert_eq!(spans[0].span_id, child_ctx.span_id);
        assert_eq!(spans[0].name, "backend");
        assert_eq!(spans[1].attributes, ["n", "d"]);
        // An unsampled client context is followed.
        let unsampled =
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
        assert!(
            !TraceRoot::new(&always, Some(&unsampled))
                .span("r", SpanKind::Server)
                .is_recording()
        );
    }

    /// Attributes set every way are written as OTLP says, in the order they were set.
    #[test]
    fn attributes_in_otlp() {
        let tracer = Arc::new(Tracer::new(1.0));
        let mut span = TraceRoot::new(&tracer, None).span("s", SpanKind::Server);
        span.set("text", "v");
        span.set("int", 5i64);
        span.set("flag", true);
        span.set_display("shown", format_args!("{}-{}", "a", 7));
        span.set_shared(&shared_attributes(&[
            ("k1".to_owned(), "v1".to_owned()),
            ("k2".to_owned(), String::new()),
        ]));
        let mut headers = HeaderMap::new();
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-a", HeaderValue::from_static("2"));
        headers.append("authorization", HeaderValue::from_static("secret"));
        span.set_headers("request", &headers, &["Authorization".to_owned()]);
        span.set_display("long", "x".repeat(300));
        drop(span);
        let batch = tracer.drain().expect("a span");
        let spans = decode::spans(batch.bytes());
        assert_eq!(
            spans[0].attributes,
            [
                "text",
                "int",
                "flag",
                "shown",
                "k1",
                "k2",
                "http.request.header.x-a",
                "long"
            ]
        );
        assert_eq!(
            spans[0].texts,
            [
                "text=v".to_owned(),
                "shown=a-7".to_owned(),
                "k1=v1".to_owned(),
                "k2=".to_owned(),
                "http.request.header.x-a=1|2".to_owned(),
                format!("long={}", "x".repeat(300)),
            ]
        );
        // Every status, and a span without a name, are written with the length worked out.
        for status in [
            Status::Ok,
            Status::Error(String::new()),
            Status::Error("x".repeat(200)),
        ] {
            let mut span = TraceRoot::new(&tracer, None).span("", SpanKind::Client);
            span.set_status(status);
        }
        assert_eq!(
            decode::spans(tracer.drain().expect("spans").bytes()).len(),
            3
        );
        // The batch's buffer is reused for the next batch.
        let buffer = batch.into_bytes();
        let at = buffer.as_ptr();
        tracer.recycle(buffer);
        drop(TraceRoot::new(&tracer, None).span("t", SpanKind::Server));
        let next = tracer.drain().expect("a span");
        assert_eq!(decode::spans(next.bytes())[0].name, "t");
        let reused = next.into_bytes();
        assert_eq!(reused.as_ptr(), at, "the recycled buffer");
    }

    /// Just enough of a protobuf reader to check the spans written above (the gateway tests
    /// decode whole export requests with the OTLP crate's generated types).
    mod decode {
        pub(super) struct Span {
            pub(super) span_id: Vec<u8>,
            pub(super) parent: Option<Vec<u8>>,
            pub(super) name: String,
            pub(super) attributes: Vec<String>,
            /// `key=value` of text and list attributes (a list as its items joined by `|`).
            pub(super) texts: Vec<String>,
        }

        fn varint(b: &[u8], i: &mut usize) -> u64 {
            let mut v = 0u64;
            let mut shift = 0;
            loop {
                let byte = b[*i];
                *i += 1;
                v |= u64::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    return v;
                }
                shift += 7;
            }
        }

        /// `(field, bytes)` of each length-delimited field; other wire types skipped.
        fn fields(b: &[u8]) -> Vec<(u64, &[u8])> {
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                let key = varint(b, &mut i);
                match key & 7 {
                    0 => {
                        varint(b, &mut i);
                    }
                    1 => i += 8,
                    5 => i += 4,
                    2 => {
                        let len = varint(b, &mut i) as usize;
                        out.push((key >> 3, &b[i..i + len]));
                        i += len;
                    }
                    wire => panic!("wire type {wire}"),
                }
            }
            out
        }

        fn text(b: &[u8]) -> String {
            String::from_utf8(b.to_vec()).expect("utf-8")
        }

        pub(super) fn spans(batch: &[u8]) -> Vec<Span> {
            fields(batch)
                .into_iter()
                .map(|(field, span)| {
                    assert_eq!(field, 2);
                    let mut s = Span {
                        span_id: Vec::new(),
                        parent: None,
                        name: String::new(),
                        attributes: Vec::new(),
                        texts: Vec::new(),
                    };
                    for (field, value) in fields(span) {
                        match field {
                            2 => s.span_id = value.to_vec(),
                            4 => s.parent = Some(value.to_vec()),
                            5 => s.name = String::from_utf8(value.to_vec()).expect("utf-8"),
                            9 => {
                                let kv = fields(value);
                                let key = text(kv[0].1);
                                if let Some(v) = kv.iter().find(|(f, _)| *f == 2).map(|f| f.1) {
                                    match fields(v).first() {
                                        Some((1, t)) => s.texts.push(format!("{key}={}", text(t))),
                                        Some((5, array)) => s.texts.push(format!(
                                            "{key}={}",
                                            fields(array)
                                                .iter()
                                                .map(|(_, item)| text(fields(item)[0].1))
                                                .collect::<Vec<_>>()
                                                .join("|")
                                        )),
                                        _ => {}
                                    }
                                }
                                s.attributes.push(key);
                            }
                            _ => {}
                        }
                    }
                    s
                })
                .collect()
        }
    }
}
