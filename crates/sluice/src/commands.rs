//! `run` and `check`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use sluice_config::{Config, LoadOptions, NamespaceClass};
use sluice_plugin::Registry;

pub(crate) fn init_logging(filter: Option<&str>) {
    let filter = filter
        .map(tracing_subscriber::EnvFilter::new)
        .or_else(|| tracing_subscriber::EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal, and never with NO_COLOR set: log files and pipes get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .init();
}

/// The multi-threaded runtime, or a message and a failing exit code.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    // On a single core (a container limited to one CPU, or `taskset`), work stealing only adds
    // cross-thread wake-ups: run everything on the one thread.
    let one_core = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    let mut builder = if one_core {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().build().map_err(|e| {
        eprintln!("cannot start the runtime: {e}");
        ExitCode::FAILURE
    })
}

/// The config, or every problem printed to stderr.
fn load(path: &Path, options: &LoadOptions) -> Result<Config, ExitCode> {
    sluice_config::load_with(path, options).map_err(|diagnostics| {
        eprintln!("{diagnostics}");
        ExitCode::FAILURE
    })
}

/// Every plugin the config can name: compiled-in ones and the components in `plugin.folder`.
pub(crate) fn registry(config: &Config) -> Result<Registry, Vec<String>> {
    let plugins = plugins(config)?;
    if plugins.errors.is_empty() {
        Ok(plugins.registry)
    } else {
        Err(plugins.errors)
    }
}

/// The plugins that loaded, the problems, and the names of the plugin files that did not load.
#[derive(Debug)]
struct Plugins {
    registry: Registry,
    errors: Vec<String>,
    failed: Vec<String>,
}

fn plugins(config: &Config) -> Result<Plugins, Vec<String>> {
    let mut registry = Registry::new();
    let mut errors = Vec::new();
    let mut failed = Vec::new();
    if let Err(e) = sluice_builtin_plugins::register_all(&mut registry) {
        errors.push(e.to_string());
    }
    // gRPC backends (`backend/grpc`, or the plugin `grpc`): the catalog is loaded here, once
    // per config, and shared by every backend.
    match sluice_grpc::GrpcPlugin::from_config(config) {
        Ok(grpc) => {
            if let Err(e) = registry.register(sluice_config::namespace::GRPC_PLUGIN, Arc::new(grpc))
            {
                errors.push(e.to_string());
            }
        }
        Err(catalog_errors) => {
            errors.extend(catalog_errors);
            // Its backends' "no client plugin is named grpc" would only repeat the cause.
            failed.push(sluice_config::namespace::GRPC_PLUGIN.to_owned());
        }
    }
    if let Some(folder) = &config.plugin {
        let started = std::time::Instant::now();
        let host = sluice_wasm::WasmHost::new(sluice_wasm::WasmHostOptions::default())
            .map_err(|e| vec![format!("cannot start the WebAssembly host: {e}")])?;
        let (plugins, load_errors) = host.load_folder(folder);
        let file = config.source.display();
        for e in &load_errors {
            errors.push(format!(
                "{file}: plugin.folder: {e} (every file in {} whose name contains {:?} is \
                 loaded: move this one out, or narrow plugin.pattern)",
                folder.folder.display(),
                folder.pattern
            ));
            if let Some(stem) = e.file.file_stem().and_then(|s| s.to_str()) {
                failed.push(stem.to_owned());
            }
        }
        let loaded = plugins.len();
        for (name, plugin) in plugins {
            if let Err(e) = registry.register(name, plugin) {
                errors.push(format!("{file}: plugin.folder: {e}"));
            }
        }
        tracing::info!(
            folder = %folder.folder.display(),
            loaded,
            elapsed = ?started.elapsed(),
            "component plugins loaded"
        );
    }
    Ok(Plugins {
        registry,
        errors,
        failed,
    })
}

/// One line per namespace accepted without being acted on: why, and where.
fn namespace_lines(config: &Config) -> impl Iterator<Item = String> + '_ {
    config.unknown_namespaces.iter().map(|unknown| {
        let what = match unknown.class {
            NamespaceClass::ObserveOnly => "only observes traffic and is ignored",
            NamespaceClass::OptedOut => "is NOT enforced (--allow-unenforced)",
        };
        format!(
            "{}: {}: namespace {:?} {what}",
            config.source.display(),
            unknown.path,
            unknown.namespace
        )
    })
}

pub(crate) fn warn_unknown_namespaces(config: &Config) {
    for line in namespace_lines(config) {
        tracing::warn!("{line}");
    }
}

