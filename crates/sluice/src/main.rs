//! The `sluice` command: a thin shell over the gateway crates.

mod alloc;
mod commands;
mod plugin;
mod reload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc, not the system allocator: a proxied request allocates and frees dozens of small
/// objects (header maps, decoded JSON), and glibc's per-thread cache (seven chunks a size)
/// overflows into its slower bins under load. bench/README.md has the measurements.
#[global_allocator]
static ALLOCATOR: alloc::Allocator = alloc::Allocator;

/// Sluice: an API gateway that serves KrakenD v3 configurations.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the configuration's endpoints until Ctrl-C or SIGTERM.
    Run {
        /// The KrakenD v3 configuration file: .json, .yaml/.yml or .toml (a Go template with
        /// FC_ENABLE=1).
        #[arg(short, long, default_value = "krakend.json")]
        config: PathBuf,
        /// Override the config's `port`.
        #[arg(short, long)]
        port: Option<u16>,
        /// Log level filter (e.g. `info`, `debug`, `sluice=debug`); overrides RUST_LOG.
        #[arg(short, long)]
        log: Option<String>,
        /// Debug mode, as `krakend run -d`: debug logging (the same as `--log debug`) and the
        /// `/__debug/` endpoint (the config's `debug_endpoint: true`).
        #[arg(short, long, conflicts_with = "log")]
        debug: bool,
        /// Reload when the config, the plugin folder or the flexible configuration's folders
        /// change (SIGHUP always reloads).
        #[arg(short, long)]
        watch: bool,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Validate the configuration (plugins included) and print every problem.
    Check {
        /// The KrakenD v3 configuration file: .json, .yaml/.yml or .toml (a Go template with
        /// FC_ENABLE=1).
        #[arg(short, long, default_value = "krakend.json")]
        config: PathBuf,
        /// Print the parsed configuration, every default applied (as `krakend check -d`).
        #[arg(short, long)]
        debug: bool,
        /// Build every endpoint's pipeline and plugin without serving (as `krakend check -t`;
        /// `sluice check` always does, so the flag is accepted for habit's sake).
        #[arg(short = 't', long = "test-gateway")]
        test_gateway: bool,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Tooling for plugin authors.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// The same as `sluice plugin test` (KrakenD's `krakend test-plugin`).
    TestPlugin(TestArgs),
}

/// `plugin test`'s arguments.
#[derive(Debug, clap::Args)]
struct TestArgs {
    /// The `.wasm` files.
    files: Vec<PathBuf>,
    /// A config whose backends name the plugins: their settings are used for init.
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// Send a GET to this backend URL through the plugin.
    #[arg(long)]
    url: Option<String>,
}

/// How the config is read.
#[derive(Debug, clap::Args)]
struct LoadArgs {
    /// Serve without enforcing this `extra_config` namespace (repeatable; `qos/*` names a
    /// family). Sluice refuses a config with a namespace it does not implement, since ignoring
    /// e.g. `auth/validator` would serve the endpoint unprotected; this is the explicit opt-out.
    #[arg(long = "allow-unenforced", value_name = "NAMESPACE")]
    allow_unenforced: Vec<String>,
}

impl LoadArgs {
    fn options(self) -> sluice_config::LoadOptions {
        sluice_config::LoadOptions {
            allow_unenforced: self.allow_unenforced,
            // KRAKEND_*/SLUICE_* overrides, FC_* (flexible configuration) and the templates' env.
            environment: sluice_config::Environment::from_process(),
            // The namespaces the gateway's components read (kept for them by the parser).
            components: commands::components().namespaces(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Scaffold a plugin (a Rust crate, or a Python or JavaScript project with --lang) that
    /// builds and passes its own tests as it stands.
    New {
        /// The plugin's name (lower-case, digits, '-'): also its crate and file name.
        name: String,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Make a hooks-mode plugin (on_request + on_response; the gateway sends the request)
        /// instead of a handle-mode one.
        #[arg(long)]
        hooks: bool,
        /// The plugin's language.
        #[arg(long, value_enum, default_value_t)]
        lang: plugin::Lang,
    },
    /// Build a plugin folder into NAME.wasm: cargo build --target wasm32-wasip2 (a Cargo.toml),
    /// componentize-js (a package.json) or componentize-py (a pyproject.toml or app.py).
    Build {
        /// The plugin's folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Build without optimisations (Rust only).
        #[arg(long)]
        debug: bool,
    },
    /// Load components, say which world each targets, run init with the config's settings,
    /// and optionally send a sample request.
    Test(TestArgs),
    /// Print the integrity pins of component files, ready for `plugin.sha256` in the config.
    Hash {
        /// The component files (each pinned under its file stem, the plugin's name).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Log lines batched during a burst of work go out before a panic's message and at exit.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        sluice_telemetry::stdout::flush_on_panic();
        report(info);
    }));
    let code = command(cli);
    sluice_telemetry::stdout::flush();
    code
}

fn command(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run {
            config,
            port,
            log,
            debug,
            watch,
            load,
        } => {
            let source = reload::Source {
                path: config,
                options: load.options(),
                port,
                debug,
                telemetry: sluice_telemetry::Telemetry::disabled(),
                collector: None,
                started_telemetry: (None, None),
            };
            // Logging starts once the config is read (its `telemetry/logging`).
            let filter = if debug { Some("debug") } else { log.as_deref() };
            commands::run(source, watch, filter)
        }
        Command::Check {
            config,
            debug,
            test_gateway: _,
            load,
        } => {
            commands::init_logging(Some("warn"));
            commands::check(&config, &load.options(), debug)
        }
        Command::TestPlugin(args) => {
            commands::init_logging(Some("warn"));
            plugin::test(&args.files, args.config.as_deref(), args.url.as_deref())
        }
        Command::Plugin(command) => {
            commands::init_logging(Some("warn"));
            match command {
                PluginCommand::New {
                    name,
                    dir,
                    hooks,
                    lang,
                } => plugin::new(&name, dir.as_deref(), hooks, lang),
                PluginCommand::Build { dir, debug } => plugin::build(&dir, !debug),
                PluginCommand::Hash { files } => plugin::hash(&files),
                PluginCommand::Test(args) => {
                    plugin::test(&args.files, args.config.as_deref(), args.url.as_deref())
                }
            }
        }
    }
}
