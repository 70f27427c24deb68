//! A plugin of the fast Sluice world written in C, end to end: `c-stamp` (`plugins/c-stamp`),
//! built from source with `wit-bindgen c`, clang for wasm32-wasi and `component new`, loaded
//! by the gateway like any component and called through a real gateway with a real backend on
//! 127.0.0.1.
//!
//! The component is built once per test binary by `plugins/c-stamp/build.sh`. A machine without
//! the toolchain (clang with wasi-libc, wit-bindgen-cli; `.ci/run` installs them) fails these
//! tests with the script's message: they are never skipped.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::plugins::with_plugin;
use serde_json::{Value, json};
use sluice_integration::backend::{Backend, Received, Reply};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::plugins::{run_build_script, wasm_host};
use sluice_integration::*;
use sluice_plugin::Registry;

/// Nothing listens there: a plugin that called its backend would fail.
const NOWHERE: &str = "http://127.0.0.1:19";

/// Builds `c-stamp` once for this binary and returns its file.
///
/// # Panics
/// If the script fails (a tool missing, a build error), with its output.
fn c_stamp() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        run_build_script(
            "c-stamp",
            "the C plugin needs clang with wasi-libc and wit-bindgen-cli 0.57 (see the script)",
        )
        .join("c-stamp.wasm")
    })
}

/// `c-stamp`, loaded as `sluice run` loads files.
fn registry() -> Registry {
    let (name, plugin) = wasm_host()
        .load_file(c_stamp())
        .unwrap_or_else(|e| panic!("c-stamp.wasm does not load: {e:?}"));
    assert_eq!(name, "c-stamp");
    assert_eq!(
        plugin.kind(),
        "component of world sluice:plugin/http-client@0.2"
    );
    let mut registry = Registry::new();
    registry.register(name, plugin).unwrap();
    registry
}

/// An origin that answers with the request's path and its `x-stamped-by` values.
async fn origin() -> Backend {
    Backend::start_sync(|req: &Received| {
        Reply::json(
            200,
            &json!({"path": req.path, "stamped_by": req.header_all("x-stamped-by")}),
        )
    })
    .await
}

/// The request reaches the backend with the header the C code appended after the gateway's
/// own, once, on every request (the instance is reused); the client's headers pass through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_stamp_adds_its_header_to_the_backend_request() {
    let real = origin().await;
    let gw = start_gateway_with_registry(
        service(json!([endpoint(
            "/stamped/{id}",
            json!([backend(
                &real.url(),
                "/data/{id}",
                with_plugin("c-stamp", json!({}))
            )]),
            json!({"input_headers": ["X-Client"]})
        )])),
        registry(),
    )
    .await;
    for id in 1..=3 {
        let resp = request(
            http::Method::GET,
            &gw.url(&format!("/stamped/{id}")),
            &[("X-Client", "c")],
            "",
        )
        .await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_json(
            &resp,
            &json!({"path": format!("/data/{id}"), "stamped_by": ["c-stamp"]}),
        );
        assert_eq!(real.last().header("x-client"), Some("c"));
    }
}

/// Settings the C code refuses stop start-up with its message and the block's JSON path.
#[tokio::test]
async fn c_stamp_refuses_settings() {
    let config = service(json!([endpoint(
        "/p",
        json!([backend(
            NOWHERE,
            "/p",
            with_plugin("c-stamp", json!({"header": "X-Other"}))
        )]),
        Value::Null
    )]));
    let error = match try_start_gateway(config, registry()).await {
        Ok(gw) => panic!("the gateway started on {} but must not", gw.addr),
        Err(StartFailure::Start(e)) => e.to_string(),
        Err(e @ StartFailure::Config(_)) => panic!("expected a start-up error, got {e}"),
    };
    assert!(
        error.contains("c-stamp takes no settings: expected {}"),
        "{error}"
    );
    assert!(error.contains("endpoints[0].backend[0]"), "{error}");
}
