//! Request validation components of Sluice.
//!
//! - [`json_schema`]: `validation/json-schema` on endpoints (krakend-jsonschema): the request body
//!   checked against a JSON Schema before any backend is called.
//!
//! Its own crate (not `sluice-qos`) because of the schema validator it pulls in: the traffic
//! components around the executor build without it, and the two crates compile in parallel.

pub mod json_schema;

pub use json_schema::JsonSchema;
