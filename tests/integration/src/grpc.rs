//! A gRPC server for the tests: HTTP/2 with prior knowledge (h2c) on `127.0.0.1:0`, gRPC
//! framing written here from the specification (not with Sluice's own code), messages decoded
//! and built with `prost-reflect` from the protos under `tests/integration/protos`, compiled
//! at run time. A handler answers each call; every call is recorded with its metadata.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost_reflect::prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// `tests/integration/protos`: the protos of the tests (and a catalog folder for configs).
pub fn protos_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("protos")
}

/// Every proto under [`protos_dir`], compiled.
///
/// # Panics
/// If they do not compile.
pub fn pool() -> DescriptorPool {
    let dir = protos_dir();
    let mut compiler = protox::Compiler::new([&dir]).expect("include path");
    compiler.include_imports(true);
    compiler
        .open_files(["flights/flight_finder.proto", "bench.proto"])
        .expect("the test protos compile");
    compiler.descriptor_pool()
}

/// A message of `type_name` from JSON (the protobuf JSON mapping), for handlers.
///
/// # Panics
/// If the type is unknown or the JSON does not fit it.
pub fn message(pool: &DescriptorPool, type_name: &str, json: &serde_json::Value) -> DynamicMessage {
    let desc = pool
        .get_message_by_name(type_name)
        .unwrap_or_else(|| panic!("no message {type_name}"));
    build(&desc, json)
}

