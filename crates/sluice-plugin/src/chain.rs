//! Chains of client plugins: `"name": ["auth-headers", "hmac-signer", "static-answer"]`.
//!
//! Every plugin but the last serves in hooks mode ([`Hooks`]); they run around the last one
//! like a middleware stack:
//!
//! - `on_request` in list order, each given the request as the one before it left it;
//! - then the last plugin's executor (its handle mode, or its own hooks around the client);
//! - then `on_response` in reverse order.
//!
//! An `on_request` that answers by itself short-circuits: the later plugins and the backend are
//! not called, its own `on_response` is not called (the answer is its own), and the
//! `on_response` of every plugin before it still runs, innermost first. An error anywhere fails
//! the backend call at once (no `on_response` sees an error) and names the plugin that failed.

use std::sync::Arc;

use crate::{
    BackendRequest, BackendResponse, BoxFuture, CallContext, ErrorKind, ErrorSource, ExecError,
    Executor, Instant, OutboundClient, SharedExecutor, error_outcome,
};

/// What a hooks-mode plugin's `on_request` decides.
#[derive(Debug)]
pub enum Flow {
    /// Send this (possibly changed) request on.
    Request(BackendRequest),
    /// Answer right away: nothing further is called.
    Response(BackendResponse),
}

/// A plugin serving in hooks mode, seen one hook at a time: what lets it stand before another
/// plugin in a chain. An executor offers it through [`Executor::hooks`]; a hook it does not
/// implement passes its input through unchanged.
pub trait Hooks: Send + Sync {
    /// Changes the request before it goes on, or answers it.
    fn on_request<'a>(
        &'a self,
        request: BackendRequest,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<Flow, ExecError>>;

    /// Changes the answer on its way back (the body may still be streaming).
    fn on_response<'a>(
        &'a self,
        response: BackendResponse,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>>;
}

/// One hooks-mode plugin of a chain, built for one backend.
#[derive(Debug)]
pub struct ChainLink {
    /// The plugin's registered name, for messages.
    pub name: String,
    /// Its executor, which must offer [`Executor::hooks`].
    pub executor: SharedExecutor,
    /// Its outbound client: a request it passes on must go to a host it may call.
    pub client: Arc<OutboundClient>,
    /// `sluice.plugin.calls` of this plugin (one per hook call).
    pub metrics: Option<Arc<sluice_telemetry::PluginMetrics>>,
}

/// A backend's chain: its hooks-mode links, then the last plugin's executor.
#[derive(Debug)]
pub struct Chain {
    links: Box<[ChainLink]>,
    last_name: String,
    last: SharedExecutor,
}

impl Chain {
    /// A chain of `links` around `last` (the last plugin, named `last_name`).
    ///
    /// # Errors
    /// The index of the first link whose executor is not in hooks mode, with the reason.
    pub fn new(
        links: Vec<ChainLink>,
        last_name: impl Into<String>,
        last: SharedExecutor,
    ) -> Result<Self, (usize, String)> {
        if let Some(i) = links.iter().position(|l| l.executor.hooks().is_none()) {
            return Err((i, not_hooks_message(&links[i].name)));
        }
        Ok(Self {
            links: links.into_boxed_slice(),
            last_name: last_name.into(),
            last,
        })
    }

    async fn run(
        &self,
        request: BackendRequest,
        ctx: &CallContext,
    ) -> Result<BackendResponse, ExecError> {
        // How many links passed the request on: those get `on_response`, innermost first.
        let mut passed = 0;
        let mut flow = Flow::Request(request);
        for link in &self.links {
            let Flow::Request(request) = flow else {
                break;
            };
            let hooks = link_hooks(link)?;
            let started = Instant::now();
            let result = hooks.on_request(request, ctx).await;
            let result = result.and_then(|flow| match flow {
                Flow::Request(request) => link.client.check(&request.url).map(|()| {
                    passed += 1;
                    Flow::Request(request)
                }),
                answer => Ok(answer),
            });
            record(link, &result, started);
            flow = result.map_err(|e| naming(&link.name, e))?;
        }
        let mut response = match flow {
            Flow::Request(request) => self
                .last
                .execute(request, ctx)
                .await
                .map_err(|e| naming(&self.last_name, e))?,
            Flow::Response(response) => response,
        };
        for link in self.links[..passed].iter().rev() {
            let hooks = link_hooks(link)?;
            let started = Instant::now();
            let result = hooks.on_response(response, ctx).await;
            record(link, &result, started);
            response = result.map_err(|e| naming(&link.name, e))?;
        }
        Ok(response)
    }
}

impl Executor for Chain {
    fn execute<'a>(
        &'a self,
        request: BackendRequest,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        Box::pin(self.run(request, ctx))
    }

    fn needs_route_params(&self) -> bool {
        self.last.needs_route_params() || self.links.iter().any(|l| l.executor.needs_route_params())
    }
}

/// Why a plugin cannot stand before the last one of a chain.
pub fn not_hooks_message(name: &str) -> String {
    format!(
        "plugin {name:?} answers the call itself (handle mode), so it can only be the last plugin \
         of a chain: every plugin before the last must serve in hooks mode (on-request and/or \
         on-response)"
    )
}

fn link_hooks(link: &ChainLink) -> Result<&dyn Hooks, ExecError> {
    link.executor.hooks().ok_or_else(|| {
        ExecError::new(
            ErrorSource::Internal,
            ErrorKind::Other,
            not_hooks_message(&link.name),
        )
    })
}

fn record<T>(link: &ChainLink, result: &Result<T, ExecError>, started: Instant) {
    if let Some(metrics) = &link.metrics {
        let outcome = match result {
            Ok(_) => 0,
            Err(e) => error_outcome(e.kind),
        };
        metrics.record(outcome, started.elapsed());
    }
}

/// The error, its message naming the plugin when it does not already.
fn naming(plugin: &str, error: ExecError) -> ExecError {
    if error.message.contains(&format!("plugin {plugin}")) {
        return error;
    }
    ExecError {
        message: format!("plugin {plugin}: {}", error.message),
        ..error
    }
}
