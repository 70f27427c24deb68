//! Hot reload: SIGHUP and `run --watch` build a whole new gateway off the request path (config
//! read and checked, plugins compiled and initialised) and swap it in; on any problem the old
//! one keeps serving and every problem is logged as `sluice check` prints it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_config::{Config, LoadOptions, Logging, OpenTelemetry};
use sluice_server::{Gateway, RunningGateway};
use sluice_telemetry::{Collector, Family, Telemetry};
use tokio::sync::mpsc;

/// How long the watched files must stay quiet before a reload: an editor's save or a
/// Kubernetes ConfigMap swap is several events in a few milliseconds.
const QUIET: Duration = Duration::from_millis(300);

/// Where the gateway comes from, kept for every reload: the same file, flags and environment.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) path: PathBuf,
    pub(crate) options: LoadOptions,
    pub(crate) port: Option<u16>,
    pub(crate) debug: bool,
    /// The process' telemetry: every gateway a reload builds records into it.
    pub(crate) telemetry: Telemetry,
    /// The plugin host's counters the telemetry reports now (a reload's new host replaces it).
    pub(crate) collector: Option<Arc<dyn Collector>>,
    /// The service's `telemetry/opentelemetry` and `telemetry/logging` at start-up: they apply
    /// to the process, so a reload that changes them is refused rather than half applied.
    pub(crate) started_telemetry: (Option<OpenTelemetry>, Option<Logging>),
}

/// Reloads done and refused since start-up, and the config served: reported as metrics
/// (`sluice_config_reloads_total{result}`, `sluice_config_info{digest}`).
#[derive(Debug, Default)]
pub(crate) struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
    digest: Mutex<String>,
}

impl Counts {
    /// The counts of a process that serves the config `digest`, reported by `telemetry` from
    /// now on: before the listener opens, so that the first scrape already has them.
    pub(crate) fn register(telemetry: &Telemetry, digest: &str) -> Arc<Counts> {
        let counts = Arc::new(Counts {
            digest: Mutex::new(digest.to_owned()),
            ..Counts::default()
        });
        telemetry.register_collector(Arc::clone(&counts) as Arc<dyn Collector>);
        counts
    }
}

impl Collector for Counts {
    fn collect(&self) -> Vec<Family> {
        let result = |r: &str| vec![("result".to_owned(), r.to_owned())];
        let digest = self
            .digest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        vec![
            Family {
                name: "sluice.config.reloads".to_owned(),
                help: "Reloads (SIGHUP, --watch) since start-up, by result".to_owned(),
                counter: true,
                samples: vec![
                    (result("ok"), self.ok.load(Ordering::Relaxed) as f64),
                    (result("failed"), self.failed.load(Ordering::Relaxed) as f64),
                ],
            },
            Family {
                name: "sluice.config.info".to_owned(),
                help: "The config served now, by digest (the one /__health reports)".to_owned(),
                counter: false,
                samples: vec![(vec![("digest".to_owned(), digest)], 1.0)],
            },
        ]
    }
}

impl Source {
    /// The config, with `--port` and `-d` applied, or every problem.
    pub(crate) fn config(&self) -> Result<Config, Vec<String>> {
        let mut config = sluice_config::load_with(&self.path, &self.options)
            .map_err(|d| d.to_string().lines().map(str::to_owned).collect::<Vec<_>>())?;
        config.debug_endpoint |= self.debug;
        if let Some(port) = self.port {
            crate::commands::follow_port(&mut config, port);
        }
        Ok(config)
    }

