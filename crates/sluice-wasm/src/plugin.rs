//! A loaded component as the gateway's plugin factory: each backend that names it gets an
//! executor of its own (limits, settings, instances, allow-list).

use std::path::PathBuf;
use std::sync::Arc;

use sluice_plugin::{
    BoxFuture, ClientPlugin, OutboundClient, PluginContext, PluginError, SharedExecutor,
};

use crate::engine::EngineShared;
use crate::ledger::{Reservation, Slots};
use crate::limits::Limits;
use crate::stats::PluginStats;
use crate::{proxy_world, sluice_world};

/// Which world a component serves, compiled and pre-instantiated for it.
pub(crate) enum Kind {
    Sluice(sluice_world::Loaded),
    Proxy(proxy_world::Loaded),
}

impl Kind {
    pub(crate) fn world(&self) -> &'static str {
        match self {
            Kind::Sluice(_) => "sluice:plugin/http-client",
            Kind::Proxy(_) => "wasi:http/proxy",
        }
    }
}

/// One loaded component, registered under its name.
pub(crate) struct WasmPlugin {
    pub(crate) name: String,
    pub(crate) file: PathBuf,
    pub(crate) kind: Kind,
    /// Pool resources one instance takes.
    pub(crate) slots: Slots,
    pub(crate) stats: Arc<PluginStats>,
    pub(crate) engine: Arc<EngineShared>,
}

impl std::fmt::Debug for WasmPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPlugin")
            .field("name", &self.name)
            .field("file", &self.file)
            .field("world", &self.kind.world())
            .finish_non_exhaustive()
    }
}

/// What both worlds' executors know about their backend.
#[derive(Debug)]
pub(crate) struct Backend {
    pub(crate) plugin: String,
    pub(crate) label: String,
    pub(crate) limits: Limits,
    pub(crate) settings: String,
    pub(crate) settings_value: serde_json::Value,
    /// The plugin's only way out (allow-listed on every hop).
    pub(crate) client: Arc<OutboundClient>,
    pub(crate) stats: Arc<PluginStats>,
    pub(crate) engine: Arc<EngineShared>,
    /// This backend's share of the instance pool; every instance holds the backend, so the
    /// share goes back only when the last of them is gone.
    pub(crate) _reservation: Option<Reservation>,
}

impl Backend {
    /// A call's deadline: the request's, capped by the plugin's `timeout` from now.
    pub(crate) fn deadline(&self, ctx: &sluice_plugin::CallContext) -> sluice_plugin::Instant {
        match self.limits.timeout {
            Some(cap) => ctx.deadline.min(sluice_plugin::Instant::now() + cap),
            None => ctx.deadline,
        }
    }
}

impl ClientPlugin for WasmPlugin {
    fn origin(&self) -> String {
        self.file.display().to_string()
    }

    fn limit_keys(&self) -> &'static [&'static str] {
        crate::limits::KEYS
    }

    fn kind(&self) -> String {
        let world = self.kind.world();
        match &self.kind {
            Kind::Sluice(loaded) => format!("component of world {world}@{}", loaded.version()),
            Kind::Proxy(_) => format!("component of world {world}"),
        }
    }

    /// For a caller with no runtime at hand: [`ClientPlugin::build_async`] on a thread of its
    /// own. The gateway calls `build_async`.
    fn build(&self, ctx: PluginContext<'_>) -> Result<SharedExecutor, String> {
        block_on(self.build_async(ctx))?.map_err(|problems| PluginError::join(&problems))
    }

    fn build_async<'a>(
        &'a self,
        ctx: PluginContext<'a>,
    ) -> BoxFuture<'a, Result<SharedExecutor, Vec<PluginError>>> {
        Box::pin(async move {
            let backend = self.backend(ctx).map_err(|e| vec![PluginError::from(e)])?;
            let built = match &self.kind {
                Kind::Sluice(loaded) => sluice_world::build(loaded, backend).await,
                Kind::Proxy(loaded) => proxy_world::build(loaded, backend).await,
            };
            built.map_err(|e| vec![PluginError::from(e)])
        })
    }
}

impl WasmPlugin {
    /// The backend's state: its limits checked against the host's, its share of the pool
    /// reserved, its settings as JSON text.
    fn backend(&self, ctx: PluginContext<'_>) -> Result<Arc<Backend>, String> {
        let limits = Limits::from_extra(ctx.extra)?;
        if limits.memory_limit > self.engine.options.max_memory_size {
            return Err(format!(
                "memory_limit: {} bytes is above the host's maximum of {} bytes",
                limits.memory_limit, self.engine.options.max_memory_size
            ));
        }
        let reservation = match &self.engine.ledger {
            Some(ledger) => Some(ledger.reserve(&self.name, limits.max_instances, self.slots)?),
            None => None,
        };
        let settings_value = match ctx.settings {
            None | Some(serde_json::Value::Null) => serde_json::json!({}),
            Some(settings) => settings.clone(),
        };
        Ok(Arc::new(Backend {
            plugin: self.name.clone(),
            label: ctx.backend_label.to_owned(),
            limits,
            settings: settings_value.to_string(),
            settings_value,
            client: ctx.client,
            stats: Arc::clone(&self.stats),
            engine: Arc::clone(&self.engine),
            _reservation: reservation,
        }))
    }
}

/// Runs a future to completion on a private current-thread runtime in a scoped thread, so it
/// works whether or not the caller is itself inside a tokio runtime: the synchronous
/// [`ClientPlugin::build`], for callers without a runtime.
pub(crate) fn block_on<F>(fut: F) -> Result<F::Output, String>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .map_err(|e| format!("cannot start a runtime for init: {e}"))?;
                Ok(rt.block_on(fut))
            })
            .join()
            .map_err(|_| "the init thread panicked".to_owned())?
    })
}
