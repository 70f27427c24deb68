//! The default executor: the gateway's own pooled HTTP client.
//!
//! One [`DefaultClient`] serves every backend (and every plugin's outgoing call), so keep-alive
//! pooling, timeouts and TLS are shared. It behaves as KrakenD's Go transport does where backends
//! can tell: it asks for gzip unless the client already chose an encoding, the request is a
//! `HEAD` or asks for a `Range` (and decodes the gzip answers it asked for transparently), and it
//! follows redirects (301/302/303 become GET, 307/308 keep the method, and the body only with
//! `send_body_on_redirect`), adding a `Referer` and dropping credentials when a redirect leaves
//! the host. A call restricted to allowed hosts (a plugin's) is checked
//! on every hop.
//!
//! https backends are verified against the system's roots (and `client_tls`, see [`tls`]); a
//! backend with its own `client_tls` gets a client (and a pool) of its own, built once.

mod h1;
mod pool;
pub mod tls;

#[doc(hidden)]
pub use h1::{NameCache, ends_in_chunked, parse_decimal, parsed_value, read_answer};

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::Either;
use http::header::{self, HeaderValue};
use http::{Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sluice_config::{ClientTls, TransportOptions};
use sluice_plugin::{
    BackendRequest, BackendResponse, BoxFuture, CallContext, ErrorKind, ExecError, Executor, full,
};

const MAX_REDIRECTS: usize = 10;

/// Headers that carry credentials, dropped on a redirect that leaves the host.
const CREDENTIAL_HEADERS: [header::HeaderName; 5] = [
    header::AUTHORIZATION,
    header::WWW_AUTHENTICATE,
    header::COOKIE,
    header::HeaderName::from_static("cookie2"),
    header::PROXY_AUTHORIZATION,
];

pub use tls::TlsError;

/// The pooled connections' connector: TCP, then TLS for https, the TLS handshake bounded.
#[derive(Debug, Clone)]
struct Connector {
    inner: hyper_rustls::HttpsConnector<HttpConnector>,
    /// The dial and the handshake together, for https.
    https_limit: Duration,
}

impl Connector {
    /// How every client of Sluice connects: the dialer's timeouts and keep-alive, no Nagle,
    /// TLS as `tls` says with ALPN offering HTTP/2 (and HTTP/1.1 when `http1`).
    fn new(
        options: &TransportOptions,
        tls: Option<&ClientTls>,
        http1: bool,
    ) -> Result<Self, TlsError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        if !options.dialer_timeout.is_zero() {
            http.set_connect_timeout(Some(options.dialer_timeout));
        }
        if !options.dialer_keep_alive.is_zero() {
            http.set_keepalive(Some(options.dialer_keep_alive));
        }
        http.set_happy_eyeballs_timeout(Some(options.dialer_fallback_delay));
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls::client_config(tls)?)
            .https_or_http();
        let inner = if http1 {
            builder.enable_http1().enable_http2().wrap_connector(http)
        } else {
            builder.enable_http2().wrap_connector(http)
        };
        Ok(Self {
            inner,
            https_limit: options.dialer_timeout + tls::BACKEND_HANDSHAKE_TIMEOUT,
        })
    }
}

type Stream = hyper_rustls::MaybeHttpsStream<hyper_util::rt::TokioIo<tokio::net::TcpStream>>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let https = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        let authority = uri.authority().map(ToString::to_string).unwrap_or_default();
        let connect = self.inner.call(uri);
        let limit = self.https_limit;
        Box::pin(async move {
            if !https {
                return connect.await;
            }
            match tokio::time::timeout(limit, connect).await {
                Ok(Ok(stream)) => Ok(stream),
                Ok(Err(e)) => Err(match tls::find_tls_error(e.as_ref()) {
                    Some(tls) => format!(
                        "TLS handshake with {authority} failed: {}",
                        tls::describe(tls)
                    )
                    .into(),
                    None => e,
                }),
                Err(_) => Err(format!(
                    "connecting to {authority} (the dial and the TLS handshake) took longer than {limit:?}"
                )
                .into()),
            }
        })
    }
}

