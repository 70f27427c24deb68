//! In-process backends: an HTTP/1.1 server driven by a handler ([`Backend`]) and a TCP-level one
//! for answers no HTTP library would produce ([`RawBackend`]).
//!
//! Both bind `127.0.0.1:0` before returning and record what they receive, so tests can assert on
//! the requests the gateway actually sent.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One request as a backend received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// Arrival index on this backend, starting at 0 (handy for "fail the first call" backends).
    pub seq: usize,
    /// Request method.
    pub method: Method,
    /// Path, as sent (still percent-encoded).
    pub path: String,
    /// Raw query string, without `?`.
    pub query: Option<String>,
    /// All headers, multi-valued ones kept.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// The peer (the gateway's outgoing socket).
    pub peer: SocketAddr,
}

impl Received {
    /// The first value of a header, if it is valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every value of a header.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    /// Decoded query pairs, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        crate::query::parse(self.query.as_deref().unwrap_or(""))
    }

    /// Decoded query as name -> values (the shape of Go's `url.Values`).
    pub fn query_map(&self) -> BTreeMap<String, Vec<String>> {
        crate::query::to_map(self.query.as_deref().unwrap_or(""))
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The body of a [`Reply`].
#[derive(Debug, Clone)]
pub enum ReplyBody {
    /// A complete body.
    Full(Bytes),
    /// `prefix`, then `chunk` `times` times, then `suffix`, streamed frame by frame (nothing
    /// is allocated for the whole body).
    Repeat {
        /// Sent first.
        prefix: Bytes,
        /// The repeated chunk (cheap to clone).
        chunk: Bytes,
        /// How many times.
        times: usize,
        /// Sent last.
        suffix: Bytes,
    },
    /// Headers are sent, then the body never progresses.
    Stall,
    /// No answer at all: the connection is closed, as Go's server does when a handler panics.
    Abort,
}

/// What a [`Backend`] handler answers.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Headers (multi-valued allowed).
    pub headers: HeaderMap,
    /// Body.
    pub body: ReplyBody,
}

impl Reply {
    /// An empty answer with this status.
    ///
    /// # Panics
    /// If `status` is not a valid status code.
    pub fn new(status: u16) -> Self {
        Self {
            status: StatusCode::from_u16(status).expect("valid status code"),
            headers: HeaderMap::new(),
            body: ReplyBody::Full(Bytes::new()),
        }
    }

    /// Appends a header (a second call with the same name adds a second value).
    ///
    /// # Panics
    /// If the name or value is not valid in HTTP.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.append(
            HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
            HeaderValue::from_str(value).expect("valid header value"),
        );
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = ReplyBody::Full(body.into());
        self
    }

    /// Sets a streamed body: `prefix`, `chunk` repeated `times` times, `suffix`.
    #[must_use]
    pub fn repeat(mut self, prefix: Bytes, chunk: Bytes, times: usize, suffix: Bytes) -> Self {
        self.body = ReplyBody::Repeat {
            prefix,
            chunk,
            times,
            suffix,
        };
        self
    }

    /// Sends the headers and then never finishes the body.
    #[must_use]
    pub fn stall(mut self) -> Self {
        self.body = ReplyBody::Stall;
        self
    }

    /// Closes the connection without answering (Go's server after a handler panic).
    #[must_use]
    pub fn abort() -> Self {
        let mut reply = Self::new(500);
        reply.body = ReplyBody::Abort;
        reply
    }

    /// Compact JSON with `Content-Type: application/json`.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::new(status)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(value).expect("JSON serialises"))
    }

    /// JSON as Go's `json.NewEncoder(w).Encode` writes it: compact, with a trailing newline.
    pub fn go_json(status: u16, value: &serde_json::Value) -> Self {
        let mut body = serde_json::to_vec(value).expect("JSON serialises");
        body.push(b'\n');
        Self::new(status)
            .header("content-type", "application/json")
            .body(body)
    }

    /// Plain text, `Content-Type: text/plain; charset=utf-8`, body exactly `text`.
    pub fn text(status: u16, text: &str) -> Self {
        Self::new(status)
            .header("content-type", "text/plain; charset=utf-8")
            .body(text.to_owned())
    }

    /// What Go's `http.Error(w, msg, status)` writes: `msg\n` as `text/plain; charset=utf-8`
    /// with `X-Content-Type-Options: nosniff`.
    pub fn go_error(status: u16, msg: &str) -> Self {
        Self::new(status)
            .header("content-type", "text/plain; charset=utf-8")
            .header("x-content-type-options", "nosniff")
            .body(format!("{msg}\n"))
    }

    /// Go's `http.NotFound`: 404 `404 page not found\n`.
    pub fn not_found() -> Self {
        Self::go_error(404, "404 page not found")
    }

    /// The `Content-Type` it carries, if any.
    pub fn content_type(&self) -> Option<&str> {
        self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok())
    }
}

type BoxFut = Pin<Box<dyn Future<Output = Reply> + Send>>;
type HandlerFn = dyn Fn(Received) -> BoxFut + Send + Sync;
type ResponseBody = BoxBody<Bytes, Infallible>;

