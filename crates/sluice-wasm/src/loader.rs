//! The plugin folder: which files load, under which names, pinned how, and which kind of
//! component each one is.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_config::PluginFolder;
use sluice_plugin::ClientPlugin;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::engine::WasmHost;
use crate::ledger::Slots;
use crate::plugin::{Kind, WasmPlugin};
use crate::{LoadError, LoadedPlugins, proxy_world, sluice_world};

impl WasmHost {
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
                         does not serve (it serves sluice:plugin 0.1.x, 0.2.x and 0.3.x): build it with an \
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
                        "the component exports neither sluice:plugin/handler@0.3.x (world sluice:plugin/http-client) \
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
            ("sluice:plugin/handler@0.3.0", Some(Version::V0_3)),
            ("sluice:plugin/handler@0.3.2", Some(Version::V0_3)),
            ("sluice:plugin/handler@0.4.0", None),
            ("sluice:plugin/handler@1.0.0", None),
            ("sluice:plugin/handler@0.20.0", None),
            ("sluice:plugin/other@0.2.0", None),
        ] {
            assert_eq!(Version::of_export(export), version, "{export}");
        }
    }
}
