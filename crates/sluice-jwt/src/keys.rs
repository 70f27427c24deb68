//! JWK sets: read from a file at start-up or fetched by the gateway's own client, kept for
//! `cache_duration`, fetched again (one fetch at a time, at a bounded rate) when a token names a
//! key the set does not hold.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use http::header::{self, HeaderValue};
use jsonwebtoken::{AlgorithmFamily, DecodingKey};
use serde_json::Value;
use sluice_client::DefaultClient;
use sluice_plugin::{BackendRequest, CallContext, Executor, Instant};

use crate::config::{Remote, Strategy};

/// The most keys a set may hold (JWK sets hold a handful; a larger one is cut, logged).
const MAX_KEYS: usize = 256;
/// The largest JWK document read.
const MAX_JWK_BYTES: usize = 1 << 20;
/// How long one fetch may take, dial, TLS and body included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed fetch, tokens are refused without fetching again for this long: a JWK server
/// that is down is asked once a second at most, and logged as often.
const FAILED_FETCH_BACKOFF: Duration = Duration::from_secs(1);
/// A cached set is fetched again for an unknown key id at most this often.
const MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(1);
/// The most key ids remembered as missing (`failed_jwk_key_cooldown`); the oldest go first.
const MAX_MISSES: usize = 1024;

/// One usable key of a set.
#[derive(Clone)]
pub(crate) struct Key {
    kid: String,
    x5t: String,
    x5t_s256: String,
    pub(crate) key: DecodingKey,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("family", &self.key.family())
            .finish_non_exhaustive()
    }
}

impl Key {
    /// An HMAC key with no ids.
    #[cfg(test)]
    pub(crate) fn for_tests(secret: &[u8]) -> Self {
        Key {
            kid: String::new(),
            x5t: String::new(),
            x5t_s256: String::new(),
            key: DecodingKey::from_secret(secret).expect("an HMAC key"),
        }
    }

    /// The id this key is found by under `strategy` (krakend-jose's key id getters).
    fn id(&self, strategy: Strategy) -> String {
        match strategy {
            Strategy::Kid => self.kid.clone(),
            Strategy::X5t => self.x5t.clone(),
            Strategy::X5tS256 => self.x5t_s256.clone(),
            Strategy::KidX5t => format!("{}{}", self.kid, self.x5t),
        }
    }
}

/// A JWK set.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    /// Shared, so a verified token remembers which key it was verified with (a refetched set
    /// has new keys: its tokens are verified again).
    keys: Vec<Arc<Key>>,
}

impl KeySet {
    /// Parses a JWK set document. Keys Sluice cannot use (encryption keys, unknown types,
    /// P-521) are left out; a set with none left is an error.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, String> {
        let doc: Value =
            serde_json::from_slice(body).map_err(|e| format!("not a JWK set (JSON): {e}"))?;
        let Some(keys) = doc.get("keys").and_then(Value::as_array) else {
            return Err("not a JWK set: no \"keys\" array".to_owned());
        };
        let mut set = KeySet::default();
        for (i, jwk) in keys.iter().enumerate() {
            if set.keys.len() == MAX_KEYS {
                tracing::warn!(target: "sluice::jwt", kept = MAX_KEYS, total = keys.len(), "JWK set cut: too many keys");
                break;
            }
            match parse_key(jwk) {
                Ok(key) => set.keys.push(Arc::new(key)),
                Err(why) => {
                    tracing::debug!(target: "sluice::jwt", index = i, why = %why, "JWK left out");
                }
            }
        }
        if set.keys.is_empty() {
            return Err("the JWK set holds no key Sluice can verify signatures with".to_owned());
        }
        Ok(set)
    }

    /// The key named `id` under `strategy` whose type fits `family` (the last one, as
    /// krakend-jose's cache keeps the last key of an id).
    pub(crate) fn find(
        &self,
        strategy: Strategy,
        id: &str,
        family: AlgorithmFamily,
    ) -> Option<&Arc<Key>> {
        self.keys
            .iter()
            .rev()
            .find(|k| k.key.family() == family && k.id(strategy) == id)
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

fn string_field<'a>(jwk: &'a Value, name: &str) -> Option<&'a str> {
    jwk.get(name).and_then(Value::as_str)
}

