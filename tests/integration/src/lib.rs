//! Sluice's in-process integration harness.
//!
//! Everything runs inside the test process: real HTTP/1.1 backends ([`backend`], [`mocks`]) bound
//! on `127.0.0.1:0`, a real gateway ([`gateway`]) started from a KrakenD v3 JSON config through
//! `sluice_config::parse_str` and `sluice_server::start`, and a real client ([`client`], plus
//! [`raw`] for requests a well-behaved client cannot send).
//!
//! Every server is listening before the function that starts it returns, so tests never wait
//! for readiness.

pub mod assertions;
pub mod backend;
pub mod ce_specs;
pub mod client;
pub mod config;
pub mod gateway;
pub mod go;
pub mod grpc;
pub mod mocks;
pub mod plugins;
pub mod query;
pub mod raw;
pub mod tls;

pub use assertions::*;
pub use backend::{Backend, RawBackend, RawBehaviour, Received, Reply};
pub use client::{Response, get, request, try_request};
pub use config::service;
pub use gateway::{
    Gateway, StartFailure, check_with_grpc, parse_config, start_gateway,
    start_gateway_with_registry, try_start_gateway, try_start_gateway_with,
    try_start_gateway_with_components, try_start_gateway_with_grpc,
};
pub use raw::{RawResponse, raw_exchange, raw_request};

/// The workspace version, which is the gateway's.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What Sluice writes where KrakenD writes `KrakenD Version <v>`: the User-Agent sent to
/// backends and `X-Forwarded-Via`.
pub const SLUICE_VERSION: &str = concat!("Sluice Version ", env!("CARGO_PKG_VERSION"));
