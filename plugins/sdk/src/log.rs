//! Logging through the gateway: each line becomes a `tracing` event with target
//! `sluice::plugin` and a `plugin` field holding the plugin's name.

use crate::bindings::sluice::plugin::host;
pub use crate::bindings::sluice::plugin::types::Level;

/// Writes one log line at `level`.
pub fn log(level: Level, message: &str) {
    host::log(level, message);
}

/// Writes a TRACE line.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Writes a DEBUG line.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Writes an INFO line.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Writes a WARN line.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Writes an ERROR line.
pub fn error(message: &str) {
    log(Level::Error, message);
}
