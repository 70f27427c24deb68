//! Standard `wasi:http/proxy` components: the any-toolchain path.
//!
//! The backend request is presented to the guest's `wasi:http/incoming-handler` as an
//! incoming request whose URL (scheme, authority, path and query) is the backend URL. The
//! guest's outgoing requests (`wasi:http/outgoing-handler`) are routed through
//! [`WasiHttpHooks::send_request`] into the gateway's default client, with the same
//! allow-list and deadline as the Sluice world. Settings are offered through
//! `wasi:config/store`: one key per top-level field of the settings object, each value the
//! field's JSON text (so a string setting `"a"` reads as `"\"a\""`).

use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use sluice_plugin::{
    BackendRequest, BackendResponse, CallContext, ErrorKind, ExecError, Instant, SharedExecutor,
};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::{
    RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use crate::executor::{Instance, PluginExecutor, World};
use crate::plugin::Backend;
use crate::sandbox::{self, Fault, MemoryLimiter, Race, STDERR_CAPACITY};
use crate::{headers, outbound};

/// Resource-table entries an idle instance may hold (stdio streams and the like); more means
/// requests leave things behind, and the instance is not reused.
const MAX_RESIDENT_TABLE_ENTRIES: usize = 32;

/// Per-instance host state.
pub(crate) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: Hooks,
    config: Arc<WasiConfigVariables>,
    limiter: MemoryLimiter,
    stderr: MemoryOutputPipe,
}

/// Routes the guest's outgoing requests into the gateway's client.
struct Hooks {
    backend: Arc<Backend>,
    deadline: Instant,
    max_body_bytes: usize,
    /// The current call's span (outgoing requests are children of it).
    trace: Option<sluice_telemetry::TraceParent>,
    /// Set when the guest tried a host outside the allow-list during the current call.
    refused: bool,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for Hooks {
    fn set_host_header(&mut self) -> bool {
        false
    }

    /// The default list, checked in place: the trait's default builds an `Arc`'d filter on
    /// every call, and wasi:http asks once per header a guest sets or receives.
    fn is_forbidden_header(&mut self, name: &http::HeaderName) -> bool {
        wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS.contains(name)
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<
            dyn Future<Output = wasmtime_wasi_http::Result<(), wasmtime_wasi_http::Error>> + Send,
        >,
    ) -> ResponseFuture {
        let backend = Arc::clone(&self.backend);
        let deadline = self.deadline;
        let max_body_bytes = self.max_body_bytes;
        let trace = self.trace.clone();
        if outbound::check_allowed(&backend, request.uri()).is_err() {
            self.refused = true;
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        if let Err(e) = headers::check(|| "the plugin's request".into(), request.headers()) {
            tracing::warn!(plugin = %backend.plugin, backend = %backend.label, "plugin call refused: {}", e.message);
            let count = u32::try_from(request.headers().len()).ok();
            return Box::new(async move {
                Err(wasmtime_wasi_http::Error::HttpRequestHeaderSectionSize(
                    count,
                ))
            });
        }
        Box::new(async move {
            let (parts, body) = request.into_parts();
            let body = outbound::collect_body(body, deadline, Race::Here, max_body_bytes)
                .await
                .map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(e.message)))?;
            let request = BackendRequest {
                method: parts.method,
                url: parts.uri,
                headers: parts.headers,
                body,
            };
            let response = outbound::execute(
                &backend,
                request,
                deadline,
                Race::Here,
                max_body_bytes,
                trace.as_ref(),
                sluice_plugin::AnswerHeaders::All,
            )
            .await
            .map_err(|e| match e.kind {
                ErrorKind::Connect => wasmtime_wasi_http::Error::ConnectionRefused,
                ErrorKind::Timeout => wasmtime_wasi_http::Error::ConnectionReadTimeout,
                ErrorKind::HostNotAllowed => wasmtime_wasi_http::Error::HttpRequestDenied,
                _ => wasmtime_wasi_http::Error::InternalError(Some(e.message)),
            })?;
            let response = response.map(|body| {
                body.map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(e.to_string())))
                    .boxed_unsync()
            });
            let io: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send> =
                Box::new(async { Ok(()) });
            Ok((response, io))
        })
    }
}

/// The linker of the proxy world: WASI p2, wasi:http (outgoing calls through our hooks) and
/// wasi:config/store.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<State>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    wasmtime_wasi_config::add_to_linker(&mut linker, |s: &mut State| WasiConfig::new(&s.config))?;
    Ok(linker)
}

/// A compiled proxy component, pre-instantiated.
pub(crate) struct Loaded {
    pre: ProxyPre<State>,
}

impl Loaded {
    pub(crate) fn new(linker: &Linker<State>, component: &Component) -> Result<Self, String> {
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| format!("the component needs imports the host does not provide: {e:#}"))?;
        let pre =
            ProxyPre::new(pre).map_err(|e| format!("not a wasi:http/proxy component: {e:#}"))?;
        Ok(Loaded { pre })
    }
}

/// The wasi:http proxy world, for one backend: the component pre-instantiated, and the
/// settings as `wasi:config/store` offers them.
pub(crate) struct ProxyWorld {
    pre: ProxyPre<State>,
    config: Arc<WasiConfigVariables>,
}

