//! Components of the Sluice world (`sluice:plugin/http-client@0.3.0`): the fast path.
//!
//! The executor below speaks 0.3: `handle` and the hooks work on the message the store holds
//! ([`Held`], through [`messages`]). Components built on 0.2.x (whole records handed to the
//! exports) and 0.1.x (header fields as pairs) are served through the adapters in [`v0_2`] and
//! [`v0_1`], which hand their guests the held message as a record and put the answer back.

/// What each older version's adapter converts the same way between its generated types (the
/// module `$v`) and the executor's: the hook flags it answers, errors both ways, log levels.
macro_rules! older_version_conversions {
    ($v:ident) => {
        /// The hooks the component serves, as the executor's flags.
        pub(super) async fn hooks(
            plugin: &HttpClient,
            store: &mut Store<State>,
        ) -> wasmtime::Result<super::HookSet> {
            let hooks = plugin.sluice_plugin_handler().call_hooks(store).await?;
            let mut out = super::HookSet::empty();
            if hooks.contains($v::HookSet::ON_REQUEST) {
                out |= super::HookSet::ON_REQUEST;
            }
            if hooks.contains($v::HookSet::ON_RESPONSE) {
                out |= super::HookSet::ON_RESPONSE;
            }
            Ok(out)
        }

        fn error_from_guest(e: $v::Error) -> WitError {
            let kind = match e.kind {
                $v::ErrorKind::Connect => WitErrorKind::Connect,
                $v::ErrorKind::Timeout => WitErrorKind::Timeout,
                $v::ErrorKind::Protocol => WitErrorKind::Protocol,
                $v::ErrorKind::BodyTooLarge => WitErrorKind::BodyTooLarge,
                $v::ErrorKind::HostNotAllowed => WitErrorKind::HostNotAllowed,
                $v::ErrorKind::Plugin => WitErrorKind::Plugin,
                $v::ErrorKind::Other => WitErrorKind::Other,
            };
            WitError {
                kind,
                message: e.message,
            }
        }

        fn error_to_guest(e: WitError) -> $v::Error {
            let kind = match e.kind {
                WitErrorKind::Connect => $v::ErrorKind::Connect,
                WitErrorKind::Timeout => $v::ErrorKind::Timeout,
                WitErrorKind::Protocol => $v::ErrorKind::Protocol,
                WitErrorKind::BodyTooLarge => $v::ErrorKind::BodyTooLarge,
                WitErrorKind::HostNotAllowed => $v::ErrorKind::HostNotAllowed,
                WitErrorKind::Plugin => $v::ErrorKind::Plugin,
                WitErrorKind::Other => $v::ErrorKind::Other,
            };
            $v::Error {
                kind,
                message: e.message,
            }
        }

        fn level_from_guest(level: $v::Level) -> super::Level {
            match level {
                $v::Level::Trace => super::Level::Trace,
                $v::Level::Debug => super::Level::Debug,
                $v::Level::Info => super::Level::Info,
                $v::Level::Warn => super::Level::Warn,
                $v::Level::Error => super::Level::Error,
            }
        }
    };
}

mod messages;
mod v0_1;
mod v0_2;

use std::sync::Arc;

use bytes::Bytes;
use sluice_plugin::{
    AnswerHeaders, BackendRequest, BackendResponse, BoxFuture, CallContext, ErrorKind, ErrorSource,
    ExecError, Flow, ForwardedFields, Hooks, Instant, SharedExecutor,
};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::executor::{Instance, PluginExecutor, World};
use crate::plugin::Backend;
use crate::sandbox::{self, Fault, MemoryLimiter, Race, STDERR_CAPACITY};
use crate::stats::Counter;
use crate::{headers, outbound};
use messages::{Changes, Held};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "sluice:plugin/http-client@0.3.0",
        imports: {
            "sluice:plugin/host.send": async,
            "sluice:plugin/host.send-http2": async,
            "sluice:plugin/messages.[method]outgoing-request.forward": async,
        },
        exports: { default: async },
        with: {
            "sluice:plugin/messages.outgoing-request": crate::sluice_world::messages::OutgoingRequest,
            "sluice:plugin/messages.incoming-response": crate::sluice_world::messages::IncomingResponse,
        },
    });
}

use bindings::HttpClient;
use bindings::exports::sluice::plugin::handler::Answer as WitAnswer;
use bindings::sluice::plugin::types::{
    Error as WitError, ErrorKind as WitErrorKind, HookSet, Http2Response, Level,
    Request as WitRequest, Response as WitResponse,
};

/// What a whole-record `on-request` (0.2, 0.1) answers: the request to send, or an answer.
enum Flow02 {
    Request(WitRequest),
    Response(WitResponse),
}

/// Per-instance host state.
pub(crate) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    stderr: MemoryOutputPipe,
    limiter: MemoryLimiter,
    backend: Arc<Backend>,
    /// The current call's deadline (the init deadline during `init`).
    deadline: Instant,
    /// Set during request calls; `None` during `init` (no `send` then).
    max_body_bytes: Option<usize>,
    /// The current call's span (its `send`s are children of it).
    trace: Option<sluice_telemetry::TraceParent>,
    /// The status and headers of the current call's last `send` answer, as the host parsed
    /// them: a `handle` that answers with them unchanged (a pass-through) reuses them.
    sent_back: Option<Given>,
    /// The request the current `handle` call was handed: a `send` of that same request (a
    /// pass-through) reuses its parsed parts.
    handed: Option<Arc<HandedRequest>>,
    /// The handed request's URL and header map as the host parsed them: the first `send` that
    /// repeats both takes them (moved, not cloned); a `send` that repeats one clones it.
    handed_parts: Option<(http::Uri, http::HeaderMap)>,
    /// The message the current call works on.
    held: Held,
    /// What the current call changed in `held`.
    changes: Changes,
    /// The current call is `handle`'s (the one `forward` serves).
    handling: bool,
    /// The current call's number: the rep of the messages it lends (see [`messages`]).
    call: u32,
}

