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
    // The full format without targets; the access line (one per request) by a fast path that
    // writes the same bytes.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(sluice_telemetry::stdout::BatchedStdout)
        .event_format(sluice_telemetry::logging::DefaultLines::new())
        .init();
}

/// The application log as `telemetry/logging` asks (krakend-gologging's formats, stdout and/or
/// syslog), else [`init_logging`]. The level is the first of: `filter` (`--log`, `-d`),
/// `RUST_LOG`, the config's `level`. The access log is written whatever the level, as
/// KrakenD's (off with `router.disable_access_log`).
fn init_configured_logging(filter: Option<&str>, config: &Config) -> Result<(), String> {
    use sluice_config::{LogFormat, LogLevel};
    use sluice_telemetry::logging::{LineFormat, LogLayer, LogSettings};
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let Some(logging) = &config.logging else {
        init_logging(filter);
        return Ok(());
    };
    let (level, directive) = match logging.level {
        LogLevel::Debug => (tracing::Level::DEBUG, "debug"),
        LogLevel::Info => (tracing::Level::INFO, "info"),
        LogLevel::Warning => (tracing::Level::WARN, "warn"),
        LogLevel::Error | LogLevel::Critical => (tracing::Level::ERROR, "error"),
    };
    let overridden = filter
        .map(tracing_subscriber::EnvFilter::new)
        .or_else(|| tracing_subscriber::EnvFilter::try_from_default_env().ok());
    let (env_filter, critical) = match overridden {
        Some(f) => (f, false),
        None => {
            let access = if config.router.disable_access_log {
                String::new()
            } else {
                format!(",{}=info", sluice_telemetry::logging::ACCESS_TARGET)
            };
            (
                tracing_subscriber::EnvFilter::new(format!("{directive}{access}")),
                logging.level == LogLevel::Critical,
            )
        }
    };
    let layer = LogLayer::new(LogSettings {
        level: if critical {
            level
        } else {
            tracing::Level::TRACE
        },
        critical,
        prefix: logging.prefix.clone(),
        stdout: logging.stdout,
        syslog: logging.syslog.then_some(logging.syslog_facility),
        format: match &logging.format {
            LogFormat::Default => LineFormat::Default,
            LogFormat::Logstash => LineFormat::Logstash,
            LogFormat::Custom(pattern) => LineFormat::Custom(pattern.clone()),
        },
    })?;
    tracing_subscriber::registry()
        .with(env_filter)
        .with(layer)
        .try_init()
        .map_err(|e| format!("cannot start logging: {e}"))
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
    // Log lines written while a runtime thread works go out together when it parks (one
    // write per burst of requests, not one per access line).
    builder
        .on_thread_unpark(sluice_telemetry::stdout::burst_started)
        .on_thread_park(sluice_telemetry::stdout::burst_ended);
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
pub(crate) fn registry(config: &Config) -> Result<Plugins, Vec<String>> {
    let plugins = plugins(config)?;
    if plugins.errors.is_empty() {
        Ok(plugins)
    } else {
        Err(plugins.errors)
    }
}

/// The plugins that loaded, the problems, and the names of the plugin files that did not load.
#[derive(Debug)]
pub(crate) struct Plugins {
    pub(crate) registry: Registry,
    errors: Vec<String>,
    failed: Vec<String>,
    /// The WebAssembly host's counters, for the telemetry.
    pub(crate) collector: Option<Arc<dyn sluice_telemetry::Collector>>,
}

fn plugins(config: &Config) -> Result<Plugins, Vec<String>> {
    let mut registry = Registry::new();
    let mut errors = Vec::new();
    let mut failed = Vec::new();
    let mut collector = None;
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
        let host = sluice_wasm::WasmHostOptions::from_env()
            .and_then(sluice_wasm::WasmHost::new)
            .map_err(|e| vec![format!("cannot start the WebAssembly host: {e}")])?;
        collector = Some(host.collector());
        let (plugins, load_errors) = host.load_folder(folder);
        let file = config.source.display();
        for e in &load_errors {
            // A pin that fails is about plugin.sha256, not about which files are loaded.
            if e.to_string().contains("plugin.sha256") {
                errors.push(format!("{file}: {e}"));
            } else {
                errors.push(format!(
                    "{file}: plugin.folder: {e} (every file in {} whose name contains {:?} is \
                     loaded: move this one out, or narrow plugin.pattern)",
                    folder.folder.display(),
                    folder.pattern
                ));
            }
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
        collector,
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
///
/// Logging starts once the config is read (its `telemetry/logging`); `log_filter` is `--log`
/// or `-d`.
pub(crate) fn run(
    mut source: crate::reload::Source,
    watch: bool,
    log_filter: Option<&str>,
) -> ExitCode {
    let config = match source.config() {
        Ok(config) => config,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = init_configured_logging(log_filter, &config) {
        eprintln!("{}: {e}", config.source.display());
        return ExitCode::FAILURE;
    }
    warn_unknown_namespaces(&config);
    for line in override_lines(&config) {
        tracing::info!("{line}");
    }
    let Plugins {
        registry,
        collector,
        ..
    } = match registry(&config) {
        Ok(plugins) => plugins,
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
    // The telemetry (and its exporters) lives as long as the process: reloads record into it.
    let telemetry = sluice_server::telemetry::from_config(&config);
    if let Some(collector) = &collector {
        telemetry.register_collector(Arc::clone(collector));
    }
    source.telemetry = telemetry.clone();
    source.collector = collector;
    source.started_telemetry = (config.opentelemetry.clone(), config.logging.clone());
    runtime.block_on(async move {
        // Before the listener opens: a stop signal from then on drains the gateway.
        let signals = crate::reload::Signals::register();
        let watch = if watch {
            crate::reload::Watch::start(&source, &config)
        } else {
            None
        };
        let counts = crate::reload::Counts::register(&telemetry, &config.digest);
        let built =
            sluice_server::Gateway::build_with(&config, &registry, &components(), &telemetry).await;
        let served = match built {
            Ok(gateway) => sluice_server::serve_with(gateway, None, &telemetry).await,
            Err(e) => Err(e),
        };
        let gateway = match served {
            Ok(gateway) => gateway,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        for (name, addr) in gateway.prometheus_addrs() {
            tracing::info!(exporter = %name, address = %addr, "Prometheus metrics at /metrics");
        }
        crate::reload::serve(source, gateway, watch, signals, counts).await;
        tracing::info!("stopped");
        ExitCode::SUCCESS
    })
}

/// The security and traffic components the gateway is built with (JWT, CORS, rate limits...),
/// in the order their stages run. The parser keeps their namespaces for them.
pub(crate) fn components() -> sluice_stage::Components {
    // KrakenD's order. Service stages: CORS first (it wraps the whole router: a preflight is
    // answered before any other component sees it, and every answer leaves with its headers),
    // then the bot detector (it refuses before anything is spent on the request). Endpoint
    // stages: who the caller is (JWT), the rate limits, then what they sent (JSON schema).
    // Backend layers, the first added outermost: the circuit breaker around the cache, as
    // KrakenD CE stacks them (its cache lives in the HTTP client, under the breaker).
    sluice_stage::Components::new()
        .with(sluice_security::cors::Cors)
        .with(sluice_botdetector::BotDetector::new())
        .with(sluice_jwt::JwtValidator::new())
        .with(sluice_ratelimit::RateLimits::new())
        .with(sluice_validation::JsonSchema)
        .with(sluice_qos::CircuitBreaker)
        .with(sluice_qos::HttpCache::default())
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
        // A chain shows as its plugins in order: `auth-headers>hmac-signer>static-answer`.
        let plugins: Vec<String> = endpoint
            .backends
            .iter()
            .filter_map(|b| b.plugin.as_ref())
            .map(|p| match p.chain.as_slice() {
                [] => p.name.clone(),
                chain => chain
                    .iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join(">"),
            })
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
    // Built as `run` builds it: a plugin's set-up (a component's `init`) runs on the runtime.
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let built = runtime.block_on(sluice_server::Gateway::build_with(
        &config,
        &registry,
        &components(),
        &sluice_telemetry::Telemetry::disabled(),
    ));
    if let Err(sluice_server::StartError::Pipeline(errors)) = built {
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