/// The gateway's pooled HTTP/1.1 and HTTP/2 client.
#[derive(Debug, Clone)]
pub struct DefaultClient {
    /// https backends (HTTP/1.1 or HTTP/2, as ALPN decides).
    client: Client<Connector, Full<Bytes>>,
    /// Plain-http backends: HTTP/1.1 on a pool of Sluice's own.
    plain: pool::Http1Pool,
    ask_for_gzip: bool,
    response_header_timeout: Option<Duration>,
}

impl DefaultClient {
    /// A client configured from the service's transport options and TLS settings (the
    /// service's `client_tls`, or a backend's own; `None` for the defaults).
    ///
    /// # Errors
    /// A certificate or key of `tls` that does not load, with its JSON path.
    pub fn new(options: &TransportOptions, tls: Option<&ClientTls>) -> Result<Self, TlsError> {
        let connector = Connector::new(options, tls, true)?;
        let plain = pool::Http1Pool::new(
            connector.clone(),
            if options.disable_keep_alives {
                0
            } else {
                options.max_idle_connections_per_host
            },
            (!options.idle_connection_timeout.is_zero()).then_some(options.idle_connection_timeout),
        );

        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_timer(hyper_util::rt::TokioTimer::new());
        if options.disable_keep_alives {
            builder.pool_max_idle_per_host(0);
        } else {
            builder.pool_max_idle_per_host(options.max_idle_connections_per_host);
            if !options.idle_connection_timeout.is_zero() {
                builder.pool_idle_timeout(options.idle_connection_timeout);
            }
        }
        Ok(Self {
            client: builder.build(connector),
            plain,
            ask_for_gzip: !options.disable_compression,
            response_header_timeout: (!options.response_header_timeout.is_zero())
                .then_some(options.response_header_timeout),
        })
    }

    /// The call [`Executor::execute`] makes, for a caller that bounds it by `ctx.deadline`
    /// itself and awaits it in place (no box): redirects followed, gzip decoded.
    ///
    /// Borrows `request`: an `async fn` keeps a parameter it owns twice in its state
    /// (rust-lang/rust#62958), and this one is moved with every call.
    pub async fn send_following_redirects(
        &self,
        request: &BackendRequest,
        ctx: &CallContext,
    ) -> Result<BackendResponse, ExecError> {
        // Go's transport asks for gzip only when the request chose no encoding, is not a HEAD
        // (nginx answers those wrongly) and asks for no Range (a slice of a gzip document
        // cannot be decoded). One pass over a request's few names costs less than two lookups
        // (a hash each).
        let we_asked_for_gzip = self.ask_for_gzip
            && request.method != Method::HEAD
            && !request
                .headers
                .keys()
                .any(|name| name == header::ACCEPT_ENCODING || name == header::RANGE);
        let options = pool::SendOptions {
            ask_for_gzip: we_asked_for_gzip,
            answer_headers: ctx.answer_headers,
        };
        ctx.check_host(&request.url)?;
        let response = self.send_once(request, options).await?;
        // Redirects and gzip are followed and decoded in futures of their own, boxed when they
        // happen: kept inline they would make every call's future, moved on its way up, larger.
        let response = match redirect_to(&response, request, ctx) {
            None => response,
            Some(location) => {
                let request = request.clone();
                Box::pin(self.follow_redirects(request, response, location, options, ctx)).await?
            }
        };
        if we_asked_for_gzip
            && sluice_plugin::ContentCoding::of(response.headers())
                == sluice_plugin::ContentCoding::Gzip
        {
            return Box::pin(decode_gzip(response, ctx.max_body_bytes)).await;
        }
        Ok(response)
    }

    /// Follows the redirect `response` (to `location`) answered to `request`, and those after
    /// it, up to [`MAX_REDIRECTS`]: the final answer.
    async fn follow_redirects(
        &self,
        mut request: BackendRequest,
        mut response: BackendResponse,
        mut location: Uri,
        options: pool::SendOptions,
        ctx: &CallContext,
    ) -> Result<BackendResponse, ExecError> {
        for _ in 0..MAX_REDIRECTS {
            redirect(&mut request, response.status(), location, ctx)?;
            response = self.send_once(&request, options).await?;
            match redirect_to(&response, &request, ctx) {
                None => return Ok(response),
                Some(next) => location = next,
            }
        }
        check_redirect_host(&location, ctx)?;
        Err(ExecError::upstream(
            ErrorKind::Protocol,
            format!("stopped after {MAX_REDIRECTS} redirects"),
        ))
    }