/// A request handed to `handle` as a record: what the guest was given (the URL and headers as
/// text).
struct HandedRequest {
    method: http::Method,
    body: Bytes,
    url: String,
    headers: Vec<u8>,
}

/// A status and headers the host gave a guest (an answer of `send`, a held answer handed over
/// whole), kept so an answer that repeats them is not parsed again: `encoded` is the list the
/// guest was given, which a pass-through hands back byte for byte.
struct Given {
    status: u16,
    headers: http::HeaderMap,
    encoded: Vec<u8>,
}

impl State {
    /// A call the guest makes (`send`, `forward`), its answer read whole. The guest call it
    /// runs in is cut at the same deadline (`call_guest`), so it arms no timer of its own.
    async fn call_out(
        &mut self,
        request: BackendRequest,
        max_body_bytes: usize,
        reads: AnswerHeaders,
    ) -> Result<(http::response::Parts, Bytes), WitError> {
        outbound::send_buffered(
            &self.backend,
            request,
            self.deadline,
            Race::Caller,
            max_body_bytes,
            self.trace.as_ref(),
            reads,
        )
        .await
        .map_err(exec_to_wit)
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl bindings::sluice::plugin::types::Host for State {}

impl bindings::sluice::plugin::host::Host for State {
    async fn send(&mut self, request: WitRequest) -> Result<WitResponse, WitError> {
        let Some(max_body_bytes) = self.max_body_bytes else {
            return Err(WitError {
                kind: WitErrorKind::Other,
                message: "send is not available during init".into(),
            });
        };
        let request = match self.handed.as_deref() {
            Some(handed) => from_wit_request_reusing(
                request,
                &handed.url,
                &handed.headers,
                handed.body.len(),
                Sent::Handed {
                    method: &handed.method,
                    parts: &mut self.handed_parts,
                },
            ),
            None => from_wit_request(request),
        }
        .map_err(exec_to_wit)?;
        let (parts, body) = self
            .call_out(request, max_body_bytes, AnswerHeaders::All)
            .await?;
        let encoded = headers::encode(&parts.headers);
        let response = WitResponse {
            status: parts.status.as_u16(),
            headers: encoded.clone(),
            body: body.into(),
        };
        self.sent_back = Some(Given {
            status: response.status,
            headers: parts.headers,
            encoded,
        });
        Ok(response)
    }

    async fn send_http2(&mut self, request: WitRequest) -> Result<Http2Response, WitError> {
        let Some(max_body_bytes) = self.max_body_bytes else {
            return Err(WitError {
                kind: WitErrorKind::Other,
                message: "send-http2 is not available during init".into(),
            });
        };
        let request = from_wit_request(request).map_err(exec_to_wit)?;
        let (parts, body, trailers) = outbound::send_http2(
            &self.backend,
            request,
            self.deadline,
            Race::Caller,
            max_body_bytes,
        )
        .await
        .map_err(exec_to_wit)?;
        Ok(Http2Response {
            status: parts.status.as_u16(),
            headers: headers::encode(&parts.headers),
            body: body.into(),
            trailers: headers::encode(&trailers),
        })
    }

    fn log(&mut self, level: Level, message: String) {
        let plugin = self.backend.plugin.as_str();
        match level {
            Level::Trace => tracing::trace!(target: "sluice::plugin", plugin, "{message}"),
            Level::Debug => tracing::debug!(target: "sluice::plugin", plugin, "{message}"),
            Level::Info => tracing::info!(target: "sluice::plugin", plugin, "{message}"),
            Level::Warn => tracing::warn!(target: "sluice::plugin", plugin, "{message}"),
            Level::Error => tracing::error!(target: "sluice::plugin", plugin, "{message}"),
        }
    }
}

/// The linker of the Sluice world: our `host` interface plus WASI p2 (what Rust's std
/// imports), with no filesystem, network, environment or inherited stdio.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<State>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    HttpClient::add_to_linker::<State, HasSelf<State>>(&mut linker, |s| s)?;
    v0_2::add_to_linker(&mut linker)?;
    v0_1::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// The versions of the Sluice world the host serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// `sluice:plugin@0.1.x`: header fields as pairs.
    V0_1,
    /// `sluice:plugin@0.2.x`: header fields as one encoded list.
    V0_2,
    /// `sluice:plugin@0.3.x`: the hooks work on the message the host holds.
    V0_3,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Version::V0_1 => "0.1",
            Version::V0_2 => "0.2",
            Version::V0_3 => "0.3",
        })
    }
}

impl Version {
    /// The version a component's handler export names (`sluice:plugin/handler@0.2.0`), if it
    /// is one the host serves; matched by semver, so 0.1.0 and 0.1.1 are both 0.1.
    pub(crate) fn of_export(name: &str) -> Option<Version> {
        match name.strip_prefix(EXPORT_PREFIX)? {
            v if v.starts_with("0.3.") => Some(Version::V0_3),
            v if v.starts_with("0.2.") => Some(Version::V0_2),
            v if v.starts_with("0.1.") => Some(Version::V0_1),
            _ => None,
        }
    }
}

