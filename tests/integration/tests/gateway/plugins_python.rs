//! The any-language claim, end to end, through a real gateway with real backends on 127.0.0.1:
//! - `py-hello`, a `wasi:http/proxy` component written in Python (`plugins/py-hello`, built with
//!   componentize-py), loaded by the gateway like any other plugin;
//! - `py-hmac-signer` and `py-header-rewrite`, Python plugins of the fast Sluice world on the
//!   Python SDK (`plugins/sdk-python`), checked against what the Rust examples do (the
//!   compiled-in `native/hmac-signer` side by side; `header-rewrite`'s documented behaviour).
//!
//! The components are built once per test binary by `plugins/py-hello/build.sh` and
//! `plugins/sdk-python/build.sh`, which install their pinned componentize-py with pip when it is
//! missing. A machine that cannot install it (no PyPI) fails these tests with the script's
//! message: they are never skipped.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::plugins::{assert_refused, with_plugin};
use http::Method;
use serde_json::{Value, json};
use sluice_integration::backend::{Backend, Received, Reply};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::plugins::{plugins_dir, run_build_script, wasm_host};
use sluice_integration::*;
use sluice_plugin::Registry;

const CACHE_TTL: u64 = 3600;

/// Nothing listens there: a plugin that called its backend would fail.
const NOWHERE: &str = "http://127.0.0.1:19";

/// Builds `py-hello` once for this binary (`plugins/py-hello/build.sh`) and returns its file.
///
/// # Panics
/// If the script fails (componentize-py cannot be installed, the build breaks), with its output.
fn py_hello_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let file = run_build_script(
            "py-hello",
            "the Python plugin needs python3 with pip and componentize-py from PyPI (the script \
             installs it)",
        )
        .join("py-hello.wasm");
        assert!(file.is_file(), "build.sh did not write {}", file.display());
        file
    })
}

/// A registry holding only `py-hello`, loaded as `sluice run` loads a plugin file.
fn registry() -> Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let (name, plugin) = wasm_host()
                .load_file(py_hello_file())
                .unwrap_or_else(|e| panic!("py-hello does not load: {e:?}"));
            assert_eq!(name, "py-hello");
            let mut registry = Registry::new();
            registry
                .register(name, plugin)
                .unwrap_or_else(|e| panic!("{e}"));
            registry
        })
        .clone()
}

/// The backend's `extra_config` naming `py-hello` with these settings, plus `siblings`.
fn with_py_hello(settings: Value, siblings: Value) -> Value {
    let mut block = json!({"name": "py-hello", "py-hello": settings});
    if let Value::Object(map) = siblings {
        for (k, v) in map {
            block[k] = v;
        }
    }
    json!({"extra_config": {"plugin/http-client": block}})
}

/// Adds `"encoding": "no-op"` to a backend's extra keys.
fn and_no_op(mut extra: Value) -> Value {
    extra["encoding"] = json!("no-op");
    extra
}

