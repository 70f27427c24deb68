//! The process-wide wasmtime engine, the epoch ticker and the plugin-folder loader.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use sluice_config::PluginFolder;
use sluice_plugin::{ClientPlugin, OutboundClient, PluginContext, SharedExecutor};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::{Cache, CacheStats};
use crate::limits::Limits;
use crate::pool::Sweep;
use crate::stats::PluginStats;
use crate::{LoadError, LoadedPlugins, proxy_world, sluice_world};

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

/// How often the reaper looks for idle instances past their `instance_idle_timeout`.
const REAP_INTERVAL: Duration = Duration::from_millis(100);

/// Drops expired idle instances of every live pool, on its own thread (dropping a store
/// unmaps memory: not something to do on a request's path or on the epoch ticker).
struct Reaper {
    pools: Arc<Mutex<Vec<Weak<dyn Sweep>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Reaper {
    fn start() -> Result<Reaper, String> {
        let pools: Arc<Mutex<Vec<Weak<dyn Sweep>>>> = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let pools = Arc::clone(&pools);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("sluice-wasm-reaper".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::park_timeout(REAP_INTERVAL);
                        let live: Vec<Arc<dyn Sweep>> = {
                            let mut pools = pools.lock().unwrap_or_else(|p| p.into_inner());
                            pools.retain(|p| p.strong_count() > 0);
                            pools.iter().filter_map(Weak::upgrade).collect()
                        };
                        let now = std::time::Instant::now();
                        for pool in live {
                            pool.sweep(now);
                        }
                    }
                })
                .map_err(|e| format!("cannot start the instance reaper: {e}"))?
        };
        Ok(Reaper {
            pools,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// Pool resources one instance of a component takes, or a sum of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Slots {
    pub(crate) instances: u64,
    pub(crate) memories: u64,
    pub(crate) tables: u64,
}

impl Slots {
    /// What one instance of `component` takes from the pool (the per-component maxima when
    /// wasmtime cannot tell statically).
    fn of(component: &Component) -> Slots {
        match component.resources_required() {
            Some(r) => Slots {
                instances: 1,
                memories: u64::from(r.num_memories),
                tables: u64::from(r.num_tables),
            },
            None => Slots {
                instances: 1,
                memories: u64::from(MAX_MEMORIES_PER_COMPONENT),
                tables: u64::from(MAX_TABLES_PER_COMPONENT),
            },
        }
    }

    fn times(self, n: u64) -> Slots {
        Slots {
            instances: self.instances.saturating_mul(n),
            memories: self.memories.saturating_mul(n),
            tables: self.tables.saturating_mul(n),
        }
    }

    fn plus(self, o: Slots) -> Slots {
        Slots {
            instances: self.instances.saturating_add(o.instances),
            memories: self.memories.saturating_add(o.memories),
            tables: self.tables.saturating_add(o.tables),
        }
    }

    fn fits(self, capacity: Slots) -> bool {
        self.instances <= capacity.instances
            && self.memories <= capacity.memories
            && self.tables <= capacity.tables
    }
}

impl std::fmt::Display for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} instances ({} memories, {} tables)",
            self.instances, self.memories, self.tables
        )
    }
}

/// The pooling allocator's capacity and what backends have reserved of it: each backend
/// reserves room for its `max_instances` up front, so one backend can never take the slots
/// another one counts on.
#[derive(Debug)]
pub(crate) struct Ledger {
    capacity: Slots,
    reserved: Mutex<Slots>,
}

/// A backend's share of the pool, given back when its last instance is gone.
#[derive(Debug)]
pub(crate) struct Reservation {
    ledger: Arc<Ledger>,
    slots: Slots,
}