/// The export that marks a Sluice-world component, before its version.
pub(crate) const EXPORT_PREFIX: &str = "sluice:plugin/handler@";

/// A compiled component of this world, pre-instantiated.
pub(crate) struct Loaded {
    pre: Pre,
    version: Version,
}

#[derive(Clone)]
enum Pre {
    V0_3(bindings::HttpClientPre<State>),
    V0_2(v0_2::HttpClientPre<State>),
    V0_1(v0_1::HttpClientPre<State>),
}

impl Loaded {
    pub(crate) fn new(
        linker: &Linker<State>,
        component: &Component,
        version: Version,
    ) -> Result<Self, String> {
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| format!("the component needs imports the host does not provide: {e:#}"))?;
        let not_ours =
            |e: wasmtime::Error| format!("not a sluice:plugin/http-client component: {e:#}");
        let pre = match version {
            Version::V0_3 => Pre::V0_3(bindings::HttpClientPre::new(pre).map_err(not_ours)?),
            Version::V0_2 => Pre::V0_2(v0_2::HttpClientPre::new(pre).map_err(not_ours)?),
            Version::V0_1 => Pre::V0_1(v0_1::HttpClientPre::new(pre).map_err(not_ours)?),
        };
        Ok(Loaded { pre, version })
    }

    /// The version of the world the component targets.
    pub(crate) fn version(&self) -> Version {
        self.version
    }
}

/// An instance of either version.
pub(crate) enum Guest {
    V0_3(HttpClient),
    V0_2(v0_2::HttpClient),
    V0_1(v0_1::HttpClient),
}

/// The Sluice world, for one backend: the component pre-instantiated, and the hooks it serves
/// (none: `handle` mode).
pub(crate) struct SluiceWorld {
    pre: Pre,
    hooks: HookSet,
}

type SluiceExecutor = PluginExecutor<SluiceWorld>;

/// Validates the settings with `init` on a first instance and builds the executor.
pub(crate) async fn build(
    loaded: &Loaded,
    backend: Arc<Backend>,
) -> Result<SharedExecutor, String> {
    let deadline = Instant::now() + backend.engine.options.init_timeout;
    let mut instance = new_instance(&loaded.pre, &backend, deadline)
        .await
        .map_err(|e| e.message)?;
    let hooks = match &instance.guest {
        Guest::V0_3(plugin) => {
            plugin
                .sluice_plugin_handler()
                .call_hooks(&mut instance.store)
                .await
        }
        Guest::V0_2(plugin) => v0_2::hooks(plugin, &mut instance.store).await,
        Guest::V0_1(plugin) => v0_1::hooks(plugin, &mut instance.store).await,
    };
    let hooks = hooks.map_err(|e| SluiceWorld::classify(&backend, &instance.store, &e).message)?;
    let world = SluiceWorld {
        pre: loaded.pre.clone(),
        hooks,
    };
    Ok(Arc::new(PluginExecutor::new(world, backend, instance)))
}

/// Instantiates and initialises a fresh instance.
async fn new_instance(
    pre: &Pre,
    backend: &Arc<Backend>,
    deadline: Instant,
) -> Result<Instance<SluiceWorld>, ExecError> {
    let engine = match pre {
        Pre::V0_3(pre) => pre.engine(),
        Pre::V0_2(pre) => pre.engine(),
        Pre::V0_1(pre) => pre.engine(),
    };
    let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
    let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
    let state = State {
        wasi,
        table: ResourceTable::new(),
        stderr,
        limiter: MemoryLimiter {
            limit: backend.limits.memory_limit,
            hit: false,
        },
        backend: Arc::clone(backend),
        deadline,
        max_body_bytes: None,
        trace: None,
        sent_back: None,
        handed: None,
        handed_parts: None,
        held: Held::Nothing,
        changes: Changes::default(),
        handling: false,
        call: 0,
    };
    let mut store = sandbox::new_store(engine, state, |s| &mut s.limiter, |s| s.deadline);
    let run = async {
        Ok::<_, wasmtime::Error>(match pre {
            Pre::V0_3(pre) => {
                let plugin = pre.instantiate_async(&mut store).await?;
                let init = plugin
                    .sluice_plugin_handler()
                    .call_init(&mut store, &backend.settings)
                    .await?;
                (Guest::V0_3(plugin), init)
            }
            Pre::V0_2(pre) => {
                let plugin = pre.instantiate_async(&mut store).await?;
                let init = plugin
                    .sluice_plugin_handler()
                    .call_init(&mut store, &backend.settings)
                    .await?;
                (Guest::V0_2(plugin), init)
            }
            Pre::V0_1(pre) => {
                let plugin = pre.instantiate_async(&mut store).await?;
                let init = plugin
                    .sluice_plugin_handler()
                    .call_init(&mut store, &backend.settings)
                    .await?;
                (Guest::V0_1(plugin), init)
            }
        })
    };
    let result = tokio::time::timeout_at(deadline, run).await;
    match result {
        Ok(Ok((plugin, Ok(())))) => Ok(Instance::new(backend, store, plugin)),
        Ok(Ok((_, Err(rejection)))) => Err(ExecError::plugin(
            ErrorKind::Other,
            format!("rejected its settings: {rejection}"),
        )),
        Ok(Err(e)) => Err(SluiceWorld::classify(backend, &store, &e)),
        Err(_elapsed) => Err(ExecError::plugin(
            ErrorKind::Timeout,
            "init ran past its deadline",
        )),
    }
}