    async fn send_once(
        &self,
        request: &BackendRequest,
        options: pool::SendOptions,
    ) -> Result<BackendResponse, ExecError> {
        // Plain http goes through Sluice's own HTTP/1.1 pool, which writes the request's head
        // from it as it is (`Host` from the URL's authority as written, as Go's client sends
        // it) and builds only the answer's headers the options name; https (which may speak
        // HTTP/2) and a URL with user info but no `Host` through hyper-util's, every header.
        if request.url.scheme() == Some(&http::uri::Scheme::HTTP)
            && (request
                .url
                .authority()
                .is_some_and(|a| !a.as_str().contains('@'))
                || request.headers.contains_key(header::HOST))
        {
            // Without a header timeout (the default) the pool's future is awaited as it is,
            // not wrapped: it is the largest part of every call's future.
            let sent = match self.response_header_timeout {
                None => self.plain.send(request, options).await,
                Some(limit) => Box::pin(tokio::time::timeout(
                    limit,
                    self.plain.send(request, options),
                ))
                .await
                .map_err(|_| ExecError::timeout())?,
            };
            return Ok(sent
                .map_err(|e| classify_pooled(e, &request.url))?
                .map(boxed));
        }
        let mut builder = http::Request::builder()
            .method(request.method.clone())
            .uri(request.url.clone());
        if let Some(headers) = builder.headers_mut() {
            headers.clone_from(&request.headers);
            if options.ask_for_gzip {
                headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
            }
            // The body is always known in full, so its length is exact (never chunked: Go's
            // client chunks a body of unknown length). An empty body: `Content-Length: 0` for
            // POST, PUT and PATCH, none for any other method, as Go's `shouldSendContentLength`
            // decides for a request without a body; a client's own Content-Length or
            // Transfer-Encoding never decides. (The plain-http pool writes the same.)
            headers.remove(header::TRANSFER_ENCODING);
            if request.body.is_empty()
                && !matches!(request.method, Method::POST | Method::PUT | Method::PATCH)
            {
                headers.remove(header::CONTENT_LENGTH);
            } else {
                headers.insert(
                    header::CONTENT_LENGTH,
                    HeaderValue::from(request.body.len()),
                );
            }
        }
        let outgoing = builder
            .body(Full::new(request.body.clone()))
            .map_err(|e| ExecError::upstream(ErrorKind::Other, format!("invalid request: {e}")))?;
        Ok(self
            .within_header_timeout(self.client.request(outgoing))
            .await?
            .map_err(|e| classify(&e, &request.url))?
            .map(boxed))
    }

    /// `call`, bounded by `response_header_timeout` when one is set. Not an `async fn`: that
    /// would keep `call` twice in its state (as the argument and inside the timeout), and the
    /// whole backend call moves through it.
    fn within_header_timeout<F: Future>(
        &self,
        call: F,
    ) -> impl Future<Output = Result<F::Output, ExecError>> {
        match self.response_header_timeout {
            Some(limit) => Either::Left(
                tokio::time::timeout(limit, call).map(|r| r.map_err(|_| ExecError::timeout())),
            ),
            None => Either::Right(call.map(Ok)),
        }
    }
}

/// A backend answer's body as the plugin contract carries it.
fn boxed<B>(body: B) -> sluice_plugin::Body
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    body.map_err(|e| -> sluice_plugin::BoxError { Box::new(e) })
        .boxed_unsync()
}

