//! Endpoint stages: what KrakenD configures per service, endpoint or backend beyond the proxy
//! layer (JWT validation, CORS, rate limits, bot detection, JSON-schema validation, circuit
//! breakers, caches).
//!
//! A component is a [`StageFactory`]: it names the `extra_config` namespaces it reads (so the
//! parser keeps them for it instead of refusing them), and builds, once per gateway, the
//! [`Stage`]s of the service and of each endpoint, and the layers around each backend's
//! executor. Nothing is looked up per request.
//!
//! ```text
//! request ─► service stages (before routing: CORS preflight, bot detector, service rate limit)
//!         ─► routing ─► endpoint stages (JWT, endpoint rate limit, ...) ─► body read
//!         ─► on_body (JSON schema) ─► pipeline ─► backends (executor wrapped by backend layers)
//! answer  ◄─ on_response of the endpoint stages, then of the service stages (CORS headers)
//! ```
//! A stage that refuses a request returns an [`EarlyAnswer`]; the server renders it in the one
//! place that writes responses, so every answer carries the same gateway headers.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use sluice_config::{Backend, Component, Config, Diagnostic, Endpoint};
use sluice_plugin::SharedExecutor;

/// What a stage sees of a request before its body is read.
#[derive(Debug)]
pub struct RequestHead<'a> {
    /// The method.
    pub method: &'a Method,
    /// The path as the client sent it.
    pub path: &'a str,
    /// The query string, if any.
    pub query: Option<&'a str>,
    /// The endpoint's path template (`/users/{id}`); `None` before routing.
    pub route: Option<&'a str>,
    /// The endpoint's params as the route names them (`{id}` is `id`), decoded; empty before
    /// routing. A stage may add some for the backends' `url_pattern` (JWT claims as
    /// `JWT.<claim>`), already escaped for a URL.
    pub params: &'a mut Vec<(String, String)>,
    /// The request's headers: a stage may add some for the backends (e.g. JWT claims).
    pub headers: &'a mut HeaderMap,
    /// The client's IP as the router resolved it (`X-Forwarded-For` from trusted proxies).
    pub client_ip: IpAddr,
}

/// What a stage sees of a request when its answer leaves.
#[derive(Debug, Clone, Copy)]
pub struct ResponseContext<'a> {
    /// The request's method.
    pub method: &'a Method,
    /// The request's headers as they arrived.
    pub request_headers: &'a HeaderMap,
}

/// A stage's refusal: the answer the client gets instead of the endpoint's.
#[derive(Debug, Clone)]
pub struct EarlyAnswer {
    /// The status code.
    pub status: StatusCode,
    /// Headers to send (`Content-Type` included when there is a body).
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl EarlyAnswer {
    /// An answer with no body.
    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// A text answer (`text/plain; charset=utf-8`).
    pub fn text(status: StatusCode, text: impl Into<String>) -> Self {
        let mut answer = Self::empty(status);
        answer.body = Bytes::from(text.into());
        answer.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        answer
    }

    /// A JSON answer (`application/json; charset=utf-8`).
    pub fn json(status: StatusCode, value: &serde_json::Value) -> Self {
        let mut answer = Self::empty(status);
        answer.body = Bytes::from(serde_json::to_vec(value).unwrap_or_default());
        answer.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        answer
    }

    /// The same answer with one more header.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }
}

/// What a stage decides: pass the request on, or answer it.
pub type StageResult = Result<(), EarlyAnswer>;

/// A stage's decision, when it needs to wait (a JWK fetch, a Redis round trip).
pub type StageFuture<'a> = Pin<Box<dyn Future<Output = StageResult> + Send + 'a>>;

/// A decision made at once.
pub fn decided<'a>(result: StageResult) -> StageFuture<'a> {
    Box::pin(std::future::ready(result))
}

/// The phases a stage acts in. The server skips a phase no stage of the chain acts in, and
/// what it costs: a future per stage, and for `response` the copy of the request head kept
/// for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phases {
    /// [`Stage::on_request`].
    pub request: bool,
    /// [`Stage::on_body`].
    pub body: bool,
    /// [`Stage::on_response`].
    pub response: bool,
}

impl Phases {
    /// Every phase: the default, right for any stage.
    pub const ALL: Phases = Phases {
        request: true,
        body: true,
        response: true,
    };
    /// `on_request` only (a token check, a rate limit).
    pub const REQUEST: Phases = Phases {
        request: true,
        body: false,
        response: false,
    };
    /// `on_body` only (a body validation).
    pub const BODY: Phases = Phases {
        request: false,
        body: true,
        response: false,
    };
}

/// Whether any of `stages` acts on the answer (so the request head must be kept for it).
pub fn any_on_response(stages: &[SharedStage]) -> bool {
    stages.iter().any(|s| s.phases().response)
}

/// One component's part of the request path, built once per gateway. Every phase has a default
/// that passes the request on, so a stage implements only the phases it acts in (and says which
/// in [`Stage::phases`], so the others cost nothing).
pub trait Stage: Send + Sync + fmt::Debug {
    /// Its namespace, for logs and metrics (`security/cors`).
    fn name(&self) -> &'static str;

    /// The phases it implements. The default, every phase, is always right; a narrower answer
    /// saves the others' cost, and must list every phase the stage implements.
    fn phases(&self) -> Phases {
        Phases::ALL
    }