enum Call {
    /// `handle` on the request the store holds.
    Handle,
    /// `on-request` on the request the store holds.
    OnRequest,
    /// `on-response` on the answer the store holds.
    OnResponse,
}

/// What `handle` answered.
enum Handled {
    /// An answer of the plugin's own.
    Response(WitResponse),
    /// The answer `forward` made, which the store holds.
    Forwarded,
    /// Send the request the store holds, now that the instance is free.
    Forward,
}

enum Answer {
    /// `handle`'s answer, with the last `send` answer of the call (see [`State::sent_back`]).
    Response(Result<Handled, WitError>, Option<Given>),
    /// `on-request`'s: the plugin's own answer, or `None` to send the held request.
    Request(Result<Option<WitResponse>, WitError>),
    /// `on-response`'s: the held answer is the one to pass on.
    Edited(Result<(), WitError>),
}

async fn invoke(instance: &mut Instance<SluiceWorld>, call: Call) -> wasmtime::Result<Answer> {
    let store = &mut instance.store;
    let handler = match &instance.guest {
        Guest::V0_3(plugin) => plugin.sluice_plugin_handler(),
        Guest::V0_2(plugin) => return v0_2::invoke(plugin, store, call).await,
        Guest::V0_1(plugin) => return v0_1::invoke(plugin, store, call).await,
    };
    let number = store.data().call;
    Ok(match call {
        Call::Handle => {
            let answer = handler
                .call_handle(&mut *store, messages::lend(number))
                .await?;
            Answer::Response(
                answer.and_then(|answer| match answer {
                    WitAnswer::Response(r) => Ok(Handled::Response(r)),
                    WitAnswer::Forward => Ok(Handled::Forward),
                    WitAnswer::Forwarded(r) if r.rep() == number => Ok(Handled::Forwarded),
                    WitAnswer::Forwarded(_) => Err(WitError {
                        kind: WitErrorKind::Plugin,
                        message: "handle answered with a response from an earlier call".into(),
                    }),
                }),
                None,
            )
        }
        Call::OnRequest => Answer::Request(
            handler
                .call_on_request(store, messages::lend(number))
                .await?,
        ),
        Call::OnResponse => Answer::Edited(
            handler
                .call_on_response(store, messages::lend(number))
                .await?,
        ),
    })
}

/// The request the store holds, handed to an older version's `handle` as a record: the
/// record's text is kept beside the host's parsed URL and headers, so a `send` of it
/// unchanged (a pass-through) reuses them (see [`State::handed`]).
fn hand_over(state: &mut State) -> wasmtime::Result<Arc<HandedRequest>> {
    let Held::Request(BackendRequest {
        method,
        url,
        headers,
        body,
    }) = std::mem::take(&mut state.held)
    else {
        return Err(wasmtime::format_err!("no request is held for handle"));
    };
    let handed = Arc::new(HandedRequest {
        url: url_text(&url),
        headers: headers::encode(&headers),
        method,
        body,
    });
    state.handed = Some(Arc::clone(&handed));
    state.handed_parts = Some((url, headers));
    Ok(handed)
}

/// The request the store holds, taken for an adapter that hands it over whole.
fn take_request(state: &mut State) -> wasmtime::Result<BackendRequest> {
    match std::mem::take(&mut state.held) {
        Held::Request(request) => Ok(request),
        _ => Err(wasmtime::format_err!("no request is held for on-request")),
    }
}

/// The answer the store holds, taken for an adapter that hands it over whole (every header
/// field in its map).
fn take_response(state: &mut State) -> wasmtime::Result<(http::response::Parts, Bytes)> {
    match std::mem::take(&mut state.held) {
        Held::Response(mut parts, body) => {
            ForwardedFields::into_map(&mut parts.extensions, &mut parts.headers);
            Ok((parts, body))
        }
        _ => Err(wasmtime::format_err!("no answer is held for on-response")),
    }
}

/// A whole-record `on-request` answer (0.2, 0.1) put back as 0.3's: a request replaces the
/// held one (see [`replace_request`]).
fn request_answered(
    state: &mut State,
    sent: BackendRequest,
    url: &str,
    encoded: &[u8],
    flow: Result<Flow02, WitError>,
) -> Answer {
    Answer::Request(match flow {
        Ok(Flow02::Request(r)) => replace_request(state, sent, url, encoded, r).map(|()| None),
        Ok(Flow02::Response(r)) => Ok(Some(r)),
        Err(e) => Err(e),
    })
}

/// Replaces the held request (`sent`, handed over as `url` and `encoded` headers) with a whole
/// record from the guest, keeping the host's parsed parts the guest left as they were. On an
/// error nothing is held any more: the hook's call fails.
fn replace_request(
    state: &mut State,
    sent: BackendRequest,
    url: &str,
    encoded: &[u8],
    request: WitRequest,
) -> Result<(), WitError> {
    let body_len = sent.body.len();
    let request = from_wit_request_reusing(request, url, encoded, body_len, Sent::Owned(sent))
        .map_err(exec_to_wit)?;
    state.held = Held::Request(request);
    Ok(())
}

/// A whole-record `on-response` answer (0.2, 0.1) put back as 0.3's (see
/// [`replace_response`]).
fn response_answered(
    state: &mut State,
    parts: http::response::Parts,
    encoded: Vec<u8>,
    answer: Result<WitResponse, WitError>,
) -> Answer {
    Answer::Edited(answer.and_then(|r| replace_response(state, parts, encoded, r)))
}

