//! The fast path in JavaScript, end to end: `js-hmac-signer` and `js-header-rewrite`, components
//! of the Sluice world written on the JS SDK (`plugins/sdk-js`, built with componentize-js),
//! called through a real gateway with a real backend on 127.0.0.1, side by side with the Rust
//! examples they copy (`hmac-signer`, `header-rewrite`): the same settings must give the same
//! requests and answers.
//!
//! The JS components are built once per test binary by `plugins/sdk-js/build.sh`, which installs
//! its pinned npm packages with `npm ci` when they are missing. A machine without node and npm
//! (or without the npm registry on the first run) fails these tests with the script's message:
//! they are never skipped.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::plugins::{expected_signature, with_plugin};
use http::Method;
use serde_json::{Value, json};
use sluice_integration::backend::{Backend, Received, Reply};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::plugins::{plugin_file, run_build_script, wasm_host};
use sluice_integration::*;
use sluice_plugin::Registry;

const CACHE_TTL: u64 = 3600;

/// The secret the origin verifies signatures with.
const SECRET: &str = "s3cr3t";

/// Nothing listens there: a plugin that called its backend would fail.
const NOWHERE: &str = "http://127.0.0.1:19";

/// Builds the JS examples once for this binary (`plugins/sdk-js/build.sh`) and returns the
/// folder holding them.
///
/// # Panics
/// If the script fails (no node or npm, no npm registry, a build error), with its output.
fn js_dist() -> &'static Path {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        run_build_script(
            "sdk-js",
            "the JavaScript plugins need node 20+ and npm, and the npm registry on the first run \
             (the script runs npm ci)",
        )
    })
}

/// The two JS components and the Rust examples they copy, loaded as `sluice run` loads files.
fn registry() -> Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let mut files: Vec<PathBuf> = ["js-hmac-signer", "js-header-rewrite"]
                .iter()
                .map(|name| js_dist().join(format!("{name}.wasm")))
                .collect();
            files.push(plugin_file("hmac-signer"));
            files.push(plugin_file("header-rewrite"));
            let mut registry = Registry::new();
            for file in files {
                let (name, plugin) = wasm_host()
                    .load_file(&file)
                    .unwrap_or_else(|e| panic!("{} does not load: {e:?}", file.display()));
                assert!(
                    plugin.kind().contains("sluice:plugin/http-client"),
                    "{name}: {}",
                    plugin.kind()
                );
                registry
                    .register(name, plugin)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            registry
        })
        .clone()
}

/// A backend on 127.0.0.1: `/signed/*` verifies the signature headers with [`SECRET`] (200
/// `{"verified":true,"key_id":..}` or 401); anything else echoes the request's headers as
/// `{"path","headers":{name: [values]}}` (`host` and `x-forwarded-host`, which name ports, left
/// out) and answers with `Server: origin` and `X-Drop: 1`.
async fn origin() -> Backend {
    Backend::start_sync(|req: &Received| {
        if req.path.starts_with("/signed/") {
            let verdict = expected_signature(req, SECRET).and_then(|expected| {
                match req.header("x-signature") {
                    Some(got) if got == expected => Ok(()),
                    got => Err(format!("signature {got:?}, expected {expected}")),
                }
            });
            return match verdict {
                Ok(()) => Reply::json(
                    200,
                    &json!({"verified": true, "key_id": req.header("x-key-id")}),
                ),
                Err(reason) => Reply::json(401, &json!({"verified": false, "reason": reason})),
            };
        }
        let headers: serde_json::Map<String, Value> = req
            .headers
            .keys()
            .filter(|name| !["host", "x-forwarded-host"].contains(&name.as_str()))
            .map(|name| {
                (
                    name.as_str().to_owned(),
                    json!(req.header_all(name.as_str())),
                )
            })
            .collect();
        Reply::json(200, &json!({"path": req.path, "headers": headers}))
            .header("server", "origin")
            .header("x-drop", "1")
    })
    .await
}

