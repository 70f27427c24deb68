//! Service-level security components, as KrakenD configures them: [`cors::Cors`]
//! (`security/cors`).

pub mod cors;