/// Replaces the held answer (`parts`, its headers handed over as `encoded`) with a whole
/// record from the guest, keeping the host's parsed headers when the guest left them as they
/// were. On an error nothing is held any more: the hook's call fails.
fn replace_response(
    state: &mut State,
    mut parts: http::response::Parts,
    encoded: Vec<u8>,
    r: WitResponse,
) -> Result<(), WitError> {
    let given = Given {
        status: parts.status.as_u16(),
        headers: std::mem::take(&mut parts.headers),
        encoded,
    };
    let (status, headers) =
        answer_head(&state.backend, r.status, r.headers, Some(given)).map_err(exec_to_wit)?;
    parts.status = status;
    parts.headers = headers;
    state.held = Held::Response(parts, Bytes::from(r.body));
    state.changes.framing = true;
    Ok(())
}

impl World for SluiceWorld {
    type State = State;
    type Guest = Guest;

    fn instantiate(
        &self,
        backend: &Arc<Backend>,
        deadline: Instant,
    ) -> impl Future<Output = Result<Instance<Self>, ExecError>> + Send {
        new_instance(&self.pre, backend, deadline)
    }

    /// A trap (with the guest's stderr), or any other failure of the call.
    fn classify(backend: &Backend, store: &Store<State>, error: &wasmtime::Error) -> ExecError {
        let state = store.data();
        Fault::common(error, &state.limiter)
            .unwrap_or_else(|| match error.downcast_ref::<wasmtime::Trap>() {
                Some(trap) => Fault::trap(format!(
                    "trapped ({trap}){}",
                    sandbox::stderr_detail(&state.stderr)
                )),
                None => Fault::trap(format!("failed: {error:#}")),
            })
            .report(backend)
    }

    async fn run(
        executor: &SluiceExecutor,
        request: BackendRequest,
        ctx: &CallContext,
    ) -> Result<BackendResponse, ExecError> {
        executor.run(request, ctx).await
    }

    fn hooks(executor: &SluiceExecutor) -> Option<&dyn Hooks> {
        (executor.world.hooks != HookSet::empty()).then_some(executor as &dyn Hooks)
    }

    /// The host reads no header of the backend's answer itself: a hook or `handle` that
    /// reads the answer `forward` made (or the one the host sent for it) gets every field, the
    /// ones beyond the content fields parsed only then (see [`hand_on`]); an answer the plugin
    /// makes itself carries all its headers.
    fn reads_only_content_headers(_executor: &SluiceExecutor) -> bool {
        true
    }
}

impl SluiceExecutor {
    /// Calls one export on a pooled instance, with the call's state set in its store.
    async fn call_guest(
        &self,
        call: Call,
        held: Held,
        deadline: Instant,
        ctx: &CallContext,
    ) -> Result<(Answer, Held, Changes), ExecError> {
        let (max_body_bytes, trace) = (ctx.max_body_bytes, ctx.trace.as_ref());
        let mut leased = self.checkout(deadline).await?;
        let state = leased.instance.store.data_mut();
        state.deadline = deadline;
        state.max_body_bytes = Some(max_body_bytes);
        state.trace = trace.cloned();
        state.sent_back = None;
        state.held = held;
        state.changes = Changes::default();
        state.handling = matches!(call, Call::Handle);
        state.call = state.call.wrapping_add(1);
        // Boxed: wasmtime's call future is most of this one's size, and the futures that await
        // this one (the hooks, `run`, the executor's box) would each carry and move a copy.
        let call = Box::pin(invoke(&mut leased.instance, call));
        let race = Race::of(ctx, deadline);
        let outcome = sandbox::within_race(&self.backend, deadline, race, call).await;
        let (mut held, mut changes) = (Held::Nothing, Changes::default());
        let answer = self.settle(leased, outcome, |store, answer| {
            let state = store.data_mut();
            state.max_body_bytes = None;
            state.trace = None;
            state.handed = None;
            state.handed_parts = None;
            state.handling = false;
            let sent_back = state.sent_back.take();
            if let Answer::Response(_, slot) = answer {
                *slot = sent_back;
            }
            held = std::mem::take(&mut state.held);
            changes = std::mem::take(&mut state.changes);
            true
        })?;
        Ok((answer, held, changes))
    }

    /// `on-request` alone, for a chain (the request passes through without the flag).
    async fn hook_request(
        &self,
        request: BackendRequest,
        ctx: &CallContext,
    ) -> Result<Flow, ExecError> {
        if !self.world.hooks.contains(HookSet::ON_REQUEST) {
            return Ok(Flow::Request(request));
        }
        self.on_request(request, self.backend.deadline(ctx), ctx)
            .await
    }

    /// `on-response` alone, for a chain (the answer passes through without the flag).
    async fn hook_response(
        &self,
        response: BackendResponse,
        ctx: &CallContext,
    ) -> Result<BackendResponse, ExecError> {
        if !self.world.hooks.contains(HookSet::ON_RESPONSE) {
            return Ok(response);
        }
        let deadline = self.backend.deadline(ctx);
        let (parts, body) = response.into_parts();
        let race = Race::of(ctx, deadline);
        let body = outbound::collect_body(body, deadline, race, ctx.max_body_bytes).await?;
        self.on_response(parts, body, deadline, ctx).await
    }

