//! The plugin host end to end: real components built from `plugins/`, on a real host, against
//! real backends on 127.0.0.1. One test binary (each links wasmtime).
#![allow(clippy::unwrap_used)]

mod common;
mod hardening;
mod logging;
mod plugins;
