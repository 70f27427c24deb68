//! The any-language claim, end to end: `py-hello`, a `wasi:http/proxy` component written in
//! Python (`plugins/py-hello`, built with componentize-py), loaded by the gateway like any other
//! plugin and called through a real gateway with a real backend on 127.0.0.1.
//!
//! The component is built once per test binary by `plugins/py-hello/build.sh`, which installs
//! its pinned componentize-py with pip when it is missing. A machine that cannot install it (no
//! PyPI) fails these tests with the script's message: they are never skipped.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use http::Method;
use serde_json::{Value, json};
use sluice_integration::backend::{Backend, Received, Reply};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::plugins::{plugins_dir, wasm_host};
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
        let dir = plugins_dir().join("py-hello");
        let out = Command::new("bash")
            .arg(dir.join("build.sh"))
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| panic!("cannot run plugins/py-hello/build.sh: {e}"));
        assert!(
            out.status.success(),
            "plugins/py-hello/build.sh failed ({}); the Python plugin needs python3 with pip and \
             componentize-py from PyPI (the script installs it):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let file = plugins_dir().join("dist/py-hello.wasm");
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
    let before = real.count();
    let resp = get(&gw.url("/py/refused")).await;
    assert_status(&resp, 500);
    assert_completed(&resp, false);
    assert!(resp.text().contains("allowed_hosts"), "{}", resp.text());
    assert_eq!(
        real.count(),
        before,
        "a host outside allowed_hosts was called"
    );

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
