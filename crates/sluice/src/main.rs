//! The `sluice` command: a thin shell over the gateway crates.

mod commands;
mod plugin;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
        /// The KrakenD v3 configuration file.
        #[arg(short, long, default_value = "krakend.json")]
        config: PathBuf,
        /// Override the config's `port`.
        #[arg(short, long)]
        port: Option<u16>,
        /// Log level filter (e.g. `info`, `debug`, `sluice=debug`); overrides RUST_LOG.
        #[arg(short, long)]
        log: Option<String>,
    },
    /// Validate the configuration (plugins included) and print every problem.
    Check {
        /// The KrakenD v3 configuration file.
        #[arg(short, long, default_value = "krakend.json")]
        config: PathBuf,
    },
    /// Tooling for plugin authors.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Scaffold a Rust plugin crate that builds and passes its own tests as it stands.
    New {
        /// The plugin's name (lower-case, digits, '-'): also its crate and file name.
        name: String,
        /// Where to create it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build a plugin crate into NAME.wasm (cargo build --target wasm32-wasip2).
    Build {
        /// The plugin crate's folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Build without optimisations.
        #[arg(long)]
        debug: bool,
    },
    /// Load components, say which world each targets, run init with the config's settings,
    /// and optionally send a sample request.
    Test {
        /// The `.wasm` files.
        files: Vec<PathBuf>,
        /// A config whose backends name the plugins: their settings are used for init.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Send a GET to this backend URL through the plugin.
        #[arg(long)]
        url: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config, port, log } => {
            commands::init_logging(log.as_deref());
            commands::run(&config, port)
        }
        Command::Check { config } => {
            commands::init_logging(Some("warn"));
            commands::check(&config)
        }
        Command::Plugin(command) => {
            commands::init_logging(Some("warn"));
            match command {
                PluginCommand::New { name, dir } => plugin::new(&name, dir.as_deref()),
                PluginCommand::Build { dir, debug } => plugin::build(&dir, !debug),
                PluginCommand::Test { files, config, url } => {
                    plugin::test(&files, config.as_deref(), url.as_deref())
                }
            }
        }
    }
}
