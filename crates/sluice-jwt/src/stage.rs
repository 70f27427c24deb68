//! The endpoint stage: a request without a valid token is refused with 401, one without the
//! roles or scopes with 403, both without a body, as krakend-jose's gin handler aborts; a valid
//! one goes on with its claims in the headers (`propagate_claims`) and in the backends' URLs
//! (`{JWT.<claim>}`).

use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use serde_json::{Map, Value};
use sluice_stage::{EarlyAnswer, Phases, RequestHead, Stage, StageFuture};

use crate::claims;
use crate::config::{Strategy, ValidatorConfig};
use crate::keys::Keys;
use crate::verified::{Verified, VerifiedTokens};

/// What a claim put into a URL is escaped with: everything that would end or split a path
/// segment or the query, so a claim stays one value.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// One endpoint's validator.
#[derive(Debug)]
pub(crate) struct Validator {
    pub(crate) config: ValidatorConfig,
    pub(crate) keys: Keys,
    /// The claims the backends' url_patterns use (`{JWT.sub}` is `sub`).
    pub(crate) url_claims: Vec<String>,
    /// The endpoint, for logs.
    pub(crate) endpoint: String,
    /// Tokens verified recently (shared by the gateway's endpoints).
    pub(crate) verified: Arc<VerifiedTokens>,
}

/// Why a request is refused: its status, and the reason logged.
struct Refusal {
    status: StatusCode,
    why: String,
}

fn unauthorized(why: impl Into<String>) -> Refusal {
    Refusal {
        status: StatusCode::UNAUTHORIZED,
        why: why.into(),
    }
}

/// base64url, with or without padding (go-jose strips it).
fn b64(part: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()
}