/// A thumbprint as krakend-jose prints it: unpadded base64url of its bytes.
fn thumbprint(jwk: &Value, name: &str) -> String {
    string_field(jwk, name)
        .and_then(|t| {
            URL_SAFE_NO_PAD
                .decode(t)
                .or_else(|_| URL_SAFE.decode(t))
                .ok()
        })
        .map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
        .unwrap_or_default()
}

fn parse_key(jwk: &Value) -> Result<Key, String> {
    let field = |name: &str| string_field(jwk, name).ok_or_else(|| format!("no {name:?}"));
    let key = match string_field(jwk, "kty") {
        Some("RSA") => DecodingKey::from_rsa_components(field("n")?, field("e")?),
        Some("EC") => match string_field(jwk, "crv") {
            Some("P-256" | "P-384") => DecodingKey::from_ec_components(field("x")?, field("y")?),
            other => return Err(format!("curve {other:?} is not supported")),
        },
        Some("OKP") => match string_field(jwk, "crv") {
            Some("Ed25519") => DecodingKey::from_ed_components(field("x")?),
            other => return Err(format!("curve {other:?} is not supported")),
        },
        Some("oct") => {
            let k = field("k")?;
            let secret = URL_SAFE_NO_PAD
                .decode(k)
                .or_else(|_| URL_SAFE.decode(k))
                .map_err(|e| format!("\"k\": {e}"))?;
            DecodingKey::from_secret(&secret)
        }
        other => return Err(format!("key type {other:?} is not supported")),
    }
    .map_err(|e| e.to_string())?;
    Ok(Key {
        kid: string_field(jwk, "kid").unwrap_or_default().to_owned(),
        x5t: thumbprint(jwk, "x5t"),
        x5t_s256: thumbprint(jwk, "x5t#S256"),
        key,
    })
}

/// Why no key was found for a token.
#[derive(Debug, Clone)]
pub(crate) enum KeyError {
    /// The set (fresh) has no such key.
    Unknown,
    /// The keys could not be fetched.
    Unavailable(String),
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::Unknown => f.write_str("no key with that id in the JWK set"),
            KeyError::Unavailable(why) => write!(f, "the JWK set could not be fetched: {why}"),
        }
    }
}

/// Where a validator's keys are.
#[derive(Debug)]
pub(crate) enum Keys {
    Local(KeySet),
    Remote(Arc<RemoteKeys>),
}

