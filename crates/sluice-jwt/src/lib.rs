//! JWT validation as KrakenD's `auth/validator` (krakend-jose) does it, at endpoint level.
//!
//! A token (the `Authorization: Bearer` header, a custom header, or a cookie) is checked against
//! a JWK set read from a file at start-up or fetched from `jwk_url` by the gateway's own client
//! (TLS verified against the system's roots and `jwk_local_ca`), then its registered claims
//! (issuer, every audience, expiry with leeway), roles and scopes. Refusals are 401 (no token, a
//! bad one, no key for it) or 403 (roles, scopes), without a body. Claims go to the backends as
//! headers (`propagate_claims`; the backends see them when `input_headers` lists them, as with
//! KrakenD) and as `{JWT.<claim>}` in their `url_pattern`.
//!
//! The JOSE layer is jsonwebtoken; its signatures are computed by ring (see [`crypto`]).
//! Every resource is bounded: one fetch of a JWK URL at a time, within 10 s, 1 MiB and 256 keys;
//! a fetched set is refetched for an unknown key id at most once a second, and not at all for a
//! second after a failed fetch; missing key ids remembered for `failed_jwk_key_cooldown` are at
//! most 1024. Tokens whose signature verified are remembered (4096 at most, see [`verified`]),
//! so a client's next request with the same token skips the signature check, not the others.

pub mod crypto;

mod claims;
mod config;
mod keys;
mod stage;
mod verified;

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use http::HeaderValue;
use sluice_config::read::{Reader, key_path};
use sluice_config::{
    Component, Config, Diagnostic, Endpoint, Level, LoadOptions, TransportOptions,
};
use sluice_stage::{SharedStage, StageFactory};

use crate::config::{Remote, Source};
use crate::keys::{Keys, RemoteKeys};

/// The namespace.
pub const NAMESPACE: &str = "auth/validator";
/// Its long alias, still read by KrakenD.
pub const ALIAS: &str = "github.com/devopsfaith/krakend-jose/validator";

/// The `auth/validator` component. Endpoints naming the same JWK URL with the same settings
/// share one fetched set (KrakenD shares it process-wide too).
#[derive(Debug, Default)]
pub struct JwtValidator {
    shared: Mutex<Vec<(Remote, Weak<RemoteKeys>)>>,
    /// Tokens verified recently, for every endpoint of the gateway.
    verified: Arc<verified::VerifiedTokens>,
}

impl JwtValidator {
    /// The component (and ring installed as jsonwebtoken's crypto provider).
    pub fn new() -> Self {
        crypto::install();
        Self::default()
    }

    /// The keys of `remote`: those of another endpoint with the same settings, or new.
    fn remote_keys(&self, remote: Remote) -> Result<Arc<RemoteKeys>, sluice_client::TlsError> {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        shared.retain(|(_, keys)| keys.strong_count() > 0);
        let same = settings(&remote);
        if let Some(keys) = shared
            .iter()
            .find(|(r, _)| *r == same)
            .and_then(|(_, keys)| keys.upgrade())
        {
            return Ok(keys);
        }
        // The JWK server's own small pool, with KrakenD's JWK client bounds.
        let transport = TransportOptions {
            max_idle_connections_per_host: 2,
            dialer_timeout: Duration::from_secs(10),
            response_header_timeout: Duration::from_secs(10),
            ..TransportOptions::default()
        };
        let client = sluice_client::DefaultClient::new(&transport, Some(&remote.tls))?;
        let user_agent =
            HeaderValue::from_static(concat!("Sluice Version ", env!("CARGO_PKG_VERSION")));
        let keys = Arc::new(RemoteKeys::new(remote.clone(), client, user_agent));
        shared.push((same, Arc::downgrade(&keys)));
        Ok(keys)
    }
}

