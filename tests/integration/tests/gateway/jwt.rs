//! `auth/validator` against real parts: JWK sets served over HTTPS by a server in the test
//! (its CA made in the test, trusted through `jwk_local_ca`), tokens signed in the test (RS256,
//! ES256, EdDSA, HS256), the gateway refusing what KrakenD refuses (401 and 403 without a
//! body), fetching a rotated key, staying bounded while the JWK server fails, and passing
//! claims to the backends.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{self as sig, KeyPair as _};
use serde_json::{Value, json};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::tls::{Ca, Leaf, TempDir, Usage};
use sluice_integration::*;
use sluice_plugin::Registry;
use sluice_stage::Components;

/// A 2048-bit RSA key (PKCS#1 DER, base64) made once for these tests: ring signs with RSA keys
/// but cannot make them.
const RSA_KEY: &[&str] = &[
    "MIIEpQIBAAKCAQEAvIndU/3rwT9I6P3USPYofXVhKqknDuIZO+ozeUenFz+18q4LHpy9KOqYd6eprmvspokZcn72gpi+gUdX",
    "CPWS75Ih1GrDB3yOte8WH90soUYpmtCRxOZVEaoI943wh7l+/yoa3LOdWbYMvFqBoJ90bQI+VDTOLNhtW8mK97EvUCjKYukT",
    "4VE6drMp/4QfZSSCfHvvGE6k47oWFoYqbd4si1Fx+MzQXFw3C7DNug1z6UJRgCf+K12q4UNz87ublOExSkuAGqvpvpd8QijM",
    "hOjd96QLqjFsQps8hRNQZkVS2PX+Vm4UxKMrcJtmflqH1EziHAEcwvHqXhAarjeexpR5gQIDAQABAoIBAAHRDNMwml2yRC5T",
    "rwrUPlrroepl7n+pLGK6VkqanNyASbdeMNsogjlKovNrdVDIRoHxl4Vf8GcWSQUzkxJH4hgRcmaas2xXG/bauQf4A2RSrUGN",
    "cguWrO1la5XUaVmqsmzceW5I71bWTSYWPdgbtddg4u6Dv69JEIKvF+Jp5jrls42oMGAq5pdcZh2kY4//W5ka53LRHiRuFrwk",
    "MAiIpQ5zv/kBCT+8/TkKVmaZE9Amx9jI2/07k47mBOlmwyCIloftmn01ds14MnPpYwl5MAz9Zu4+l5wA140w6hRNDP1Qgws9",
    "E5wNyz49ySuqpSsGPhc+w0jatPXhr65l7SLXDZ0CgYEA+pw74e8lF4VxNvBtkaGYRneaVhz25UM4INJCno5veMUp0w1gn19j",
    "bxNYoY4heFMKk5HoyJ7/Ccn8AAQFb7W1ZVYWmnn7BKljQGSzFk12kiJnSVau6SoyO8CKk3X+FxW9dq/s9dg54IktS+0CNag+",
    "xuKJnFCx3KLce5hWliu3Lu0CgYEAwJfjCuoFgcr0rNDYXlWXa004IXj19yYQ0GHn+GwMRh08e1lDfpfEr5HOBA0xuPmQTvzG",
    "KdsAzZbl+bt4p6sd5rnKB85h7nCDDwzIHFcjKCz2rUVWf8KQJ/eMrVxBp0AtUNsfFCCSezPpppC3Lzjd+HtLC0R60SqtgGD6",
    "7bf2DmUCgYEAhOmzgMJaw7zMLL0a/2/a2RS50A4Qi8s4y394Qat9R2oaIosnwZ7Pl6uFCDnfWneAVn++HBjnXoO3mTKIx5Rx",
    "nksoNcmX7gMAVriRmrR+vEZuzSCiJ5tvhO07EbY0in3HPFlVrZV+LK3UTj5nO5n9oXGoVjUd/8yIbyx+T6rjvokCgYEArOdv",
    "kTvaZ9Ui5we0SLTE9TNlQj/LavBExiAv1wqB1mynAQJ5oux0Sz82WtLRogSDtzYeXjNcvDZOD29sefMZLCv+IhX6O8vNDbTm",
    "7vKYAJileZe3eYneS9Nl+7nIw3PNezrN4w7/ExbfHIftvbprJYrjK6F2NdT/4TKv9L1kbTUCgYEA9BXqj6V4jcJGZeyvjrau",
    "rAssYPwkWG/joBbZPrf+nlvuWSAveiVkRPhWm0vaIcTc3Us6Tt7svHB9WDfuDKKayGdVOJkZHhko9ACSt1bqRTVKRedU89x8",
    "sb3fSZyb9WbpRVI815whxINFWR8Ehroimgj4CZ+05S2U+O7dIB6hjFw=",
];