    /// A whole new gateway: config, plugins and pipelines, nothing bound; and its plugin
    /// host's counters. Called on a blocking thread of the gateway's runtime (components
    /// compile there); the plugins' set-up runs on `runtime`.
    pub(crate) fn build(&self, runtime: &tokio::runtime::Handle) -> Result<Built, Vec<String>> {
        let config = self.config()?;
        let (otel, logging) = &self.started_telemetry;
        for (changed, namespace) in [
            (config.opentelemetry != *otel, "telemetry/opentelemetry"),
            (config.logging != *logging, "telemetry/logging"),
        ] {
            if changed {
                return Err(vec![format!(
                    "{}: extra_config[\"{namespace}\"]: changed since start-up; the telemetry and \
                     logging settings apply to the process: restart Sluice to apply them",
                    config.source.display()
                )]);
            }
        }
        let plugins = crate::commands::registry(&config)?;
        let gateway = runtime
            .block_on(Gateway::build_with(
                &config,
                &plugins.registry,
                &crate::commands::components(),
                &self.telemetry,
            ))
            .map_err(|e| match e {
                sluice_server::StartError::Pipeline(errors) => errors,
                other => vec![other.to_string()],
            })?;
        Ok(Built {
            gateway,
            config,
            collector: plugins.collector,
        })
    }
}

/// What [`Source::build`] made.
pub(crate) struct Built {
    gateway: Gateway,
    config: Config,
    collector: Option<Arc<dyn Collector>>,
}

/// Builds a new gateway from `source` on a blocking thread (plugins compile there) and swaps it
/// in. Returns whether it did.
pub(crate) async fn reload(source: &mut Source, server: &RunningGateway, counts: &Counts) -> bool {
    let from = server.current().digest().to_owned();
    let building = source.clone();
    let runtime = tokio::runtime::Handle::current();
    let built = tokio::task::spawn_blocking(move || building.build(&runtime))
        .await
        .unwrap_or_else(|e| Err(vec![format!("the reload stopped: {e}")]));
    let outcome = match built {
        Ok(Built {
            gateway,
            config,
            collector,
        }) => {
            crate::commands::warn_unknown_namespaces(&config);
            let reloaded = server.reload(gateway).await;
            if reloaded.is_ok()
                && let Some(collector) = collector
            {
                source
                    .telemetry
                    .replace_collector(source.collector.as_ref(), Arc::clone(&collector));
                source.collector = Some(collector);
            }
            reloaded.map_err(|e| vec![e.to_string()])
        }
        Err(errors) => Err(errors),
    };
    match outcome {
        Ok(reloaded) => {
            let ok = counts.ok.fetch_add(1, Ordering::Relaxed) + 1;
            *counts.digest.lock().unwrap_or_else(|p| p.into_inner()) = reloaded.to.clone();
            match reloaded.moved_to {
                Some(addr) => {
                    tracing::info!(from = %reloaded.from, to = %reloaded.to, address = %addr, reloads = ok, "reloaded; listening on a new address")
                }
                None => {
                    tracing::info!(from = %reloaded.from, to = %reloaded.to, reloads = ok, "reloaded")
                }
            }
            true
        }
        Err(errors) => {
            let failed = counts.failed.fetch_add(1, Ordering::Relaxed) + 1;
            for e in &errors {
                tracing::error!("{e}");
            }
            tracing::error!(
                config = %from,
                problems = errors.len(),
                failed,
                "reload refused; still serving the previous config"
            );
            false
        }
    }
}

/// `run --watch`: the watched folders' changes, from before the gateway listens (so a change
/// made once it answers is never missed). The watcher stops when this is dropped.
#[derive(Debug)]
pub(crate) struct Watch {
    _watcher: notify::RecommendedWatcher,
    changes: mpsc::Receiver<()>,
}

impl Watch {
    /// Starts watching `source`'s folders; on failure, logs why (SIGHUP still reloads).
    pub(crate) fn start(source: &Source, config: &Config) -> Option<Watch> {
        match watch_files(source, config) {
            Ok((watcher, changes)) => Some(Watch {
                _watcher: watcher,
                changes,
            }),
            Err(e) => {
                tracing::error!("--watch: {e}; reloading on SIGHUP only");
                None
            }
        }
    }
}