/// A backend on 127.0.0.1 that echoes what it received as JSON
/// (`{"method","path","query","body","user_agent","x_test"}`) with an `X-Origin: yes` header.
async fn origin() -> Backend {
    Backend::start_sync(|req: &Received| {
        Reply::json(
            200,
            &json!({
                "method": req.method.as_str(),
                "path": req.path,
                "query": req.query,
                "body": req.body_text(),
                "user_agent": req.header("user-agent"),
                "x_test": req.header("x-test"),
            }),
        )
        .header("x-origin", "yes")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_plugin_answers_hello_and_forwards_the_rest() {
    let real = origin().await;
    let settings = json!({"greeting": "hi from the settings"});
    let gw = start_gateway_with_registry(
        service(json!([
            // Answered by the plugin: the backend path ends with /hello.
            endpoint(
                "/py/greet",
                json!([backend(
                    &real.url(),
                    "/greet/hello",
                    with_py_hello(settings.clone(), Value::Null)
                )]),
                Value::Null
            ),
            // The same, behind no-op: the component's answer reaches the client as it is.
            endpoint(
                "/py/raw-hello",
                json!([backend(
                    &real.url(),
                    "/raw/hello",
                    and_no_op(with_py_hello(json!({}), Value::Null))
                )]),
                json!({"output_encoding": "no-op"})
            ),
            // Forwarded: anything else goes to the backend through the gateway's client.
            endpoint(
                "/py/items/{id}",
                json!([backend(
                    &real.url(),
                    "/items/{id}",
                    with_py_hello(settings.clone(), Value::Null)
                )]),
                json!({"input_query_strings": ["q"]})
            ),
            endpoint(
                "/py/post",
                json!([backend(
                    &real.url(),
                    "/items",
                    with_py_hello(settings.clone(), Value::Null)
                )]),
                json!({"method": "POST", "input_headers": ["Content-Type", "X-Test"]})
            ),
            endpoint(
                "/py/raw-forward",
                json!([backend(
                    &real.url(),
                    "/raw/forward",
                    and_no_op(with_py_hello(settings.clone(), Value::Null))
                )]),
                json!({"output_encoding": "no-op"})
            ),
            // The allow-list binds the Python component's outgoing calls too.
            endpoint(
                "/py/refused",
                json!([backend(
                    &real.url(),
                    "/refused",
                    with_py_hello(settings.clone(), json!({"allowed_hosts": [NOWHERE]}))
                )]),
                Value::Null
            )
        ])),
        registry(),
    )
    .await;

    // Hijacked, twice (the second request reuses the warm instance).
    for _ in 0..2 {
        let resp = get(&gw.url("/py/greet")).await;
        assert_complete_json(&resp, CACHE_TTL);
        assert_json(
            &resp,
            &json!({
                "message": "hello from python",
                "path": "/greet/hello",
                "greeting": "hi from the settings"
            }),
        );
    }
    assert_eq!(
        real.count(),
        0,
        "the /hello answer must not call the backend"
    );

    let resp = get(&gw.url("/py/raw-hello")).await;
    assert_status(&resp, 200);
    assert_content_type(&resp, "application/json");
    assert_eq!(
        resp.json(),
        json!({"message": "hello from python", "path": "/raw/hello"}),
        "no greeting without the setting"
    );
    assert_eq!(real.count(), 0);

    // Forwarded unchanged: method, path, the forwarded query, the gateway's headers.
    let resp = get(&gw.url("/py/items/7?q=1&dropped=2")).await;
    assert_complete_json(&resp, CACHE_TTL);
    let echo = resp.json();
    assert_eq!(echo["method"], json!("GET"));
    assert_eq!(echo["path"], json!("/items/7"));
    assert_eq!(echo["query"], json!("q=1"));
    assert_eq!(echo["user_agent"], json!(SLUICE_VERSION));
    assert_eq!(real.count(), 1);
    assert_eq!(real.last().path, "/items/7");

    // A body and a forwarded header make it through the Python component.
    let resp = request(
        Method::POST,
        &gw.url("/py/post"),
        &[("Content-Type", "application/json"), ("X-Test", "t-1")],
        r#"{"n":1}"#,
    )
    .await;
    assert_complete_json(&resp, CACHE_TTL);
    let echo = resp.json();
    assert_eq!(echo["method"], json!("POST"));
    assert_eq!(echo["body"], json!(r#"{"n":1}"#));
    assert_eq!(echo["x_test"], json!("t-1"));
    assert_eq!(real.last().body_text(), r#"{"n":1}"#);

    // Behind no-op, the backend's own headers come back through the component.
    let resp = get(&gw.url("/py/raw-forward")).await;
    assert_status(&resp, 200);
    assert_eq!(resp.header("x-origin"), Some("yes"));
    assert_eq!(resp.json()["path"], json!("/raw/forward"));

    // A host outside allowed_hosts: a 500, and nothing leaves the gateway.
    let resp = assert_refused(&gw.url("/py/refused"), &real).await;
    assert!(resp.text().contains("allowed_hosts"), "{}", resp.text());

    // And the component is still healthy.
    let resp = get(&gw.url("/py/items/8")).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(resp.json()["path"], json!("/items/8"));
    let resp = get(&gw.url("/py/greet")).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(resp.json()["message"], json!("hello from python"));

    // The refusal reached the component as an error code it answered with: no trap, no
    // instance thrown away.
    let stats = wasm_host().stats()["py-hello"];
    assert_eq!(stats.hosts_refused, 1, "{stats:?}");
    assert_eq!(
        (stats.traps, stats.instances_discarded),
        (0, 0),
        "{stats:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The Python SDK's examples (fast Sluice world).

/// Builds `py-hmac-signer` and `py-header-rewrite` once for this binary
/// (`plugins/sdk-python/build.sh`) and returns a registry holding them plus the compiled-in
/// plugins (`native/hmac-signer`, the Rust example's twin, to compare with).
///
/// # Panics
/// If the script fails (with its output) or a component does not load.
fn sdk_registry() -> Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            run_build_script(
                "sdk-python",
                "the Python plugins need python3 with pip and componentize-py from PyPI (the \
                 script installs it)",
            );
            let mut registry = Registry::new();
            for name in ["py-hmac-signer", "py-header-rewrite"] {
                let file = plugins_dir().join(format!("dist/{name}.wasm"));
                let (loaded, plugin) = wasm_host()
                    .load_file(&file)
                    .unwrap_or_else(|e| panic!("{name} does not load: {e:?}"));
                assert_eq!(loaded, name);
                assert_eq!(
                    plugin.kind(),
                    "component of world sluice:plugin/http-client@0.2",
                    "{name} must be a Sluice-world component, not wasi:http"
                );
                registry
                    .register(loaded, plugin)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            sluice_builtin_plugins::register_all(&mut registry).unwrap_or_else(|e| panic!("{e}"));
            registry
        })
        .clone()
}

/// `py-hmac-signer` signs as `hmac-signer` does: the origin verifies the signature (a 401
/// without one, or with the wrong secret), for a GET with a query and a POST with a body, and the
/// headers the backend receives are the same as from the Rust example's compiled-in twin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_hmac_signer_is_verified_by_the_backend_like_the_rust_one() {
    let settings = json!({"secret": super::plugins::HMAC_SECRET, "key_id": "gw-1"});
    let renamed = json!({
        "secret": super::plugins::HMAC_SECRET,
        "key_id": "gw-2",
        "headers": {"signature": "X-Sig", "key_id": "X-Who"}
    });
    let mut signed_headers = Vec::new();
    for name in ["py-hmac-signer", "native/hmac-signer"] {
        let real = super::plugins::origin().await;
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
                    "/wrong/{id}",
                    json!([backend(
                        &real.url(),
                        "/signed/{id}",
                        with_plugin(name, json!({"secret": "not-the-secret"}))
                    )]),
                    Value::Null
                ),
                // The echo route: what arrives, with the header names renamed.
                endpoint(
                    "/renamed",
                    json!([backend(
                        &real.url(),
                        "/echo",
                        with_plugin(name, renamed.clone())
                    )]),
                    Value::Null
                )
            ])),
            sdk_registry(),
        )
        .await;

        let resp = get(&gw.url("/signed/1?x=1&ignored=1")).await;
        assert_complete_json(&resp, CACHE_TTL);
        assert_json(&resp, &json!({"verified": true, "key_id": "gw-1"}));
        let got = real.last();
        assert_eq!(got.path, "/signed/1", "{name}");
        assert_eq!(got.query.as_deref(), Some("fixed=yes&x=1"), "{name}");
        assert_eq!(got.header("x-key-id"), Some("gw-1"), "{name}");
        let signature = got.header("x-signature").unwrap_or_default();
        assert!(
            signature.len() == 64
                && signature
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
            "{name}: {signature:?}"
        );
        let mut names: Vec<String> = got
            .headers
            .keys()
            .map(|n| n.as_str().to_owned())
            .filter(|n| n.starts_with("x-"))
            .collect();
        names.sort();
        signed_headers.push(names);

        let resp = request(
            Method::POST,
            &gw.url("/post/2"),
            &[("Content-Type", "application/json")],
            r#"{"hello":"world"}"#,
        )
        .await;
        assert_complete_json(&resp, CACHE_TTL);
        assert_json(&resp, &json!({"verified": true, "key_id": "gw-1"}));
        assert_eq!(real.last().body_text(), r#"{"hello":"world"}"#, "{name}");

        // The control: the origin really checks.
        let resp = get(&gw.url("/wrong/4")).await;
        assert_status(&resp, 500);
        assert_eq!(real.last().path, "/signed/4", "{name}");

        // Renamed headers: the signature and key id under the new names, the timestamp under
        // the default one, and no default-named signature.
        let resp = get(&gw.url("/renamed")).await;
        assert_status(&resp, 200);
        let got = real.last();
        assert_eq!(got.header("x-who"), Some("gw-2"), "{name}");
        assert_eq!(got.header("x-sig").map(str::len), Some(64), "{name}");
        assert!(got.header("x-signature-timestamp").is_some(), "{name}");
        assert_eq!(got.header("x-signature"), None, "{name}");
        assert_eq!(got.header("x-key-id"), None, "{name}");
        assert_eq!(real.count(), 4, "{name}");
    }
    assert_eq!(
        signed_headers[0], signed_headers[1],
        "py-hmac-signer and the Rust hmac-signer send different headers"
    );
    assert_eq!(
        signed_headers[0],
        [
            "x-forwarded-for",
            "x-forwarded-host",
            "x-key-id",
            "x-signature",
            "x-signature-timestamp"
        ]
    );
}

/// Settings the Rust examples (`plugins/hmac-signer`, `plugins/header-rewrite`) refuse, the
/// Python ones refuse too, with the same message, and the gateway does not start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_examples_reject_bad_settings_like_the_rust_ones() {
    let cases = [
        (
            "py-hmac-signer",
            json!({"key_id": "k"}),
            r#"hmac-signer: settings need a non-empty "secret""#,
        ),
        (
            "py-hmac-signer",
            json!({"secret": "s", "colour": "red"}),
            "unknown field `colour`",
        ),
        (
            "py-header-rewrite",
            json!({"request": {"set": {"X-A": 1}}}),
            "header-rewrite: request.set.X-A must be a string",
        ),
        (
            "py-header-rewrite",
            json!({"response": {"drop": ["x"]}}),
            "unknown field `drop`",
        ),
    ];
    for (name, settings, expected) in cases {
        let message = super::plugins::start_error(
            service(json!([endpoint(
                "/x",
                json!([backend(NOWHERE, "/x", with_plugin(name, settings.clone()))]),
                Value::Null
            )])),
            sdk_registry(),
        )
        .await;
        assert!(
            message.contains(expected),
            "{name} {settings}: {message:?} does not say {expected:?}"
        );
    }
}

