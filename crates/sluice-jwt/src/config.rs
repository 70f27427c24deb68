//! `auth/validator` as krakend-jose reads it, checked at start-up: every field is applied or
//! refused by name, each problem reported with the file and the JSON path.

use std::path::PathBuf;
use std::time::Duration;

use http::HeaderName;
use jsonwebtoken::Algorithm;
use serde_json::Value;
use sluice_config::read::{Obj, Reader, index_path, kind, quote};
use sluice_config::{ClientTls, TLS_CIPHER_SUITES, TlsFile, TlsProtocol, TlsVersion};

/// How a token names its key, and how a JWK is found for it (`key_identify_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Strategy {
    /// `kid` (the default).
    Kid,
    /// `x5t`: the SHA-1 thumbprint of the key's certificate.
    X5t,
    /// `x5t#S256`: its SHA-256 thumbprint.
    X5tS256,
    /// `kid_x5t`: the `kid` and the `x5t` joined.
    KidX5t,
}

/// Where the keys come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    /// `jwk_local_path`: read once, at start-up.
    Local(PathBuf),
    /// `jwk_url`, fetched by the gateway.
    Remote(Box<Remote>),
}

/// A JWK URL and how it is fetched and kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Remote {
    pub(crate) url: http::Uri,
    /// `cache` (with `cache_duration`): how long a fetched set is trusted; `None`: fetched for
    /// every token, as KrakenD does without `cache`.
    pub(crate) cache: Option<Duration>,
    /// `failed_jwk_key_cooldown`: a key id that was not found is not looked up again for this
    /// long.
    pub(crate) cooldown: Option<Duration>,
    /// The TLS the JWK server is verified with: the system's roots, `jwk_local_ca`,
    /// `cipher_suites`; nothing is verified with `disable_jwk_security`.
    pub(crate) tls: ClientTls,
}

/// How `scopes` are matched (`scopes_matcher`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScopesMatcher {
    Any,
    All,
}

/// One endpoint's `auth/validator`.
#[derive(Debug, Clone)]
pub(crate) struct ValidatorConfig {
    pub(crate) alg: Algorithm,
    /// The name KrakenD spells the algorithm with (`RS256`), compared to the token's `alg`.
    pub(crate) alg_name: String,
    pub(crate) source: Source,
    pub(crate) strategy: Strategy,
    pub(crate) audience: Vec<String>,
    pub(crate) issuer: String,
    pub(crate) roles_key: String,
    pub(crate) roles_key_is_nested: bool,
    pub(crate) roles: Vec<String>,
    pub(crate) scopes_key: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) scopes_matcher: ScopesMatcher,
    pub(crate) header: HeaderName,
    pub(crate) cookie_key: String,
    pub(crate) propagate_claims: Vec<(String, HeaderName)>,
    pub(crate) propagate_claims_preserve_array: bool,
    pub(crate) leeway: Duration,
    pub(crate) operation_debug: bool,
}

const KNOWN: &[&str] = &[
    "alg",
    "jwk_url",
    "jwk_local_path",
    "jwk_local_ca",
    "cache",
    "cache_duration",
    "audience",
    "issuer",
    "roles_key",
    "roles_key_is_nested",
    "roles",
    "scopes_key",
    "scopes",
    "scopes_matcher",
    "auth_header_name",
    "cookie_key",
    "propagate_claims",
    "propagate_claims_preserve_array",
    "key_identify_strategy",
    "disable_jwk_security",
    "operation_debug",
    "leeway",
    "failed_jwk_key_cooldown",
    "cipher_suites",
    "jwk_fingerprints",
    "secret_url",
    "cypher_key",
];

/// The algorithms krakend-jose accepts; ES512 (P-521) is refused, as ring (the crypto library
/// shared with rustls) has no P-521.
const ALGORITHMS: &[(&str, Algorithm)] = &[
    ("EdDSA", Algorithm::EdDSA),
    ("HS256", Algorithm::HS256),
    ("HS384", Algorithm::HS384),
    ("HS512", Algorithm::HS512),
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
];

/// KrakenD's `cache_duration` when unset: 15 minutes.
const DEFAULT_CACHE: Duration = Duration::from_secs(900);