impl Executor for DefaultClient {
    fn execute<'a>(
        &'a self,
        request: BackendRequest,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        if ctx.caller_enforces_deadline {
            return Box::pin(async move { self.send_following_redirects(&request, ctx).await });
        }
        Box::pin(async move {
            tokio::time::timeout_at(ctx.deadline, self.send_following_redirects(&request, ctx))
                .await
                .unwrap_or_else(|_| Err(ExecError::timeout()))
        })
    }

    /// It reads `Location` (a redirect) and `Content-Encoding` (the gzip it asked for) only.
    fn reads_only_content_headers(&self) -> bool {
        true
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// An HTTP/2-only pooled client, for backends that speak nothing else (gRPC): HTTP/2 with prior
/// knowledge on `http` URLs (h2c), HTTP/2 negotiated by ALPN on `https` ones, verified and
/// presenting certificates as the TLS settings say (as [`DefaultClient`]'s).
///
/// It shares the default client's connection settings (dialer timeout and keep-alive, no
/// Nagle, the dial-and-handshake deadline), so one place decides how Sluice connects.
/// Connections are pooled per host and multiplexed: concurrent calls share a connection, within
/// the server's stream limit. No redirects are followed and nothing is decoded: the caller
/// reads frames and trailers.
#[derive(Debug, Clone)]
pub struct Http2Client {
    client: Client<Connector, Full<Bytes>>,
}

impl Http2Client {
    /// A client with `options`' connection settings and `tls` (a backend's own `client_tls`,
    /// or the service's; `None` for the defaults); a connection unused for `idle_timeout` is
    /// closed (zero keeps idle connections until the server closes them).
    ///
    /// # Errors
    /// A certificate or key of `tls` that does not load, with its JSON path.
    pub fn new(
        options: &TransportOptions,
        idle_timeout: Duration,
        tls: Option<&ClientTls>,
    ) -> Result<Self, TlsError> {
        let connector = Connector::new(options, tls, false)?;
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .http2_only(true)
            // Larger windows than the RFC's 64 KiB: an answer of a few hundred KiB arrives
            // without waiting for window updates.
            .http2_initial_stream_window_size(1 << 20)
            .http2_initial_connection_window_size(4 << 20)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .http2_keep_alive_timeout(Duration::from_secs(20));
        if !idle_timeout.is_zero() {
            builder.pool_idle_timeout(idle_timeout);
        }
        Ok(Self {
            client: builder.build(connector),
        })
    }

    /// Sends `request` and returns the answer's head, its body still to be read. Connect
    /// failures are [`ErrorKind::Connect`] (nothing reached the backend), anything else
    /// [`ErrorKind::Protocol`].
    pub async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<hyper::body::Incoming>, ExecError> {
        let url = request.uri().clone();
        self.client
            .request(request)
            .await
            .map_err(|e| classify(&e, &url))
    }
}

/// Whether `to` is `from` or one of its subdomains (host names only, ports aside, as Go compares).
fn same_or_subdomain(to: Option<&str>, from: Option<&str>) -> bool {
    let (Some(to), Some(from)) = (to, from) else {
        return false;
    };
    let (to, from) = (to.to_ascii_lowercase(), from.to_ascii_lowercase());
    to == from
        || (!from.starts_with('[')
            && from.parse::<std::net::IpAddr>().is_err()
            && to.len() > from.len() + 1
            && to.ends_with(&from)
            && to.as_bytes()[to.len() - from.len() - 1] == b'.')
}

/// Where `response` to `request` redirects to, if it is a redirect to follow: Go's client does
/// not replay a body it cannot rewind, so KrakenD hands a 307/308 to a request with a body back
/// as it came unless `send_body_on_redirect`.
fn redirect_to(
    response: &BackendResponse,
    request: &BackendRequest,
    ctx: &CallContext,
) -> Option<Uri> {
    let status = response.status();
    redirect_target(status, response, &request.url).filter(|_| {
        ctx.send_body_on_redirect
            || request.body.is_empty()
            || !matches!(
                status,
                StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
            )
    })
}

/// Every hop of a plugin's call stays within its allowed hosts.
fn check_redirect_host(location: &Uri, ctx: &CallContext) -> Result<(), ExecError> {
    ctx.check_host(location).map_err(|e| ExecError {
        message: format!("redirect refused: {}", e.message),
        ..e
    })
}

/// Makes `request` the one a `status` redirect to `location` asks for, as Go's client does
/// (refused when `location` is outside the call's allowed hosts).
fn redirect(
    request: &mut BackendRequest,
    status: StatusCode,
    location: Uri,
    ctx: &CallContext,
) -> Result<(), ExecError> {
    check_redirect_host(&location, ctx)?;
    // Go's client switches to GET (and drops the body) for 301/302/303 unless the method was
    // HEAD; 307/308 resend as they were.
    if matches!(
        status,
        StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND | StatusCode::SEE_OTHER
    ) && request.method != Method::HEAD
    {
        request.method = Method::GET;
        request.body = Bytes::new();
        request.headers.remove(header::CONTENT_TYPE);
        request.headers.remove(header::CONTENT_LENGTH);
    }
    // Credentials go only to the same host or its subdomains (Go's rule, so KrakenD's).
    if !same_or_subdomain(location.host(), request.url.host()) {
        for name in CREDENTIAL_HEADERS {
            request.headers.remove(name);
        }
    }
    if let Ok(referer) = HeaderValue::from_str(&request.url.to_string()) {
        request.headers.insert(header::REFERER, referer);
    }
    request.url = location;
    Ok(())
}

fn redirect_target(status: StatusCode, response: &BackendResponse, base: &Uri) -> Option<Uri> {
    if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = response.headers().get(header::LOCATION)?.to_str().ok()?;
    resolve(base, location)
}

/// Resolves a `Location` against the request URL (absolute, absolute-path or relative-path).
fn resolve(base: &Uri, location: &str) -> Option<Uri> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.parse().ok();
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}").parse().ok();
    }
    let path = if location.starts_with('/') {
        location.to_owned()
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(dir, _)| dir);
        format!("{dir}/{location}")
    };
    format!("{scheme}://{authority}{path}").parse().ok()
}

