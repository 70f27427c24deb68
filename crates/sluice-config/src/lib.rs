//! KrakenD v3 configuration: the model Sluice builds its pipelines from, the parser, and the
//! validation that lists every problem with the file, the JSON path and what was expected.
//!
//! ```no_run
//! # use std::path::Path;
//! match sluice_config::load(Path::new("krakend.json")) {
//!     Ok(config) => {
//!         for warning in &config.unknown_namespaces {
//!             eprintln!("{}: ignoring the namespace {}", warning.path, warning.namespace);
//!         }
//!     }
//!     Err(diagnostics) => eprintln!("{diagnostics}"),
//! }
//! ```

mod diagnostics;
mod duration;
mod env;
mod extra;
mod flexible;
mod formats;
mod host;
mod load;
mod model;
mod params;
mod parse;
pub mod read;
mod telemetry;
mod tls;

pub use diagnostics::{Diagnostic, Diagnostics, Position};
pub use duration::parse_duration;
pub use extra::namespace;
pub use formats::Format;
pub use host::sanitize_host;
pub use model::*;
pub use params::{
    endpoint_params, is_implicit_placeholder, propagated_param, raw_response_index,
    url_placeholders,
};
pub use parse::{from_value, from_value_with, load, load_with, parse_str, parse_str_with};
pub use telemetry::{
    Attributes, BackendLayer, BackendMetrics, BackendTraces, CUSTOM_FORMAT_VERBS,
    DEFAULT_SKIP_PATHS, EndpointTelemetry, GlobalLayer, Layers, LogFormat, LogLevel, Logging,
    OpenTelemetry, OtlpExporter, PrometheusExporter, ProxyLayer,
};
pub use tls::{TLS_CIPHER_SUITES, TLS_GROUPS, is_tls13_suite};