struct State {
    handler: Box<HandlerFn>,
    received: Mutex<Vec<Received>>,
    sent: Mutex<Vec<Bytes>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking handler must not hide what was recorded before it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An HTTP/1.1 backend in this process, answering with a handler and recording every request.
///
/// The accept loop stops when the value is dropped; open connections end with the test runtime.
pub struct Backend {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("addr", &self.addr)
            .field("received", &lock(&self.state.received).len())
            .finish()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    /// Binds `127.0.0.1:0` and serves `handler`; listening when this returns.
    ///
    /// # Panics
    /// If the loopback listener cannot be bound.
    pub async fn start<F, Fut>(handler: F) -> Backend
    where
        F: Fn(Received) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::bind(any_port, handler).await.expect("bind a backend")
    }

    /// Binds `addr` and serves `handler`; listening when this returns. For mocks that must sit
    /// on a fixed address (a config written for another harness names it).
    ///
    /// # Errors
    /// When `addr` cannot be bound (typically: already in use).
    pub async fn bind<F, Fut>(addr: SocketAddr, handler: F) -> std::io::Result<Backend>
    where
        F: Fn(Received) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            handler: Box::new(move |req| Box::pin(handler(req)) as BoxFut),
            received: Mutex::new(Vec::new()),
            sent: Mutex::new(Vec::new()),
        });
        let accept_state = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let state = Arc::clone(&accept_state);
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { handle(&state, req, peer).await }
                    });
                    // Connection errors (the gateway hanging up, a timeout) are part of the tests.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Backend { addr, state, task })
    }

    /// Like [`Backend::start`] with a synchronous handler.
    pub async fn start_sync<F>(handler: F) -> Backend
    where
        F: Fn(&Received) -> Reply + Send + Sync + 'static,
    {
        let handler = Arc::new(handler);
        Self::start(move |req| {
            let handler = Arc::clone(&handler);
            async move { handler(&req) }
        })
        .await
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, the form a KrakenD `host` entry takes.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:<port>`.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// Every request received so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state.received).clone()
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        lock(&self.state.received).len()
    }

    /// The latest request.
    ///
    /// # Panics
    /// If none arrived.
    pub fn last(&self) -> Received {
        lock(&self.state.received)
            .last()
            .cloned()
            .expect("the backend received no request")
    }

    /// The complete bodies it answered with, in the order the answers were produced.
    pub fn sent_bodies(&self) -> Vec<Bytes> {
        lock(&self.state.sent).clone()
    }
}

/// The error a handler's [`Reply::abort`] turns into, so hyper drops the connection unanswered.
#[derive(Debug)]
struct Aborted;

impl fmt::Display for Aborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the handler aborted the connection")
    }
}

impl std::error::Error for Aborted {}

async fn handle(
    state: &State,
    req: http::Request<Incoming>,
    peer: SocketAddr,
) -> Result<http::Response<ResponseBody>, Aborted> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let received = {
        let mut all = lock(&state.received);
        let r = Received {
            seq: all.len(),
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: parts.headers,
            body,
            peer,
        };
        all.push(r.clone());
        r
    };
    let reply = (state.handler)(received).await;
    let body: ResponseBody = match reply.body {
        ReplyBody::Full(bytes) => {
            lock(&state.sent).push(bytes.clone());
            Full::new(bytes).boxed()
        }
        ReplyBody::Repeat {
            prefix,
            chunk,
            times,
            suffix,
        } => {
            let frames = std::iter::once(prefix)
                .chain(std::iter::repeat_n(chunk, times))
                .chain(std::iter::once(suffix))
                .map(|c| Ok(Frame::data(c)));
            StreamBody::new(futures_util::stream::iter(frames)).boxed()
        }
        ReplyBody::Stall => StreamBody::new(futures_util::stream::pending::<
            Result<Frame<Bytes>, Infallible>,
        >())
        .boxed(),
        ReplyBody::Abort => return Err(Aborted),
    };
    let mut response = http::Response::new(body);
    *response.status_mut() = reply.status;
    *response.headers_mut() = reply.headers;
    Ok(response)
}

/// What a [`RawBackend`] does with each connection, after reading the request head.
#[derive(Debug, Clone)]
pub enum RawBehaviour {
    /// Resets the connection (RST, `SO_LINGER` 0) without answering.
    Reset,
    /// Closes the connection (FIN) without answering.
    Close,
    /// Writes these bytes verbatim, then closes.
    Write(Bytes),
}

/// A TCP-level backend for answers that break HTTP.
pub struct RawBackend {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl fmt::Debug for RawBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawBackend")
            .field("addr", &self.addr)
            .field("connections", &self.connections())
            .finish()
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawBackend {
    /// Binds `127.0.0.1:0`; listening when this returns.
    ///
    /// # Panics
    /// If the loopback listener cannot be bound.
    pub async fn start(behaviour: RawBehaviour) -> RawBackend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a raw backend");
        let addr = listener.local_addr().expect("raw backend address");
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let behaviour = behaviour.clone();
                tokio::spawn(async move {
                    let _ = serve_raw(stream, behaviour).await;
                });
            }
        });
        RawBackend {
            addr,
            connections,
            task,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many connections were accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn serve_raw(mut stream: TcpStream, behaviour: RawBehaviour) -> std::io::Result<()> {
    read_head(&mut stream).await?;
    match behaviour {
        RawBehaviour::Reset => {
            stream.set_zero_linger()?;
            drop(stream);
        }
        RawBehaviour::Close => stream.shutdown().await?,
        RawBehaviour::Write(bytes) => {
            stream.write_all(&bytes).await?;
            stream.shutdown().await?;
        }
    }
    Ok(())
}

/// Reads until the end of a request head (`\r\n\r\n`) or EOF.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(head);
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(head);
        }
    }
}
