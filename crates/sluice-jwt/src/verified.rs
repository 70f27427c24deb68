//! Tokens whose signature was verified recently: a client sending the same token again costs a
//! hash lookup instead of a signature check (an RS256 check is most of a request's CPU), as
//! Envoy's `jwt_cache_config` does.
//!
//! Nothing is trusted that was not checked for this request: an entry is used only with the
//! algorithm and key-id strategy it was verified under, and only while the JWK set still gives
//! the very key it was verified with (a refetched set has new keys, so a rotated or removed key
//! stops every token verified with it). The time claims, the issuer, the audience, the roles and
//! the scopes are checked again on every request. Bounded: at most [`MAX_ENTRIES`] tokens of at
//! most [`MAX_TOKEN_BYTES`] each, the oldest dropped first; one cache per gateway.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::config::Strategy;
use crate::keys::Key;

/// The most tokens remembered.
pub(crate) const MAX_ENTRIES: usize = 4096;
/// Longer tokens are verified every time (they would crowd out the common ones).
pub(crate) const MAX_TOKEN_BYTES: usize = 4096;

/// What a verified token was verified with, and its claims.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub(crate) alg: Algorithm,
    pub(crate) strategy: Strategy,
    /// The key id the token names under `strategy`.
    pub(crate) id: Arc<str>,
    pub(crate) key: Arc<Key>,
    pub(crate) claims: Arc<Map<String, Value>>,
}

/// The cache, shared by every endpoint of a gateway.
#[derive(Debug, Default)]
pub(crate) struct VerifiedTokens {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Box<str>, Verified>,
    /// Insertion order, for eviction.
    order: VecDeque<Box<str>>,
}

impl VerifiedTokens {
    /// The entry of `token`, if it was verified under `alg` and `strategy`.
    pub(crate) fn get(&self, token: &str, alg: Algorithm, strategy: Strategy) -> Option<Verified> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner
            .entries
            .get(token)
            .filter(|v| v.alg == alg && v.strategy == strategy)
            .cloned()
    }

    /// Remembers `token` as verified (replacing what it was verified with before).
    pub(crate) fn insert(&self, token: &str, verified: Verified) {
        if token.len() > MAX_TOKEN_BYTES {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = inner.entries.get_mut(token) {
            *entry = verified;
            return;
        }
        while inner.entries.len() >= MAX_ENTRIES {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            inner.entries.remove(&oldest);
        }
        inner.order.push_back(token.into());
        inner.entries.insert(token.into(), verified);
    }

    /// How many tokens are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(key: &Arc<Key>) -> Verified {
        Verified {
            alg: Algorithm::HS256,
            strategy: Strategy::Kid,
            id: "k".into(),
            key: Arc::clone(key),
            claims: Arc::new(Map::new()),
        }
    }

    #[test]
    fn bounded_oldest_first_and_only_for_the_same_algorithm() {
        let key = Arc::new(Key::for_tests(b"secret"));
        let cache = VerifiedTokens::default();
        for i in 0..MAX_ENTRIES + 10 {
            cache.insert(&format!("token-{i}"), verified(&key));
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        assert!(
            cache
                .get("token-0", Algorithm::HS256, Strategy::Kid)
                .is_none()
        );
        let last = format!("token-{}", MAX_ENTRIES + 9);
        assert!(cache.get(&last, Algorithm::HS256, Strategy::Kid).is_some());
        assert!(cache.get(&last, Algorithm::HS384, Strategy::Kid).is_none());
        assert!(cache.get(&last, Algorithm::HS256, Strategy::X5t).is_none());
        cache.insert(&"x".repeat(MAX_TOKEN_BYTES + 1), verified(&key));
        assert_eq!(cache.len(), MAX_ENTRIES);
    }
}