    /// Calls `handle` on `request`, held in the store: the plugin's own answer, the one
    /// `forward` made (its framing checked again if the plugin changed its headers or body),
    /// or, for the answer `forward`, the backend's to the request as the plugin left it, sent
    /// once the instance is back in the pool.
    async fn handle(
        &self,
        request: BackendRequest,
        deadline: Instant,
        ctx: &CallContext,
    ) -> Result<BackendResponse, ExecError> {
        let held = Held::Request(request);
        let answer = self.call_guest(Call::Handle, held, deadline, ctx).await?;
        match answer {
            (Answer::Response(Ok(Handled::Response(r)), sent_back), ..) => {
                to_backend_response(&self.backend, Ok(r), sent_back)
            }
            (Answer::Response(Ok(Handled::Forwarded), _), Held::Response(parts, body), changes) => {
                Ok(hand_on(parts, body, changes, ctx))
            }
            (Answer::Response(Ok(Handled::Forwarded), _), ..) => Err(lost(&self.backend)),
            // The instance is back in the pool: the backend call holds none.
            (Answer::Response(Ok(Handled::Forward), _), Held::Request(request), changes) => {
                self.send_unread(as_left(request, changes), deadline, ctx)
                    .await
            }
            (Answer::Response(Ok(Handled::Forward), _), Held::Nothing, _) => {
                Err(lost(&self.backend))
            }
            (Answer::Response(Ok(Handled::Forward), _), ..) => Err(plugin_error(format!(
                "plugin {}: handle answered `forward` after forwarding the request itself",
                self.backend.plugin
            ))),
            (Answer::Response(Err(e), _), ..) => Err(wit_to_exec(&self.backend, e)),
            _ => Err(unexpected_answer()),
        }
    }

    /// Calls `on-request` on `request`, held in the store: the request to send on (its
    /// framing checked again if the hook changed its headers or body), or the guest's own
    /// answer.
    async fn on_request(
        &self,
        request: BackendRequest,
        deadline: Instant,
        ctx: &CallContext,
    ) -> Result<Flow, ExecError> {
        let held = Held::Request(request);
        let answer = self
            .call_guest(Call::OnRequest, held, deadline, ctx)
            .await?;
        match answer {
            (Answer::Request(Ok(None)), Held::Request(request), changes) => {
                Ok(Flow::Request(as_left(request, changes)))
            }
            (Answer::Request(Ok(Some(r))), ..) => {
                to_backend_response(&self.backend, Ok(r), None).map(Flow::Response)
            }
            (Answer::Request(Err(e)), ..) => Err(wit_to_exec(&self.backend, e)),
            (Answer::Request(Ok(None)), Held::Nothing, _) => Err(lost(&self.backend)),
            _ => Err(unexpected_answer()),
        }
    }

    /// Calls `on-response` on a buffered answer, held in the store (its framing checked again
    /// if the hook changed its headers or body).
    async fn on_response(
        &self,
        parts: http::response::Parts,
        body: Bytes,
        deadline: Instant,
        ctx: &CallContext,
    ) -> Result<BackendResponse, ExecError> {
        let held = Held::Response(parts, body);
        let answer = self
            .call_guest(Call::OnResponse, held, deadline, ctx)
            .await?;
        match answer {
            (Answer::Edited(Ok(())), Held::Response(parts, body), changes) => {
                Ok(hand_on(parts, body, changes, ctx))
            }
            (Answer::Edited(Err(e)), ..) => Err(wit_to_exec(&self.backend, e)),
            (Answer::Edited(Ok(())), Held::Nothing, _) => Err(lost(&self.backend)),
            _ => Err(unexpected_answer()),
        }
    }

    /// Sends the request a call left (`on-request`'s `none`, `handle`'s `forward`) with no
    /// instance held, and hands the answer back unread: only the headers the caller reads are
    /// built.
    async fn send_unread(
        &self,
        request: BackendRequest,
        deadline: Instant,
        ctx: &CallContext,
    ) -> Result<BackendResponse, ExecError> {
        outbound::execute(
            &self.backend,
            request,
            deadline,
            Race::of(ctx, deadline),
            ctx.max_body_bytes,
            ctx.trace.as_ref(),
            ctx.answer_headers,
        )
        .await
    }

    async fn run(
        &self,
        request: BackendRequest,
        ctx: &CallContext,
    ) -> Result<BackendResponse, ExecError> {
        let deadline = self.backend.deadline(ctx);
        let max_body = ctx.max_body_bytes;
        if self.world.hooks == HookSet::empty() {
            return self.handle(request, deadline, ctx).await;
        }
        let request = if self.world.hooks.contains(HookSet::ON_REQUEST) {
            match self.on_request(request, deadline, ctx).await? {
                Flow::Request(request) => request,
                Flow::Response(response) => return Ok(response),
            }
        } else {
            request
        };
        if !self.world.hooks.contains(HookSet::ON_RESPONSE) {
            return self.send_unread(request, deadline, ctx).await;
        }
        // The fields the hook does not read stay unparsed (see `messages`).
        let (parts, body) = outbound::send_buffered(
            &self.backend,
            request,
            deadline,
            Race::of(ctx, deadline),
            max_body,
            ctx.trace.as_ref(),
            AnswerHeaders::Forward,
        )
        .await?;
        self.on_response(parts, body, deadline, ctx).await
    }
}

/// The request the store held, as the call left it: its framing checked again if the plugin
/// changed its headers or body.
fn as_left(mut request: BackendRequest, changes: Changes) -> BackendRequest {
    if changes.framing {
        fix_framing(&mut request.headers, request.body.len());
    }
    request
}

