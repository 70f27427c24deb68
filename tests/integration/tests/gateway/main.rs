//! The in-process integration tests: real backends, a real gateway, a real client.
//!
//! One test binary, one module per area: each test file used to be its own binary, and each
//! linked the whole gateway with wasmtime (about 250 MB in a debug build), which made a clean
//! `cargo test` need tens of gigabytes and link 28 times.
#![allow(clippy::unwrap_used)]

mod backend_pool;
mod chains;
mod circuit_breaker;
mod compression;
mod config_applied;
mod config_model;
mod cors;
mod encodings;
mod errors_partials;
mod grpc;
mod hardening_outbound;
mod hardening_server;
mod harness;
mod http_cache;
mod json_numbers;
mod json_schema;
mod json_text;
mod jwt;
mod krakend_headers;
mod plugins;
mod plugins_c;
mod plugins_js;
mod plugins_python;
mod ratelimit;
mod reload;
mod request_building;
mod robustness;
mod rss;
mod server_h1;
mod shadow;
mod stages;
mod telemetry_metrics;
mod telemetry_traces;
mod tls;