impl Keys {
    /// Reads `path` (at start-up).
    pub(crate) fn local(path: &Path) -> Result<Self, String> {
        let body =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        KeySet::parse(&body)
            .map(Keys::Local)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    pub(crate) async fn find(
        &self,
        strategy: Strategy,
        id: &str,
        family: AlgorithmFamily,
    ) -> Result<Arc<Key>, KeyError> {
        match self {
            Keys::Local(set) => set
                .find(strategy, id, family)
                .map(Arc::clone)
                .ok_or(KeyError::Unknown),
            Keys::Remote(remote) => remote.find(strategy, id, family).await,
        }
    }
}

/// A JWK URL's keys, shared by every endpoint that names the same URL with the same settings.
#[derive(Debug)]
pub(crate) struct RemoteKeys {
    config: Remote,
    client: DefaultClient,
    user_agent: HeaderValue,
    state: Mutex<State>,
    /// One fetch at a time: requests that need the keys meanwhile wait for its outcome.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    set: Option<Arc<KeySet>>,
    fetched_at: Option<Instant>,
    /// The last fetch's failure, and when.
    failure: Option<(String, Instant)>,
    /// Counts completed fetches, so a request that waited for one uses its outcome.
    generation: u64,
    /// Key ids not found recently (`failed_jwk_key_cooldown`).
    misses: VecDeque<(String, Instant)>,
}

/// What to do after looking at the state.
enum Next {
    Done(Result<Arc<Key>, KeyError>),
    Fetch(u64),
}

impl RemoteKeys {
    pub(crate) fn new(config: Remote, client: DefaultClient, user_agent: HeaderValue) -> Self {
        Self {
            config,
            client,
            user_agent,
            state: Mutex::new(State::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn fresh(&self, state: &State, now: Instant) -> bool {
        match (self.config.cache, state.fetched_at) {
            (Some(ttl), Some(at)) => now.saturating_duration_since(at) < ttl,
            _ => false,
        }
    }

    /// Decides from the state alone, before any fetch.
    fn look(&self, strategy: Strategy, id: &str, family: AlgorithmFamily) -> Next {
        let now = Instant::now();
        let mut state = self.state();
        let fresh = self.fresh(&state, now);
        if fresh
            && let Some(key) = state
                .set
                .as_ref()
                .and_then(|s| s.find(strategy, id, family))
        {
            return Next::Done(Ok(Arc::clone(key)));
        }
        if let Some(ttl) = self.config.cooldown {
            state
                .misses
                .retain(|(_, at)| now.saturating_duration_since(*at) < ttl);
            if state.misses.iter().any(|(miss, _)| miss == id) {
                return Next::Done(Err(KeyError::Unknown));
            }
        }
        if let Some((why, at)) = &state.failure
            && now.saturating_duration_since(*at) < FAILED_FETCH_BACKOFF
        {
            return Next::Done(Err(KeyError::Unavailable(why.clone())));
        }
        // A cached set that was just fetched is not fetched again for an unknown id.
        if fresh
            && state
                .fetched_at
                .is_some_and(|at| now.saturating_duration_since(at) < MIN_REFETCH_INTERVAL)
        {
            return Next::Done(Err(KeyError::Unknown));
        }
        Next::Fetch(state.generation)
    }

    async fn find(
        &self,
        strategy: Strategy,
        id: &str,
        family: AlgorithmFamily,
    ) -> Result<Arc<Key>, KeyError> {
        let generation = match self.look(strategy, id, family) {
            Next::Done(result) => return result,
            Next::Fetch(generation) => generation,
        };
        let _fetching = self.fetching.lock().await;
        {
            // A fetch completed while this request waited: its outcome answers it too.
            let state = self.state();
            if state.generation != generation {
                return self.outcome(state, strategy, id, family);
            }
        }
        let fetched = tokio::time::timeout(FETCH_TIMEOUT, self.fetch())
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {FETCH_TIMEOUT:?}")));
        let mut state = self.state();
        state.generation += 1;
        let now = Instant::now();
        match fetched {
            Ok(set) => {
                tracing::debug!(target: "sluice::jwt", url = %self.config.url, keys = set.len(), "JWK set fetched");
                state.set = Some(Arc::new(set));
                state.fetched_at = Some(now);
                state.failure = None;
            }
            Err(why) => {
                tracing::warn!(target: "sluice::jwt", url = %self.config.url, error = %why, "JWK set fetch failed: tokens are refused (401) until it succeeds");
                state.failure = Some((why, now));
            }
        }
        self.outcome(state, strategy, id, family)
    }

    /// The answer from the last fetch's outcome; a key id it lacks is remembered as missing.
    fn outcome(
        &self,
        mut state: std::sync::MutexGuard<'_, State>,
        strategy: Strategy,
        id: &str,
        family: AlgorithmFamily,
    ) -> Result<Arc<Key>, KeyError> {
        let result = if let Some((why, _)) = &state.failure {
            Err(KeyError::Unavailable(why.clone()))
        } else {
            state
                .set
                .as_ref()
                .and_then(|s| s.find(strategy, id, family))
                .map(Arc::clone)
                .ok_or(KeyError::Unknown)
        };
        if result.is_err() && self.config.cooldown.is_some() {
            if state.misses.len() == MAX_MISSES {
                state.misses.pop_front();
            }
            state.misses.push_back((id.to_owned(), Instant::now()));
        }
        result
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let mut headers = http::HeaderMap::new();
        headers.insert(header::USER_AGENT, self.user_agent.clone());
        let request = BackendRequest {
            method: http::Method::GET,
            url: self.config.url.clone(),
            headers,
            body: bytes::Bytes::new(),
        };
        let ctx = CallContext::new(Instant::now() + FETCH_TIMEOUT, MAX_JWK_BYTES);
        let response = self
            .client
            .execute(request, &ctx)
            .await
            .map_err(|e| e.message)?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("the JWK server answered {status}"));
        }
        // As krakend-jose (go-auth0): a JSON content type, or no set.
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if !content_type.starts_with("application/json")
            && !content_type.starts_with("application/jwk-set+json")
        {
            return Err(format!(
                "the JWK server answered Content-Type {content_type:?}; expected application/json or application/jwk-set+json"
            ));
        }
        let body = sluice_plugin::collect(response.into_body(), MAX_JWK_BYTES)
            .await
            .map_err(|e| format!("reading the JWK set: {e:?}"))?;
        KeySet::parse(&body)
    }
}