type ProxyExecutor = PluginExecutor<ProxyWorld>;

/// The guest's answer as it arrives: set through the response outparam (whose sender lives in
/// the instance's table), its body collected within the deadline.
type AnswerFuture = std::pin::Pin<
    Box<dyn Future<Output = Result<(http::response::Parts, bytes::Bytes), ExecError>> + Send>,
>;

/// Builds the executor; instantiates one instance up front to surface start-up failures.
pub(crate) async fn build(
    loaded: &Loaded,
    backend: Arc<Backend>,
) -> Result<SharedExecutor, String> {
    let mut vars = WasiConfigVariables::new();
    match &backend.settings_value {
        serde_json::Value::Object(fields) => {
            for (key, value) in fields {
                vars.insert(key.clone(), value.to_string());
            }
        }
        other => {
            return Err(format!(
                "settings must be a JSON object for a wasi:http component, found {other}"
            ));
        }
    }
    let world = ProxyWorld {
        pre: loaded.pre.clone(),
        config: Arc::new(vars),
    };
    let deadline = Instant::now() + backend.engine.options.init_timeout;
    let first = world
        .instantiate(&backend, deadline)
        .await
        .map_err(|e| e.message)?;
    Ok(Arc::new(PluginExecutor::new(world, backend, first)))
}

async fn new_instance(
    pre: &ProxyPre<State>,
    backend: &Arc<Backend>,
    config: &Arc<WasiConfigVariables>,
    deadline: Instant,
) -> Result<Instance<ProxyWorld>, ExecError> {
    let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
    let mut http = WasiHttpCtx::new();
    // The guest's `fields` are `HeaderMap`s built by the host: bounded as they are built.
    http.set_field_size_limit(headers::MAX_HEADER_BYTES);
    let state = State {
        wasi: WasiCtx::builder().stderr(stderr.clone()).build(),
        table: ResourceTable::new(),
        http,
        hooks: Hooks {
            backend: Arc::clone(backend),
            deadline,
            max_body_bytes: 0,
            trace: None,
            refused: false,
        },
        config: Arc::clone(config),
        limiter: MemoryLimiter {
            limit: backend.limits.memory_limit,
            hit: false,
        },
        stderr,
    };
    let mut store = sandbox::new_store(
        pre.engine(),
        state,
        |s| &mut s.limiter,
        |s| s.hooks.deadline,
    );
    match tokio::time::timeout_at(deadline, pre.instantiate_async(&mut store)).await {
        Ok(Ok(proxy)) => Ok(Instance::new(backend, store, proxy)),
        Ok(Err(e)) => Err(ProxyWorld::classify(backend, &store, &e)),
        Err(_) => Err(ExecError::plugin(
            ErrorKind::Timeout,
            "instantiation ran past its deadline",
        )),
    }
}

impl World for ProxyWorld {
    type State = State;
    type Guest = wasmtime_wasi_http::p2::bindings::Proxy;

    fn instantiate(
        &self,
        backend: &Arc<Backend>,
        deadline: Instant,
    ) -> impl Future<Output = Result<Instance<Self>, ExecError>> + Send {
        new_instance(&self.pre, backend, &self.config, deadline)
    }

    fn classify(backend: &Backend, store: &Store<State>, error: &wasmtime::Error) -> ExecError {
        let state = store.data();
        Fault::common(error, &state.limiter)
            .unwrap_or_else(|| {
                if state.hooks.refused {
                    Fault::new(
                        ErrorKind::HostNotAllowed,
                        None,
                        "called a host not in allowed_hosts".to_owned(),
                    )
                } else {
                    // The root cause: the trap, or what the host refused (e.g. fields past
                    // their size bound); the outer error is only "error while executing" and a
                    // backtrace.
                    Fault::trap(format!(
                        "failed ({}){}",
                        error.root_cause(),
                        sandbox::stderr_detail(&state.stderr)
                    ))
                }
            })
            .report(backend)
    }

