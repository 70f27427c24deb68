//! `sluice plugin new | build | test`: tooling for plugin authors.

mod js;
mod python;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::Instant;

use sluice_plugin::{
    BackendRequest, CallContext, ClientPlugin, OutboundClient, PluginContext, PluginError,
    SharedExecutor,
};

const TEMPLATE_CARGO: &str = include_str!("../templates/Cargo.toml.tmpl");
const TEMPLATE_LIB: &str = include_str!("../templates/lib.rs.tmpl");
const TEMPLATE_LIB_HOOKS: &str = include_str!("../templates/lib_hooks.rs.tmpl");
const TEMPLATE_README: &str = include_str!("../templates/README.md.tmpl");
const TEMPLATE_GITIGNORE: &str = include_str!("../templates/gitignore.tmpl");
const SDK_CARGO: &str = include_str!("../templates/sdk.Cargo.toml.tmpl");
const SDK_LIB: &str = include_str!("../../../plugins/sdk/src/lib.rs");
const SDK_HTTP: &str = include_str!("../../../plugins/sdk/src/http.rs");
const SDK_LOG: &str = include_str!("../../../plugins/sdk/src/log.rs");
// The contract the Rust SDK targets (0.3.0): components built on it load on every 0.3.x host.
const WIT: &str = include_str!("../../../plugins/sdk/wit/plugin.wit");
// The contract the Python and JavaScript SDKs target (0.2.0), served beside 0.3.
const WIT_0_2: &str = include_str!("../../../plugins/sdk/wit/0.2/plugin.wit");

/// The language `sluice plugin new` scaffolds in (`--lang`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Lang {
    /// A crate on the Rust SDK (`sluice-plugin-sdk`).
    #[default]
    Rust,
    /// A componentize-py project on the Python SDK (`sluice_plugin.py`).
    Python,
    /// A componentize-js project on the JavaScript SDK (`sluice.js`).
    Js,
}

/// Whether `name` can be a plugin (and crate) name.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// `sluice plugin new NAME [--dir DIR] [--hooks] [--lang LANG]`: a handle-mode plugin, or with
/// `hooks` one with `on_request` and `on_response`.
pub(crate) fn new(name: &str, dir: Option<&Path>, hooks: bool, lang: Lang) -> ExitCode {
    if !valid_name(name) {
        eprintln!(
            "plugin names are lower-case letters, digits and '-', starting with a letter: {name:?}"
        );
        return ExitCode::FAILURE;
    }
    let root = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    if root.exists() {
        eprintln!(
            "{} already exists: choose another name or --dir",
            root.display()
        );
        return ExitCode::FAILURE;
    }
    let files = match lang {
        Lang::Rust => rust_files(name, hooks),
        Lang::Python => python::files(name, hooks),
        Lang::Js => match js::files(name, hooks) {
            Ok(files) => files,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
    };
    for (relative, content) in files {
        let path = root.join(relative);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, content));
        if let Err(e) = written {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let mode = if hooks { "hooks-mode" } else { "handle-mode" };
    let (language, next) = match lang {
        Lang::Rust => ("Rust", "cargo test && sluice plugin build"),
        Lang::Python => ("Python", "sluice plugin build"),
        Lang::Js => ("JavaScript", "npm ci && npm test && sluice plugin build"),
    };
    println!(
        "Created {mode} {language} plugin {name:?} in {}",
        root.display()
    );
    println!("  cd {} && {next}", root.display());
    ExitCode::SUCCESS
}

/// The files of a new Rust plugin crate (the SDK vendored under `sdk/`).
fn rust_files(name: &str, hooks: bool) -> Vec<(&'static str, String)> {
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{sdk_version}}", env!("CARGO_PKG_VERSION"))
    };
    vec![
        ("Cargo.toml", fill(TEMPLATE_CARGO)),
        (
            "src/lib.rs",
            fill(if hooks {
                TEMPLATE_LIB_HOOKS
            } else {
                TEMPLATE_LIB
            }),
        ),
        ("README.md", fill(TEMPLATE_README)),
        (".gitignore", TEMPLATE_GITIGNORE.to_owned()),
        ("sdk/Cargo.toml", fill(SDK_CARGO)),
        ("sdk/src/lib.rs", SDK_LIB.to_owned()),
        ("sdk/src/http.rs", SDK_HTTP.to_owned()),
        ("sdk/src/log.rs", SDK_LOG.to_owned()),
        ("sdk/wit/plugin.wit", WIT.to_owned()),
    ]
}

