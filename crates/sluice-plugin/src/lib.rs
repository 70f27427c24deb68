//! The executor: the one swap point between Sluice's proxy layer and the network.
//!
//! The proxy layer builds a [`BackendRequest`] exactly as KrakenD would send it (method, absolute
//! URL, filtered headers, body) and hands it to the backend's [`Executor`]. The default executor
//! is the gateway's pooled HTTP client (`sluice-client`); a client plugin is another executor,
//! made once per backend at start-up by a [`ClientPlugin`] factory found by name in the
//! [`Registry`]. Compiled-in Rust plugins and WebAssembly components register the same way.

mod body;
mod chain;
mod coding;
mod error;
mod forwarded;
mod outbound;
mod registry;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use body::{
    Body, BodyBuffer, BoxError, CollectError, DeadlinePassed, collect, empty, full, with_deadline,
};
pub use chain::{Chain, ChainLink, Flow, Hooks, not_hooks_message};
pub use coding::{ContentCoding, decode_content, gunzip};
pub use error::{ErrorKind, ErrorSource, ExecError};
pub use forwarded::{ForwardedFields, HOP_BY_HOP, connection_listed, hop_by_hop_index};
pub use outbound::{AllowedHosts, Origin, OutboundClient, error_outcome};
pub use registry::{ClientPlugin, PluginContext, PluginError, Registry, RegistryError};

pub use tokio::time::Instant;

/// A boxed, sendable future, as returned by [`Executor::execute`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The request the gateway is about to send to one backend.
#[derive(Debug, Clone)]
pub struct BackendRequest {
    /// Upper-cased method (the backend's `method`, defaulting to the endpoint's).
    pub method: http::Method,
    /// Absolute URL: chosen host + url_pattern with params + forwarded query.
    pub url: http::Uri,
    /// Headers after the `input_headers` filter, plus X-Forwarded-* and User-Agent.
    pub headers: http::HeaderMap,
    /// The client's body (each backend has its own cheap clone).
    pub body: bytes::Bytes,
}

/// A backend's answer. The body may still be streaming (for `no-op` pass-through).
pub type BackendResponse = http::Response<Body>;

/// An answer an executor already decoded to data, carried in the response's extensions
/// (`response.extensions_mut().insert(Decoded(value))`, body empty): a gRPC backend's messages
/// mapped to JSON. The backend stage takes it as the `json` body it stands for, without
/// writing and parsing the text; only an encoding that needs text (`no-op`, `string`, `xml`)
/// gets it serialised.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded(pub serde_json::Value);

/// Which of an answer's headers the caller reads ([`CallContext::answer_headers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnswerHeaders {
    /// Every header, as the backend sent it.
    #[default]
    All,
    /// Only `Content-Type`, `Content-Length`, `Content-Encoding` and `Location`: what the
    /// proxy's backend stage reads of an answer it decodes (KrakenD hands no other header of
    /// it on). An executor may leave the others out and save building them; it need not.
    Content,
    /// What `Content` keeps in the map, and every other field but the hop-by-hop ones as the
    /// backend wrote it, in a [`ForwardedFields`] among the response's extensions: for an
    /// answer handed on to the client unread (`no-op`). An executor may put them in the map
    /// instead (all of them, as for `All`); it need not.
    Forward,
}

impl AnswerHeaders {
    /// Whether a header named `name` is kept in the map.
    pub fn keeps(self, name: &http::HeaderName) -> bool {
        self == Self::All
            || *name == http::header::CONTENT_TYPE
            || *name == http::header::CONTENT_LENGTH
            || *name == http::header::CONTENT_ENCODING
            || *name == http::header::LOCATION
    }
}

