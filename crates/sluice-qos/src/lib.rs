//! Traffic components of Sluice that act around a backend's executor (`StageFactory::wrap_backend`):
//!
//! - [`circuit_breaker`]: `qos/circuit-breaker` (krakend-circuitbreaker, sony/gobreaker).
//! - [`http_cache`]: `qos/http-cache` (krakend-httpcache).
//!
//! Both wrap the executor, below the proxy layer's status check and decoding, so a cached answer
//! goes through them as a fresh one does. When both are on a backend the breaker must be the
//! outer layer, as in KrakenD CE (the cache lives in the HTTP client; the breaker wraps the whole
//! backend proxy): register [`CircuitBreaker`] before [`HttpCache`] in the gateway's components.

pub mod circuit_breaker;
pub mod http_cache;

pub use circuit_breaker::CircuitBreaker;
pub use http_cache::HttpCache;