impl StageFactory for JwtValidator {
    fn components(&self) -> Vec<Component> {
        [NAMESPACE, ALIAS]
            .into_iter()
            .map(|namespace| Component {
                namespace: namespace.to_owned(),
                levels: vec![Level::Endpoint],
            })
            .collect()
    }

    fn endpoint_stages(
        &self,
        config: &Config,
        endpoint: &Endpoint,
    ) -> Result<Vec<SharedStage>, Vec<Diagnostic>> {
        crypto::install();
        let extra_path = format!("{}.extra_config", endpoint.json_path);
        let found: Vec<&str> = [NAMESPACE, ALIAS]
            .into_iter()
            .filter(|ns| endpoint.extra_config.get(*ns).is_some_and(|v| !v.is_null()))
            .collect();
        let namespace = match found[..] {
            [] => return Ok(Vec::new()),
            [one] => one,
            _ => {
                return Err(vec![Diagnostic::new(
                    &config.source,
                    extra_path,
                    format!(
                        "\"{NAMESPACE}\" and \"{ALIAS}\" are two spellings of the same namespace; keep one"
                    ),
                )]);
            }
        };
        let options = LoadOptions::default();
        let mut r = Reader::new(&config.source, &options);
        let path = key_path(&extra_path, namespace);
        let Some(value) = endpoint.extra_config.get(namespace) else {
            return Ok(Vec::new());
        };
        let Some(validator) = config::read(&mut r, value, path.clone()) else {
            return Err(r.into_errors());
        };
        let keys = match &validator.source {
            Source::Local(file) => match Keys::local(file) {
                Ok(keys) => Some(keys),
                Err(why) => {
                    r.error(key_path(&path, "jwk_local_path"), why);
                    None
                }
            },
            Source::Remote(remote) => {
                if remote.tls.allow_insecure_connections {
                    tracing::warn!(target: "sluice::jwt", endpoint = %endpoint.endpoint, url = %remote.url, "disable_jwk_security: the JWK set is fetched without verifying the server (tests only)");
                }
                match self.remote_keys((**remote).clone()) {
                    Ok(keys) => Some(Keys::Remote(keys)),
                    Err(e) => {
                        r.error(e.json_path, e.message);
                        None
                    }
                }
            }
        };
        let errors = r.into_errors();
        let Some(keys) = keys.filter(|_| errors.is_empty()) else {
            return Err(errors);
        };
        warn_unforwarded_claims(&validator, endpoint);
        let url_claims = endpoint
            .backends
            .iter()
            .flat_map(|b| sluice_config::url_placeholders(&b.url_pattern))
            .filter_map(|p| p.strip_prefix("JWT.").map(str::to_owned))
            .fold(Vec::new(), |mut claims, claim| {
                if !claims.contains(&claim) {
                    claims.push(claim);
                }
                claims
            });
        Ok(vec![Arc::new(stage::Validator {
            config: validator,
            keys,
            url_claims,
            endpoint: endpoint.endpoint.clone(),
            verified: Arc::clone(&self.verified),
        })])
    }
}

/// `remote` without the JSON paths, which differ from one endpoint to the next.
fn settings(remote: &Remote) -> Remote {
    let mut same = remote.clone();
    same.tls.json_path.clear();
    for ca in &mut same.tls.ca_certs {
        ca.json_path.clear();
    }
    same
}

/// A propagated claim reaches the backends only through `input_headers` (as with KrakenD):
/// one that is not listed is probably a mistake, said once at start-up.
fn warn_unforwarded_claims(validator: &config::ValidatorConfig, endpoint: &Endpoint) {
    if endpoint.input_headers.iter().any(|h| h == "*") {
        return;
    }
    for (claim, header) in &validator.propagate_claims {
        let listed = endpoint
            .input_headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case(header.as_str()));
        if !listed {
            tracing::warn!(target: "sluice::jwt", endpoint = %endpoint.endpoint, claim = %claim, header = %header, "propagate_claims: the header is not in the endpoint's input_headers, so no backend receives it");
        }
    }
}