/// Serves until SIGINT or SIGTERM, reloading on SIGHUP and, with `watch`, when a watched file
/// changes.
pub(crate) async fn serve(
    mut source: Source,
    server: RunningGateway,
    watch: Option<Watch>,
    signals: Signals,
    counts: Arc<Counts>,
) {
    let mut changes = watch;
    let Signals {
        mut hangups,
        shutdown,
    } = signals;
    let mut shutdown = shutdown;
    loop {
        tokio::select! {
            _ = shutdown.recv() => break,
            Some(()) = hangups.recv() => {
                tracing::info!("SIGHUP: reloading");
                reload(&mut source, &server, &counts).await;
            }
            Some(()) = async { match changes.as_mut() { Some(w) => quiet_change(&mut w.changes).await, None => std::future::pending().await } } => {
                tracing::info!("a watched file changed: reloading");
                reload(&mut source, &server, &counts).await;
            }
        }
    }
    server.shutdown().await;
}

/// The next change, once the files have been quiet for [`QUIET`].
async fn quiet_change(changes: &mut mpsc::Receiver<()>) -> Option<()> {
    changes.recv().await?;
    loop {
        match tokio::time::timeout(QUIET, changes.recv()).await {
            Ok(Some(())) => {}
            Ok(None) => return None,
            Err(_) => return Some(()),
        }
    }
}

/// The signals `run` acts on, registered before the gateway listens: a SIGTERM that arrives
/// once it answers must drain it, never kill it.
#[derive(Debug)]
pub(crate) struct Signals {
    hangups: mpsc::Receiver<()>,
    shutdown: mpsc::Receiver<()>,
}

impl Signals {
    /// Registers SIGHUP (reload) and SIGINT/SIGTERM (drain and stop) now.
    pub(crate) fn register() -> Signals {
        let (tx, shutdown) = mpsc::channel(1);
        #[cfg(unix)]
        for kind in [
            tokio::signal::unix::SignalKind::interrupt(),
            tokio::signal::unix::SignalKind::terminate(),
        ] {
            match tokio::signal::unix::signal(kind) {
                Ok(mut signal) => {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        if signal.recv().await.is_some() {
                            tracing::info!("shutting down: draining in-flight requests");
                            let _ = tx.try_send(());
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen for a stop signal"),
            }
        }
        #[cfg(not(unix))]
        drop(tx);
        Signals {
            hangups: hangups(),
            shutdown,
        }
    }
}

/// SIGHUP, one message per signal.
fn hangups() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    #[cfg(unix)]
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(mut signal) => {
            tokio::spawn(async move {
                while signal.recv().await.is_some() {
                    // A reload already pending covers this one too.
                    let _ = tx.try_send(());
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP"),
    }
    #[cfg(not(unix))]
    drop(tx);
    rx
}

/// The folders to watch: the config's own (a directory watch sees a Kubernetes ConfigMap's
/// symlink swap, which a watch on the file itself would miss), the plugin folder and the
/// flexible configuration's folders.
pub(crate) fn watched_folders(source: &Source, config: &Config) -> Vec<PathBuf> {
    let mut folders = Vec::new();
    let parent = source
        .path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    folders.push(parent.to_path_buf());
    if let Some(plugin) = &config.plugin {
        folders.push(plugin.folder.clone());
    }
    let env = &source.options.environment;
    if env.get("FC_ENABLE").is_some_and(|v| !v.is_empty()) {
        for var in ["FC_SETTINGS", "FC_PARTIALS", "FC_TEMPLATES"] {
            if let Some(folder) = env.get(var).filter(|v| !v.is_empty()) {
                folders.push(PathBuf::from(folder));
            }
        }
    }
    folders.sort();
    folders.dedup();
    folders
}

/// A message per change under the watched folders, while the watcher lives.
fn watch_files(
    source: &Source,
    config: &Config,
) -> Result<(notify::RecommendedWatcher, mpsc::Receiver<()>), String> {
    use notify::Watcher as _;
    let (tx, rx) = mpsc::channel(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            // One pending message is enough: the reload reads everything again.
            let _ = tx.try_send(());
        }
    })
    .map_err(|e| format!("cannot watch files: {e}"))?;
    for folder in watched_folders(source, config) {
        watcher
            .watch(&folder, notify::RecursiveMode::Recursive)
            .map_err(|e| format!("cannot watch {}: {e}", folder.display()))?;
        tracing::info!(folder = %folder.display(), "watching for changes");
    }
    Ok((watcher, rx))
}
