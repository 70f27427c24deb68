//! Compiled components cached on disk, keyed by content hash and engine compatibility.
//!
//! Layout: `<dir>/wasmtime-<version>/<sha256 of the .wasm>-<engine hash>.cwasm`. The engine
//! hash covers wasmtime's version and every setting that changes the compiled code, so a
//! different host never picks up an incompatible artefact (wasmtime also checks on load and
//! we recompile if it refuses).
//!
//! A cached artefact is native code that runs in the gateway, so the cache is used only when
//! nobody else can write it: the cache directory and its `wasmtime-<version>` folder must be
//! owned by the gateway's user and not writable by group or others (we create them 0700),
//! and so must each artefact. Otherwise the host logs a warning and compiles without the
//! cache (neither reading nor writing it). Refusing to start would let anyone who can write
//! there stop the gateway; compiling costs only start-up time.

use std::hash::{BuildHasher, Hasher};
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
                .and_then(|root| match prepare_dir(&root) {
                    Ok(dir) => Some(dir),
                    Err(why) => {
                        tracing::warn!(dir = %root.display(), "not using the compiled-plugin cache: {why}");
                        None
                    }
                })
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
            && let Err(why) = check_private(path, false)
        {
            tracing::warn!(file = %path.display(), "ignoring a compiled plugin we cannot trust: {why}");
        } else if let Some(path) = &path
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
    // configuration header and refuses a mismatch, which we handle by recompiling. Nobody
    // else can have put the file there: `Cache::new` uses the directory only if it and its
    // parent are owned by the gateway's user and not writable by group or others, and `load`
    // checks the same of the file itself before calling this.
    unsafe { Component::deserialize_file(engine, path) }
}

fn write_atomically(path: &Path, component: &Component) -> Result<(), String> {
    // The directory was made (0700) and checked by `prepare_dir`; never re-created here with
    // looser permissions.
    let dir = path.parent().ok_or("no parent directory")?;
    let bytes = component.serialize().map_err(|e| e.to_string())?;
    let (tmp, mut file) = create_temp(dir, path)?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        e.to_string()
    })
}

/// A new temporary file beside `path`, created exclusively (never opening a file or link that
/// is already there) under an unpredictable name, readable and writable by us only.
fn create_temp(dir: &Path, path: &Path) -> Result<(PathBuf, std::fs::File), String> {
    let stem = path.file_name().and_then(|n| n.to_str()).unwrap_or("cwasm");
    let mut last = String::new();
    for attempt in 0u32..8 {
        // `RandomState` is seeded from the OS's randomness: good enough for a name that
        // `create_new` makes exclusive anyway.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.write_u32(attempt);
        let tmp = dir.join(format!(".{stem}.{:016x}.tmp", h.finish()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = e.to_string(),
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("no free temporary file name: {last}"))
}

/// Creates (0700) or checks the cache root and its `wasmtime-<version>` folder; returns the
/// folder if both are private to this user.
fn prepare_dir(root: &Path) -> Result<PathBuf, String> {
    let dir = root.join(format!("wasmtime-{}", wasmtime_version()));
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(&dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    check_private(root, true)?;
    check_private(&dir, true)?;
    Ok(dir)
}

/// Whether `path` (not followed if a link) is a directory or file owned by the effective
/// user and not writable by group or others.
#[cfg(unix)]
fn check_private(path: &Path, directory: bool) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| format!("cannot inspect {}: {e}", path.display()))?;
    let kind_ok = if directory {
        meta.is_dir()
    } else {
        meta.is_file()
    };
    if !kind_ok {
        return Err(format!(
            "{} is not a plain {}",
            path.display(),
            if directory { "directory" } else { "file" }
        ));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "{} is owned by uid {}, not by this process's uid {me}",
            path.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is writable by group or others (mode {:o}); `chmod go-w` it to use the cache",
            path.display(),
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

/// Without Unix ownership and modes there is nothing to check.
#[cfg(not(unix))]
fn check_private(_path: &Path, _directory: bool) -> Result<(), String> {
    Ok(())
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