    /// Before the body is read: the place to refuse cheaply (a missing token, a rate limit).
    fn on_request<'a>(&'a self, head: &'a mut RequestHead<'_>) -> StageFuture<'a> {
        let _ = head;
        decided(Ok(()))
    }

    /// Once the body has been read (within the body limits), before the pipeline.
    fn on_body<'a>(&'a self, head: &'a RequestHead<'_>, body: &'a Bytes) -> StageFuture<'a> {
        let _ = (head, body);
        decided(Ok(()))
    }

    /// On every answer that leaves, the stages' own refusals included.
    fn on_response(&self, request: &ResponseContext<'_>, response: &mut http::response::Parts) {
        let _ = (request, response);
    }
}

/// A shared stage.
pub type SharedStage = Arc<dyn Stage>;

/// A component: the namespaces it reads and what it builds from them.
pub trait StageFactory: Send + Sync + fmt::Debug {
    /// The namespaces it reads and where (the parser keeps them for it).
    fn components(&self) -> Vec<Component>;

    /// The service's stages, run on every request before routing.
    ///
    /// # Errors
    /// Every problem in its config, each with the file and the JSON path.
    fn service_stages(&self, config: &Config) -> Result<Vec<SharedStage>, Vec<Diagnostic>> {
        let _ = config;
        Ok(Vec::new())
    }

    /// One endpoint's stages, run after routing.
    ///
    /// # Errors
    /// Every problem in its config, each with the file and the JSON path.
    fn endpoint_stages(
        &self,
        config: &Config,
        endpoint: &Endpoint,
    ) -> Result<Vec<SharedStage>, Vec<Diagnostic>> {
        let _ = (config, endpoint);
        Ok(Vec::new())
    }

    /// A backend's executor, wrapped by this component (a rate limit, a circuit breaker, a
    /// cache); `inner` as it is when the component does not act on this backend.
    ///
    /// # Errors
    /// Every problem in its config, each with the file and the JSON path.
    fn wrap_backend(
        &self,
        config: &Config,
        endpoint: &Endpoint,
        backend: &Backend,
        inner: SharedExecutor,
    ) -> Result<SharedExecutor, Vec<Diagnostic>> {
        let _ = (config, endpoint, backend);
        Ok(inner)
    }
}

/// The components a gateway is built with, in the order their stages run.
#[derive(Debug, Clone, Default)]
pub struct Components {
    factories: Vec<Arc<dyn StageFactory>>,
}

impl Components {
    /// No component.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a component; its stages run after those of the components added before it.
    #[must_use]
    pub fn with(mut self, factory: impl StageFactory + 'static) -> Self {
        self.factories.push(Arc::new(factory));
        self
    }

    /// The namespaces they read, for [`sluice_config::LoadOptions::components`].
    pub fn namespaces(&self) -> Vec<Component> {
        self.factories.iter().flat_map(|f| f.components()).collect()
    }

    /// Every component's service stages, in order.
    ///
    /// # Errors
    /// Every problem of every component.
    pub fn service_stages(&self, config: &Config) -> Result<Vec<SharedStage>, Vec<Diagnostic>> {
        collect(self.factories.iter().map(|f| f.service_stages(config)))
    }

    /// Every component's stages for `endpoint`, in order.
    ///
    /// # Errors
    /// Every problem of every component.
    pub fn endpoint_stages(
        &self,
        config: &Config,
        endpoint: &Endpoint,
    ) -> Result<Vec<SharedStage>, Vec<Diagnostic>> {
        collect(
            self.factories
                .iter()
                .map(|f| f.endpoint_stages(config, endpoint)),
        )
    }

    /// `executor` wrapped by every component that acts on `backend` (the first added is the
    /// outermost).
    ///
    /// # Errors
    /// Every problem of every component.
    pub fn wrap_backend(
        &self,
        config: &Config,
        endpoint: &Endpoint,
        backend: &Backend,
        executor: SharedExecutor,
    ) -> Result<SharedExecutor, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        let mut executor = executor;
        for factory in self.factories.iter().rev() {
            match factory.wrap_backend(config, endpoint, backend, Arc::clone(&executor)) {
                Ok(wrapped) => executor = wrapped,
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            Ok(executor)
        } else {
            Err(errors)
        }
    }
}

fn collect(
    results: impl Iterator<Item = Result<Vec<SharedStage>, Vec<Diagnostic>>>,
) -> Result<Vec<SharedStage>, Vec<Diagnostic>> {
    let mut stages = Vec::new();
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(mut s) => stages.append(&mut s),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(stages)
    } else {
        Err(errors)
    }
}

/// Runs `stages`' `on_request` in order; the first refusal wins.
///
/// # Errors
/// The refusal.
pub async fn run_on_request(stages: &[SharedStage], head: &mut RequestHead<'_>) -> StageResult {
    for stage in stages.iter().filter(|s| s.phases().request) {
        stage.on_request(head).await?;
    }
    Ok(())
}

/// Runs `stages`' `on_body` in order; the first refusal wins.
///
/// # Errors
/// The refusal.
pub async fn run_on_body(
    stages: &[SharedStage],
    head: &RequestHead<'_>,
    body: &Bytes,
) -> StageResult {
    for stage in stages.iter().filter(|s| s.phases().body) {
        stage.on_body(head, body).await?;
    }
    Ok(())
}

/// Runs `stages`' `on_response`, last stage first (the stage that saw the request first sees
/// the answer last, as middlewares nest).
pub fn run_on_response(
    stages: &[SharedStage],
    request: &ResponseContext<'_>,
    response: &mut http::response::Parts,
) {
    for stage in stages.iter().rev().filter(|s| s.phases().response) {
        stage.on_response(request, response);
    }
}