/// `js-hmac-signer` signs as `hmac-signer` does: the origin verifies both (a wrong secret and no
/// plugin are refused, so the 200s prove the signatures), GET with a query and POST with a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_hmac_signer_is_verified_by_the_backend() {
    let settings = json!({"secret": SECRET, "key_id": "gw-1"});
    for name in ["js-hmac-signer", "hmac-signer"] {
        let real = origin().await;
        let gw = start_gateway_with_registry(
            service(json!([
                endpoint(
                    "/signed/{id}",
                    json!([backend(
                        &real.url(),
                        "/signed/{id}?fixed=yes",
                        with_plugin(name, settings.clone())
                    )]),
                    json!({"input_query_strings": ["x"]})
                ),
                endpoint(
                    "/post/{id}",
                    json!([backend(
                        &real.url(),
                        "/signed/{id}",
                        with_plugin(name, settings.clone())
                    )]),
                    json!({"method": "POST", "input_headers": ["Content-Type"]})
                ),
                endpoint(
                    "/renamed/{id}",
                    json!([backend(
                        &real.url(),
                        "/echo/{id}",
                        with_plugin(
                            name,
                            json!({"secret": SECRET, "headers": {"signature": "X-Sig", "timestamp": "X-Ts"}})
                        )
                    )]),
                    Value::Null
                ),
                endpoint(
                    "/unsigned/{id}",
                    json!([backend(&real.url(), "/signed/{id}", Value::Null)]),
                    Value::Null
                ),
                endpoint(
                    "/wrong/{id}",
                    json!([backend(
                        &real.url(),
                        "/signed/{id}",
                        with_plugin(name, json!({"secret": "not-the-secret"}))
                    )]),
                    Value::Null
                )
            ])),
            registry(),
        )
        .await;

        // Twice: the second request reuses the warm instance.
        for _ in 0..2 {
            let resp = get(&gw.url("/signed/1?x=1&ignored=1")).await;
            assert_complete_json(&resp, CACHE_TTL);
            assert_json(&resp, &json!({"verified": true, "key_id": "gw-1"}));
        }
        let got = real.last();
        assert_eq!(got.path, "/signed/1", "{name}");
        assert_eq!(got.query.as_deref(), Some("fixed=yes&x=1"), "{name}");
        assert_eq!(got.header("x-key-id"), Some("gw-1"), "{name}");
        assert_eq!(got.header_all("x-signature").len(), 1, "{name}");

        // A body (hashed into the signature) makes it through unchanged.
        let resp = request(
            Method::POST,
            &gw.url("/post/2"),
            &[("Content-Type", "application/json")],
            r#"{"hello":"wörld"}"#,
        )
        .await;
        assert_complete_json(&resp, CACHE_TTL);
        assert_json(&resp, &json!({"verified": true, "key_id": "gw-1"}));
        assert_eq!(real.last().body_text(), r#"{"hello":"wörld"}"#, "{name}");

        // Renamed headers, no key id: the default names are not sent.
        let resp = get(&gw.url("/renamed/3")).await;
        assert_complete_json(&resp, CACHE_TTL);
        let got = real.last();
        let ts = got
            .header("x-ts")
            .unwrap_or_else(|| panic!("{name}: no X-Ts"));
        let sig = got
            .header("x-sig")
            .unwrap_or_else(|| panic!("{name}: no X-Sig"));
        let mut renamed = got.clone();
        renamed
            .headers
            .insert("x-signature-timestamp", ts.parse().unwrap());
        assert_eq!(
            expected_signature(&renamed, SECRET).as_deref(),
            Ok(sig),
            "{name}"
        );
        for absent in ["x-signature", "x-signature-timestamp", "x-key-id"] {
            assert_eq!(got.header(absent), None, "{name}: {absent}");
        }

        // Controls: the origin really checks.
        let resp = get(&gw.url("/unsigned/4")).await;
        assert_status(&resp, 500);
        assert!(
            resp.text().contains("invalid status code 401"),
            "{}",
            resp.text()
        );
        let resp = get(&gw.url("/wrong/5")).await;
        assert_status(&resp, 500);
        assert!(
            resp.text().contains("invalid status code 401"),
            "{}",
            resp.text()
        );
        assert_eq!(real.count(), 6, "{name}");
    }
}

/// One gateway request fans out to two backends, one signed by `js-hmac-signer` and one by
/// `hmac-signer`, with the same secret, method, path and body: within the same second they send
/// the same signature, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_and_rust_hmac_signers_send_the_same_signature() {
    let real = origin().await;
    let settings = json!({"secret": SECRET, "key_id": "k"});
    let signed = |name: &str, group: &str| {
        let mut b = backend(
            &real.url(),
            "/signed/same?a=1",
            with_plugin(name, settings.clone()),
        );
        b["group"] = json!(group);
        b
    };
    let gw = start_gateway_with_registry(
        service(json!([endpoint(
            "/both",
            json!([
                signed("js-hmac-signer", "js"),
                signed("hmac-signer", "rust")
            ]),
            Value::Null
        )])),
        registry(),
    )
    .await;

    // The timestamp is in whole seconds: retry the rare pair that straddles a second.
    let mut compared = false;
    for _ in 0..5 {
        let before = real.count();
        let resp = get(&gw.url("/both")).await;
        assert_complete_json(&resp, CACHE_TTL);
        assert_json(
            &resp,
            &json!({"js": {"verified": true, "key_id": "k"}, "rust": {"verified": true, "key_id": "k"}}),
        );
        let received = real.received();
        let pair = &received[before..];
        assert_eq!(pair.len(), 2);
        let ts: Vec<_> = pair
            .iter()
            .map(|r| r.header("x-signature-timestamp").unwrap().to_owned())
            .collect();
        if ts[0] != ts[1] {
            continue;
        }
        assert_eq!(pair[0].header("x-signature"), pair[1].header("x-signature"));
        compared = true;
        break;
    }
    assert!(
        compared,
        "the two signers never signed within the same second"
    );
}

