//! Compiled components cached on disk, keyed by content hash and engine compatibility.
//!
//! Layout: `<dir>/wasmtime-<version>/<sha256 of the .wasm>-<engine hash>.cwasm`. The engine
//! hash covers wasmtime's version and every setting that changes the compiled code, so a
//! different host never picks up an incompatible artefact (wasmtime also checks on load and
//! we recompile if it refuses).

use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::WasmHostOptions;

/// Counters of the compiled-artefact cache.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Components loaded from the cache.
    pub hits: u64,
    /// Components compiled (not cached yet, cache off, or unusable cache file).
    pub compiled: u64,
}

#[derive(Debug)]
pub(crate) struct Cache {
    dir: Option<PathBuf>,
    engine_hash: String,
    hits: AtomicU64,
    compiled: AtomicU64,
}

impl Cache {
    pub(crate) fn new(engine: &Engine, options: &WasmHostOptions) -> Cache {
        let dir = if options.disk_cache {
            options
                .cache_dir
                .clone()
                .or_else(default_dir)
                .map(|d| d.join(format!("wasmtime-{}", wasmtime_version())))
        } else {
            None
        };
        let mut hasher = ShaHasher(Sha256::new());
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
        let engine_hash = hex::encode(&hasher.0.finalize()[..8]);
        Cache {
            dir,
            engine_hash,
            hits: AtomicU64::new(0),
            compiled: AtomicU64::new(0),
        }
    }

    pub(crate) fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            compiled: self.compiled.load(Ordering::Relaxed),
        }
    }

    /// The cache file for these bytes (whether or not it exists).
    pub(crate) fn path_for(&self, bytes: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let digest = hex::encode(Sha256::digest(bytes));
        Some(dir.join(format!("{digest}-{}.cwasm", self.engine_hash)))
    }

    /// The compiled component for `bytes`: from the cache if a usable artefact is there, else
    /// compiled now (and written to the cache, best effort).
    pub(crate) fn load(&self, engine: &Engine, bytes: &[u8]) -> Result<Component, String> {
        let path = self.path_for(bytes);
        if let Some(path) = &path
            && path.is_file()
        {
            match deserialize_cached(engine, path) {
                Ok(component) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(component);
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), "ignoring unusable compiled plugin: {e}");
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        let component = Component::from_binary(engine, bytes)
            .map_err(|e| format!("cannot compile the component: {e:#}"))?;
        self.compiled.fetch_add(1, Ordering::Relaxed);
        if let Some(path) = &path
            && let Err(e) = write_atomically(path, &component)
        {
            tracing::warn!(file = %path.display(), "cannot cache the compiled plugin: {e}");
        }
        Ok(component)
    }
}

/// Loads a compiled artefact from our cache.
#[allow(unsafe_code)]
fn deserialize_cached(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `Component::deserialize_file` trusts the file to be a wasmtime-compiled artefact
    // (it maps and runs its machine code). The files in the cache directory are written only
    // by `write_atomically` below, from `Component::serialize` of a component this process
    // compiled itself, through a temporary file renamed into place (so a reader never sees a
    // partial file). Their name is the SHA-256 of the source bytes plus the engine's
    // compatibility hash, so a file is only ever opened for the exact bytes and engine
    // settings it was compiled from; wasmtime additionally checks its version and
    // configuration header and refuses a mismatch, which we handle by recompiling. The cache
    // directory must therefore be writable only by the gateway's user, as any cache of code.
    unsafe { Component::deserialize_file(engine, path) }
}

fn write_atomically(path: &Path, component: &Component) -> Result<(), String> {
    let dir = path.parent().ok_or("no parent directory")?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let bytes = component.serialize().map_err(|e| e.to_string())?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("cwasm"),
        std::process::id()
    ));
    let mut file = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        e.to_string()
    })
}

/// `SLUICE_CACHE_DIR`, else `$XDG_CACHE_HOME/sluice`, else `~/.cache/sluice`.
fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SLUICE_CACHE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("sluice"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("sluice"))
}

/// The wasmtime version this host was built with (the cache is keyed by it).
fn wasmtime_version() -> &'static str {
    "48"
}

/// Feeds `Hash` output into SHA-256, so the key is stable across Rust releases.
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