/// Reads the block `value` at `path`.
pub(crate) fn read(r: &mut Reader<'_>, value: &Value, path: String) -> Option<ValidatorConfig> {
    let o = r.as_object(value, path)?;
    r.known_keys(&o, KNOWN);
    for (key, why) in [
        (
            "jwk_fingerprints",
            "certificate pinning of the JWK server is not implemented; trust its CA with jwk_local_ca instead",
        ),
        (
            "secret_url",
            "encrypted JWK files (a KMS secret) are not implemented; use a plain jwk_local_path or jwk_url",
        ),
        (
            "cypher_key",
            "encrypted JWK files (a KMS secret) are not implemented; use a plain jwk_local_path or jwk_url",
        ),
    ] {
        if o.get(key).is_some() {
            r.error(
                o.path_of(key),
                format!("field {} is not supported by Sluice: {why}", quote(key)),
            );
        }
    }

    let alg = match o.get("alg") {
        None => {
            // KrakenD stops at start-up without one (its schema's default is not applied).
            r.error(
                o.path.clone(),
                "field \"alg\" is required: the algorithm the tokens are signed with (RS256, ES256, HS256, EdDSA...)",
            );
            None
        }
        Some(Value::String(s)) if s == "ES512" => {
            r.error(
                o.path_of("alg"),
                "\"ES512\" is not supported by Sluice: its crypto library (ring) has no P-521; \
                 use ES256 or ES384",
            );
            None
        }
        Some(v) => {
            let found = ALGORITHMS.iter().find(|(name, _)| v.as_str() == Some(name));
            if found.is_none() {
                let names: Vec<String> = ALGORITHMS.iter().map(|(n, _)| quote(n)).collect();
                let what = v.as_str().map_or_else(|| kind(v).to_owned(), quote);
                r.error(
                    o.path_of("alg"),
                    format!("expected one of {}, found {what}", names.join(", ")),
                );
            }
            found.copied()
        }
    };

    let disable_jwk_security = r.bool(&o, "disable_jwk_security");
    let local_path = r.string(&o, "jwk_local_path").filter(|p| !p.is_empty());
    let url = r.string(&o, "jwk_url").filter(|u| !u.is_empty());
    let cache = r.bool(&o, "cache");
    let cache_duration: Option<u32> = r.uint(&o, "cache_duration", "a number of seconds");
    let cooldown = r.duration(&o, "failed_jwk_key_cooldown");
    let local_ca = r.string(&o, "jwk_local_ca").filter(|p| !p.is_empty());
    let cipher_suites = cipher_suites(r, &o);

    let source = match (local_path, url) {
        (None, None) => {
            r.error(
                o.path.clone(),
                "one of \"jwk_url\" or \"jwk_local_path\" is required: where the keys that verify the tokens are",
            );
            None
        }
        // KrakenD: the local file has preference over the URL, and cannot be cached.
        (Some(path), _) => {
            if cache {
                r.error(
                    o.path_of("cache"),
                    "\"cache\" cannot be used with \"jwk_local_path\" (KrakenD refuses it too): \
                     the file is read once at start-up",
                );
            }
            Some(Source::Local(PathBuf::from(path)))
        }
        (None, Some(url)) => remote_source(
            r,
            &o,
            &url,
            disable_jwk_security,
            cache.then(|| match cache_duration {
                Some(0) | None => DEFAULT_CACHE,
                Some(seconds) => Duration::from_secs(u64::from(seconds)),
            }),
            // KrakenD ignores a cooldown under one second.
            (cooldown >= Duration::from_secs(1)).then_some(cooldown),
            local_ca,
            cipher_suites,
        ),
    };

    let strategy = r
        .choice(
            &o,
            "key_identify_strategy",
            &[
                ("kid", Strategy::Kid),
                ("x5t", Strategy::X5t),
                ("x5t#S256", Strategy::X5tS256),
                ("kid_x5t", Strategy::KidX5t),
            ],
        )
        .unwrap_or(Strategy::Kid);
    let audience = r.strings(&o, "audience").unwrap_or_default();
    let issuer = r.string(&o, "issuer").unwrap_or_default();
    let roles_key = r
        .string(&o, "roles_key")
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "roles".to_owned());
    let roles_key_is_nested = r.bool(&o, "roles_key_is_nested");
    let roles = r.strings(&o, "roles").unwrap_or_default();
    let scopes_key = r.string(&o, "scopes_key").unwrap_or_default();
    let scopes = r.strings(&o, "scopes").unwrap_or_default();
    let scopes_matcher = r
        .choice(
            &o,
            "scopes_matcher",
            &[("any", ScopesMatcher::Any), ("all", ScopesMatcher::All)],
        )
        .unwrap_or(ScopesMatcher::Any);
    let header = match r.string(&o, "auth_header_name").filter(|h| !h.is_empty()) {
        None => Some(http::header::AUTHORIZATION),
        Some(name) => header_name(r, &name, o.path_of("auth_header_name")),
    };
    let cookie_key = r
        .string(&o, "cookie_key")
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "access_token".to_owned());
    let propagate_claims = propagate_claims(r, &o);
    let propagate_claims_preserve_array = r.bool(&o, "propagate_claims_preserve_array");
    // At least a second, as krakend-jose's validator rounds it up.
    let leeway = r.duration(&o, "leeway").max(Duration::from_secs(1));
    let operation_debug = r.bool(&o, "operation_debug");

    let (alg_name, alg) = alg?;
    Some(ValidatorConfig {
        alg,
        alg_name: alg_name.to_owned(),
        source: source?,
        strategy,
        audience,
        issuer,
        roles_key,
        roles_key_is_nested,
        roles,
        scopes_key,
        scopes,
        scopes_matcher,
        header: header?,
        cookie_key,
        propagate_claims,
        propagate_claims_preserve_array,
        leeway,
        operation_debug,
    })
}

