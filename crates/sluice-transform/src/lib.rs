//! Decode, reshape and render response data: the data side of Sluice's proxy pipeline, matching
//! KrakenD / Lura. Pure functions over `serde_json` maps: no I/O, no async.
//!
//! - [`decode`](mod@decode): a backend's body into data by its `encoding` (`json`, `safejson`, `string`, `xml`, `rss`).
//! - [`format`](mod@format): per-backend `target`, `allow` / `deny`, `mapping`, `group` ([`EntityFormatter`]).
//! - [`flatmap`]: `flatmap_filter` operations (`move`, `del`, `append`).
//! - [`merge`]: combining backends and the static response.
//! - [`sequential`]: values for `{resp0_...}` placeholders.
//! - [`render`]: JSON, XML and YAML for the client, and `Accept` negotiation.
//!
//! Maps are `serde_json::Map`, which keeps keys sorted: JSON comes out with keys in the order Go's
//! `json.Marshal` writes them.

pub mod calendar;
pub mod decode;
mod feed;
pub mod flatmap;
pub mod format;
pub mod merge;
pub mod render;
pub mod sequential;
mod swar;

/// A fixed pseudo-random walk (xorshift64) for the generated test inputs: reproducible, and no
/// dependency.
#[cfg(test)]
pub(crate) fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

pub use decode::{DecodeError, decode};
pub use flatmap::FlatmapFilter;
pub use format::EntityFormatter;
pub use merge::{apply_static, merge_into, static_applies};
pub use render::{Negotiated, negotiate, to_json, to_xml, to_yaml};
pub use sequential::lookup_path;