    async fn run(
        executor: &ProxyExecutor,
        request: BackendRequest,
        ctx: &CallContext,
    ) -> Result<BackendResponse, ExecError> {
        let backend = &executor.backend;
        let deadline = backend.deadline(ctx);
        let scheme = match request.url.scheme_str() {
            Some("https") => Scheme::Https,
            _ => Scheme::Http,
        };
        let mut incoming = http::Request::new(Full::new(request.body));
        *incoming.method_mut() = request.method;
        *incoming.uri_mut() = request.url;
        *incoming.headers_mut() = request.headers;
        let (tx, rx) =
            tokio::sync::oneshot::channel::<Result<http::Response<WasiBody>, ErrorCode>>();
        let max_body = ctx.max_body_bytes;
        let plugin = backend.plugin.clone();
        // The answer owns only the receiving end: it stays valid when the instance goes.
        let mut answer: AnswerFuture = Box::pin(async move {
            match rx.await {
                Ok(Ok(response)) => {
                    let (parts, body) = response.into_parts();
                    headers::check(|| format!("the answer of plugin {plugin}"), &parts.headers)?;
                    let body = outbound::collect_body(body, deadline, Race::Here, max_body).await?;
                    Ok((parts, body))
                }
                Ok(Err(code)) => Err(error_code_to_exec(&code)),
                Err(_) => Err(ExecError::plugin(
                    ErrorKind::Other,
                    format!("plugin {plugin} did not answer"),
                )),
            }
        });
        let mut leased = executor.checkout(deadline).await?;
        let hooks = &mut leased.instance.store.data_mut().hooks;
        hooks.deadline = deadline;
        hooks.max_body_bytes = max_body;
        hooks.refused = false;
        hooks.trace = ctx.trace.clone();
        let mut http = leased.instance.store.data_mut().http();
        let presented = http
            .new_incoming_request(scheme, incoming)
            .and_then(|incoming| Ok((incoming, http.new_response_outparam(tx)?)));
        let (incoming, out) = match presented {
            Ok(presented) => presented,
            Err(e) => {
                executor.discard(leased);
                return Err(ExecError::plugin(
                    ErrorKind::Other,
                    format!("cannot present the request: {e}"),
                ));
            }
        };
        // The guest sets its answer and then streams the body from within `handle`, so both
        // run together; but a trap ends the call at once. The answer's sender lives in the
        // instance's table, so nothing resolves it after a trap: waiting for both (as `join!`
        // would) holds the request until its deadline.
        let instance = &mut leased.instance;
        let race = Race::of(ctx, deadline);
        let outcome = sandbox::within_race(backend, deadline, race, async {
            let call = instance.guest.wasi_http_incoming_handler().call_handle(
                &mut instance.store,
                incoming,
                out,
            );
            tokio::pin!(call);
            tokio::select! {
                returned = &mut call => returned.map(|()| None),
                answered = &mut answer => call.await.map(|()| Some(answered)),
            }
        })
        .await;
        let mut refused = false;
        // Whatever the guest left in the table (a leaked request, body, answer) would live as
        // long as the instance: such an instance is dropped, not reused, which also ends an
        // answer it never set or finished.
        let answered = executor.settle(leased, outcome, |store, _| {
            refused = store.data().hooks.refused;
            let leftovers = holds_request_state(&mut store.data_mut().table);
            if leftovers {
                tracing::debug!(plugin = %backend.plugin, backend = %backend.label, "plugin left resources behind; instance not reused");
            }
            !leftovers
        })?;
        let answered = match answered {
            Some(answered) => answered,
            None => match tokio::time::timeout_at(deadline, answer).await {
                Ok(answered) => answered,
                // The guest returned without finishing its answer in time.
                Err(_elapsed) => Err(Fault::deadline().report(backend)),
            },
        };
        match answered {
            Ok((parts, body)) => Ok(BackendResponse::from_parts(
                parts,
                sluice_plugin::full(body),
            )),
            // The guest returned normally but answered with an error (or not at all).
            Err(_) if refused => Err(ExecError::plugin(
                ErrorKind::HostNotAllowed,
                format!(
                    "plugin {} called a host not in allowed_hosts",
                    backend.plugin
                ),
            )),
            Err(e) => Err(e),
        }
    }
}

/// Whether a finished request left wasi:http resources (or too many of any kind) in the
/// table. wasi:http streams and pollables are children of these, so they count too: a child
/// cannot outlive its parent in the table.
fn holds_request_state(table: &mut ResourceTable) -> bool {
    use wasmtime_wasi_http::FieldMap;
    use wasmtime_wasi_http::p2::body::{HostFutureTrailers, HostIncomingBody, HostOutgoingBody};
    use wasmtime_wasi_http::p2::types::{
        HostFutureIncomingResponse, HostIncomingRequest, HostIncomingResponse, HostOutgoingRequest,
        HostOutgoingResponse, HostResponseOutparam,
    };
    let mut entries = 0usize;
    for entry in table.iter_mut() {
        let entry: &dyn std::any::Any = entry;
        if entry.is::<HostIncomingRequest>()
            || entry.is::<HostIncomingBody>()
            || entry.is::<HostFutureTrailers>()
            || entry.is::<HostResponseOutparam>()
            || entry.is::<HostOutgoingResponse>()
            || entry.is::<HostOutgoingBody>()
            || entry.is::<HostOutgoingRequest>()
            || entry.is::<HostIncomingResponse>()
            || entry.is::<HostFutureIncomingResponse>()
            || entry.is::<FieldMap>()
        {
            return true;
        }
        entries += 1;
    }
    entries > MAX_RESIDENT_TABLE_ENTRIES
}

fn error_code_to_exec(code: &ErrorCode) -> ExecError {
    let kind = match code {
        ErrorCode::ConnectionRefused
        | ErrorCode::DestinationNotFound
        | ErrorCode::DestinationUnavailable => ErrorKind::Connect,
        ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionTimeout
        | ErrorCode::HttpResponseTimeout => ErrorKind::Timeout,
        ErrorCode::HttpRequestDenied => ErrorKind::HostNotAllowed,
        _ => ErrorKind::Other,
    };
    ExecError::plugin(kind, format!("the plugin answered an error: {code:?}"))
}