/// `js-header-rewrite` changes the request's and the answer's headers as `header-rewrite` does:
/// the origin sees the same headers, the client gets the same answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_header_rewrite_changes_both_ways_like_the_rust_example() {
    let both = json!({
        "request": {"set": {"X-Api-Key": "k-1", "X-Test": "replaced"}, "remove": ["Cookie"]},
        "response": {"set": {"X-Served-By": "sluice"}, "remove": ["Server", "X-Drop"]}
    });
    let only_request = json!({"request": {"set": {"X-Api-Key": "k-2"}}});
    let mut answers = Vec::new();
    for name in ["js-header-rewrite", "header-rewrite"] {
        let real = origin().await;
        let gw = start_gateway_with_registry(
            service(json!([
                endpoint(
                    "/both",
                    json!([backend(&real.url(), "/both", with_plugin(name, both.clone()))]),
                    json!({"output_encoding": "no-op", "input_headers": ["X-Test", "Cookie", "X-Keep"]})
                ),
                endpoint(
                    "/request-only",
                    json!([backend(&real.url(), "/request-only", with_plugin(name, only_request.clone()))]),
                    json!({"output_encoding": "no-op"})
                ),
                endpoint(
                    "/decoded",
                    json!([backend(&real.url(), "/decoded", with_plugin(name, both.clone()))]),
                    Value::Null
                )
            ])),
            registry(),
        )
        .await;

        let resp = request(
            Method::GET,
            &gw.url("/both"),
            &[
                ("X-Test", "original"),
                ("Cookie", "c=1"),
                ("X-Keep", "kept"),
            ],
            "",
        )
        .await;
        assert_status(&resp, 200);
        let got = real.last();
        assert_eq!(got.header_all("x-api-key"), ["k-1"], "{name}");
        assert_eq!(got.header_all("x-test"), ["replaced"], "{name}");
        assert_eq!(got.header("cookie"), None, "{name}");
        assert_eq!(got.header("x-keep"), Some("kept"), "{name}");
        assert_eq!(resp.header("x-served-by"), Some("sluice"), "{name}");
        assert_eq!(resp.header("server"), None, "{name}");
        assert_eq!(resp.header("x-drop"), None, "{name}");
        let echo = resp.json();
        assert_eq!(echo["path"], json!("/both"), "{name}");

        // Without a response part the answer's headers are the origin's.
        let resp = get(&gw.url("/request-only")).await;
        assert_status(&resp, 200);
        assert_eq!(real.last().header("x-api-key"), Some("k-2"), "{name}");
        assert_eq!(resp.header("server"), Some("origin"), "{name}");
        assert_eq!(resp.header("x-drop"), Some("1"), "{name}");
        assert_eq!(resp.header("x-served-by"), None, "{name}");

        // Through the JSON pipeline the body is decoded as usual.
        let resp = get(&gw.url("/decoded")).await;
        assert_complete_json(&resp, CACHE_TTL);
        assert_eq!(resp.json()["path"], json!("/decoded"), "{name}");
        answers.push(echo);
    }
    // The origin saw the same headers from both (the echo lists every header it got).
    assert_eq!(answers[0], answers[1]);
}

/// Settings a JS plugin refuses stop start-up with its message and the backend's JSON path, as
/// for a Rust plugin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_plugins_refuse_bad_settings_at_start_up() {
    for (name, settings, message) in [
        (
            "js-hmac-signer",
            json!({"key_id": "k"}),
            "settings need a non-empty \"secret\"",
        ),
        (
            "js-hmac-signer",
            json!({"secret": "s", "extra": 1}),
            "unknown field settings.extra",
        ),
        (
            "js-header-rewrite",
            json!({"request": {"set": {"X-A": 1}}}),
            "request.set.X-A must be a string",
        ),
        (
            "js-header-rewrite",
            json!({"response": {"remove": "Server"}}),
            "response.remove must be a list",
        ),
    ] {
        let config = service(json!([endpoint(
            "/p",
            json!([backend(NOWHERE, "/p", with_plugin(name, settings.clone()))]),
            Value::Null
        )]));
        let error = match try_start_gateway(config, registry()).await {
            Ok(gw) => panic!(
                "{name} {settings}: the gateway started on {} but must not",
                gw.addr
            ),
            Err(StartFailure::Start(e)) => e.to_string(),
            Err(e @ StartFailure::Config(_)) => panic!("expected a start-up error, got {e}"),
        };
        assert!(
            error.contains(message),
            "{name}: the plugin's message: {error}"
        );
        assert!(
            error.contains("endpoints[0].backend[0]"),
            "{name}: the JSON path: {error}"
        );
        assert!(error.contains(name), "{name}: {error}");
    }
}