/// One line per root value taken from the environment (the variable, not its value).
fn override_lines(config: &Config) -> impl Iterator<Item = String> + '_ {
    config.env_overrides.iter().map(|o| {
        format!(
            "{}: {} is set by the environment variable {}",
            config.source.display(),
            o.key,
            o.variable
        )
    })
}

/// `sluice run`: serves `source` until SIGINT or SIGTERM, reloading it on SIGHUP and, with
/// `watch`, when its files change. `source.debug` is `run -d`, which also turns the
/// `/__debug/` endpoint on, as KrakenD's does (CE's own integration fixtures rely on it).
pub(crate) fn run(source: crate::reload::Source, watch: bool) -> ExitCode {
    let config = match source.config() {
        Ok(config) => config,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return ExitCode::FAILURE;
        }
    };
    warn_unknown_namespaces(&config);
    for line in override_lines(&config) {
        tracing::info!("{line}");
    }
    let registry = match registry(&config) {
        Ok(registry) => registry,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return ExitCode::FAILURE;
        }
    };
    log_start_up(&config, &registry);
    let runtime = match crate::commands::runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let gateway = match sluice_server::start(Arc::new(config), registry, None).await {
            Ok(gateway) => gateway,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        crate::reload::serve(source, gateway, watch).await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

/// `--port`: the gateway moves, and so do the backends that are the gateway itself (a loopback
/// host on the config's own port, as the bundled example's `/__debug/` and `/__echo/` backends).
pub(crate) fn follow_port(config: &mut Config, port: u16) {
    let old = config.port;
    let moved = |host: &mut String| {
        let Some(origin) = sluice_plugin::Origin::parse(host) else {
            return;
        };
        let loopback = matches!(origin.host.as_str(), "127.0.0.1" | "localhost" | "[::1]");
        if loopback && origin.port == old {
            let new = format!("{}://{}:{port}", origin.scheme, origin.host);
            tracing::info!(from = %host, to = %new, "backend host follows --port (it is the gateway itself)");
            *host = new;
        }
    };
    config.host.iter_mut().for_each(moved);
    for endpoint in &mut config.endpoints {
        for backend in &mut endpoint.backends {
            backend.host.iter_mut().for_each(moved);
        }
    }
    config.port = port;
}

/// What an operator wants to see first: which build serves which file, and what it serves.
fn log_start_up(config: &Config, registry: &Registry) {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %config.source.display(),
        endpoints = config.endpoints.len(),
        "starting sluice"
    );
    for endpoint in &config.endpoints {
        let plugins: Vec<&str> = endpoint
            .backends
            .iter()
            .filter_map(|b| b.plugin.as_ref().map(|p| p.name.as_str()))
            .collect();
        tracing::info!(
            endpoint = %endpoint.label(),
            backends = endpoint.backends.len(),
            plugins = %plugins.join(","),
            "serving"
        );
    }
    // The components loaded from the plugin folder (the compiled-in ones are always there).
    for name in registry.names() {
        if let Some(plugin) = registry.get(name).filter(|p| p.origin() != "compiled-in") {
            tracing::info!(plugin = name, kind = %plugin.kind(), file = %plugin.origin(), "plugin loaded");
        }
    }
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}

pub(crate) fn check(path: &Path, options: &LoadOptions, print_config: bool) -> ExitCode {
    let config = match load(path, options) {
        Ok(config) => config,
        Err(code) => return code,
    };
    if print_config {
        println!("{config:#?}");
    }
    let mut problems = Vec::new();
    let (registry, failed) = match plugins(&config) {
        Ok(plugins) => {
            problems.extend(plugins.errors);
            (plugins.registry, plugins.failed)
        }
        Err(errors) => {
            problems.extend(errors);
            (Registry::new(), Vec::new())
        }
    };
    if let Err(errors) = sluice_server::validate(&config, &registry) {
        // A backend naming a plugin whose file failed to load is that file's one error, not
        // a second "no client plugin is named" one.
        problems.extend(errors.into_iter().filter(|e| {
            !failed
                .iter()
                .any(|name| e.contains(&format!("no client plugin is named {name:?}")))
        }));
    }
    for line in namespace_lines(&config) {
        println!("warning: {line}");
    }
    for line in override_lines(&config) {
        println!("note: {line}");
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("{p}");
        }
        eprintln!("{} problem(s) found", problems.len());
        return ExitCode::FAILURE;
    }
    let backends: usize = config.endpoints.iter().map(|e| e.backends.len()).sum();
    println!(
        "Syntax OK! {}: {} endpoint(s), {} backend(s), {} plugin(s) available",
        config.source.display(),
        config.endpoints.len(),
        backends,
        registry.len()
    );
    ExitCode::SUCCESS
}