/// A buffered answer the store held, handed on: its framing checked again if the plugin changed
/// its headers or body, and the fields left unparsed ([`ForwardedFields`]) put in the map for a
/// caller that reads every header (one that reads fewer hands them on, or skips them).
fn hand_on(
    mut parts: http::response::Parts,
    body: Bytes,
    changes: Changes,
    ctx: &CallContext,
) -> BackendResponse {
    if changes.framing {
        fix_framing(&mut parts.headers, body.len());
    }
    if ctx.answer_headers == AnswerHeaders::All {
        ForwardedFields::into_map(&mut parts.extensions, &mut parts.headers);
    }
    http::Response::from_parts(parts, sluice_plugin::full(body))
}

/// A hook that went on after the host refused its `replace`: the message it replaced is gone,
/// so the call fails rather than send half of it.
fn lost(backend: &Backend) -> ExecError {
    plugin_error(format!(
        "plugin {}: its hook returned after the host refused the message it handed back",
        backend.plugin
    ))
}

/// An export answered with the other export's kind of answer: the host's own mistake.
fn unexpected_answer() -> ExecError {
    ExecError::new(ErrorSource::Internal, ErrorKind::Other, "unexpected answer")
}

/// In a chain, each hook is called on its own; a request counts once (at `on-request`).
impl Hooks for SluiceExecutor {
    fn on_request<'a>(
        &'a self,
        request: BackendRequest,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Flow, ExecError>> {
        let stats = &self.backend.stats;
        Box::pin(async move {
            stats.bump(Counter::Requests);
            stats.count_error(self.hook_request(request, ctx).await)
        })
    }

    fn on_response<'a>(
        &'a self,
        response: BackendResponse,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        let stats = &self.backend.stats;
        Box::pin(async move { stats.count_error(self.hook_response(response, ctx).await) })
    }
}

/// `url` as text, exactly as its `Display` writes it, in one allocation of the right size
/// (`to_string` grows its buffer through several reallocations, on every call).
fn url_text(url: &http::Uri) -> String {
    let scheme = url.scheme_str();
    let authority = url.authority().map(http::uri::Authority::as_str);
    let path = url.path();
    let query = url.query();
    let len = scheme.map_or(0, |s| s.len() + 3)
        + authority.map_or(0, str::len)
        + path.len()
        + query.map_or(0, |q| q.len() + 1);
    let mut text = String::with_capacity(len);
    if let Some(scheme) = scheme {
        text.push_str(scheme);
        text.push_str("://");
    }
    if let Some(authority) = authority {
        text.push_str(authority);
    }
    text.push_str(path);
    if let Some(query) = query {
        text.push('?');
        text.push_str(query);
    }
    text
}

fn plugin_error(message: String) -> ExecError {
    ExecError::plugin(ErrorKind::Other, message)
}

/// A request the host handed a guest: its own (`on-request`: the parts it reuses are moved),
/// or the one `handle` was handed (for a `send` of it: the method is cloned; the parsed URL
/// and headers, while the call still has them, are taken by a pass-through that repeats both
/// and cloned by a send that repeats one). Passed by value once per call and never stored, so
/// the owned variant stays inline: boxing it would cost an allocation.
#[allow(clippy::large_enum_variant)]
enum Sent<'a> {
    Owned(BackendRequest),
    Handed {
        method: &'a http::Method,
        parts: &'a mut Option<(http::Uri, http::HeaderMap)>,
    },
}

/// The request a guest handed back (`on-request`'s answer, or what it `send`s), given one
/// the host handed it (`sent`, whose URL and headers as the guest was given them are
/// `sent_url` and `sent_headers`, and whose body was `sent_body_len` bytes). Each part the
/// guest left as it was keeps the host's parsed value (checked when it was made) instead of
/// being parsed again from the guest's text.
fn from_wit_request_reusing(
    request: WitRequest,
    sent_url: &str,
    sent_headers: &[u8],
    sent_body_len: usize,
    sent: Sent<'_>,
) -> Result<BackendRequest, ExecError> {
    let sent_method = match &sent {
        Sent::Owned(r) => &r.method,
        Sent::Handed { method, .. } => *method,
    };
    let same_method = request.method == sent_method.as_str();
    let same_url = request.url == sent_url;
    let same_headers = request.headers == sent_headers;
    let (method, url, headers) = match sent {
        Sent::Owned(r) => (
            Some(r.method).filter(|_| same_method),
            Some(r.url).filter(|_| same_url),
            Some(r.headers).filter(|_| same_headers),
        ),
        Sent::Handed { method, parts } => {
            let method = same_method.then(|| method.clone());
            if same_url
                && same_headers
                && let Some((url, headers)) = parts.take()
            {
                (method, Some(url), Some(headers))
            } else {
                let (url, headers) = parts.as_ref().map_or((None, None), |(url, headers)| {
                    (
                        same_url.then(|| url.clone()),
                        same_headers.then(|| headers.clone()),
                    )
                });
                (method, url, headers)
            }
        }
    };
    let method = match method {
        Some(method) => method,
        None => parse_method(&request.method)?,
    };
    let url = match url {
        Some(url) => url,
        None => parse_url(&request.url)?,
    };
    let mut headers = match headers {
        Some(headers) => headers,
        None => headers::from_guest(|| "the plugin's request".into(), request.headers)?,
    };
    // The host's own headers framed the host's own body: with both lengths the same, the
    // framing is already right (the common pass-through), and nothing needs fixing.
    if !(same_headers && request.body.len() == sent_body_len) {
        fix_framing(&mut headers, request.body.len());
    }
    Ok(backend_request(method, url, headers, request.body))
}

/// A guest's request from its checked parts (its framing already fixed for its body).
fn backend_request(
    method: http::Method,
    url: http::Uri,
    headers: http::HeaderMap,
    body: Vec<u8>,
) -> BackendRequest {
    BackendRequest {
        method,
        url,
        headers,
        body: Bytes::from(body),
    }
}