/// `sluice plugin build [DIR]`: builds the component and copies it to `DIR/<name>.wasm`. The
/// folder's language is told by its files: `package.json` without `Cargo.toml` (JavaScript),
/// `Cargo.toml` (Rust), else `pyproject.toml` or `app.py` (Python).
pub(crate) fn build(dir: &Path, release: bool) -> ExitCode {
    if js::is_project(dir) {
        return js::build(dir);
    }
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() && python::is_project(dir) {
        return python::build(dir);
    }
    if !manifest.is_file() {
        eprintln!(
            "no Cargo.toml (Rust), package.json (JavaScript), pyproject.toml or app.py (Python) in {}: run it in a plugin folder made by `sluice plugin new`",
            dir.display()
        );
        return ExitCode::FAILURE;
    }
    let Some(name) = package_name(&manifest) else {
        eprintln!(
            "{}: no [package] name found (is this a plugin crate made by `sluice plugin new`?)",
            manifest.display()
        );
        return ExitCode::FAILURE;
    };
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .arg("build")
        .arg("--target")
        .arg(WASM_TARGET)
        .arg("--manifest-path")
        .arg(&manifest);
    if release {
        cargo.arg("--release");
    }
    // cargo's own output (its errors included) goes straight to the user's terminal.
    match cargo.status() {
        Ok(status) if status.success() => {}
        Ok(status) => {
            if target_missing() == Some(true) {
                eprintln!(
                    "cargo build failed ({status}): the {WASM_TARGET} target is not installed: rustup target add {WASM_TARGET}"
                );
            } else {
                eprintln!(
                    "cargo build failed ({status}): see cargo's errors above ({})",
                    manifest.display()
                );
            }
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("cannot run cargo: {e}");
            return ExitCode::FAILURE;
        }
    }
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| dir.join("target"), PathBuf::from);
    let profile = if release { "release" } else { "debug" };
    let built = target_dir
        .join(WASM_TARGET)
        .join(profile)
        .join(format!("{}.wasm", name.replace('-', "_")));
    let out = dir.join(format!("{name}.wasm"));
    if let Err(e) = std::fs::copy(&built, &out) {
        eprintln!("cannot copy {} to {}: {e}", built.display(), out.display());
        return ExitCode::FAILURE;
    }
    println!(
        "Built {} (plugin name {name:?}): copy it into plugin.folder",
        out.display()
    );
    ExitCode::SUCCESS
}

const WASM_TARGET: &str = "wasm32-wasip2";

/// Whether rustup says the wasm target is missing; `None` when rustup cannot tell (not
/// installed, or failed).
fn target_missing() -> Option<bool> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    Some(
        !String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|line| line.trim() == WASM_TARGET),
    )
}

fn package_name(manifest: &Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest).ok()?;
    let mut in_package = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(value) = line.strip_prefix("name") {
            let value = value
                .trim_start()
                .strip_prefix('=')?
                .trim()
                .trim_matches('"');
            return Some(value.to_owned());
        }
    }
    None
}