impl Ledger {
    fn reserve(
        self: &Arc<Self>,
        plugin: &str,
        max_instances: usize,
        per_instance: Slots,
    ) -> Result<Reservation, String> {
        let wanted = per_instance.times(max_instances as u64);
        let mut reserved = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        if !reserved.plus(wanted).fits(self.capacity) {
            return Err(format!(
                "max_instances: {max_instances} instances of plugin {plugin:?} need {wanted}, \
                 but the WebAssembly instance pool holds {} and other backends reserved {} \
                 of it; the sum of max_instances over all backends must fit the pool: lower \
                 max_instances here or elsewhere",
                self.capacity, *reserved
            ));
        }
        *reserved = reserved.plus(wanted);
        Ok(Reservation {
            ledger: Arc::clone(self),
            slots: wanted,
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut reserved = self
            .ledger
            .reserved
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        reserved.instances = reserved.instances.saturating_sub(self.slots.instances);
        reserved.memories = reserved.memories.saturating_sub(self.slots.memories);
        reserved.tables = reserved.tables.saturating_sub(self.slots.tables);
    }
}

/// Per-component maxima of the pooling allocator.
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 32;
const MAX_MEMORIES_PER_COMPONENT: u32 = 4;
const MAX_TABLES_PER_COMPONENT: u32 = 16;

/// What every executor keeps alive: the engine and its ticker.
pub(crate) struct EngineShared {
    pub(crate) engine: Engine,
    pub(crate) options: WasmHostOptions,
    /// `None` without the pooling allocator (nothing to reserve then).
    ledger: Option<Arc<Ledger>>,
    /// The HTTP/2-only pooled client behind `host.send-http2` (WIT 0.1.1), shared by every
    /// plugin; its calls are checked against each plugin's `allowed_hosts` first.
    pub(crate) http2: sluice_client::Http2Client,
    reaper: Reaper,
    _ticker: Ticker,
}

impl EngineShared {
    /// Registers a pool with the reaper (which holds it weakly).
    pub(crate) fn register_pool(&self, pool: Weak<dyn Sweep>) {
        let mut pools = self.reaper.pools.lock().unwrap_or_else(|p| p.into_inner());
        pools.push(pool);
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
    shared: Arc<EngineShared>,
    cache: Cache,
    sluice_linker: Arc<wasmtime::component::Linker<sluice_world::State>>,
    proxy_linker: Arc<wasmtime::component::Linker<proxy_world::State>>,
    stats: Arc<Mutex<BTreeMap<String, Arc<PluginStats>>>>,
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
            Arc::new(Ledger {
                capacity: Slots {
                    instances: n,
                    memories: n * 2,
                    tables: n * 4,
                },
                reserved: Mutex::new(Slots::default()),
            })
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

    /// Loads the plugin folder: every file (not recursively, sorted by name) whose name
    /// contains the pattern, each registered under its file stem. Files that are not
    /// components of a supported world are returned as errors; the others still load.
    pub fn load_folder(&self, folder: &PluginFolder) -> (LoadedPlugins, Vec<LoadError>) {
        let mut plugins = Vec::new();
        let mut errors = Vec::new();
        let entries = match std::fs::read_dir(&folder.folder) {
            Ok(entries) => entries,
            Err(e) => {
                errors.push(LoadError::new(
                    &folder.folder,
                    format!(
                        "cannot read the plugin folder: {e} (a relative plugin.folder is \
                         resolved against the config file's folder)"
                    ),
                ));
                return (plugins, errors);
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .contains(folder.pattern.as_str())
            })
            .map(|e| e.path())
            .collect();
        files.sort();
        for file in &files {
            // KrakenD's rule is a substring match, so `greeter.wasm.bak` is loaded too: say so.
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
            if let Some(name) = name.filter(|n| !n.ends_with(folder.pattern.as_str())) {
                tracing::warn!(
                    file = %file.display(),
                    pattern = %folder.pattern,
                    "{name} contains plugin.pattern without ending with it and is loaded as a plugin (KrakenD's rule); rename or move it if it is a backup"
                );
            }
        }
        let mut pinned_seen = Vec::new();
        for file in files {
            let pin = plugin_name(&file).and_then(|name| folder.sha256.get_key_value(&name));
            if let Some((name, expected)) = pin {
                pinned_seen.push(name.clone());
                if let Err(e) = check_pin(&file, name, expected) {
                    errors.push(e);
                    continue;
                }
            }
            match self.load_file(&file) {
                Ok((name, plugin)) => plugins.push((name, plugin)),
                Err(e) => errors.push(e),
            }
        }
        // A pin with no file is a plugin that is not there: as fatal as one that differs.
        for name in folder.sha256.keys().filter(|n| !pinned_seen.contains(n)) {
            errors.push(LoadError::new(
                &folder.folder,
                format!(
                    "plugin.sha256 pins {name:?}, but no file named {name}{} is in the plugin folder",
                    folder.pattern
                ),
            ));
        }
        (plugins, errors)
    }

    /// Loads one component file, registered under its file stem.
    ///
    /// Pins (`plugin.sha256`) are checked by [`WasmHost::load_folder`], before a pinned file is
    /// compiled.
    pub fn load_file(&self, file: &Path) -> Result<(String, Arc<dyn ClientPlugin>), LoadError> {
        let name = plugin_name(file)
            .ok_or_else(|| LoadError::new(file, "the file name is not valid UTF-8"))?;
        let bytes =
            std::fs::read(file).map_err(|e| LoadError::new(file, format!("cannot read: {e}")))?;
        check_header(&bytes).map_err(|reason| LoadError::new(file, reason))?;
        let component = self
            .cache
            .load(&self.shared.engine, &bytes)
            .map_err(|reason| LoadError::new(file, reason))?;
        let kind = match detect_world(&self.shared.engine, &component) {
            Some(World::Sluice(Some(version))) => Kind::Sluice(
                sluice_world::Loaded::new(&self.sluice_linker, &component, version)
                    .map_err(|reason| LoadError::new(file, reason))?,
            ),
            Some(World::Sluice(None)) => {
                let exports = export_names(&self.shared.engine, &component);
                let handler = exports
                    .iter()
                    .find(|n| n.starts_with(sluice_world::EXPORT_PREFIX))
                    .map_or("", String::as_str);
                return Err(LoadError::new(
                    file,
                    format!(
                        "the component exports {handler}, a version of the Sluice world this host \
                         does not serve (it serves sluice:plugin 0.1.x and 0.2.x): build it with an \
                         SDK of one of those, or upgrade Sluice"
                    ),
                ));
            }
            Some(World::Proxy) => Kind::Proxy(
                proxy_world::Loaded::new(&self.proxy_linker, &component)
                    .map_err(|reason| LoadError::new(file, reason))?,
            ),
            None => {
                let exports = export_names(&self.shared.engine, &component);
                return Err(LoadError::new(
                    file,
                    format!(
                        "the component exports neither sluice:plugin/handler@0.2.x (world sluice:plugin/http-client) \
                         nor wasi:http/incoming-handler@0.2 (world wasi:http/proxy); it exports [{}]",
                        exports.join(", ")
                    ),
                ));
            }
        };
        let stats = {
            let mut map = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(map.entry(name.clone()).or_default())
        };
        tracing::debug!(plugin = %name, file = %file.display(), world = kind.world(), "loaded wasm plugin");
        let plugin = WasmPlugin {
            name: name.clone(),
            file: file.to_path_buf(),
            slots: Slots::of(&component),
            kind,
            stats,
            engine: Arc::clone(&self.shared),
        };
        Ok((name, Arc::new(plugin)))
    }
}

enum World {
    /// The Sluice world, in a version the host serves (`None`: one it does not).
    Sluice(Option<sluice_world::Version>),
    Proxy,
}

fn detect_world(engine: &Engine, component: &Component) -> Option<World> {
    let ty = component.component_type();
    let mut proxy = false;
    for (name, _) in ty.exports(engine) {
        if name.starts_with(sluice_world::EXPORT_PREFIX) {
            return Some(World::Sluice(sluice_world::Version::of_export(name)));
        }
        if name.starts_with("wasi:http/incoming-handler@0.2") {
            proxy = true;
        }
    }
    proxy.then_some(World::Proxy)
}

fn export_names(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .exports(engine)
        .map(|(n, _)| n.to_owned())
        .collect()
}

/// The registered name: the file stem (`hmac-signer.wasm` → `hmac-signer`).
fn plugin_name(file: &Path) -> Option<String> {
    file.file_stem()?.to_str().map(str::to_owned)
}

/// Rejects files that are not WebAssembly components, with a reason a user can act on.
fn check_header(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err("not a WebAssembly file (no \\0asm header)".into());
    }
    match bytes[4..8] {
        [0x01, 0x00, 0x00, 0x00] => {
            Err("a core WebAssembly module, not a component: build it for \
             wasm32-wasip2 (or wrap it with `wasm-tools component new`)"
                .into())
        }
        [_, _, 0x01, 0x00] => Ok(()),
        _ => Err("an unsupported WebAssembly binary version".into()),
    }
}

enum Kind {
    Sluice(sluice_world::Loaded),
    Proxy(proxy_world::Loaded),
}

impl Kind {
    fn world(&self) -> &'static str {
        match self {
            Kind::Sluice(_) => "sluice:plugin/http-client",
            Kind::Proxy(_) => "wasi:http/proxy",
        }
    }
}

/// One loaded component, registered under its name.
struct WasmPlugin {
    name: String,
    file: PathBuf,
    kind: Kind,
    /// Pool resources one instance takes.
    slots: Slots,
    stats: Arc<PluginStats>,
    engine: Arc<EngineShared>,
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
    /// This backend's instance pool, holding `first` (made at build time to run `init`), with
    /// the backend's limits, and swept by the engine's reaper for idle expiry.
    pub(crate) fn new_pool<I: Send + 'static>(&self, first: I) -> Arc<crate::pool::Pool<I>> {
        let pool = Arc::new(crate::pool::Pool::new(
            self.limits.max_instances,
            self.limits.max_requests_per_instance,
            self.limits.instance_idle_timeout,
            Arc::clone(&self.stats),
        ));
        pool.put_idle(first);
        let weak = Arc::downgrade(&pool);
        self.engine.register_pool(weak);
        pool
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
        match &self.kind {
            Kind::Sluice(loaded) => format!(
                "component of world sluice:plugin/http-client@{}",
                loaded.version()
            ),
            Kind::Proxy(_) => "component of world wasi:http/proxy".to_owned(),
        }
    }

