//! The example client plugins for gateway tests: the WebAssembly components of `plugins/`
//! (built once per test binary with `plugins/build.sh` into `plugins/dist/`) and their
//! compiled-in twins (`native/<name>`), in one [`Registry`] as `sluice run` assembles it.
//!
//! - `SLUICE_PLUGINS_DIST=<folder>` skips the build and loads that folder instead.
//! - `SLUICE_GUEST_TARGET_DIR=<dir>` is the guest build's `CARGO_TARGET_DIR` (default: the
//!   repository's `target/`, as `build.sh` has it; the host's `CARGO_TARGET_DIR` is not passed
//!   on, so a host target dir set for the tests does not receive wasm artefacts).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use sluice_config::PluginFolder;
use sluice_plugin::Registry;
use sluice_wasm::{WasmHost, WasmHostOptions};

/// The components `plugins/build.sh` produces, by registered name (the file stem).
pub const EXAMPLE_PLUGINS: [&str; 8] = [
    "client-example",
    "fan-out",
    "fault",
    "grpc-caller",
    "hmac-signer",
    "static-answer",
    "wasi-passthrough",
    "wasi-lean-passthrough",
];

/// The compiled-in twins `sluice_builtin_plugins::register_all` provides.
pub const NATIVE_PLUGINS: [&str; 4] = [
    "native/client-example",
    "native/fan-out",
    "native/hmac-signer",
    "native/static-answer",
];

/// The guest workspace (`<repo>/plugins`).
pub fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins")
}

/// Runs the build script of a plugin folder built without cargo (`plugins/<folder>/build.sh`:
/// Python, JavaScript, C) from the folder itself, and returns `plugins/dist`, where it writes.
///
/// # Panics
/// If the script cannot run or fails, with its output and `needs` (what the build takes).
pub fn run_build_script(folder: &str, needs: &str) -> PathBuf {
    let dir = plugins_dir().join(folder);
    let mut script = Command::new("bash");
    script.arg(dir.join("build.sh")).current_dir(&dir);
    run_script(
        &mut script,
        &format!("plugins/{folder}/build.sh"),
        &format!("; {needs}"),
    );
    plugins_dir().join("dist")
}

/// Runs a build script to its end.
///
/// # Panics
/// If it cannot run or fails, with its output (`needs` follows the exit status).
fn run_script(script: &mut Command, name: &str, needs: &str) {
    let out = script
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    assert!(
        out.status.success(),
        "{name} failed ({}){needs}:\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds the example plugins once per test binary (`plugins/build.sh`) and returns the folder
/// holding them (`plugins/dist`, or `SLUICE_PLUGINS_DIST`).
///
/// # Panics
/// If the `wasm32-wasip2` target is missing or the build fails (with its output).
pub fn dist() -> &'static Path {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        if let Some(dir) = std::env::var_os("SLUICE_PLUGINS_DIST").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir);
        }
        let dir = plugins_dir();
        let mut cmd = Command::new("bash");
        cmd.arg(dir.join("build.sh")).current_dir(&dir);
        cmd.env_remove("CARGO_TARGET_DIR");
        if let Some(target) = std::env::var_os("SLUICE_GUEST_TARGET_DIR") {
            cmd.env("CARGO_TARGET_DIR", target);
        }
        run_script(&mut cmd, "plugins/build.sh", "");
        dir.join("dist")
    })
}

/// The path of one built component (`dist()/<name>.wasm`).
pub fn plugin_file(name: &str) -> PathBuf {
    dist().join(format!("{name}.wasm"))
}

/// The WebAssembly host shared by every gateway of the test binary (the engine and its epoch
/// ticker are meant to be one per process, as in `sluice run`). Compiled components are cached
/// under the system temp folder, so later test binaries skip the compilation.
///
/// # Panics
/// If the host cannot start.
pub fn wasm_host() -> &'static WasmHost {
    static HOST: OnceLock<WasmHost> = OnceLock::new();
    HOST.get_or_init(|| {
        let options = WasmHostOptions {
            // The default (1000 instances, 1 GiB each) reserves more address space than some
            // CI machines allow; a test binary never has more than a few dozen alive.
            pool_instances: 200,
            cache_dir: Some(std::env::temp_dir().join("sluice-integration-wasm-cache")),
            ..WasmHostOptions::default()
        };
        WasmHost::new(options).unwrap_or_else(|e| panic!("the wasm host does not start: {e}"))
    })
}

/// Every component of [`dist`] (loaded with `WasmHost::load_folder`, pattern `.wasm`) plus the
/// compiled-in plugins. Loaded once per test binary; each call returns a cheap clone.
///
/// # Panics
/// If a file of the folder does not load, or two plugins share a name.
pub fn registry() -> Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| load_registry(wasm_host())).clone()
}

/// A wasm host and registry of their own, for a test that reads the host's counters: the
/// shared [`registry`] counts every test's calls (the tests share one process).
///
/// # Panics
/// As [`registry`].
pub fn own_registry() -> (Registry, WasmHost) {
    let options = WasmHostOptions {
        pool_instances: 20,
        cache_dir: Some(std::env::temp_dir().join("sluice-integration-wasm-cache")),
        ..WasmHostOptions::default()
    };
    let host =
        WasmHost::new(options).unwrap_or_else(|e| panic!("the wasm host does not start: {e}"));
    (load_registry(&host), host)
}

fn load_registry(host: &WasmHost) -> Registry {
    let folder = PluginFolder {
        folder: dist().to_path_buf(),
        pattern: ".wasm".to_owned(),
        sha256: Default::default(),
    };
    let (plugins, errors) = host.load_folder(&folder);
    assert!(
        errors.is_empty(),
        "plugins in {} did not load: {errors:?}",
        folder.folder.display()
    );
    let mut registry = Registry::new();
    for (name, plugin) in plugins {
        registry
            .register(name, plugin)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    sluice_builtin_plugins::register_all(&mut registry).unwrap_or_else(|e| panic!("{e}"));
    for name in EXAMPLE_PLUGINS.iter().chain(NATIVE_PLUGINS.iter()) {
        assert!(
            registry.get(name).is_some(),
            "{name} is missing from {registry:?}"
        );
    }
    registry
}
