//! The process-wide wasmtime engine, its epoch ticker, and the host that owns them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::{Cache, CacheStats};
use crate::ledger::{
    Ledger, MAX_CORE_INSTANCES_PER_COMPONENT, MAX_MEMORIES_PER_COMPONENT, MAX_TABLES_PER_COMPONENT,
    Slots,
};
use crate::pool::Sweep;
use crate::reaper::Reaper;
use crate::stats::PluginStats;
use crate::{proxy_world, sluice_world};

/// Options of the process-wide host.
#[derive(Debug, Clone)]
pub struct WasmHostOptions {
    /// Use wasmtime's pooling allocator (fast instantiation; reserves address space up front).
    pub pooling: bool,
    /// Pool size: component instances alive at once across all plugins. Every backend
    /// reserves its `max_instances` of it when built; a backend that does not fit is refused.
    pub pool_instances: u32,
    /// Ceiling for any plugin's `memory_limit`, in bytes (also the pool's per-memory size).
    pub max_memory_size: u64,
    /// Epoch tick: the granularity of deadline checks inside guest code.
    pub epoch_tick: Duration,
    /// Where compiled components are cached; `None` = `SLUICE_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/sluice`, else `~/.cache/sluice`.
    pub cache_dir: Option<PathBuf>,
    /// Whether to use the on-disk cache at all.
    pub disk_cache: bool,
    /// Time allowed for a plugin's `init` at start-up.
    pub init_timeout: Duration,
}

impl Default for WasmHostOptions {
    fn default() -> Self {
        WasmHostOptions {
            pooling: true,
            pool_instances: 1000,
            max_memory_size: 1 << 30,
            epoch_tick: Duration::from_millis(5),
            cache_dir: None,
            disk_cache: true,
            init_timeout: Duration::from_secs(10),
        }
    }
}

impl WasmHostOptions {
    /// The defaults, with the pooling allocator as `SLUICE_WASM_POOLING` says: `on` (the
    /// default) or `off`, for a process that cannot reserve the pool's address space up front
    /// (a `ulimit -v`, or valgrind); instances are then allocated one by one, at instantiation
    /// only, since Sluice keeps its own pool of them. Any other value is an error.
    pub fn from_env() -> Result<WasmHostOptions, String> {
        let mut options = WasmHostOptions::default();
        match std::env::var("SLUICE_WASM_POOLING").as_deref() {
            Err(std::env::VarError::NotPresent) | Ok("" | "on") => {}
            Ok("off") => options.pooling = false,
            Ok(other) => {
                return Err(format!(
                    "SLUICE_WASM_POOLING is {other:?}: expected \"on\" or \"off\""
                ));
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err("SLUICE_WASM_POOLING is not UTF-8: expected \"on\" or \"off\"".into());
            }
        }
        Ok(options)
    }
}

/// Advances the engine's epoch every tick until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // The ticker wakes at least every tick; joining is quick.
            let _ = thread.join();
        }
    }
}

/// What every executor keeps alive: the engine and its ticker.
pub(crate) struct EngineShared {
    pub(crate) engine: Engine,
    pub(crate) options: WasmHostOptions,
    /// `None` without the pooling allocator (nothing to reserve then).
    pub(crate) ledger: Option<Arc<Ledger>>,
    /// The HTTP/2-only pooled client behind `host.send-http2` (WIT 0.1.1), shared by every
    /// plugin; its calls are checked against each plugin's `allowed_hosts` first.
    pub(crate) http2: sluice_client::Http2Client,
    reaper: Reaper,
    _ticker: Ticker,
}

impl EngineShared {
    /// Registers a pool with the reaper (which holds it weakly).
    pub(crate) fn register_pool(&self, pool: Weak<dyn Sweep>) {
        self.reaper.register(pool);
    }
}

impl std::fmt::Debug for EngineShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineShared")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The WebAssembly plugin host: one per process.
pub struct WasmHost {
    pub(crate) shared: Arc<EngineShared>,
    pub(crate) cache: Cache,
    pub(crate) sluice_linker: Arc<wasmtime::component::Linker<sluice_world::State>>,
    pub(crate) proxy_linker: Arc<wasmtime::component::Linker<proxy_world::State>>,
    pub(crate) stats: Arc<Mutex<BTreeMap<String, Arc<PluginStats>>>>,
}

