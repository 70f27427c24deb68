//! Sluice's proxy layer: everything between the router and the executor.
//!
//! ```text
//! EndpointPipeline ──► merge (parallel | sequential) ──► BackendStage × N
//!   static, flatmap                                       ├─ RequestBuilder (params, query, headers, host)
//!                                                         ├─ Executor (default client | client plugin)
//!                                                         ├─ status check (200/201, return_error_*)
//!                                                         └─ decode → target → allow/deny → mapping → group
//!   Shadow (proxy.shadow) ──► the same, on a task of its own; the answer is discarded
//! ```
//! Pipelines are compiled once from the config ([`build_pipelines`]); [`respond::render`] is the
//! one place an outcome becomes an HTTP response.

mod backend;
mod endpoint;
mod error;
mod hop;
mod join;
mod plugins;
mod request;
pub mod respond;
mod shadow;
mod telemetry;

pub use backend::Answer;
pub use endpoint::{
    Clients, DEFAULT_MAX_BODY_BYTES, EndpointPipeline, Outcome, build_pipelines,
    build_pipelines_with, user_agent,
};
pub use error::ProxyError;
pub use hop::strip_hop_by_hop;
pub use request::ProxyRequest;
pub use shadow::MAX_SHADOW_CALLS_PER_ENDPOINT;
pub use telemetry::EndpointTelemetry;