    fn build(&self, ctx: PluginContext<'_>) -> Result<SharedExecutor, String> {
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
        let settings_value = ctx
            .settings
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        let settings_value = if settings_value.is_null() {
            serde_json::json!({})
        } else {
            settings_value
        };
        let backend = Arc::new(Backend {
            plugin: self.name.clone(),
            label: ctx.backend_label.to_owned(),
            limits,
            settings: settings_value.to_string(),
            settings_value,
            client: ctx.client,
            stats: Arc::clone(&self.stats),
            engine: Arc::clone(&self.engine),
            _reservation: reservation,
        });
        match &self.kind {
            Kind::Sluice(loaded) => sluice_world::build(loaded, backend),
            Kind::Proxy(loaded) => proxy_world::build(loaded, backend),
        }
    }
}

/// Runs a future to completion on a private current-thread runtime in a scoped thread, so it
/// works whether or not the caller is itself inside a tokio runtime (plugin factories are
/// synchronous).
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

/// The SHA-256 of a plugin file, as `plugin.sha256` pins it (64 lower-case hex digits).
///
/// # Errors
/// When the file cannot be read.
pub fn file_sha256(file: &Path) -> std::io::Result<String> {
    use sha2::Digest as _;
    let bytes = std::fs::read(file)?;
    Ok(hex::encode(sha2::Sha256::digest(&bytes)))
}