impl std::fmt::Debug for WasmHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmHost")
            .field("options", &self.shared.options)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl WasmHost {
    /// Creates the engine (pooling allocator, epoch interruption, async) and starts the ticker.
    pub fn new(options: WasmHostOptions) -> Result<WasmHost, String> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.parallel_compilation(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        // Nothing runs concurrently inside a guest (both worlds are wasip2, one call at a
        // time per store): no per-store state for the component-model async ABI. Already
        // the default while wasmtime's `component-model-async` feature is off; said here so
        // that turning the feature on elsewhere does not add it to every store.
        config.concurrency_support(false);
        if options.pooling {
            let mut pool = PoolingAllocationConfig::new();
            let n = options.pool_instances.max(1);
            pool.total_component_instances(n);
            // Core instances are only counted (no slot is set aside for them), so allow every
            // component instance its maximum: the ledger then only tracks what has slots.
            pool.total_core_instances(n.saturating_mul(MAX_CORE_INSTANCES_PER_COMPONENT));
            pool.total_memories(n.saturating_mul(2));
            pool.total_tables(n.saturating_mul(4));
            pool.total_stacks(n);
            pool.max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT);
            pool.max_memories_per_component(MAX_MEMORIES_PER_COMPONENT);
            pool.max_tables_per_component(MAX_TABLES_PER_COMPONENT);
            let max_memory = usize::try_from(options.max_memory_size)
                .map_err(|_| "max_memory_size does not fit this platform".to_owned())?;
            pool.max_memory_size(max_memory);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine = Engine::new(&config).map_err(|e| format!("wasmtime engine: {e}"))?;

        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let engine = engine.weak();
            let stop = Arc::clone(&stop);
            let tick = options.epoch_tick.max(Duration::from_micros(100));
            std::thread::Builder::new()
                .name("sluice-wasm-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        match engine.upgrade() {
                            Some(engine) => engine.increment_epoch(),
                            None => break,
                        }
                    }
                })
                .map_err(|e| format!("cannot start the epoch ticker: {e}"))?
        };

        let ledger = options.pooling.then(|| {
            let n = u64::from(options.pool_instances.max(1));
            // What the pool was given above: two memories and four tables per instance.
            Arc::new(Ledger::new(Slots {
                instances: n,
                memories: n * 2,
                tables: n * 4,
            }))
        });
        let reaper = Reaper::start()?;
        let cache = Cache::new(&engine, &options);
        let sluice_linker =
            Arc::new(sluice_world::linker(&engine).map_err(|e| format!("linker: {e}"))?);
        let proxy_linker =
            Arc::new(proxy_world::linker(&engine).map_err(|e| format!("linker: {e}"))?);
        Ok(WasmHost {
            shared: Arc::new(EngineShared {
                engine,
                options,
                ledger,
                http2: sluice_client::Http2Client::new(
                    &sluice_config::TransportOptions::default(),
                    std::time::Duration::from_secs(90),
                    None,
                )
                .map_err(|e| format!("the plugins' HTTP/2 client: {e}"))?,
                reaper,
                _ticker: Ticker {
                    stop,
                    thread: Some(thread),
                },
            }),
            cache,
            sluice_linker,
            proxy_linker,
            stats: Arc::new(Mutex::new(BTreeMap::new())),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    /// The folder compiled components are cached in, if the disk cache is on.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.cache.dir()
    }

    /// Compilations avoided and done since start.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// The counters of every plugin this host loads, as telemetry families
    /// (`sluice.plugin.wasm.*`), read at each export.
    pub fn collector(&self) -> Arc<dyn sluice_telemetry::Collector> {
        Arc::new(crate::stats::StatsCollector {
            stats: Arc::clone(&self.stats),
        })
    }

    /// Counters of every plugin loaded so far, by name.
    pub fn stats(&self) -> BTreeMap<String, crate::StatsSnapshot> {
        let stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        stats
            .iter()
            .map(|(k, v)| (k.clone(), v.snapshot()))
            .collect()
    }
}