/// Builds a message from a JSON object whose keys are field names and whose values are
/// written as the test needs them: numbers, strings, booleans, nested objects for messages,
/// arrays for repeated fields, objects for maps, enum names or numbers, `{"seconds", "nanos"}`
/// for timestamps and durations, a base64 string for bytes.
fn build(desc: &MessageDescriptor, json: &serde_json::Value) -> DynamicMessage {
    use prost_reflect::{Kind, MapKey, Value};
    fn single(kind: &Kind, json: &serde_json::Value) -> Value {
        match kind {
            Kind::Double | Kind::Float => {
                let f = json.as_f64().expect("a number");
                if matches!(kind, Kind::Float) {
                    #[allow(clippy::cast_possible_truncation)]
                    Value::F32(f as f32)
                } else {
                    Value::F64(f)
                }
            }
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                Value::I32(i32::try_from(json.as_i64().expect("an int")).expect("fits"))
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(
                json.as_i64()
                    .or_else(|| json.as_str().and_then(|s| s.parse().ok()))
                    .expect("an int64"),
            ),
            Kind::Uint32 | Kind::Fixed32 => {
                Value::U32(u32::try_from(json.as_u64().expect("a uint")).expect("fits"))
            }
            Kind::Uint64 | Kind::Fixed64 => Value::U64(
                json.as_u64()
                    .or_else(|| json.as_str().and_then(|s| s.parse().ok()))
                    .expect("a uint64"),
            ),
            Kind::Bool => Value::Bool(json.as_bool().expect("a bool")),
            Kind::String => Value::String(json.as_str().expect("a string").to_owned()),
            Kind::Bytes => {
                Value::Bytes(base64_decode(json.as_str().expect("a base64 string")).into())
            }
            Kind::Enum(e) => Value::EnumNumber(match json {
                serde_json::Value::String(name) => e
                    .get_value_by_name(name)
                    .unwrap_or_else(|| panic!("no enum value {name}"))
                    .number(),
                other => i32::try_from(other.as_i64().expect("an enum")).expect("fits"),
            }),
            Kind::Message(m) => Value::Message(build(m, json)),
        }
    }
    let mut message = DynamicMessage::new(desc.clone());
    let object = json.as_object().expect("a JSON object for a message");
    for (key, value) in object {
        let field = desc
            .get_field_by_name(key)
            .unwrap_or_else(|| panic!("{} has no field {key}", desc.full_name()));
        let v = if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                unreachable!("a map field is a message of entries")
            };
            let key_kind = entry.map_entry_key_field().kind();
            let value_kind = entry.map_entry_value_field().kind();
            Value::Map(
                value
                    .as_object()
                    .expect("an object for a map")
                    .iter()
                    .map(|(k, v)| {
                        let key = match key_kind {
                            Kind::String => MapKey::String(k.clone()),
                            _ => MapKey::I64(k.parse().expect("an integer key")),
                        };
                        (key, single(&value_kind, v))
                    })
                    .collect(),
            )
        } else if field.is_list() {
            Value::List(
                value
                    .as_array()
                    .expect("an array for a repeated field")
                    .iter()
                    .map(|v| single(&field.kind(), v))
                    .collect(),
            )
        } else {
            single(&field.kind(), value)
        };
        message.set_field(&field, v);
    }
    message
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = ALPHABET.iter().position(|a| *a == c).expect("base64") as u32;
        buffer = (buffer << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// One call as the server received it.
#[derive(Debug, Clone)]
pub struct GrpcCall {
    /// `/package.Service/Method`.
    pub path: String,
    /// The request headers (the metadata, `grpc-timeout` and `content-type` included).
    pub metadata: HeaderMap,
    /// The request message, decoded as the method's input type.
    pub request: DynamicMessage,
    /// The request's HTTP version (always HTTP/2 here).
    pub version: http::Version,
}

impl GrpcCall {
    /// A metadata value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.metadata.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What a handler answers.
#[derive(Debug, Clone, Default)]
pub struct GrpcReply {
    /// The messages (one for a unary method).
    pub messages: Vec<DynamicMessage>,
    /// `grpc-status` (0 = OK).
    pub code: u32,
    /// `grpc-message`.
    pub message: String,
    /// Initial metadata.
    pub headers: Vec<(String, String)>,
    /// Trailing metadata.
    pub trailers: Vec<(String, String)>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Answer with the status in the headers and no body (a "trailers-only" answer).
    pub trailers_only: bool,
    /// Answer this HTTP status instead of a gRPC answer.
    pub http_status: Option<u16>,
}

impl GrpcReply {
    /// OK with one message.
    pub fn ok(message: DynamicMessage) -> Self {
        Self {
            messages: vec![message],
            ..Self::default()
        }
    }

    /// OK with these messages (a server stream).
    pub fn stream(messages: Vec<DynamicMessage>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }

    /// A status other than OK, in the trailers after an empty body.
    pub fn status(code: u32, message: &str) -> Self {
        Self {
            code,
            message: message.to_owned(),
            ..Self::default()
        }
    }

    /// Adds initial metadata.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds trailing metadata.
    #[must_use]
    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        self.trailers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Waits before answering.
    #[must_use]
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

type BoxFut = Pin<Box<dyn Future<Output = GrpcReply> + Send>>;
type Handler = dyn Fn(GrpcCall) -> BoxFut + Send + Sync;
type Body = BoxBody<Bytes, Infallible>;

struct State {
    pool: DescriptorPool,
    handler: Box<Handler>,
    calls: Mutex<Vec<GrpcCall>>,
    /// Whether calls are kept for [`GrpcServer::calls`] (not by the bench backend: they would
    /// pile up for the whole run).
    record: bool,
}

/// A gRPC server in this process; the accept loop stops when it is dropped.
pub struct GrpcServer {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for GrpcServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GrpcServer {
    /// Serves `handler` on `127.0.0.1:0` (h2c); listening when this returns.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn start<F, Fut>(pool: DescriptorPool, handler: F) -> GrpcServer
    where
        F: Fn(GrpcCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = GrpcReply> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::serve(listener, pool, handler)
    }

    /// Serves `handler` on `listener`.
    pub fn serve<F, Fut>(listener: TcpListener, pool: DescriptorPool, handler: F) -> GrpcServer
    where
        F: Fn(GrpcCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = GrpcReply> + Send + 'static,
    {
        Self::serve_with(listener, pool, handler, None, true)
    }

    /// [`GrpcServer::serve`] keeping no calls ([`GrpcServer::calls`] stays empty): for a
    /// benchmark's backend, which answers millions.
    pub fn serve_unrecorded<F, Fut>(
        listener: TcpListener,
        pool: DescriptorPool,
        handler: F,
    ) -> GrpcServer
    where
        F: Fn(GrpcCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = GrpcReply> + Send + 'static,
    {
        Self::serve_with(listener, pool, handler, None, false)
    }

    /// Serves `handler` over TLS (HTTP/2 by ALPN, as gRPC servers do) on `127.0.0.1:0`;
    /// listening when this returns. [`GrpcServer::tls_url`] is its address.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn start_tls<F, Fut>(
        pool: DescriptorPool,
        acceptor: tokio_rustls::TlsAcceptor,
        handler: F,
    ) -> GrpcServer
    where
        F: Fn(GrpcCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = GrpcReply> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::serve_with(listener, pool, handler, Some(acceptor), true)
    }

    fn serve_with<F, Fut>(
        listener: TcpListener,
        pool: DescriptorPool,
        handler: F,
        tls: Option<tokio_rustls::TlsAcceptor>,
        record: bool,
    ) -> GrpcServer
    where
        F: Fn(GrpcCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = GrpcReply> + Send + 'static,
    {
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(State {
            pool,
            handler: Box::new(move |call| Box::pin(handler(call))),
            calls: Mutex::new(Vec::new()),
            record,
        });
        let accepting = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = Arc::clone(&accepting);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(answer(&state, request).await) }
                    });
                    let http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                    match tls {
                        None => {
                            let _ = http2.serve_connection(TokioIo::new(stream), service).await;
                        }
                        Some(acceptor) => {
                            // A handshake that fails (no client certificate, an unknown CA)
                            // is the client's error to see.
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let _ = http2.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        GrpcServer { addr, state, task }
    }

    /// `https://127.0.0.1:<port>` (its certificate must name 127.0.0.1).
    pub fn tls_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every call received so far.
    pub fn calls(&self) -> Vec<GrpcCall> {
        self.state
            .calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn full(bytes: Bytes) -> Body {
    http_body_util::Full::new(bytes).boxed()
}

async fn answer(state: &State, request: http::Request<Incoming>) -> http::Response<Body> {
    let path = request.uri().path().to_owned();
    let version = request.version();
    let (parts, body) = request.into_parts();
    let Ok(body) = body
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
    else {
        return plain(400, "unreadable body");
    };
    let method = path
        .trim_start_matches('/')
        .rsplit_once('/')
        .and_then(|(service, method)| {
            state
                .pool
                .get_service_by_name(service)?
                .methods()
                .find(|m| m.name() == method)
        });
    let Some(method) = method else {
        return trailers_only(12, &format!("unknown method {path}"));
    };
    // One uncompressed length-prefixed message.
    if body.len() < 5 || body[0] != 0 {
        return trailers_only(13, "malformed request framing");
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if body.len() != 5 + len {
        return trailers_only(13, "request length does not match its prefix");
    }
    let Ok(message) = DynamicMessage::decode(method.input(), body.slice(5..)) else {
        return trailers_only(13, "cannot decode the request");
    };
    let call = GrpcCall {
        path,
        metadata: parts.headers,
        request: message,
        version,
    };
    if state.record {
        state
            .calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(call.clone());
    }
    let reply = (state.handler)(call).await;
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    if let Some(status) = reply.http_status {
        return plain(status, "not a gRPC answer");
    }
    if reply.trailers_only {
        let mut response = trailers_only(reply.code, &reply.message);
        for (k, v) in &reply.headers {
            append(response.headers_mut(), k, v);
        }
        return response;
    }
    let mut frames: Vec<Result<Frame<Bytes>, Infallible>> = Vec::new();
    for m in &reply.messages {
        let encoded = m.encode_to_vec();
        let mut framed = BytesMut::with_capacity(5 + encoded.len());
        framed.put_u8(0);
        framed.put_u32(u32::try_from(encoded.len()).expect("small message"));
        framed.put_slice(&encoded);
        frames.push(Ok(Frame::data(framed.freeze())));
    }
    let mut trailers = HeaderMap::new();
    status_headers(&mut trailers, reply.code, &reply.message);
    for (k, v) in &reply.trailers {
        append(&mut trailers, k, v);
    }
    frames.push(Ok(Frame::trailers(trailers)));
    let body = StreamBody::new(futures_util::stream::iter(frames)).boxed();
    let mut response = http::Response::new(body);
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    for (k, v) in &reply.headers {
        append(response.headers_mut(), k, v);
    }
    response
}

fn append(headers: &mut HeaderMap, name: &str, value: &str) {
    headers.append(
        HeaderName::from_bytes(name.as_bytes()).expect("metadata key"),
        HeaderValue::from_str(value).expect("metadata value"),
    );
}

fn status_headers(headers: &mut HeaderMap, code: u32, message: &str) {
    headers.insert("grpc-status", HeaderValue::from(code));
    if !message.is_empty() {
        // Percent-encoded, as the specification asks.
        let encoded: String = message
            .bytes()
            .map(|b| {
                if (0x20..0x7f).contains(&b) && b != b'%' {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        headers.insert(
            "grpc-message",
            HeaderValue::from_str(&encoded).expect("encoded message"),
        );
    }
}

fn trailers_only(code: u32, message: &str) -> http::Response<Body> {
    let mut response = http::Response::new(full(Bytes::new()));
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    status_headers(response.headers_mut(), code, message);
    response
}

fn plain(status: u16, text: &'static str) -> http::Response<Body> {
    let mut response = http::Response::new(full(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    response
}

/// A message as plain JSON for assertions: the fields that are set, by proto name; enums as
/// numbers, 64-bit integers as numbers, bytes as base64, maps as objects, well-known types as
/// the messages they are (`{"seconds": ...}`).
pub fn to_json(message: &DynamicMessage) -> serde_json::Value {
    use prost_reflect::{MapKey, Value};
    fn single(value: &Value) -> serde_json::Value {
        match value {
            Value::Bool(b) => (*b).into(),
            Value::I32(n) => (*n).into(),
            Value::I64(n) => (*n).into(),
            Value::U32(n) => (*n).into(),
            Value::U64(n) => (*n).into(),
            Value::F32(f) => f64::from(*f).into(),
            Value::F64(f) => (*f).into(),
            Value::String(s) => s.clone().into(),
            Value::Bytes(b) => base64_encode(b).into(),
            Value::EnumNumber(n) => (*n).into(),
            Value::Message(m) => to_json(m),
            Value::List(items) => items.iter().map(single).collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        MapKey::String(s) => s.clone(),
                        MapKey::Bool(b) => b.to_string(),
                        MapKey::I32(n) => n.to_string(),
                        MapKey::I64(n) => n.to_string(),
                        MapKey::U32(n) => n.to_string(),
                        MapKey::U64(n) => n.to_string(),
                    };
                    (key, single(v))
                })
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
    message
        .fields()
        .map(|(field, value)| (field.name().to_owned(), single(value)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// A `google.protobuf.Value` holding `json`.
///
/// # Panics
/// If the pool lacks the well-known types.
pub fn value_message(pool: &DescriptorPool, json: &serde_json::Value) -> DynamicMessage {
    use prost_reflect::{MapKey, Value};
    let value_type = pool
        .get_message_by_name("google.protobuf.Value")
        .expect("google.protobuf.Value");
    let mut value = DynamicMessage::new(value_type);
    match json {
        serde_json::Value::Null => value.set_field_by_name("null_value", Value::EnumNumber(0)),
        serde_json::Value::Bool(b) => value.set_field_by_name("bool_value", Value::Bool(*b)),
        serde_json::Value::Number(n) => {
            value.set_field_by_name("number_value", Value::F64(n.as_f64().expect("a number")));
        }
        serde_json::Value::String(s) => {
            value.set_field_by_name("string_value", Value::String(s.clone()));
        }
        serde_json::Value::Array(items) => {
            let mut list = DynamicMessage::new(
                pool.get_message_by_name("google.protobuf.ListValue")
                    .expect("ListValue"),
            );
            list.set_field_by_name(
                "values",
                Value::List(
                    items
                        .iter()
                        .map(|i| Value::Message(value_message(pool, i)))
                        .collect(),
                ),
            );
            value.set_field_by_name("list_value", Value::Message(list));
        }
        serde_json::Value::Object(object) => {
            let mut st = DynamicMessage::new(
                pool.get_message_by_name("google.protobuf.Struct")
                    .expect("Struct"),
            );
            st.set_field_by_name(
                "fields",
                Value::Map(
                    object
                        .iter()
                        .map(|(k, v)| {
                            (
                                MapKey::String(k.clone()),
                                Value::Message(value_message(pool, v)),
                            )
                        })
                        .collect(),
                ),
            );
            value.set_field_by_name("struct_value", Value::Message(st));
        }
    }
    value
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