/// `sluice plugin test FILE... [-c CONFIG] [--url URL]`.
pub(crate) fn test(files: &[PathBuf], config: Option<&Path>, url: Option<&str>) -> ExitCode {
    if files.is_empty() {
        println!("At least one plugin is required.");
        return ExitCode::FAILURE;
    }
    let started = Instant::now();
    // Read as `run` reads it: any format, the environment overrides and flexible configuration.
    let options = sluice_config::LoadOptions {
        environment: sluice_config::Environment::from_process(),
        components: crate::commands::components().namespaces(),
        ..sluice_config::LoadOptions::default()
    };
    let config = match config
        .map(|path| sluice_config::load_with(path, &options))
        .transpose()
    {
        Ok(config) => config,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match crate::commands::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let host = match sluice_wasm::WasmHostOptions::from_env().and_then(sluice_wasm::WasmHost::new) {
        Ok(host) => host,
        Err(e) => {
            eprintln!("cannot start the WebAssembly host: {e}");
            return ExitCode::FAILURE;
        }
    };
    let client: SharedExecutor = match sluice_client::DefaultClient::new(
        &config
            .as_ref()
            .map(|c| c.transport.clone())
            .unwrap_or_default(),
        config.as_ref().and_then(|c| c.client_tls.as_ref()),
    ) {
        Ok(client) => Arc::new(client),
        Err(e) => {
            let file = config.as_ref().map(|c| c.source.display().to_string());
            eprintln!("{}: {e}", file.unwrap_or_default());
            return ExitCode::FAILURE;
        }
    };
    let mut failed = 0;
    for file in files {
        let _guard = runtime.enter();
        match test_one(&host, file, config.as_ref(), url, &client, &runtime) {
            Ok(report) => {
                let header = format!("{}\t{}\t{}", file.display(), report.name, report.kind);
                match &report.problem {
                    None => println!("[OK] {header}{}", report.note),
                    Some(problem) => {
                        failed += 1;
                        println!("[KO] {header}: {problem}");
                    }
                }
                for line in report.details {
                    println!("{line}");
                }
            }
            Err(TestFailure::Unopenable(reason)) => {
                failed += 1;
                // KrakenD's exact line (spec §1.9), then why.
                println!("[KO] Unable to open the plugin {}.", file.display());
                println!("     {}: {reason}", file.display());
            }
            Err(TestFailure::Other(message)) => {
                failed += 1;
                println!("[KO] {}: {message}", file.display());
            }
        }
    }
    let elapsed = started.elapsed();
    if failed == 0 {
        println!("[OK] {} tested plugin(s) in {elapsed:.2?}", files.len());
        ExitCode::SUCCESS
    } else {
        println!("[KO] {} tested plugin(s) in {elapsed:.2?}.", files.len());
        println!("{failed} plugin(s) failed.");
        ExitCode::FAILURE
    }
}

/// What `sluice plugin test` found for one loaded plugin.
struct Report {
    name: String,
    kind: String,
    /// What was not tried, appended to the `[OK]` line (empty when everything was).
    note: String,
    /// Why the plugin did not do what was asked, for the `[KO]` line.
    problem: Option<String>,
    /// Indented lines: init per backend, the sample request.
    details: Vec<String>,
}

/// Why one plugin failed its test.
enum TestFailure {
    /// The file cannot be opened (KrakenD's `Unable to open the plugin` line), with the OS's
    /// reason.
    Unopenable(String),
    /// Anything else, with the reason.
    Other(String),
}

impl From<String> for TestFailure {
    fn from(message: String) -> Self {
        TestFailure::Other(message)
    }
}

fn test_one(
    host: &sluice_wasm::WasmHost,
    file: &Path,
    config: Option<&sluice_config::Config>,
    url: Option<&str>,
    client: &SharedExecutor,
    runtime: &tokio::runtime::Runtime,
) -> Result<Report, TestFailure> {
    match std::fs::metadata(file) {
        Err(e) => return Err(TestFailure::Unopenable(e.to_string())),
        Ok(meta) if !meta.is_file() => {
            return Err(TestFailure::Unopenable("not a regular file".to_owned()));
        }
        Ok(_) => {}
    }
    if let Err(e) = std::fs::File::open(file) {
        return Err(TestFailure::Unopenable(e.to_string()));
    }
    let (name, plugin) = host.load_file(file).map_err(|e| e.reason)?;
    let mut report = Report {
        name: name.clone(),
        kind: plugin.kind().to_string(),
        note: String::new(),
        problem: None,
        details: Vec::new(),
    };
    let lines = &mut report.details;
    let mut backends = Vec::new();
    if let Some(config) = config {
        for endpoint in &config.endpoints {
            for backend in &endpoint.backends {
                if let Some(plugin_ref) = backend.plugin.as_ref().filter(|p| p.name == name) {
                    backends.push((endpoint.label(), backend, plugin_ref));
                }
            }
        }
        if backends.is_empty() && url.is_none() {
            report.note = format!(
                "\tloaded; init not run: no backend of {} names {name:?}",
                config.source.display()
            );
        } else if backends.is_empty() {
            lines.push(format!(
                "     no backend of {} names {name:?}: init runs with empty settings",
                config.source.display()
            ));
        }
    } else if url.is_none() {
        report.note = "\tloaded; init not run: pass -c CONFIG with a backend naming it".to_owned();
    }
    let mut executors = Vec::new();
    for (label, backend, plugin_ref) in &backends {
        let outbound = OutboundClient::for_backend(
            Arc::clone(client),
            &plugin_ref.name,
            &plugin_ref.extra,
            &backend.host,
        )
        .map_err(|e| format!("{}: {e}", plugin_ref.json_path))?;
        let ctx = PluginContext {
            extra: &plugin_ref.extra,
            settings: plugin_ref.extra.get(&plugin_ref.name),
            backend_hosts: &backend.host,
            client: Arc::new(outbound),
            backend_label: label,
            url_pattern: &backend.url_pattern,
            settings_path: &plugin_ref.settings_path,
        };
        let executor = runtime.block_on(plugin.build_async(ctx)).map_err(|e| {
            format!(
                "{}: init rejected its settings: {}",
                plugin_ref.json_path,
                PluginError::join(&e)
            )
        })?;
        lines.push(format!(
            "     init OK for {label} -> {}",
            backend.url_pattern
        ));
        executors.push(executor);
    }
    if let Some(url) = url {
        let uri: http::Uri = url.parse().map_err(|e| format!("--url {url:?}: {e}"))?;
        let executor = match executors.first() {
            Some(executor) => Arc::clone(executor),
            None => build_for_url(plugin.as_ref(), &name, &uri, client, runtime)?,
        };
        let request = BackendRequest {
            method: http::Method::GET,
            url: uri,
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::new(),
        };
        let ctx = CallContext::new(
            sluice_plugin::Instant::now() + std::time::Duration::from_secs(5),
            sluice_proxy::DEFAULT_MAX_BODY_BYTES,
        );
        let answer = runtime.block_on(async {
            let response = executor.execute(request, &ctx).await?;
            let status = response.status();
            let body = sluice_plugin::collect(response.into_body(), ctx.max_body_bytes).await?;
            Ok::<_, sluice_plugin::ExecError>((status, body))
        });
        let (status, body) = answer.map_err(|e| format!("sample request to {url}: {e}"))?;
        let preview: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        lines.push(format!("     GET {url} -> {} {preview}", status.as_u16()));
        if !status.is_success() {
            report.problem = Some(format!("the sample GET {url} answered {status}, not 2xx"));
        }
    }
    Ok(report)
}

fn build_for_url(
    plugin: &dyn ClientPlugin,
    name: &str,
    uri: &http::Uri,
    client: &SharedExecutor,
    runtime: &tokio::runtime::Runtime,
) -> Result<SharedExecutor, String> {
    let origin = format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().map_or("", |a| a.as_str())
    );
    let extra = serde_json::Map::from_iter([(
        "name".to_owned(),
        serde_json::Value::String(name.to_owned()),
    )]);
    let hosts = [origin];
    let outbound = OutboundClient::for_backend(Arc::clone(client), name, &extra, &hosts)?;
    runtime
        .block_on(plugin.build_async(PluginContext {
            extra: &extra,
            settings: None,
            backend_hosts: &hosts,
            client: Arc::new(outbound),
            backend_label: "sluice plugin test",
            url_pattern: uri.path(),
            settings_path: name,
        }))
        .map_err(|e| {
            format!(
                "init rejected empty settings (pass -c with a config that names it): {}",
                PluginError::join(&e)
            )
        })
}

/// `sluice plugin hash FILE...`: the `plugin.sha256` object for these files, on stdout.
pub(crate) fn hash(files: &[PathBuf]) -> ExitCode {
    let mut pins = serde_json::Map::new();
    let mut failed = false;
    for file in files {
        let name = file.file_stem().and_then(|s| s.to_str());
        match (name, sluice_wasm::file_sha256(file)) {
            (Some(name), Ok(hash)) => {
                pins.insert(name.to_owned(), serde_json::Value::String(hash));
            }
            (None, _) => {
                eprintln!("{}: the file name is not valid UTF-8", file.display());
                failed = true;
            }
            (_, Err(e)) => {
                eprintln!("{}: cannot read: {e}", file.display());
                failed = true;
            }
        }
    }
    let object = serde_json::Value::Object(pins);
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({"sha256": object})).unwrap_or_default()
    );
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names() {
        assert!(valid_name("hmac-signer2"));
        assert!(!valid_name("Hmac"));
        assert!(!valid_name("1abc"));
        assert!(!valid_name("a_b"));
        assert!(!valid_name(""));
    }
}