fn parse_method(method: &str) -> Result<http::Method, ExecError> {
    http::Method::from_bytes(method.as_bytes())
        .map_err(|_| plugin_error(format!("invalid method {method:?}")))
}

fn parse_url(text: &str) -> Result<http::Uri, ExecError> {
    let url: http::Uri = text
        .parse()
        .map_err(|_| plugin_error(format!("invalid URL {text:?}")))?;
    if url.scheme().is_none() || url.authority().is_none() {
        return Err(plugin_error(format!("the URL must be absolute: {text:?}")));
    }
    Ok(url)
}

fn from_wit_request(request: WitRequest) -> Result<BackendRequest, ExecError> {
    let method = parse_method(&request.method)?;
    let url = parse_url(&request.url)?;
    let mut headers = headers::from_guest(|| "the plugin's request".into(), request.headers)?;
    fix_framing(&mut headers, request.body.len());
    Ok(backend_request(method, url, headers, request.body))
}

/// The guest's answer as the gateway's response. `given` is a status and headers the host
/// handed the guest during the call: when the answer repeats them, the host's parsed headers
/// are kept instead of parsing the guest's copy.
fn to_backend_response(
    backend: &Backend,
    answer: Result<WitResponse, WitError>,
    given: Option<Given>,
) -> Result<BackendResponse, ExecError> {
    let response = answer.map_err(|e| wit_to_exec(backend, e))?;
    let (status, mut headers) = answer_head(backend, response.status, response.headers, given)?;
    fix_framing(&mut headers, response.body.len());
    let mut out = http::Response::new(sluice_plugin::full(Bytes::from(response.body)));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// The status and headers of a guest's answer (its headers as it encoded them). `given` is a
/// status and headers the host handed the guest: when the answer repeats them, the host's
/// parsed headers are kept instead of parsing the guest's copy.
fn answer_head(
    backend: &Backend,
    status: u16,
    encoded: Vec<u8>,
    given: Option<Given>,
) -> Result<(http::StatusCode, http::HeaderMap), ExecError> {
    let code = http::StatusCode::from_u16(status).map_err(|_| {
        plugin_error(format!(
            "plugin {} answered an invalid status {status}",
            backend.plugin
        ))
    })?;
    let headers = match given {
        Some(given) if given.status == status && encoded == given.encoded => given.headers,
        _ => headers::from_guest(
            || format!("the answer of plugin {}", backend.plugin),
            encoded,
        )?,
    };
    Ok((code, headers))
}

/// Plugins hand over whole bodies: drop `transfer-encoding` and keep a `content-length` only if
/// it is the body's real length (a plugin that changed the body but copied the headers would
/// otherwise corrupt the framing).
fn fix_framing(headers: &mut http::HeaderMap, body_len: usize) {
    headers.remove(http::header::TRANSFER_ENCODING);
    if let Some(declared) = headers.get(http::header::CONTENT_LENGTH)
        && declared.to_str().ok().and_then(|v| v.parse::<usize>().ok()) != Some(body_len)
    {
        headers.insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from(body_len),
        );
    }
}

fn exec_to_wit(error: ExecError) -> WitError {
    let kind = match error.kind {
        ErrorKind::Connect => WitErrorKind::Connect,
        ErrorKind::Timeout => WitErrorKind::Timeout,
        ErrorKind::Protocol => WitErrorKind::Protocol,
        ErrorKind::BodyTooLarge => WitErrorKind::BodyTooLarge,
        ErrorKind::HostNotAllowed => WitErrorKind::HostNotAllowed,
        ErrorKind::PluginFault | ErrorKind::Overloaded | ErrorKind::Other => WitErrorKind::Other,
    };
    WitError {
        kind,
        message: error.message,
    }
}

/// An error the plugin returned: upstream kinds (as passed on from `send`) keep their source.
fn wit_to_exec(backend: &Backend, error: WitError) -> ExecError {
    let (source, kind) = match error.kind {
        WitErrorKind::Connect => (ErrorSource::Upstream, ErrorKind::Connect),
        WitErrorKind::Timeout => (ErrorSource::Upstream, ErrorKind::Timeout),
        WitErrorKind::Protocol => (ErrorSource::Upstream, ErrorKind::Protocol),
        WitErrorKind::BodyTooLarge => (ErrorSource::Upstream, ErrorKind::BodyTooLarge),
        WitErrorKind::HostNotAllowed => (ErrorSource::Plugin, ErrorKind::HostNotAllowed),
        WitErrorKind::Plugin | WitErrorKind::Other => (ErrorSource::Plugin, ErrorKind::Other),
    };
    tracing::debug!(plugin = %backend.plugin, backend = %backend.label, kind = ?kind, "plugin answered an error: {}", error.message);
    ExecError::new(source, kind, error.message)
}

#[cfg(test)]
mod tests {
    use super::url_text;

    #[test]
    fn url_text_is_what_display_writes() {
        for url in [
            "http://127.0.0.1:8080/data.json",
            "https://api.example.com/a/b?x=1&y=%20",
            "http://example.com",
            "http://example.com?q",
            "http://user@example.com:1/",
            "/relative/path?x",
            "/",
            "*",
            "example.com:443",
        ] {
            let uri: http::Uri = url.parse().expect("a valid URI");
            let text = url_text(&uri);
            assert_eq!(text, uri.to_string(), "{url}");
            assert_eq!(text.capacity(), text.len(), "{url}");
        }
    }
}