fn classify(error: &hyper_util::client::legacy::Error, url: &Uri) -> ExecError {
    let kind = if error.is_connect() {
        ErrorKind::Connect
    } else {
        ErrorKind::Protocol
    };
    let mut message = format!("request to {url}: {error}");
    push_causes(&mut message, error);
    // A TLS failure after the handshake (TLS 1.3 servers refuse a client certificate then).
    if !error.is_connect()
        && let Some(tls) = tls::find_tls_error(error)
    {
        message.push_str(" (TLS: ");
        message.push_str(&tls::describe(tls));
        message.push(')');
    }
    ExecError::upstream(kind, message)
}

/// A failure of the plain-http pool, in the words hyper-util's client uses for the same.
fn classify_pooled(error: pool::PoolError, url: &Uri) -> ExecError {
    let (kind, what, error): (_, _, Box<dyn std::error::Error + Send + Sync>) = match error {
        pool::PoolError::Connect(e) => (ErrorKind::Connect, "Connect", e),
        pool::PoolError::Send(e) => (ErrorKind::Protocol, "SendRequest", Box::new(e)),
    };
    let mut message = format!("request to {url}: client error ({what}): {error}");
    push_causes(&mut message, error.as_ref());
    ExecError::upstream(kind, message)
}

/// Appends `: cause` for each error in `error`'s source chain.
fn push_causes(message: &mut String, error: &(dyn std::error::Error + 'static)) {
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
}

/// Go's transparent decoding: only when the gateway asked for gzip and the answer is gzip
/// (any other coding is handed on as it came, for the backend stage to judge).
async fn decode_gzip(
    response: BackendResponse,
    max_body_bytes: usize,
) -> Result<BackendResponse, ExecError> {
    if sluice_plugin::ContentCoding::of(response.headers()) != sluice_plugin::ContentCoding::Gzip {
        return Ok(response);
    }
    let (mut parts, body) = response.into_parts();
    let compressed = sluice_plugin::collect(body, max_body_bytes).await?;
    let decoded = sluice_plugin::decode_content(&mut parts.headers, compressed, max_body_bytes)?;
    Ok(BackendResponse::from_parts(parts, full(decoded)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn subdomains() {
        assert!(same_or_subdomain(Some("a.example"), Some("a.example")));
        assert!(same_or_subdomain(Some("x.a.example"), Some("a.example")));
        assert!(!same_or_subdomain(Some("xa.example"), Some("a.example")));
        assert!(!same_or_subdomain(Some("a.example"), Some("x.a.example")));
        assert!(!same_or_subdomain(Some("1.127.0.0.1"), Some("127.0.0.1")));
        assert!(!same_or_subdomain(None, Some("a")));
    }

    #[test]
    fn resolves_locations() {
        let base: Uri = "http://a:1/x/y?z=1".parse().unwrap();
        assert_eq!(resolve(&base, "/p/").unwrap(), "http://a:1/p/");
        assert_eq!(resolve(&base, "q").unwrap(), "http://a:1/x/q");
        assert_eq!(resolve(&base, "http://b/c").unwrap(), "http://b/c");
        assert_eq!(resolve(&base, "//c:2/d").unwrap(), "http://c:2/d");
    }
}
