//! The wasmtime host for Sluice's WebAssembly client plugins.
//!
//! Two kinds of component are accepted, each registered under its file stem:
//! - the Sluice world `sluice:plugin/http-client@0.3.0` (see `wit/plugin.wit`), the fast path:
//!   plain records cross the boundary, a hook works in place on the message the host holds,
//!   instances are long-lived and pooled per backend; components built on 0.2.x and 0.1.x
//!   (`wit/0.2/`, `wit/0.1/`) are served through adapters;
//! - standard `wasi:http/proxy` components (exporting `wasi:http/incoming-handler`), the
//!   any-toolchain path: the backend request is presented as an incoming request, outgoing
//!   requests go through the gateway's client. Settings reach them through `wasi:config/store`.
//!
//! One [`WasmHost`] per process owns the wasmtime `Engine` (pooling allocator, epoch
//! interruption driven by a ticker thread). [`WasmHost::load_folder`] compiles each candidate
//! file once (compiled artefacts are cached on disk by content hash) and returns a
//! [`ClientPlugin`] per file. Each backend that names one gets an executor of the same shape
//! whatever the world (`executor.rs`: a pool of instances, each call checked out, made within
//! its deadline and settled); the world's module says how an instance is made and called. The
//! first instance is made, and its `init` run, on the gateway's runtime
//! ([`ClientPlugin::build_async`]).
//!
//! # Limits, per backend
//! Sibling keys of `name` in the backend's `plugin/http-client` object:
//!
//! | key | meaning | default |
//! | --- | --- | --- |
//! | `allowed_hosts` | list of `scheme://host[:port]` the plugin may call (`"*"` = any) | the backend's own `host` list |
//! | `max_instances` | instances (= concurrent requests in the plugin) for this backend | 2 x cores, at least 4, at most 16 |
//! | `memory_limit` | linear memory per instance: bytes, or `"64MiB"`, `"512KiB"`, `"1GB"`... | `64MiB` |
//! | `timeout` | Go duration capping each request's time in the plugin (`"500ms"`) | the request's deadline |
//! | `max_requests_per_instance` | requests an instance serves before it is replaced | `1000` |
//! | `instance_idle_timeout` | Go duration after which an idle instance is dropped | `60s` |
//!
//! A value of the wrong shape fails the backend's build with a message naming the key. Each
//! backend reserves its `max_instances` of the host's instance pool at build time; a backend
//! that does not fit beside the others is refused.

mod cache;
mod engine;
mod executor;
mod headers;
mod ledger;
mod limits;
mod loader;
mod outbound;
mod plugin;
mod pool;
mod proxy_world;
mod reaper;
mod sandbox;
mod sluice_world;
mod stats;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_plugin::ClientPlugin;

pub use cache::CacheStats;
pub use engine::{WasmHost, WasmHostOptions};
pub use limits::Limits;
pub use loader::file_sha256;
pub use stats::{PluginStats, StatsSnapshot};

/// A file of the plugin folder that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file.
    pub file: PathBuf,
    /// Why it was rejected.
    pub reason: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin {}: {}", self.file.display(), self.reason)
    }
}

impl std::error::Error for LoadError {}

impl LoadError {
    fn new(file: &Path, reason: impl Into<String>) -> Self {
        LoadError {
            file: file.to_path_buf(),
            reason: reason.into(),
        }
    }
}

/// What [`WasmHost::load_folder`] returns: `(name, plugin)` pairs in file-name order.
pub type LoadedPlugins = Vec<(String, Arc<dyn ClientPlugin>)>;