/// `py-header-rewrite` as `header-rewrite`: removes then sets request headers (the backend
/// receives the result), and changes the answer's headers only when a `response` part is given
/// (without it, the backend's headers come back untouched).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_header_rewrite_rewrites_both_ways() {
    let real = origin().await;
    let both = json!({
        "request": {"set": {"X-Api-Key": "k-1", "X-Test": "overridden"}, "remove": ["X-Drop"]},
        "response": {"set": {"X-Served-By": "sluice"}, "remove": ["X-Origin"]}
    });
    let request_only = json!({"request": {"set": {"X-Api-Key": "k-2"}}});
    let headers =
        json!({"input_headers": ["X-Test", "X-Drop", "X-Keep"], "output_encoding": "no-op"});
    let gw = start_gateway_with_registry(
        service(json!([
            endpoint(
                "/both",
                json!([backend(
                    &real.url(),
                    "/both",
                    and_no_op(with_plugin("py-header-rewrite", both))
                )]),
                headers.clone()
            ),
            endpoint(
                "/request-only",
                json!([backend(
                    &real.url(),
                    "/request-only",
                    and_no_op(with_plugin("py-header-rewrite", request_only))
                )]),
                headers.clone()
            ),
            endpoint(
                "/json",
                json!([backend(
                    &real.url(),
                    "/json",
                    with_plugin("py-header-rewrite", json!({}))
                )]),
                Value::Null
            )
        ])),
        sdk_registry(),
    )
    .await;

    let sent = [("X-Test", "t-1"), ("X-Drop", "gone"), ("X-Keep", "kept")];
    let resp = request(Method::GET, &gw.url("/both"), &sent, "").await;
    assert_status(&resp, 200);
    let got = real.last();
    assert_eq!(got.path, "/both");
    assert_eq!(got.header("x-api-key"), Some("k-1"));
    assert_eq!(got.header_all("x-test"), ["overridden"]);
    assert_eq!(got.header("x-drop"), None);
    assert_eq!(got.header("x-keep"), Some("kept"));
    // on-response ran: the origin's X-Origin removed, X-Served-By added; the body untouched.
    assert_eq!(resp.header("x-served-by"), Some("sluice"));
    assert_eq!(resp.header("x-origin"), None);
    assert_eq!(resp.json()["x_test"], json!("overridden"));

    let resp = request(Method::GET, &gw.url("/request-only"), &sent, "").await;
    assert_status(&resp, 200);
    let got = real.last();
    assert_eq!(got.path, "/request-only");
    assert_eq!(got.header("x-api-key"), Some("k-2"));
    assert_eq!(got.header("x-test"), Some("t-1"));
    assert_eq!(got.header("x-drop"), Some("gone"));
    // No response part: the answer comes back as the backend sent it.
    assert_eq!(resp.header("x-origin"), Some("yes"));
    assert_eq!(resp.header("x-served-by"), None);

    // Empty settings change nothing; the JSON pipeline works behind it.
    let resp = get(&gw.url("/json")).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(resp.json()["path"], json!("/json"));
    assert_eq!(real.count(), 3);

    // Hooks only: on-request and on-response ran on instances that never trapped.
    let stats = wasm_host().stats()["py-header-rewrite"];
    assert_eq!(
        (stats.traps, stats.instances_discarded),
        (0, 0),
        "{stats:?}"
    );
}