fn components() -> Components {
    Components::new()
        .with(sluice_security::cors::Cors)
        .with(sluice_jwt::JwtValidator::new())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key and its public JWK.
struct Signer {
    alg: Algorithm,
    key: EncodingKey,
    jwk: Value,
}

impl Signer {
    fn rsa(kid: &str) -> Signer {
        let der = STANDARD.decode(RSA_KEY.concat()).unwrap();
        let pair = sig::RsaKeyPair::from_der(&der).unwrap();
        let public: sig::RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
        Signer {
            alg: Algorithm::RS256,
            key: EncodingKey::from_rsa_der(&der),
            jwk: json!({"kty": "RSA", "kid": kid, "use": "sig", "n": b64(&public.n), "e": b64(&public.e)}),
        }
    }

    fn ec(kid: &str) -> Signer {
        let rng = ring::rand::SystemRandom::new();
        let alg = &sig::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = sig::EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = sig::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let point = pair.public_key().as_ref();
        Signer {
            alg: Algorithm::ES256,
            key: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": b64(&point[1..33]), "y": b64(&point[33..])}),
        }
    }

    fn ed(kid: &str) -> Signer {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = sig::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = sig::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        Signer {
            alg: Algorithm::EdDSA,
            key: EncodingKey::from_ed_der(pkcs8.as_ref()),
            jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(pair.public_key().as_ref())}),
        }
    }

    fn hmac(kid: &str, secret: &[u8]) -> Signer {
        Signer {
            alg: Algorithm::HS256,
            key: EncodingKey::from_secret(secret).unwrap(),
            jwk: json!({"kty": "oct", "kid": kid, "k": b64(secret)}),
        }
    }

    fn kid(&self) -> String {
        self.jwk["kid"].as_str().unwrap().to_owned()
    }

    /// A token with `claims`, signed, naming `kid`.
    fn token_with_kid(&self, kid: &str, claims: &Value) -> String {
        sluice_jwt::crypto::install();
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }

    fn token(&self, claims: &Value) -> String {
        self.token_with_kid(&self.kid(), claims)
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims every validator below accepts.
fn good_claims() -> Value {
    json!({
        "iss": "https://issuer.example", "aud": ["api", "other"], "sub": "user-7",
        "exp": now() + 600, "iat": now(), "roles": ["reader", "x"],
        "scope": "read write", "tenant": {"id": 42, "name": "acme"}
    })
}

fn set(signers: &[&Signer]) -> String {
    json!({"keys": signers.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

/// An https server answering every request with the JWK set it holds (which a test may
/// replace), counting requests; or with `status` when set.
struct JwkServer {
    url: String,
    body: Arc<Mutex<String>>,
    status: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JwkServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JwkServer {
    async fn start(cert: &Leaf, body: String) -> JwkServer {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der.clone()], cert.key())
        .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://{}/jwks.json", listener.local_addr().unwrap());
        let body = Arc::new(Mutex::new(body));
        let status = Arc::new(AtomicU16::new(200));
        let hits = Arc::new(AtomicUsize::new(0));
        let (b, s, h) = (Arc::clone(&body), Arc::clone(&status), Arc::clone(&hits));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, b, s, h) = (
                    acceptor.clone(),
                    Arc::clone(&b),
                    Arc::clone(&s),
                    Arc::clone(&h),
                );
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |_req: http::Request<_>| {
                        h.fetch_add(1, Ordering::SeqCst);
                        let response = http::Response::builder()
                            .status(s.load(Ordering::SeqCst))
                            .header("Content-Type", "application/jwk-set+json")
                            .body(Full::new(Bytes::from(b.lock().unwrap().clone())))
                            .unwrap();
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        JwkServer {
            url,
            body,
            status,
            hits,
            task,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A trusted JWK server: a CA and a certificate for 127.0.0.1 made here, the CA written for
/// `jwk_local_ca`.
struct Pki {
    dir: TempDir,
    ca_path: String,
    leaf: Leaf,
}

fn pki() -> Pki {
    let dir = TempDir::new("jwt");
    let ca = Ca::new("jwk test CA");
    let ca_path = dir.write("ca.pem", &ca.cert_pem);
    let leaf = ca.issue(&["127.0.0.1"], Usage::Server);
    Pki { dir, ca_path, leaf }
}

fn validator(alg: &str, jwk_url: &str, ca: &str, extra: Value) -> Value {
    let mut v = json!({
        "alg": alg, "jwk_url": jwk_url, "jwk_local_ca": ca, "cache": true,
        "issuer": "https://issuer.example", "audience": ["api"],
        "roles_key": "roles", "roles": ["reader", "admin"]
    });
    for (k, x) in extra.as_object().cloned().unwrap_or_default() {
        v[k] = x;
    }
    v
}

async fn echo_backend() -> Backend {
    Backend::start_sync(|req: &Received| {
        Reply::json(
            200,
            &json!({
                "path": req.path,
                "user": req.header("x-user"),
                "tenant": req.header("x-tenant"),
                "roles": req.header_all("x-roles"),
            }),
        )
    })
    .await
}

async fn call(gw: &Gateway, path: &str, token: &str) -> Response {
    let auth = format!("Bearer {token}");
    request(
        Method::GET,
        &gw.url(path),
        &[("authorization", &auth)],
        Bytes::new(),
    )
    .await
}

/// KrakenD's refusal: the status, no body, no Content-Type, no X-KrakenD-Completed.
fn assert_refused(resp: &Response, status: u16, what: &str) {
    assert_eq!(resp.status, status, "{what}: {}", resp.text());
    assert_eq!(resp.text(), "", "{what}");
    assert_eq!(resp.header("content-type"), None, "{what}");
    assert_eq!(resp.header("x-krakend-completed"), None, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_of_each_algorithm_verified_against_an_https_jwk_server() {
    let pki = pki();
    let (rsa, ec, ed) = (Signer::rsa("rsa-1"), Signer::ec("ec-1"), Signer::ed("ed-1"));
    let hs = Signer::hmac("hs-1", b"a shared secret of thirty-two bytes!");
    let jwks = JwkServer::start(&pki.leaf, set(&[&rsa, &ec, &ed, &hs])).await;
    let mock = echo_backend().await;
    let mut endpoints = Vec::new();
    for (path, alg) in [
        ("/rs", "RS256"),
        ("/es", "ES256"),
        ("/ed", "EdDSA"),
        ("/hs", "HS256"),
    ] {
        endpoints.push(endpoint(
            path,
            json!([backend(&mock.url(), "/users/{JWT.sub}", Value::Null)]),
            json!({
                "input_headers": ["X-User", "X-Tenant", "X-Roles"],
                "extra_config": {"auth/validator": validator(alg, &jwks.url, &pki.ca_path, json!({
                    "propagate_claims": [["sub", "X-User"], ["tenant.name", "X-Tenant"], ["roles", "X-Roles"]]
                }))}
            }),
        ));
    }
    let gw = try_start_gateway_with_components(
        service(json!(endpoints)),
        Registry::new(),
        &components(),
    )
    .await
    .unwrap();

    for (path, signer) in [("/rs", &rsa), ("/es", &ec), ("/ed", &ed), ("/hs", &hs)] {
        let resp = call(&gw, path, &signer.token(&good_claims())).await;
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
        // Claims reach the backend as headers (input_headers lists them) and in its URL.
        assert_eq!(
            resp.json(),
            json!({"path": "/users/user-7", "user": "user-7", "tenant": "acme", "roles": ["reader,x"]}),
            "{path}"
        );
        // A token of another algorithm is refused, whatever its key.
        let other = if path == "/hs" { &rsa } else { &hs };
        assert_refused(
            &call(&gw, path, &other.token(&good_claims())).await,
            401,
            path,
        );
    }
    // One fetch served every endpoint (the set is shared and cached).
    assert_eq!(jwks.hits(), 1);
    // A client cannot send its own value for a propagated header.
    let token = rsa.token(&good_claims());
    let resp = request(
        Method::GET,
        &gw.url("/rs"),
        &[
            ("authorization", &format!("bearer {token}")),
            ("x-user", "admin"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(resp.json()["user"], "user-7");
    drop(pki.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_401_or_403_without_a_body() {
    let pki = pki();
    let rsa = Signer::rsa("rsa-1");
    let jwks = JwkServer::start(&pki.leaf, set(&[&rsa])).await;
    let mock = echo_backend().await;
    let gw = try_start_gateway_with_components(
        service(json!([
            endpoint(
                "/p",
                json!([backend(&mock.url(), "/p", Value::Null)]),
                json!({"extra_config": {"auth/validator": validator("RS256", &jwks.url, &pki.ca_path, Value::Null)}})
            ),
            endpoint(
                "/scoped",
                json!([backend(&mock.url(), "/s", Value::Null)]),
                json!({"extra_config": {"auth/validator": validator("RS256", &jwks.url, &pki.ca_path, json!({
                    "roles": [], "scopes_key": "scope", "scopes": ["read", "admin"], "scopes_matcher": "all"
                }))}})
            )
        ])),
        Registry::new(),
        &components(),
    )
    .await
    .unwrap();

    let with = |change: Value| {
        let mut claims = good_claims();
        for (k, v) in change.as_object().cloned().unwrap_or_default() {
            claims[k] = v;
        }
        rsa.token(&claims)
    };
    assert_eq!(call(&gw, "/p", &with(json!({}))).await.status, 200);
    let cases = [
        ("expired", with(json!({"exp": now() - 60})), 401),
        ("not valid yet", with(json!({"nbf": now() + 60})), 401),
        ("wrong audience", with(json!({"aud": "other"})), 401),
        (
            "wrong issuer",
            with(json!({"iss": "https://evil.example"})),
            401,
        ),
        ("missing role", with(json!({"roles": ["guest"]})), 403),
        ("no roles claim", with(json!({"roles": null})), 403),
        (
            "unknown kid",
            rsa.token_with_kid("nope", &good_claims()),
            401,
        ),
        ("not a token", "a.bad.token".to_owned(), 401),
    ];
    for (what, token, status) in cases {
        assert_refused(&call(&gw, "/p", &token).await, status, what);
    }
    // A signature that does not verify: the payload changed after signing.
    let token = with(json!({}));
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut claims = good_claims();
    claims["roles"] = json!(["admin"]);
    parts[1] = b64(claims.to_string().as_bytes());
    assert_refused(
        &call(&gw, "/p", &parts.join(".")).await,
        401,
        "bad signature",
    );
    // No token at all (KrakenD's router_401_1).
    assert_refused(&get(&gw.url("/p")).await, 401, "no token");
    // Scopes: all of them (a space-separated claim).
    assert_refused(
        &call(&gw, "/scoped", &with(json!({}))).await,
        403,
        "one scope of two",
    );
    assert_eq!(
        call(&gw, "/scoped", &with(json!({"scope": "admin read"})))
            .await
            .status,
        200
    );
    // Only the accepted requests reached the backend.
    assert_eq!(mock.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_fetched_and_unknown_keys_do_not_hammer_the_server() {
    let pki = pki();
    let (old, new) = (Signer::ec("2024"), Signer::ec("2025"));
    let jwks = JwkServer::start(&pki.leaf, set(&[&old])).await;
    let mock = echo_backend().await;
    let gw = try_start_gateway_with_components(
        service(json!([endpoint(
            "/p",
            json!([backend(&mock.url(), "/p", Value::Null)]),
            json!({"extra_config": {"auth/validator": validator("ES256", &jwks.url, &pki.ca_path, Value::Null)}})
        )])),
        Registry::new(),
        &components(),
    )
    .await
    .unwrap();
    // The same token twice: the second time from the verified-token cache.
    let first = old.token(&good_claims());
    for _ in 0..2 {
        assert_eq!(call(&gw, "/p", &first).await.status, 200);
    }
    assert_eq!(jwks.hits(), 1);

    // The issuer rotates: the set now holds the new key only. A token naming it makes the
    // gateway fetch the set again (at most once a second), then it is accepted.
    *jwks.body.lock().unwrap() = set(&[&new]);
    let token = new.token(&good_claims());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let resp = call(&gw, "/p", &token).await;
        if resp.status == 200 {
            break;
        }
        assert_refused(&resp, 401, "before the refetch");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new key was never fetched"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after_rotation = jwks.hits();
    assert!(
        (2..=3).contains(&after_rotation),
        "{after_rotation} fetches"
    );
    // The old key left the set with the refetch: its tokens are refused, the one verified
    // (and cached) before the rotation too.
    assert_refused(
        &call(&gw, "/p", &old.token(&good_claims())).await,
        401,
        "rotated out",
    );
    assert_refused(&call(&gw, "/p", &first).await, 401, "cached, rotated out");

    // A burst of tokens naming keys that do not exist: refused, and the server is asked at
    // most once a second.
    let started = std::time::Instant::now();
    for i in 0..40 {
        let token = new.token_with_kid(&format!("unknown-{i}"), &good_claims());
        assert_refused(&call(&gw, "/p", &token).await, 401, "unknown kid");
    }
    let seconds = started.elapsed().as_secs() as usize;
    let fetched = jwks.hits() - after_rotation;
    assert!(fetched <= seconds + 2, "{fetched} fetches in {seconds} s");
}

/// A token verified once skips the signature check next time, and only that: another
/// endpoint's roles, the expiry, and a token changed by one byte are judged again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_token_is_remembered_for_its_signature_only() {
    let pki = pki();
    let signer = Signer::rsa("cache-1");
    let jwks = JwkServer::start(&pki.leaf, set(&[&signer])).await;
    let mock = echo_backend().await;
    let v = |roles: Value| json!({"extra_config": {"auth/validator": validator("RS256", &jwks.url, &pki.ca_path, json!({"roles": roles}))}});
    let gw = try_start_gateway_with_components(
        service(json!([
            endpoint(
                "/open",
                json!([backend(&mock.url(), "/o", Value::Null)]),
                v(json!([]))
            ),
            endpoint(
                "/admin",
                json!([backend(&mock.url(), "/a", Value::Null)]),
                v(json!(["admin"]))
            )
        ])),
        Registry::new(),
        &components(),
    )
    .await
    .unwrap();
    let mut claims = good_claims();
    claims["exp"] = json!(now() + 2);
    let token = signer.token(&claims);
    for _ in 0..3 {
        assert_eq!(call(&gw, "/open", &token).await.status, 200);
    }
    assert_refused(
        &call(&gw, "/admin", &token).await,
        403,
        "roles, cached token",
    );
    // One byte of the signature changed: another token, verified (and refused).
    let mut tampered = token.clone().into_bytes();
    let i = token.rfind('.').unwrap() + 10;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_refused(
        &call(&gw, "/open", &tampered).await,
        401,
        "tampered signature",
    );
    // The expiry still counts for the remembered token.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let resp = call(&gw, "/open", &token).await;
        if resp.status == 401 {
            break;
        }
        assert_eq!(resp.status, 200);
        assert!(tokio::time::Instant::now() < deadline, "never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_jwk_server_means_401_and_a_bounded_number_of_fetches() {
    let pki = pki();
    let hs = Signer::hmac("k", b"0123456789abcdef0123456789abcdef");
    let jwks = JwkServer::start(&pki.leaf, set(&[&hs])).await;
    jwks.status.store(503, Ordering::SeqCst);
    let untrusted = Ca::new("someone else").issue(&["127.0.0.1"], Usage::Server);
    let impostor = JwkServer::start(&untrusted, set(&[&hs])).await;
    let mock = echo_backend().await;
    // Without cache: KrakenD fetches for every token.
    let no_cache = json!({"cache": false});
    let gw = try_start_gateway_with_components(
        service(json!([
            endpoint(
                "/down",
                json!([backend(&mock.url(), "/p", Value::Null)]),
                json!({"extra_config": {"auth/validator": validator("HS256", &jwks.url, &pki.ca_path, no_cache.clone())}})
            ),
            endpoint(
                "/impostor",
                json!([backend(&mock.url(), "/p", Value::Null)]),
                json!({"extra_config": {"auth/validator": validator("HS256", &impostor.url, &pki.ca_path, no_cache.clone())}})
            ),
            endpoint(
                "/refused",
                json!([backend(&mock.url(), "/p", Value::Null)]),
                json!({"extra_config": {"auth/validator": validator("HS256", "https://127.0.0.1:9/jwks", &pki.ca_path, no_cache)}})
            )
        ])),
        Registry::new(),
        &components(),
    )
    .await
    .unwrap();
    let token = hs.token(&good_claims());
    let started = std::time::Instant::now();
    for _ in 0..20 {
        assert_refused(
            &call(&gw, "/down", &token).await,
            401,
            "JWK server answering 503",
        );
    }
    let seconds = started.elapsed().as_secs() as usize;
    assert!(
        jwks.hits() >= 1 && jwks.hits() <= seconds + 2,
        "{} fetches in {seconds} s",
        jwks.hits()
    );
    // A server whose certificate the gateway does not trust is never believed.
    assert_refused(
        &call(&gw, "/impostor", &token).await,
        401,
        "untrusted JWK server",
    );
    assert_eq!(impostor.hits(), 0);
    assert_refused(
        &call(&gw, "/refused", &token).await,
        401,
        "nobody listening",
    );
    assert_eq!(mock.count(), 0);

    // Once the server is back (and the back-off over), tokens are accepted; without cache the
    // set is fetched for each token.
    jwks.status.store(200, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while call(&gw, "/down", &token).await.status != 200 {
        assert!(tokio::time::Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = jwks.hits();
    assert_eq!(call(&gw, "/down", &token).await.status, 200);
    assert_eq!(jwks.hits(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_cookies_headers_and_local_keys() {
    let dir = TempDir::new("jwt-local");
    let ed = Signer::ed("local");
    let jwk_file = dir.write("jwks.json", set(&[&ed]));
    let mock = echo_backend().await;
    let local = |extra: Value| {
        let mut v = json!({"alg": "EdDSA", "jwk_local_path": jwk_file, "roles_key": "realm.roles", "roles_key_is_nested": true, "roles": ["admin"]});
        for (k, x) in extra.as_object().cloned().unwrap_or_default() {
            v[k] = x;
        }
        json!({"extra_config": {"auth/validator": v}})
    };
    let gw = try_start_gateway_with_components(
        service(json!([
            endpoint(
                "/cookie",
                json!([backend(&mock.url(), "/c", Value::Null)]),
                local(json!({"cookie_key": "session"}))
            ),
            endpoint(
                "/header",
                json!([backend(&mock.url(), "/h", Value::Null)]),
                local(json!({"auth_header_name": "X-Token"}))
            ),
        ])),
        Registry::new(),
        &components(),
    )
    .await
    .unwrap();
    let token = ed.token(&json!({"sub": "u", "realm": {"roles": ["admin"]}}));
    let cookie = format!("theme=dark; session={token}");
    let resp = request(
        Method::GET,
        &gw.url("/cookie"),
        &[("cookie", &cookie)],
        Bytes::new(),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    // The default cookie name is not this endpoint's.
    let other = format!("access_token={token}");
    assert_refused(
        &request(
            Method::GET,
            &gw.url("/cookie"),
            &[("cookie", &other)],
            Bytes::new(),
        )
        .await,
        401,
        "another cookie",
    );
    let resp = request(
        Method::GET,
        &gw.url("/header"),
        &[("x-token", &token)],
        Bytes::new(),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    // Nested roles.
    let guest = ed.token(&json!({"realm": {"roles": ["guest"]}}));
    assert_refused(
        &request(
            Method::GET,
            &gw.url("/header"),
            &[("x-token", &guest)],
            Bytes::new(),
        )
        .await,
        403,
        "nested role missing",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_problems_are_start_up_errors_with_their_path() {
    let dir = TempDir::new("jwt-config");
    let bad_file = dir.write("jwks.json", "{\"keys\": []}");
    let next = AtomicUsize::new(0);
    let block = |v: Value| {
        endpoint(
            &format!("/a{}", next.fetch_add(1, Ordering::SeqCst)),
            json!([backend("http://127.0.0.1:10", "/a", Value::Null)]),
            json!({"extra_config": {"auth/validator": v}}),
        )
    };
    let config = service(json!([
        block(json!({"alg": "RS256", "jwk_url": "http://idp.example/jwks"})),
        block(json!({"alg": "ES512", "jwk_url": "https://idp.example/jwks"})),
        block(json!({"jwk_url": "https://idp.example/jwks"})),
        block(
            json!({"alg": "RS256", "jwk_url": "https://idp.example/jwks", "jwk_fingerprints": ["x"], "what": 1})
        ),
        block(json!({"alg": "RS256", "jwk_local_path": bad_file, "cache": true})),
        block(
            json!({"alg": "RS256", "jwk_url": "https://idp.example/jwks", "scopes_matcher": "most", "cipher_suites": [5]})
        ),
    ]));
    let error = try_start_gateway_with_components(config, Registry::new(), &components())
        .await
        .unwrap_err()
        .to_string();
    for expected in [
        "endpoints[0].extra_config[\"auth/validator\"].jwk_url: \"http://idp.example/jwks\" is plain http",
        "endpoints[1].extra_config[\"auth/validator\"].alg: \"ES512\" is not supported",
        "endpoints[2].extra_config[\"auth/validator\"]: field \"alg\" is required",
        "endpoints[3].extra_config[\"auth/validator\"].jwk_fingerprints: field \"jwk_fingerprints\" is not supported",
        "endpoints[3].extra_config[\"auth/validator\"].what:",
        "endpoints[4].extra_config[\"auth/validator\"].cache: \"cache\" cannot be used with \"jwk_local_path\"",
        "endpoints[5].extra_config[\"auth/validator\"].scopes_matcher: expected one of \"any\", \"all\"",
        "endpoints[5].extra_config[\"auth/validator\"].cipher_suites[0]: cipher suite 5 is not supported",
    ] {
        assert!(error.contains(expected), "{expected}\n{error}");
    }
    // A local set without a usable key is named with its path.
    let config = service(json!([block(
        json!({"alg": "RS256", "jwk_local_path": bad_file})
    )]));
    let error = try_start_gateway_with_components(config, Registry::new(), &components())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("endpoints[0].extra_config[\"auth/validator\"].jwk_local_path:"),
        "{error}"
    );
    // At the service level the namespace is refused.
    let mut config = service(json!([]));
    config["extra_config"]["auth/validator"] = json!({"alg": "RS256"});
    let error = try_start_gateway_with_components(config, Registry::new(), &components())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("endpoint level only"), "{error}");
}
