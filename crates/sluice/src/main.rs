//! The `sluice` command: a thin shell over the gateway crates.

mod commands;

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
    }
}