#[allow(clippy::too_many_arguments)]
fn remote_source(
    r: &mut Reader<'_>,
    o: &Obj<'_>,
    url: &str,
    disable_jwk_security: bool,
    cache: Option<Duration>,
    cooldown: Option<Duration>,
    local_ca: Option<String>,
    cipher_suites: Vec<u16>,
) -> Option<Source> {
    let at = o.path_of("jwk_url");
    let parsed: http::Uri = match url.parse() {
        Ok(uri) => uri,
        Err(e) => {
            r.error(at, format!("{} is not a URL: {e}", quote(url)));
            return None;
        }
    };
    match parsed.scheme_str() {
        Some("https") => {}
        Some("http") if disable_jwk_security => {}
        Some("http") => {
            r.error(
                at,
                format!(
                    "{} is plain http: the keys would travel unauthenticated; use https, or set \
                     \"disable_jwk_security\": true (tests only), as KrakenD requires",
                    quote(url)
                ),
            );
            return None;
        }
        _ => {
            r.error(at, format!("{} is not an http or https URL", quote(url)));
            return None;
        }
    }
    if parsed.host().is_none() {
        r.error(at, format!("{} has no host", quote(url)));
        return None;
    }
    let ca_certs = local_ca
        .map(|path| TlsFile {
            path: PathBuf::from(path),
            json_path: o.path_of("jwk_local_ca"),
        })
        .into_iter()
        .collect();
    Some(Source::Remote(Box::new(Remote {
        url: parsed,
        cache,
        cooldown,
        tls: ClientTls {
            json_path: o.path.clone(),
            // krakend-jose skips the certificate check with disable_jwk_security too.
            allow_insecure_connections: disable_jwk_security,
            ca_certs,
            disable_system_ca_pool: false,
            client_certs: Vec::new(),
            // krakend-jose's JWK client: TLS 1.2 at least.
            protocol: TlsProtocol {
                min_version: TlsVersion::Tls12,
                max_version: TlsVersion::Tls13,
                cipher_suites,
                curve_preferences: Vec::new(),
            },
        },
    })))
}

/// `cipher_suites`: Go's suite ids; those rustls implements are applied, any other refused.
fn cipher_suites(r: &mut Reader<'_>, o: &Obj<'_>) -> Vec<u16> {
    let Some(items) = r.array(o, "cipher_suites") else {
        return Vec::new();
    };
    let list = o.path_of("cipher_suites");
    let mut ids = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = index_path(&list, i);
        match item
            .as_u64()
            .and_then(|id| TLS_CIPHER_SUITES.iter().find(|(s, _)| u64::from(*s) == id))
        {
            Some((id, _)) if !ids.contains(id) => ids.push(*id),
            Some(_) => {}
            None => {
                let names: Vec<String> = TLS_CIPHER_SUITES
                    .iter()
                    .map(|(id, name)| format!("{id} ({name})"))
                    .collect();
                r.error(
                    at,
                    format!(
                        "cipher suite {item} is not supported by Sluice's TLS library (rustls: \
                         forward-secret AEAD suites only); use one of {}",
                        names.join(", ")
                    ),
                );
            }
        }
    }
    ids
}

fn header_name(r: &mut Reader<'_>, name: &str, at: String) -> Option<HeaderName> {
    match HeaderName::try_from(name) {
        Ok(header) => Some(header),
        Err(_) => {
            r.error(at, format!("{} is not a valid header name", quote(name)));
            None
        }
    }
}

/// `propagate_claims`: `[claim, header]` pairs.
fn propagate_claims(r: &mut Reader<'_>, o: &Obj<'_>) -> Vec<(String, HeaderName)> {
    let Some(items) = r.array(o, "propagate_claims") else {
        return Vec::new();
    };
    let list = o.path_of("propagate_claims");
    let mut pairs = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = index_path(&list, i);
        match item.as_array().map(Vec::as_slice) {
            Some([Value::String(claim), Value::String(header)]) => {
                if let Some(header) = header_name(r, header, index_path(&at, 1)) {
                    pairs.push((claim.clone(), header));
                }
            }
            _ => r.error(
                at,
                format!(
                    "expected a pair [\"claim\", \"Header-Name\"], found {}",
                    kind(item)
                ),
            ),
        }
    }
    pairs
}