/// What an executor knows about the call beyond the request itself.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The instant by which the backend answer must be complete.
    pub deadline: Instant,
    /// The largest response body the pipeline will buffer, in bytes.
    pub max_body_bytes: usize,
    /// The origins every hop of the call (redirects included) must belong to. `None` for the
    /// gateway's own backend calls, which follow redirects anywhere as KrakenD's do; the
    /// [`OutboundClient`] handed to plugins sets it, so a redirect cannot take a plugin's call
    /// to a host its config never granted.
    pub allowed_hosts: Option<Arc<AllowedHosts>>,
    /// Resend the body when following a 307 or 308 redirect
    /// (`backend/http/client.send_body_on_redirect`). Without it a 307/308 answer to a request
    /// with a body is returned as it came, as KrakenD's Go client does.
    pub send_body_on_redirect: bool,
    /// The span the call belongs to (the plugin's span for a plugin's outbound calls), when
    /// the request is traced: outbound calls are its children and carry its `traceparent`.
    pub trace: Option<sluice_telemetry::TraceParent>,
    /// The endpoint's `{params}` by name as the endpoint writes them, percent-decoded: filled
    /// only for executors that ask for them ([`Executor::needs_route_params`]), empty otherwise.
    pub params: Vec<(String, String)>,
    /// Set by a caller that stops awaiting the call at `deadline` itself (the proxy's backend
    /// stage; the plugin host's outbound calls): an executor then arms no timer of its own for
    /// it (each costs a registration in tokio's timer wheel). A call made from a task that
    /// outlives the caller's wait must not carry it.
    pub caller_enforces_deadline: bool,
    /// The answer's headers the caller reads: set to [`AnswerHeaders::Content`] only for an
    /// executor that says it reads no other itself ([`Executor::reads_only_content_headers`]).
    pub answer_headers: AnswerHeaders,
}

impl CallContext {
    /// A context with the given deadline and body limit, no host restriction, bodies not
    /// resent on redirects, no route params, and the deadline left to the executor to enforce.
    pub fn new(deadline: Instant, max_body_bytes: usize) -> Self {
        Self {
            deadline,
            max_body_bytes,
            allowed_hosts: None,
            send_body_on_redirect: false,
            trace: None,
            params: Vec::new(),
            caller_enforces_deadline: false,
            answer_headers: AnswerHeaders::All,
        }
    }

    /// Whether a hop to `uri` is allowed (always, without a restriction).
    pub fn check_host(&self, uri: &http::Uri) -> Result<(), ExecError> {
        match &self.allowed_hosts {
            None => Ok(()),
            Some(allowed) => allowed.check(uri),
        }
    }

    /// Time left until the deadline (zero once it has passed).
    pub fn remaining(&self) -> std::time::Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Turns a built backend request into a backend response.
///
/// Implementations must respect `ctx.deadline` as far as they can; the pipeline also bounds
/// every call with it, so an executor that overruns is cut off and its answer discarded.
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// Performs (or answers) one backend call.
    fn execute<'a>(
        &'a self,
        request: BackendRequest,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>>;

    /// Whether the executor reads the endpoint's `{params}` ([`CallContext::params`]); asked once,
    /// when the pipeline is built. An HTTP backend gets them through its `url_pattern` already;
    /// a gRPC backend maps them into its input message.
    fn needs_route_params(&self) -> bool {
        false
    }

    /// Whether the executor, and everything it hands the call to, reads no header of the answer
    /// but those [`AnswerHeaders::Content`] keeps: then a caller that reads no other either may
    /// ask for those alone, and the default client builds no other. Asked once, when the
    /// pipeline is built; `false` (the default) for anything that may look at the answer's
    /// headers (a plugin, a cache).
    fn reads_only_content_headers(&self) -> bool {
        false
    }

    /// The executor's hooks, when its plugin serves in hooks mode (`on_request` and/or
    /// `on_response` around a call it does not make itself): what lets it stand before another
    /// plugin in a chain ([`Chain`]). Asked once per chain call; `None` (the default) for an
    /// executor that answers the call itself.
    fn hooks(&self) -> Option<&dyn Hooks> {
        None
    }

    /// The executor as `Any`, for a caller with a path of its own for a concrete executor
    /// (the backend stage awaits the built-in client's call in place, not boxed); `None`
    /// (the default) for any other.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// A shared executor, as held by each backend stage.
pub type SharedExecutor = Arc<dyn Executor>;
