//! The process-wide wasmtime engine, the epoch ticker and the plugin-folder loader.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sluice_config::PluginFolder;
use sluice_plugin::{ClientPlugin, OutboundClient, PluginContext, SharedExecutor};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::{Cache, CacheStats};
use crate::limits::Limits;
use crate::stats::PluginStats;
use crate::{LoadError, LoadedPlugins, proxy_world, sluice_world};

/// Options of the process-wide host.
#[derive(Debug, Clone)]
pub struct WasmHostOptions {
    /// Use wasmtime's pooling allocator (fast instantiation; reserves address space up front).
    pub pooling: bool,
    /// Pool size: component instances alive at once across all plugins.
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

/// What every executor keeps alive: the engine and its ticker.
pub(crate) struct EngineShared {
    pub(crate) engine: Engine,
    pub(crate) options: WasmHostOptions,
    _ticker: Ticker,
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
    stats: Mutex<BTreeMap<String, Arc<PluginStats>>>,
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
        if options.pooling {
            let mut pool = PoolingAllocationConfig::new();
            let n = options.pool_instances.max(1);
            pool.total_component_instances(n);
            pool.total_core_instances(n.saturating_mul(4));
            pool.total_memories(n.saturating_mul(2));
            pool.total_tables(n.saturating_mul(4));
            pool.total_stacks(n);
            pool.max_core_instances_per_component(32);
            pool.max_memories_per_component(4);
            pool.max_tables_per_component(16);
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

        let cache = Cache::new(&engine, &options);
        let sluice_linker =
            Arc::new(sluice_world::linker(&engine).map_err(|e| format!("linker: {e}"))?);
        let proxy_linker =
            Arc::new(proxy_world::linker(&engine).map_err(|e| format!("linker: {e}"))?);
        Ok(WasmHost {
            shared: Arc::new(EngineShared {
                engine,
                options,
                _ticker: Ticker {
                    stop,
                    thread: Some(thread),
                },
            }),
            cache,
            sluice_linker,
            proxy_linker,
            stats: Mutex::new(BTreeMap::new()),
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
                    format!("cannot read the plugin folder: {e}"),
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
        for file in files {
            match self.load_file(&file) {
                Ok((name, plugin)) => plugins.push((name, plugin)),
                Err(e) => errors.push(e),
            }
        }
        (plugins, errors)
    }

    /// Loads one component file, registered under its file stem.
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
            Some(World::Sluice) => Kind::Sluice(
                sluice_world::Loaded::new(&self.sluice_linker, &component)
                    .map_err(|reason| LoadError::new(file, reason))?,
            ),
            Some(World::Proxy) => Kind::Proxy(
                proxy_world::Loaded::new(&self.proxy_linker, &component)
                    .map_err(|reason| LoadError::new(file, reason))?,
            ),
            None => {
                let exports = export_names(&self.shared.engine, &component);
                return Err(LoadError::new(
                    file,
                    format!(
                        "the component exports neither {SLUICE_EXPORT} (world sluice:plugin/http-client) \
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
            kind,
            stats,
            engine: Arc::clone(&self.shared),
        };
        Ok((name, Arc::new(plugin)))
    }
}

/// The export that marks the Sluice world.
pub(crate) const SLUICE_EXPORT: &str = "sluice:plugin/handler@0.1.0";

enum World {
    Sluice,
    Proxy,
}

fn detect_world(engine: &Engine, component: &Component) -> Option<World> {
    let ty = component.component_type();
    let mut proxy = false;
    for (name, _) in ty.exports(engine) {
        if name == SLUICE_EXPORT {
            return Some(World::Sluice);
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
}

impl ClientPlugin for WasmPlugin {
    fn origin(&self) -> String {
        self.file.display().to_string()
    }

    fn limit_keys(&self) -> &'static [&'static str] {
        &["max_instances", "memory_limit", "timeout"]
    }

    fn kind(&self) -> String {
        match &self.kind {
            Kind::Sluice(_) => "component of world sluice:plugin/http-client@0.1.0".to_owned(),
            Kind::Proxy(_) => "component of world wasi:http/proxy".to_owned(),
        }
    }

    fn build(&self, ctx: PluginContext<'_>) -> Result<SharedExecutor, String> {
        let limits = Limits::from_extra(ctx.extra, ctx.backend_hosts)?;
        if limits.memory_limit > self.engine.options.max_memory_size {
            return Err(format!(
                "memory_limit: {} bytes is above the host's maximum of {} bytes",
                limits.memory_limit, self.engine.options.max_memory_size
            ));
        }
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
}