fn check_pin(file: &Path, name: &str, expected: &str) -> Result<(), LoadError> {
    let actual =
        file_sha256(file).map_err(|e| LoadError::new(file, format!("cannot read: {e}")))?;
    if actual == expected {
        Ok(())
    } else {
        Err(LoadError::new(
            file,
            format!(
                "plugin.sha256[{name:?}] pins {expected}, but the file's SHA-256 is {actual}: \
                 the plugin changed since it was pinned (run `sluice plugin hash` on the file \
                 you trust)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_headers() {
        assert_eq!(
            plugin_name(Path::new("/p/hmac-signer.wasm")).as_deref(),
            Some("hmac-signer")
        );
        assert_eq!(
            plugin_name(Path::new("a.wasm.bak")).as_deref(),
            Some("a.wasm")
        );
        assert!(check_header(b"hello world").is_err());
        assert!(
            check_header(b"\0asm\x01\0\0\0")
                .expect_err("core")
                .contains("core")
        );
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }

    #[test]
    fn sluice_world_versions_by_semver() {
        use sluice_world::Version;
        for (export, version) in [
            ("sluice:plugin/handler@0.2.0", Some(Version::V0_2)),
            ("sluice:plugin/handler@0.2.7", Some(Version::V0_2)),
            ("sluice:plugin/handler@0.1.0", Some(Version::V0_1)),
            ("sluice:plugin/handler@0.1.1", Some(Version::V0_1)),
            ("sluice:plugin/handler@0.3.0", None),
            ("sluice:plugin/handler@1.0.0", None),
            ("sluice:plugin/handler@0.20.0", None),
            ("sluice:plugin/other@0.2.0", None),
        ] {
            assert_eq!(Version::of_export(export), version, "{export}");
        }
    }
}