impl Validator {
    /// The token: from the header (`Bearer ` taken off), else from the cookie; `None` when
    /// neither carries one.
    fn token<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        if let Some(value) = headers.get(&self.config.header) {
            // A value that is not text cannot be a token: refused as a malformed one.
            let raw = value.to_str().unwrap_or("\u{0}");
            let raw = if raw.len() > 7 && raw[..7].eq_ignore_ascii_case("bearer ") {
                &raw[7..]
            } else {
                raw
            };
            if !raw.is_empty() {
                return Some(raw);
            }
        }
        cookie(headers, &self.config.cookie_key)
    }

    async fn check(&self, headers: &HeaderMap) -> Result<Arc<Map<String, Value>>, Refusal> {
        let config = &self.config;
        let token = self
            .token(headers)
            .ok_or_else(|| unauthorized("no token"))?;
        let claims = match self.verified.get(token, config.alg, config.strategy) {
            // Verified before: still the key the set gives for its id? Then only the claims
            // are checked again.
            Some(seen) => {
                let key = self
                    .keys
                    .find(config.strategy, &seen.id, config.alg.family())
                    .await
                    .map_err(|e| unauthorized(format!("key {:?}: {e}", seen.id)))?;
                if Arc::ptr_eq(&key, &seen.key) {
                    seen.claims
                } else {
                    // A new set (refetched): verified again, with the key just found.
                    self.verify(token, Some((&seen.id, key))).await?
                }
            }
            None => self.verify(token, None).await?,
        };
        self.check_claims(&claims)?;
        Ok(claims)
    }

    /// The token's signature checked, and its claims read; remembered in the verified cache.
    /// `found`: a key already looked up for an id (used when the token names that id, so a
    /// set without `cache` is not fetched twice for one request).
    async fn verify(
        &self,
        token: &str,
        found: Option<(&str, Arc<crate::keys::Key>)>,
    ) -> Result<Arc<Map<String, Value>>, Refusal> {
        let config = &self.config;
        let mut parts = token.split('.');
        let (Some(head), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(unauthorized("the token is not a signed JWT (three parts)"));
        };
        let header: Map<String, Value> = b64(head)
            .and_then(|h| serde_json::from_slice(&h).ok())
            .ok_or_else(|| unauthorized("the token's header is not base64url JSON"))?;
        if header.contains_key("crit") {
            return Err(unauthorized("the token has critical header parameters"));
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if alg != config.alg_name {
            return Err(unauthorized(format!(
                "the token is signed with {alg:?}, not {}",
                config.alg_name
            )));
        }
        let field = |name: &str| header.get(name).and_then(Value::as_str);
        let kid = field("kid").unwrap_or_default();
        let id = match config.strategy {
            Strategy::Kid => kid.to_owned(),
            Strategy::X5t => field("x5t").unwrap_or(kid).to_owned(),
            Strategy::X5tS256 => field("x5t#S256").unwrap_or(kid).to_owned(),
            Strategy::KidX5t => format!("{kid}{}", field("x5t").unwrap_or(kid)),
        };
        let key = match found {
            Some((found_id, key)) if found_id == id => key,
            _ => self
                .keys
                .find(config.strategy, &id, config.alg.family())
                .await
                .map_err(|e| unauthorized(format!("key {id:?}: {e}")))?,
        };
        let signed = &token[..head.len() + 1 + payload.len()];
        if !jsonwebtoken::crypto::verify(signature, signed.as_bytes(), &key.key, config.alg)
            .unwrap_or(false)
        {
            return Err(unauthorized("the signature does not verify"));
        }
        let claims: Map<String, Value> = b64(payload)
            .and_then(|p| serde_json::from_slice(&p).ok())
            .ok_or_else(|| unauthorized("the token's claims are not base64url JSON"))?;
        let claims = Arc::new(claims);
        self.verified.insert(
            token,
            Verified {
                alg: config.alg,
                strategy: config.strategy,
                id: id.into(),
                key,
                claims: Arc::clone(&claims),
            },
        );
        Ok(claims)
    }

    /// The registered claims (time, issuer, audience), the roles and the scopes.
    fn check_claims(&self, claims: &Map<String, Value>) -> Result<(), Refusal> {
        let config = &self.config;
        claims::check_registered(
            claims,
            &config.issuer,
            &config.audience,
            config.leeway,
            SystemTime::now(),
        )
        .map_err(unauthorized)?;
        if !claims::has_role(
            claims,
            &config.roles_key,
            config.roles_key_is_nested,
            &config.roles,
        ) {
            return Err(Refusal {
                status: StatusCode::FORBIDDEN,
                why: "the token does not have sufficient roles".to_owned(),
            });
        }
        if !claims::has_scopes(
            claims,
            &config.scopes_key,
            &config.scopes,
            config.scopes_matcher,
        ) {
            return Err(Refusal {
                status: StatusCode::FORBIDDEN,
                why: "the token does not have the required scopes".to_owned(),
            });
        }
        Ok(())
    }

    /// `propagate_claims`: each header set from its claim (empty when the claim is missing, as
    /// KrakenD does), so a client cannot send its own.
    fn propagate(&self, claims: &Map<String, Value>, headers: &mut HeaderMap) {
        for (claim, name) in &self.config.propagate_claims {
            let value = claims::propagated(claims, claim);
            let values = if self.config.propagate_claims_preserve_array {
                value.map_or_else(|| vec![String::new()], claims::as_list)
            } else {
                vec![value.map(claims::as_text).unwrap_or_default()]
            };
            headers.remove(name);
            for value in values {
                match HeaderValue::from_str(&value) {
                    Ok(value) => {
                        headers.append(name.clone(), value);
                    }
                    Err(_) => {
                        headers.remove(name);
                        tracing::debug!(target: "sluice::jwt", endpoint = %self.endpoint, claim = %claim, "claim not propagated: it cannot be a header value");
                        break;
                    }
                }
            }
        }
    }

    /// `{JWT.<claim>}` params for the backends' URLs, each escaped as one value.
    fn url_params(&self, claims: &Map<String, Value>, params: &mut Vec<(String, String)>) {
        for claim in &self.url_claims {
            let name = format!("JWT.{claim}");
            params.retain(|(k, _)| *k != name);
            let Some(value) = claims.get(claim) else {
                continue;
            };
            let text = claims::as_text(value);
            if text == "." || text == ".." {
                continue;
            }
            params.push((
                name,
                percent_encoding::utf8_percent_encode(&text, SEGMENT).to_string(),
            ));
        }
    }
}

/// The value of the cookie `name` (Go's `Request.Cookie`: the first of that name).
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| {
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
        })
        .filter(|v| !v.is_empty())
}

impl Stage for Validator {
    fn name(&self) -> &'static str {
        crate::NAMESPACE
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST
    }

    fn on_request<'a>(&'a self, head: &'a mut RequestHead<'_>) -> StageFuture<'a> {
        Box::pin(async move {
            match self.check(head.headers).await {
                Ok(claims) => {
                    self.propagate(&claims, head.headers);
                    self.url_params(&claims, head.params);
                    Ok(())
                }
                Err(refusal) => {
                    if self.config.operation_debug {
                        tracing::error!(target: "sluice::jwt", endpoint = %self.endpoint, status = refusal.status.as_u16(), reason = %refusal.why, "token refused");
                    } else {
                        tracing::debug!(target: "sluice::jwt", endpoint = %self.endpoint, status = refusal.status.as_u16(), reason = %refusal.why, "token refused");
                    }
                    Err(EarlyAnswer::empty(refusal.status))
                }
            }
        })
    }
}
