//! Spec §1 and §3 A (cases 1-14): HTTP client plugins end to end, through the real gateway.
//!
//! The example components of `plugins/` are built once for this binary (`plugins/build.sh`) and
//! loaded with `WasmHost::load_folder`; the compiled-in twins (`native/<name>`) are registered
//! beside them, as `sluice run` does. Every backend is a real HTTP server on 127.0.0.1.
//!
//! Where Sluice departs from KrakenD on purpose (see "How Sluice reads this document"):
//! unknown names, non-string names and rejected settings stop start-up (cases 10-12), and a
//! plugin that ignores the deadline is cut at it (case 13).
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::Method;
use serde_json::{Value, json};
use sluice_integration::backend::{Backend, Received, Reply};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::plugins::registry;
use sluice_integration::*;
use sluice_plugin::{
    BackendRequest, BackendResponse, BoxFuture, CallContext, ClientPlugin, ExecError, Executor,
    PluginContext, Registry, SharedExecutor, full,
};

const CACHE_TTL: u64 = 3600;

/// The secret the origin verifies `hmac-signer` signatures with.
pub(super) const HMAC_SECRET: &str = "s3cr3t";

/// Nothing listens there: a plugin that called its backend would fail.
const NOWHERE: &str = "http://127.0.0.1:19";

// ---------------------------------------------------------------------------------------------
// Config and gateway helpers.

/// The `plugin/http-client` object: `{"name": name, name: settings, ...siblings}` (no settings
/// key when `settings` is null).
fn plugin_block(name: &str, settings: Value, siblings: Value) -> Value {
    let mut block = json!({ "name": name });
    if !settings.is_null() {
        block[name] = settings;
    }
    if let Value::Object(map) = siblings {
        for (k, v) in map {
            block[k] = v;
        }
    }
    block
}

/// A backend object's extra keys naming a plugin (to merge with [`backend`]).
pub(super) fn with_plugin(name: &str, settings: Value) -> Value {
    json!({"extra_config": {"plugin/http-client": plugin_block(name, settings, Value::Null)}})
}

/// Like [`with_plugin`] with sibling keys of `name` (limits such as `allowed_hosts`).
fn with_plugin_and(name: &str, settings: Value, siblings: Value) -> Value {
    json!({"extra_config": {"plugin/http-client": plugin_block(name, settings, siblings)}})
}

/// Adds `key: value` to a backend's extra keys.
fn and(mut extra: Value, key: &str, value: Value) -> Value {
    extra[key] = value;
    extra
}

/// The service without `router.return_error_msg`.
fn service_without_error_msg(endpoints: Value) -> Value {
    let mut cfg = service(endpoints);
    cfg["extra_config"]["router"]["return_error_msg"] = json!(false);
    cfg
}

/// Starts a gateway with every example plugin (wasm and native) available.
async fn gateway(config: Value) -> Gateway {
    start_gateway_with_registry(config, registry()).await
}

/// The start-up error text of a config the gateway must refuse.
pub(super) async fn start_error(config: Value, registry: Registry) -> String {
    match try_start_gateway(config, registry).await {
        Ok(gw) => panic!("the gateway started on {} but must not", gw.addr),
        Err(StartFailure::Start(e)) => e.to_string(),
        Err(e @ StartFailure::Config(_)) => panic!("expected a start-up error, got {e}"),
    }
}

#[track_caller]
fn assert_within(started: Instant, limit: Duration) {
    let elapsed = started.elapsed();
    assert!(
        elapsed < limit,
        "took {elapsed:?}, expected under {limit:?}"
    );
}

#[track_caller]
fn assert_error_text(resp: &Response, status: u16, contains: &str) {
    assert_status(resp, status);
    assert!(
        resp.text().contains(contains),
        "body {:?} should contain {contains:?}",
        resp.text()
    );
    assert_completed(resp, false);
    assert_no_cache_control(resp);
}

// ---------------------------------------------------------------------------------------------
// The origin: a real backend the plugins (or the gateway) call.

/// An HTTP backend on 127.0.0.1 recording every request:
/// - `/__debug/*`: `{"message":"pong"}` (KrakenD's debug endpoint);
/// - `/a`: `{"x":1}`; `/b`: `{"y":2}`; `/broken`: 500 `{"error":"boom"}`;
/// - `/signed/*`: verifies the `hmac-signer` headers with [`HMAC_SECRET`]: 200
///   `{"verified":true,"key_id":..}`, or 401 `{"verified":false,"reason":..}`;
/// - `/hang`: never answers;
/// - anything else: echoes `{"method","path","query","headers":{lower-case name: value},"body"}`.
pub(super) async fn origin() -> Backend {
    Backend::start(|req: Received| async move {
        if req.path == "/hang" {
            std::future::pending::<()>().await;
        }
        route(&req)
    })
    .await
}

fn route(req: &Received) -> Reply {
    let path = req.path.as_str();
    if path.starts_with("/__debug/") {
        return Reply::json(200, &json!({"message": "pong"}));
    }
    match path {
        "/a" => return Reply::json(200, &json!({"x": 1})),
        "/b" => return Reply::json(200, &json!({"y": 2})),
        "/broken" => return Reply::json(500, &json!({"error": "boom"})),
        _ => {}
    }
    if path.starts_with("/signed/") {
        return match verify_signature(req) {
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
        .map(|name| {
            (
                name.as_str().to_owned(),
                Value::String(req.header_all(name.as_str()).join(", ")),
            )
        })
        .collect();
    Reply::json(
        200,
        &json!({
            "method": req.method.as_str(),
            "path": req.path,
            "query": req.query,
            "headers": headers,
            "body": req.body_text(),
        }),
    )
}

/// The backend's side of `hmac-signer` (plugins/hmac-signer/src/sign.rs), with
/// [`HMAC_SECRET`]; the signature in `X-Signature`.
pub(super) fn verify_signature(req: &Received) -> Result<(), String> {
    let signature = req.header("x-signature").ok_or("no X-Signature")?;
    let expected = expected_signature(req, HMAC_SECRET)?;
    if signature == expected {
        Ok(())
    } else {
        Err(format!("signature {signature}, expected {expected}"))
    }
}

/// The signature `hmac-signer` (and its Python and JavaScript twins) must send for `req`,
/// computed independently with the `hmac` crate:
/// `hex(hmac_sha256(secret, METHOD \n PATH?QUERY \n TIMESTAMP \n hex(sha256(body))))`, the
/// timestamp read from `X-Signature-Timestamp`, which must be within 5 minutes of now.
pub(super) fn expected_signature(req: &Received, secret: &str) -> Result<String, String> {
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    let timestamp = req
        .header("x-signature-timestamp")
        .ok_or("no X-Signature-Timestamp")?;
    let ts: u64 = timestamp
        .parse()
        .map_err(|_| format!("bad timestamp {timestamp:?}"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now.abs_diff(ts) > 300 {
        return Err(format!("timestamp {ts} is not within 5 minutes of {now}"));
    }
    let target = match &req.query {
        Some(q) => format!("{}?{q}", req.path),
        None => req.path.clone(),
    };
    let to_sign = format!(
        "{}\n{target}\n{timestamp}\n{}",
        req.method,
        hex::encode(Sha256::digest(&req.body))
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|e| e.to_string())?;
    mac.update(to_sign.as_bytes());
    Ok(hex::encode(mac.finalize().into_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Plugins defined here (compiled-in, registered like the builtin ones).

/// Records every request it is handed and answers `200 {"recorded": n}`: what a client plugin
/// sees, exactly.
#[derive(Debug, Default)]
struct Recorder {
    seen: Mutex<Vec<BackendRequest>>,
}

#[derive(Debug)]
struct RecorderPlugin(Arc<Recorder>);

impl ClientPlugin for RecorderPlugin {
    fn origin(&self) -> String {
        "test".to_owned()
    }
    fn build(&self, _ctx: PluginContext<'_>) -> Result<SharedExecutor, String> {
        Ok(Arc::new(RecorderExecutor(Arc::clone(&self.0))))
    }
}

#[derive(Debug)]
struct RecorderExecutor(Arc<Recorder>);

impl Executor for RecorderExecutor {
    fn execute<'a>(
        &'a self,
        request: BackendRequest,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        let n = {
            let mut seen = self.0.seen.lock().unwrap();
            seen.push(request);
            seen.len()
        };
        Box::pin(async move {
            let mut response = BackendResponse::new(full(json!({ "recorded": n }).to_string()));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            Ok(response)
        })
    }
}

/// Calls the backend through its outbound client and answers with every header name of the
/// backend's answer: the gateway builds only a decoded answer's content headers for itself,
/// never for a plugin, which may read any.
#[derive(Debug)]
struct HeaderNames;

impl ClientPlugin for HeaderNames {
    fn origin(&self) -> String {
        "test".to_owned()
    }
    fn build(&self, ctx: PluginContext<'_>) -> Result<SharedExecutor, String> {
        Ok(Arc::new(HeaderNamesExecutor(ctx.client)))
    }
}

#[derive(Debug)]
struct HeaderNamesExecutor(Arc<sluice_plugin::OutboundClient>);

impl Executor for HeaderNamesExecutor {
    fn execute<'a>(
        &'a self,
        request: BackendRequest,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        Box::pin(async move {
            let answer = self.0.execute(request, ctx).await?;
            let mut names: Vec<&str> = answer.headers().keys().map(|n| n.as_str()).collect();
            names.sort_unstable();
            let mut response = BackendResponse::new(full(json!({ "names": names }).to_string()));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            Ok(response)
        })
    }
}

/// Ignores the deadline: waits `delay` whatever the context says, then answers `200 {}`
/// (spec case 13's Go plugin that never looks at `ctx`). `/fine` answers at once.
#[derive(Debug)]
struct Sleeper {
    delay: Duration,
}

impl ClientPlugin for Sleeper {
    fn origin(&self) -> String {
        "test".to_owned()
    }
    fn build(&self, _ctx: PluginContext<'_>) -> Result<SharedExecutor, String> {
        Ok(Arc::new(SleeperExecutor { delay: self.delay }))
    }
}

#[derive(Debug)]
struct SleeperExecutor {
    delay: Duration,
}

impl Executor for SleeperExecutor {
    fn execute<'a>(
        &'a self,
        request: BackendRequest,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        Box::pin(async move {
            if request.url.path() != "/fine" {
                tokio::time::sleep(self.delay).await;
            }
            let mut response = BackendResponse::new(full("{\"slept\":true}"));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            Ok(response)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// §3 A, cases 1-14.

/// Case 1: the plugin replaces the client. A request on the plugin's own path is answered by it
/// and the real backend (reachable, recording) never sees a thing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_01_client_example_replaces_the_client() {
    for name in ["client-example", "native/client-example"] {
        let real = origin().await;
        let gw = gateway(service(json!([endpoint(
            "/hello",
            json!([backend(
                &real.url(),
                "/path",
                with_plugin(name, json!({"path": "/path"}))
            )]),
            Value::Null
        )])))
        .await;

        let resp = get(&gw.url("/hello")).await;

        assert_complete_json(&resp, CACHE_TTL);
        assert_json(&resp, &json!({"message": "/path"}));
        assert_eq!(real.count(), 0, "{name}: the real backend was called");
    }
}

/// Case 2: the docs example passes other paths through to the real backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_02_client_example_passes_other_paths_through() {
    for name in ["client-example", "native/client-example"] {
        let real = origin().await;
        let gw = gateway(service(json!([endpoint(
            "/test/{id}",
            json!([backend(
                &real.url(),
                "/__debug/{id}",
                with_plugin(name, json!({"path": "/__debug/hijack-me"}))
            )]),
            Value::Null
        )])))
        .await;

        let resp = get(&gw.url("/test/normal")).await;

        assert_complete_json(&resp, CACHE_TTL);
        assert_json(&resp, &json!({"message": "pong"}));
        assert_eq!(real.count(), 1, "{name}");
        let seen = real.last();
        assert_eq!(seen.path, "/__debug/normal", "{name}");
        assert_eq!(seen.method, Method::GET, "{name}");
        assert_eq!(seen.header("user-agent"), Some(SLUICE_VERSION), "{name}");
    }
}

/// Case 3: the docs example answers its own path without contacting the backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_03_client_example_hijacks_its_path() {
    for name in ["client-example", "native/client-example"] {
        let real = origin().await;
        let gw = gateway(service(json!([endpoint(
            "/test/{id}",
            json!([backend(
                &real.url(),
                "/__debug/{id}",
                with_plugin(name, json!({"path": "/__debug/hijack-me"}))
            )]),
            Value::Null
        )])))
        .await;

        let resp = get(&gw.url("/test/hijack-me")).await;

        assert_complete_json(&resp, CACHE_TTL);
        assert_json(&resp, &json!({"message": "/__debug/hijack-me"}));
        assert_eq!(real.count(), 0, "{name}: the backend was contacted");
        // And the same gateway still passes the other paths through.
        assert_json(
            &get(&gw.url("/test/other")).await,
            &json!({"message": "pong"}),
        );
        assert_eq!(real.count(), 1, "{name}");
    }
}

/// A plain-text body like the Lura example's `Hello, "/hello"`, from `static-answer`.
const HELLO: &str = "Hello, \"/hello\"";

/// Case 4: a plain-text plugin answer behind the default `json` encoding is a decode error:
/// 500, Completed false, the decoder's message only with `return_error_msg`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_04_plain_text_with_json_encoding_is_a_500() {
    for name in ["static-answer", "native/static-answer"] {
        let endpoints = json!([endpoint(
            "/hello",
            json!([backend(
                NOWHERE,
                "/hello",
                with_plugin(name, json!({"body": HELLO}))
            )]),
            Value::Null
        )]);

        let gw = gateway(service(endpoints.clone())).await;
        let resp = get(&gw.url("/hello")).await;
        assert_error_text(&resp, 500, "invalid JSON");
        assert_content_type(&resp, TEXT_UTF8);

        let gw = gateway(service_without_error_msg(endpoints)).await;
        let resp = get(&gw.url("/hello")).await;
        assert_status(&resp, 500);
        assert_eq!(
            resp.text(),
            "",
            "{name}: no message without return_error_msg"
        );
        assert_completed(&resp, false);
    }
}

/// Case 5: the same answer with `encoding: string` is `{"content": <text>}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_05_plain_text_with_string_encoding() {
    for name in ["static-answer", "native/static-answer"] {
        let gw = gateway(service(json!([endpoint(
            "/hello",
            json!([backend(
                NOWHERE,
                "/hello",
                and(
                    with_plugin(name, json!({"body": HELLO})),
                    "encoding",
                    json!("string")
                )
            )]),
            Value::Null
        )])))
        .await;

        let resp = get(&gw.url("/hello")).await;

        assert_complete_json(&resp, CACHE_TTL);
        assert_json(&resp, &json!({"content": HELLO}));
    }
}

/// Case 6: a plugin's 404 goes through the default status handler: 500 and
/// `invalid status code 404 [GET /unknown]: ` with an empty URL (the answer has no request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_06_plugin_404_is_an_invalid_status_with_an_empty_url() {
    for name in ["static-answer", "native/static-answer"] {
        let gw = gateway(service(json!([endpoint(
            "/x",
            json!([backend(
                NOWHERE,
                "/unknown",
                with_plugin(
                    name,
                    json!({"status": 404, "headers": {"Content-Type": "text/plain"}, "body": "404 page not found"})
                )
            )]),
            Value::Null
        )])))
        .await;

        let resp = get(&gw.url("/x")).await;

        assert_status(&resp, 500);
        assert_eq!(
            resp.text(),
            "invalid status code 404 [GET /unknown]: ",
            "{name}"
        );
        assert_content_type(&resp, TEXT_UTF8);
        assert_completed(&resp, false);
        assert_no_cache_control(&resp);
    }
}

/// Case 7: 201 is accepted like 200, and the status is not propagated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_07_plugin_201_is_accepted_like_200() {
    for name in ["static-answer", "native/static-answer"] {
        let gw = gateway(service(json!([endpoint(
            "/created",
            json!([backend(
                NOWHERE,
                "/created",
                with_plugin(name, json!({"status": 201, "body": {"id": 1}}))
            )]),
            Value::Null
        )])))
        .await;

        let resp = get(&gw.url("/created")).await;

        assert_complete_json(&resp, CACHE_TTL);
        assert_json(&resp, &json!({"id": 1}));
    }
}

/// Case 8: with `return_error_code`, the plugin's 429, body and Content-Type reach the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_08_plugin_429_with_return_error_code() {
    for name in ["static-answer", "native/static-answer"] {
        let mut extra = with_plugin(
            name,
            json!({"status": 429, "headers": {"Content-Type": "text/plain"}, "body": "slow down"}),
        );
        extra["extra_config"]["backend/http"] = json!({"return_error_code": true});
        let gw = gateway(service(json!([endpoint(
            "/limited",
            json!([backend(NOWHERE, "/limited", extra)]),
            Value::Null
        )])))
        .await;

        let resp = get(&gw.url("/limited")).await;

        assert_status(&resp, 429);
        assert_eq!(resp.text(), "slow down", "{name}");
        assert_content_type(&resp, "text/plain");
        assert_completed(&resp, false);
    }
}

/// Case 9: behind `no-op`, the plugin's status, headers and body go to the client verbatim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_09_plugin_behind_no_op() {
    for name in ["static-answer", "native/static-answer"] {
        let gw = gateway(service(json!([endpoint(
            "/raw",
            json!([backend(
                NOWHERE,
                "/raw",
                and(
                    with_plugin(
                        name,
                        json!({"status": 418, "headers": {"X-A": "1"}, "body": "raw"})
                    ),
                    "encoding",
                    json!("no-op")
                )
            )]),
            json!({"output_encoding": "no-op"})
        )])))
        .await;

        let resp = get(&gw.url("/raw")).await;

        assert_status(&resp, 418);
        assert_eq!(resp.header_all("x-a"), ["1"], "{name}");
        assert_eq!(resp.text(), "raw", "{name}");
        assert_completed(&resp, false);
        assert_no_cache_control(&resp);
    }
}

/// Case 10 (departure: KrakenD falls back to the real host): an unknown name stops start-up,
/// naming the file, the backend's JSON path and the plugins that are available.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_10_unknown_plugin_name_stops_start_up() {
    let real = origin().await;
    let config = service(json!([
        endpoint(
            "/fine",
            json!([backend(&real.url(), "/__debug/fine", Value::Null)]),
            Value::Null
        ),
        endpoint(
            "/typo",
            json!([backend(
                &real.url(),
                "/__debug/typo",
                with_plugin("typo", Value::Null)
            )]),
            Value::Null
        )
    ]));
    // The config itself is valid: the name is only checked against the registry.
    parse_config(&config).expect("a valid config");

    let error = start_error(config.clone(), registry()).await;

    assert!(error.contains("test.json"), "names the file: {error}");
    assert!(
        error.contains("endpoints[1].backend[0]"),
        "names the backend's JSON path: {error}"
    );
    assert!(
        error.contains("\"typo\""),
        "names the unknown plugin: {error}"
    );
    for available in [
        "client-example",
        "fault",
        "wasi-passthrough",
        "native/hmac-signer",
    ] {
        assert!(error.contains(available), "lists {available}: {error}");
    }
    assert_eq!(real.count(), 0);

    // With no plugin at all, it says so.
    let error = start_error(config, Registry::new()).await;
    assert!(
        error.contains("\"typo\"") && error.contains("none"),
        "{error}"
    );
}

/// Case 11 (departure: KrakenD falls back): a `name` that is neither a string nor a list of
/// them is a config error naming its path. (A list is a chain of plugins: see `chains.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_11_plugin_name_of_the_wrong_type_is_a_config_error() {
    let config = service(json!([endpoint(
        "/list",
        json!([backend(
            NOWHERE,
            "/list",
            json!({"extra_config": {"plugin/http-client": {"name": 7}}})
        )]),
        Value::Null
    )]));

    let error = parse_config(&config).expect_err("rejected").to_string();

    assert!(error.contains("test.json"), "{error}");
    assert!(
        error.contains("endpoints[0].backend[0]") && error.contains("name"),
        "names the path of `name`: {error}"
    );
    assert!(
        error.contains("string"),
        "says a string is expected: {error}"
    );
    // The gateway does not start with it either.
    let failure = try_start_gateway(config, registry()).await.err();
    assert!(
        matches!(failure, Some(StartFailure::Config(_))),
        "{failure:?}"
    );
}

/// Case 12 (departure: KrakenD falls back): a plugin rejecting its settings stops start-up with
/// its own message and the backend's JSON path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_12_rejected_settings_stop_start_up() {
    for (name, settings, message) in [
        ("fault", json!({"reject": "wrong config"}), "wrong config"),
        ("client-example", Value::Null, "missing settings \"path\""),
        ("native/client-example", Value::Null, "settings"),
        ("hmac-signer", json!({"key_id": "k"}), "secret"),
        ("native/hmac-signer", json!({"key_id": "k"}), "secret"),
        ("static-answer", json!({"status": 7}), "not an HTTP status"),
        ("fan-out", json!({"urls": ["http://x/"]}), "exactly two"),
    ] {
        let config = service(json!([
            endpoint(
                "/ok",
                json!([backend(
                    NOWHERE,
                    "/ok",
                    with_plugin("static-answer", json!({}))
                )]),
                Value::Null
            ),
            endpoint(
                "/p",
                json!([
                    backend(NOWHERE, "/q", Value::Null),
                    backend(NOWHERE, "/p", with_plugin(name, settings))
                ]),
                Value::Null
            )
        ]));

        let error = start_error(config, registry()).await;

        assert!(
            error.contains(message),
            "{name}: the plugin's message: {error}"
        );
        assert!(
            error.contains("endpoints[1].backend[1]"),
            "{name}: the JSON path: {error}"
        );
        assert!(error.contains(name), "{name}: the plugin's name: {error}");
        assert!(error.contains("test.json"), "{name}: the file: {error}");
    }
}

/// The fault plugin behind `/fault/{what}` -> `/f/{what}` on `origin`, one instance at most
/// (so a healthy answer after a fault proves the broken instance was replaced).
async fn fault_gateway(origin: &Backend, timeout: &str, siblings: Value) -> Gateway {
    let mut limits = json!({"max_instances": 1});
    if let Value::Object(map) = siblings {
        for (k, v) in map {
            limits[k] = v;
        }
    }
    gateway(service(json!([endpoint(
        "/fault/{what}",
        json!([backend(
            &origin.url(),
            "/f/{what}",
            with_plugin_and(
                "fault",
                json!({"hang_url": format!("{}/hang", origin.url())}),
                limits
            )
        )]),
        json!({"timeout": timeout})
    )])))
    .await
}

/// A healthy request through the fault plugin; returns how many requests the instance that
/// served it has served (1 = a fresh instance).
async fn assert_fault_healthy(gw: &Gateway) -> u64 {
    let resp = get(&gw.url("/fault/fine")).await;
    assert_complete_json(&resp, CACHE_TTL);
    let body = resp.json();
    assert_eq!(body["ok"], json!(true), "{body}");
    assert_eq!(body["path"], json!("/f/fine"), "{body}");
    body["served"].as_u64().unwrap()
}

/// Case 13 (departure: KrakenD waits for the plugin): a component spinning forever is cut at
/// the endpoint timeout: 500 `context deadline exceeded`, Completed false; the next request to
/// the same backend is served by a fresh instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_13_plugin_ignoring_the_deadline_is_cut_at_it() {
    let real = origin().await;
    let gw = fault_gateway(&real, "300ms", Value::Null).await;

    let started = Instant::now();
    let resp = get(&gw.url("/fault/loop")).await;
    let elapsed = started.elapsed();

    assert_error_text(&resp, 500, "context deadline exceeded");
    assert_eq!(resp.text(), "context deadline exceeded");
    assert!(
        elapsed >= Duration::from_millis(250),
        "answered before the deadline: {elapsed:?}"
    );
    assert_within(started, Duration::from_millis(900));
    assert_eq!(assert_fault_healthy(&gw).await, 1, "a fresh instance");
    assert_eq!(
        real.count(),
        0,
        "the fault plugin never calls its backend here"
    );
}

/// Case 13 for a compiled-in plugin that sleeps past the deadline without looking at it: the
/// gateway answers at the timeout, not when the plugin returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_13_native_plugin_ignoring_the_deadline_is_cut_at_it() {
    let mut plugins = registry();
    plugins
        .register(
            "sleeper",
            Arc::new(Sleeper {
                delay: Duration::from_secs(10),
            }),
        )
        .unwrap();
    let gw = start_gateway_with_registry(
        service(json!([endpoint(
            "/sleep/{what}",
            json!([backend(
                NOWHERE,
                "/{what}",
                with_plugin("sleeper", Value::Null)
            )]),
            json!({"timeout": "200ms"})
        )])),
        plugins,
    )
    .await;

    let started = Instant::now();
    let resp = get(&gw.url("/sleep/slow")).await;

    assert_error_text(&resp, 500, "context deadline exceeded");
    assert_within(started, Duration::from_millis(600));
    let resp = get(&gw.url("/sleep/fine")).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_json(&resp, &json!({"slept": true}));
}

/// Case 14: the plugin is handed the full backend URL (host + url_pattern + forwarded query)
/// and the filtered headers only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_14_plugin_sees_the_full_url_and_filtered_headers() {
    // Exactly what a plugin receives: a compiled-in recorder.
    let recorder = Arc::new(Recorder::default());
    let mut plugins = registry();
    plugins
        .register("recorder", Arc::new(RecorderPlugin(Arc::clone(&recorder))))
        .unwrap();
    let host = NOWHERE;
    let gw = start_gateway_with_registry(
        service(json!([endpoint(
            "/a/{id}",
            json!([backend(
                host,
                "/b/{id}",
                with_plugin("recorder", Value::Null)
            )]),
            json!({"input_query_strings": ["q"]})
        )])),
        plugins,
    )
    .await;

    let resp = request(
        Method::GET,
        &gw.url("/a/7?q=1&z=2"),
        &[("Authorization", "Bearer secret"), ("X-Other", "x")],
        "",
    )
    .await;

    assert_complete_json(&resp, CACHE_TTL);
    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let seen = &seen[0];
    assert_eq!(seen.method, Method::GET);
    assert_eq!(seen.url.to_string(), format!("{host}/b/7?q=1"));
    let mut names: Vec<&str> = seen.headers.keys().map(http::HeaderName::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["user-agent", "x-forwarded-for", "x-forwarded-host"],
        "{:?}",
        seen.headers
    );
    assert_eq!(seen.headers["user-agent"], SLUICE_VERSION);
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen.headers["x-forwarded-host"], gw.authority().as_str());
    assert!(seen.body.is_empty());

    // The same through a component: client-example forwards the request it was handed
    // unchanged (`send`), so the echo backend sees what the plugin got, plus what the
    // gateway's client adds on the way out (Host, and Accept-Encoding: gzip when the gateway
    // asks for compression — that one is the outgoing client's, not part of what the plugin
    // was handed, so it is not asserted either way).
    let real = origin().await;
    let gw = gateway(service(json!([endpoint(
        "/a/{id}",
        json!([backend(
            &real.url(),
            "/b/{id}",
            with_plugin("client-example", json!({"path": "/never"}))
        )]),
        json!({"input_query_strings": ["q"]})
    )])))
    .await;

    let resp = request(
        Method::GET,
        &gw.url("/a/7?q=1&z=2"),
        &[("Authorization", "Bearer secret"), ("X-Other", "x")],
        "",
    )
    .await;

    assert_complete_json(&resp, CACHE_TTL);
    let echo = resp.json();
    assert_eq!(echo["path"], json!("/b/7"));
    assert_eq!(echo["query"], json!("q=1"));
    let got = real.last();
    assert_eq!(got.header("host"), Some(real.authority().as_str()));
    assert_eq!(got.header("user-agent"), Some(SLUICE_VERSION));
    assert_eq!(got.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(
        got.header("x-forwarded-host"),
        Some(gw.authority().as_str())
    );
    assert_eq!(got.header("authorization"), None);
    assert_eq!(got.header("x-other"), None);
    assert_eq!(got.header("x-forwarded-via"), None);
}

/// The legacy namespace (`plugin/http-client` is its alias) names a plugin just as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_namespace_is_an_alias() {
    let gw = gateway(service(json!([endpoint(
        "/legacy",
        json!([backend(
            NOWHERE,
            "/legacy",
            json!({"extra_config": {
                "github.com/devopsfaith/krakend/transport/http/client/executor":
                    {"name": "static-answer", "static-answer": {"body": {"legacy": true}}}
            }})
        )]),
        Value::Null
    )])))
    .await;

    let resp = get(&gw.url("/legacy")).await;

    assert_complete_json(&resp, CACHE_TTL);
    assert_json(&resp, &json!({"legacy": true}));
}

// ---------------------------------------------------------------------------------------------
// The example plugins, wasm and compiled-in twins, against real backends.

/// `hmac-signer` signs; the origin verifies. Without the plugin the origin refuses (401 -> 500),
/// so the 200 proves the signature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_signer_is_verified_by_the_backend() {
    let settings = json!({"secret": HMAC_SECRET, "key_id": "gw-1"});
    for name in ["hmac-signer", "native/hmac-signer"] {
        let real = origin().await;
        let gw = gateway(service(json!([
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
        ])))
        .await;

        let resp = get(&gw.url("/signed/1?x=1&ignored=1")).await;
        assert_complete_json(&resp, CACHE_TTL);
        assert_json(&resp, &json!({"verified": true, "key_id": "gw-1"}));
        let got = real.last();
        assert_eq!(got.path, "/signed/1", "{name}");
        assert_eq!(got.query.as_deref(), Some("fixed=yes&x=1"), "{name}");
        assert_eq!(got.header("x-key-id"), Some("gw-1"), "{name}");
        assert_eq!(got.header("x-signature").map(str::len), Some(64), "{name}");

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

        // Controls: the origin really checks.
        let resp = get(&gw.url("/unsigned/3")).await;
        assert_error_text(&resp, 500, "invalid status code 401");
        let resp = get(&gw.url("/wrong/4")).await;
        assert_error_text(&resp, 500, "invalid status code 401");
        assert_eq!(real.count(), 4, "{name}");
    }
}

/// `static-answer` answers from its settings; nothing is called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_answer_answers_without_a_call() {
    for name in ["static-answer", "native/static-answer"] {
        let real = origin().await;
        let gw = gateway(service(json!([endpoint(
            "/static",
            json!([backend(
                &real.url(),
                "/static",
                and(
                    with_plugin(
                        name,
                        json!({"headers": {"X-A": "1"}, "body": {"id": 1, "tags": ["a"]}})
                    ),
                    "allow",
                    json!(["id"])
                )
            )]),
            Value::Null
        )])))
        .await;

        for _ in 0..3 {
            let resp = get(&gw.url("/static")).await;
            assert_complete_json(&resp, CACHE_TTL);
            // The answer went through the backend's filters (allow: [id]).
            assert_json(&resp, &json!({"id": 1}));
            assert_eq!(
                resp.header("x-a"),
                None,
                "{name}: headers stay behind outside no-op"
            );
        }
        assert_eq!(real.count(), 0, "{name}");
    }
}

/// `fan-out` combines two allowed hosts; a host outside the allow-list fails that request
/// (500, nothing sent to it) and the next request is fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_combines_allowed_hosts_and_refuses_others() {
    for name in ["fan-out", "native/fan-out"] {
        let one = origin().await;
        let two = origin().await;
        let stranger = origin().await;
        let gw = gateway(service(json!([
            endpoint(
                "/both",
                json!([backend(
                    &one.url(),
                    "/",
                    with_plugin_and(
                        name,
                        json!({"urls": [format!("{}/a", one.url()), format!("{}/b", two.url())]}),
                        json!({"allowed_hosts": [one.url(), two.url()]})
                    )
                )]),
                Value::Null
            ),
            endpoint(
                "/refused",
                json!([backend(
                    &one.url(),
                    "/",
                    with_plugin(
                        name,
                        json!({"urls": [format!("{}/a", one.url()), format!("{}/b", stranger.url())]})
                    )
                )]),
                Value::Null
            )
        ])))
        .await;

        let resp = get(&gw.url("/both")).await;
        assert_complete_json(&resp, CACHE_TTL);
        assert_json(&resp, &json!({"a": {"x": 1}, "b": {"y": 2}}));
        assert_eq!((one.count(), two.count()), (1, 1), "{name}");
        assert_eq!(one.last().path, "/a");
        assert_eq!(two.last().path, "/b");

        let resp = get(&gw.url("/refused")).await;
        assert_error_text(&resp, 500, &stranger.authority());
        assert_eq!(stranger.count(), 0, "{name}: the refused host was called");

        let resp = get(&gw.url("/both")).await;
        assert_complete_json(&resp, CACHE_TTL);
        assert_json(&resp, &json!({"a": {"x": 1}, "b": {"y": 2}}));
    }
}

/// `fan-out` needs both URLs to answer 2xx (plugins/fan-out: "Both must answer 2xx JSON"): a
/// 500 from one of them fails the request instead of being combined as data. The twins are
/// configured the same way, so they must agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_fails_when_a_url_fails() {
    for name in ["fan-out", "native/fan-out"] {
        let real = origin().await;
        let gw = gateway(service(json!([endpoint(
            "/half",
            json!([backend(
                &real.url(),
                "/",
                with_plugin(
                    name,
                    json!({"urls": [format!("{}/a", real.url()), format!("{}/broken", real.url())]})
                )
            )]),
            Value::Null
        )])))
        .await;

        let resp = get(&gw.url("/half")).await;

        assert_eq!(
            resp.status.as_u16(),
            500,
            "{name}: a failing URL was combined as data: {}",
            resp.text()
        );
        assert_completed(&resp, false);
        assert!(
            real.received().iter().any(|r| r.path == "/broken"),
            "{name}"
        );
    }
}

/// `wasi-passthrough`, a plain `wasi:http/proxy` component: forwards the backend request
/// through the gateway, body included; its setting arrives through `wasi:config`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_passthrough_forwards_through_the_gateway() {
    let real = origin().await;
    let settings = json!({"response_header": "x-via"});
    let gw = gateway(service(json!([
        endpoint(
            "/wasi/{id}",
            json!([backend(
                &real.url(),
                "/echo/{id}",
                with_plugin("wasi-passthrough", settings.clone())
            )]),
            json!({"input_query_strings": ["q"]})
        ),
        endpoint(
            "/wasi-post",
            json!([backend(
                &real.url(),
                "/echo/post",
                with_plugin("wasi-passthrough", settings.clone())
            )]),
            json!({"method": "POST", "input_headers": ["Content-Type"]})
        ),
        endpoint(
            "/wasi-raw",
            json!([backend(
                &real.url(),
                "/__debug/raw",
                and(
                    with_plugin("wasi-passthrough", settings.clone()),
                    "encoding",
                    json!("no-op")
                )
            )]),
            json!({"output_encoding": "no-op"})
        ),
        endpoint(
            "/wasi-refused",
            json!([backend(
                &real.url(),
                "/echo/refused",
                with_plugin_and(
                    "wasi-passthrough",
                    settings.clone(),
                    json!({"allowed_hosts": [NOWHERE]})
                )
            )]),
            Value::Null
        )
    ])))
    .await;

    for _ in 0..2 {
        let resp = get(&gw.url("/wasi/7?q=1&z=2")).await;
        assert_complete_json(&resp, CACHE_TTL);
        let echo = resp.json();
        assert_eq!(echo["method"], json!("GET"));
        assert_eq!(echo["path"], json!("/echo/7"));
        assert_eq!(echo["query"], json!("q=1"));
        assert_eq!(echo["headers"]["user-agent"], json!(SLUICE_VERSION));
    }

    let resp = request(
        Method::POST,
        &gw.url("/wasi-post"),
        &[("Content-Type", "application/json")],
        r#"{"n":1}"#,
    )
    .await;
    assert_complete_json(&resp, CACHE_TTL);
    let echo = resp.json();
    assert_eq!(echo["method"], json!("POST"));
    assert_eq!(echo["body"], json!(r#"{"n":1}"#));

    // Behind no-op the component's answer reaches the client as it is, with its header.
    let resp = get(&gw.url("/wasi-raw")).await;
    assert_status(&resp, 200);
    assert_eq!(resp.header("x-via"), Some("wasi-passthrough"));
    assert_eq!(resp.json(), json!({"message": "pong"}));

    assert_refused(&gw.url("/wasi-refused"), &real).await;

    let resp = get(&gw.url("/wasi/8")).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(resp.json()["path"], json!("/echo/8"));
}

/// `wasi-lean-passthrough`, the same pass-through on the raw `wasi:http` bindings: headers
/// copied host-side, bodies spliced host-side (a body larger than one splice, and one sent
/// back to the client as the backend wrote it), the allow-list still applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_lean_passthrough_forwards_through_the_gateway() {
    let real = origin().await;
    let lean = || with_plugin("wasi-lean-passthrough", json!({}));
    let gw = gateway(service(json!([
        endpoint(
            "/lean/{id}",
            json!([backend(&real.url(), "/echo/{id}", lean())]),
            json!({"input_query_strings": ["q"], "input_headers": ["X-Keep"]})
        ),
        endpoint(
            "/lean-post",
            json!([backend(&real.url(), "/echo/post", lean())]),
            json!({"method": "POST", "input_headers": ["Content-Type"]})
        ),
        endpoint(
            "/lean-raw",
            json!([backend(
                &real.url(),
                "/__debug/raw",
                and(lean(), "encoding", json!("no-op"))
            )]),
            json!({"output_encoding": "no-op"})
        ),
        endpoint(
            "/lean-refused",
            json!([backend(
                &real.url(),
                "/echo/refused",
                with_plugin_and(
                    "wasi-lean-passthrough",
                    json!({}),
                    json!({"allowed_hosts": [NOWHERE]})
                )
            )]),
            Value::Null
        )
    ])))
    .await;

    // Twice: the second request runs on the instance the first one left.
    for _ in 0..2 {
        let resp = request(
            Method::GET,
            &gw.url("/lean/7?q=1&z=2"),
            &[("X-Keep", "kept")],
            "",
        )
        .await;
        assert_complete_json(&resp, CACHE_TTL);
        let echo = resp.json();
        assert_eq!(echo["method"], json!("GET"));
        assert_eq!(echo["path"], json!("/echo/7"));
        assert_eq!(echo["query"], json!("q=1"));
        assert_eq!(echo["headers"]["x-keep"], json!("kept"));
        assert_eq!(echo["headers"]["user-agent"], json!(SLUICE_VERSION));
    }

    // 200 KB each way: more than one splice moves at a time.
    let big = format!(r#"{{"n":"{}"}}"#, "x".repeat(200 * 1024));
    let resp = request(
        Method::POST,
        &gw.url("/lean-post"),
        &[("Content-Type", "application/json")],
        big.clone(),
    )
    .await;
    assert_complete_json(&resp, CACHE_TTL);
    let echo = resp.json();
    assert_eq!(echo["method"], json!("POST"));
    assert_eq!(echo["body"].as_str().map(str::len), Some(big.len()));
    assert_eq!(echo["body"], json!(big));

    let resp = get(&gw.url("/lean-raw")).await;
    assert_status(&resp, 200);
    assert_eq!(resp.json(), json!({"message": "pong"}));

    assert_refused(&gw.url("/lean-refused"), &real).await;
}

/// Asks `url`, whose plugin calls a host outside its allow-list: a 500 that says the answer is
/// incomplete, and nothing reached `real`. Returns the answer for further checks.
pub(crate) async fn assert_refused(url: &str, real: &Backend) -> Response {
    let before = real.count();
    let resp = get(url).await;
    assert_status(&resp, 500);
    assert_completed(&resp, false);
    assert_eq!(
        real.count(),
        before,
        "a host outside allowed_hosts was called"
    );
    resp
}

// ---------------------------------------------------------------------------------------------
// Faults, contained: each one is a 500 (within the deadline where one applies), and the next
// request to the same backend succeeds.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_trap_is_a_500_then_healthy() {
    let real = origin().await;
    let gw = fault_gateway(&real, "3s", Value::Null).await;

    let resp = get(&gw.url("/fault/trap")).await;

    assert_error_text(&resp, 500, "trap, as asked");
    assert_eq!(assert_fault_healthy(&gw).await, 1, "a fresh instance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_endless_loop_is_cut_at_the_deadline_then_healthy() {
    let real = origin().await;
    let gw = fault_gateway(&real, "500ms", Value::Null).await;

    let started = Instant::now();
    let resp = get(&gw.url("/fault/loop")).await;

    assert_error_text(&resp, 500, "context deadline exceeded");
    assert_within(started, Duration::from_millis(1500));
    assert_eq!(assert_fault_healthy(&gw).await, 1, "a fresh instance");
    // Twice: the replacement instance is as good as the first.
    let resp = get(&gw.url("/fault/loop")).await;
    assert_error_text(&resp, 500, "context deadline exceeded");
    assert_eq!(assert_fault_healthy(&gw).await, 1, "a fresh instance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_memory_blow_up_is_a_500_then_healthy() {
    let real = origin().await;
    let gw = fault_gateway(&real, "3s", json!({"memory_limit": "16MiB"})).await;

    let resp = get(&gw.url("/fault/oom")).await;

    assert_error_text(&resp, 500, "out of memory");
    assert_eq!(assert_fault_healthy(&gw).await, 1, "a fresh instance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_refused_host_is_a_500_then_healthy() {
    let real = origin().await;
    let gw = fault_gateway(&real, "3s", Value::Null).await;

    let resp = get(&gw.url("/fault/refused")).await;

    assert_error_text(&resp, 500, "refused.invalid");
    assert!(resp.text().contains("allowed_hosts"), "{}", resp.text());
    assert!(assert_fault_healthy(&gw).await >= 1);
    assert_eq!(real.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_backend_never_answering_is_cut_at_the_deadline_then_healthy() {
    let real = origin().await;
    let gw = fault_gateway(&real, "500ms", Value::Null).await;

    let started = Instant::now();
    let resp = get(&gw.url("/fault/hang")).await;

    assert_error_text(&resp, 500, "context deadline exceeded");
    assert_within(started, Duration::from_millis(1500));
    assert_eq!(real.count(), 1, "the plugin called hang_url");
    assert_eq!(real.last().path, "/hang");
    assert_eq!(assert_fault_healthy(&gw).await, 1, "a fresh instance");
}

/// Every fault in a row against one backend, then a burst of healthy requests: nothing leaks
/// (with one instance allowed, a leaked slot would make the healthy ones wait and fail).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_in_a_row_leave_the_backend_usable() {
    let real = origin().await;
    let gw = fault_gateway(&real, "500ms", json!({"memory_limit": "16MiB"})).await;

    for what in ["trap", "loop", "oom", "refused", "hang", "trap"] {
        let resp = get(&gw.url(&format!("/fault/{what}"))).await;
        assert_status(&resp, 500);
        assert_completed(&resp, false);
    }
    let answers = futures_util::future::join_all((0..4).map(|_| get_fine(&gw))).await;
    for resp in answers {
        assert_complete_json(&resp, CACHE_TTL);
    }
}

async fn get_fine(gw: &Gateway) -> Response {
    get(&gw.url("/fault/fine")).await
}

/// A decoded answer's headers are not built past its content headers when nothing but the
/// backend stage reads them; a plugin on the same kind of backend, and a `no-op` endpoint, still
/// get every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_and_a_no_op_endpoint_see_every_header_of_the_answer() {
    let origin = Backend::start_sync(|_| {
        Reply::json(200, &json!({"a": 1}))
            .header("x-custom", "y")
            .header("set-cookie", "c=1")
    })
    .await;
    let mut plugins = registry();
    plugins
        .register("header-names", Arc::new(HeaderNames))
        .unwrap();
    let gw = start_gateway_with_registry(
        service(json!([
            endpoint(
                "/plugin",
                json!([backend(
                    &origin.url(),
                    "/x",
                    with_plugin("header-names", Value::Null)
                )]),
                Value::Null
            ),
            endpoint(
                "/decoded",
                json!([backend(&origin.url(), "/x", Value::Null)]),
                Value::Null
            ),
            endpoint(
                "/raw",
                json!([backend(&origin.url(), "/x", json!({"encoding": "no-op"}))]),
                json!({"output_encoding": "no-op"})
            ),
        ])),
        plugins,
    )
    .await;

    let resp = get(&gw.url("/plugin")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let names = resp.json()["names"].clone();
    for name in ["content-type", "set-cookie", "x-custom"] {
        assert!(
            names.as_array().unwrap().contains(&json!(name)),
            "{name} in {names}"
        );
    }
    let resp = get(&gw.url("/decoded")).await;
    assert_json(&resp, &json!({"a": 1}));
    assert_eq!(resp.header("x-custom"), None);
    let resp = get(&gw.url("/raw")).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-custom"), Some("y"));
    assert_eq!(resp.header("set-cookie"), Some("c=1"));
}

/// A hooks-mode component without `on-response` hands the backend's answer back unread, so the
/// answer is read as the endpoint reads it: a decoded endpoint gets its body, a `no-op` one every
/// header the backend sent, exactly as without the plugin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_hook_hands_the_answer_on_as_its_endpoint_reads_it() {
    let origin = Backend::start_sync(|req| {
        Reply::json(200, &json!({"a": 1, "rw": req.header("x-rw")}))
            .header("x-custom", "y")
            .header("set-cookie", "c=1")
    })
    .await;
    let rewrite = || with_plugin("header-rewrite", json!({"request": {"set": {"x-rw": "1"}}}));
    let gw = gateway(service(json!([
        endpoint(
            "/decoded",
            json!([backend(&origin.url(), "/x", rewrite())]),
            Value::Null
        ),
        endpoint(
            "/raw",
            json!([backend(
                &origin.url(),
                "/x",
                and(rewrite(), "encoding", json!("no-op"))
            )]),
            json!({"output_encoding": "no-op"})
        ),
    ])))
    .await;

    let resp = get(&gw.url("/decoded")).await;
    assert_json(&resp, &json!({"a": 1, "rw": "1"}));
    assert_eq!(resp.header("x-custom"), None);
    let resp = get(&gw.url("/raw")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), json!({"a": 1, "rw": "1"}));
    assert_eq!(resp.header("x-custom"), Some("y"));
    assert_eq!(resp.header("set-cookie"), Some("c=1"));
}

/// `sluice:plugin@0.3`: a hook changes the message the gateway holds, in place, part by part
/// (`plugins/message-edits`). Every setter reaches the backend or the client; the framing
/// follows a changed body; a setter's refusal is the hook's error; a hook may answer alone.
#[tokio::test]
async fn a_hook_edits_the_held_message_in_place() {
    let origin = Backend::start_sync(|req| {
        Reply::json(200, &json!({"from": "origin", "path": req.path})).header("x-origin", "1")
    })
    .await;
    let moved = format!("{}/moved?q=1", origin.url());
    let edits = |request: Value, response: Value| {
        with_plugin(
            "message-edits",
            json!({"request": request, "response": response}),
        )
    };
    let raw = |extra: Value| and(extra, "encoding", json!("no-op"));
    let raw_endpoint = |path: &str, extra: Value| {
        endpoint(
            path,
            json!([backend(&origin.url(), "/x", raw(extra))]),
            json!({"output_encoding": "no-op"}),
        )
    };
    let request_ops = json!([
        "method=PUT",
        format!("url={moved}"),
        "body=hello",
        "append=x-a:1",
        "append=x-a:2",
        "set=x-b:b",
        "remove=x-forwarded-for",
        "seen"
    ]);
    let gw = gateway(service(json!([
        endpoint(
            "/edits",
            json!([backend(
                &origin.url(),
                "/x",
                edits(
                    request_ops.clone(),
                    json!(["body={\"edited\":true}", "seen"])
                )
            )]),
            Value::Null
        ),
        raw_endpoint(
            "/edits-raw",
            edits(
                json!(["seen", "whole=x-w:1"]),
                json!([
                    "status=201",
                    "set=x-r:1",
                    "remove=x-origin",
                    "whole=x-w:2",
                    "seen"
                ])
            )
        ),
        raw_endpoint("/answer", edits(json!(["answer=203"]), Value::Null)),
        raw_endpoint("/bad", edits(json!(["set=bad name:v"]), Value::Null)),
        raw_endpoint(
            "/elsewhere",
            edits(json!([format!("url={NOWHERE}/x")]), Value::Null)
        ),
        raw_endpoint("/lost", edits(json!(["lose"]), Value::Null)),
        raw_endpoint(
            "/lost-then-set",
            edits(json!(["lose", "set=x-after:1"]), Value::Null)
        ),
        raw_endpoint(
            "/replace",
            edits(json!(["headers=x-only:1"]), json!(["headers=x-h:2;x-h:3"]))
        ),
    ])))
    .await;

    // Every part of the request changed in place; the answer's body replaced.
    let resp = get(&gw.url("/edits")).await;
    assert_json(&resp, &json!({"edited": true}));
    let sent = origin.last();
    assert_eq!(sent.method, Method::PUT);
    assert_eq!(
        (sent.path.as_str(), sent.query.as_deref()),
        ("/moved", Some("q=1"))
    );
    assert_eq!(&sent.body[..], b"hello");
    assert_eq!(sent.header("content-length"), Some("5"));
    assert_eq!(sent.header_all("x-a"), ["1", "2"]);
    assert_eq!(sent.header("x-b"), Some("b"));
    assert_eq!(sent.header("x-forwarded-for"), None);
    assert_eq!(
        sent.header("x-seen"),
        Some(format!("PUT {moved} 5").as_str())
    );

    // The answer's status and headers, as a no-op endpoint passes them on; what the hook read.
    let resp = get(&gw.url("/edits-raw")).await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(resp.header("x-r"), Some("1"));
    assert_eq!(resp.header("x-origin"), None);
    assert_eq!(resp.header("x-w"), Some("2"));
    let body_len = resp.text().len();
    assert_eq!(
        resp.header("x-seen"),
        Some(format!("201 {body_len}").as_str())
    );
    let sent = origin.last();
    let url = format!("{}/x", origin.url());
    assert_eq!(sent.header("x-seen"), Some(format!("GET {url} 0").as_str()));
    assert_eq!(sent.header("x-w"), Some("1"));

    // An answer of the hook's own: the origin is not called.
    let calls = origin.count();
    let resp = get(&gw.url("/answer")).await;
    assert_eq!(resp.status, 203, "{}", resp.text());
    assert_eq!(resp.text(), "answered");
    assert_eq!(origin.count(), calls);

    // A setter refuses what HTTP does not allow: the hook's error, the origin not called.
    let resp = get(&gw.url("/bad")).await;
    assert_error_text(&resp, 500, "invalid header name \"bad name\"");
    assert_eq!(origin.count(), calls);

    // A hook that goes on after the host refused the whole request it handed back: the request
    // is gone, so the call fails and nothing is sent; a setter called after it says why.
    let resp = get(&gw.url("/lost")).await;
    assert_error_text(&resp, 500, "refused the message it handed back");
    let resp = get(&gw.url("/lost-then-set")).await;
    assert_error_text(&resp, 500, "the host refused what `replace` handed back");
    assert_eq!(origin.count(), calls);

    // A URL the plugin may not call: the host's call on its behalf is refused like a `send`.
    let resp = get(&gw.url("/elsewhere")).await;
    assert_error_text(&resp, 500, "is not in the plugin's allowed_hosts");

    // Every field replaced, both ways (the host still owns `host` and the framing).
    let resp = get(&gw.url("/replace")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header_all("x-h"), ["2", "3"]);
    let sent = origin.last();
    assert_eq!(sent.header("x-only"), Some("1"));
    assert_eq!(sent.header("x-forwarded-for"), None);
    assert_eq!(sent.header("host"), Some(origin.authority().as_str()));
}

/// `sluice:plugin@0.3`'s `handle` works on the request the gateway holds: `forward` sends it as
/// the plugin left it and hands back the answer, held too, which the plugin may change and pass
/// on. The request is spent by it; a hook may not forward; a handle kept past its call reaches
/// nothing of a later one.
#[tokio::test]
async fn handle_forwards_the_held_request() {
    let origin = Backend::start_sync(|req| {
        Reply::json(200, &json!({"from": "origin", "path": req.path})).header("x-origin", "1")
    })
    .await;
    let serve = |request: Value, response: Value| {
        with_plugin(
            "message-edits",
            json!({"handle": true, "request": request, "response": response}),
        )
    };
    let raw_endpoint = |path: &str, extra: Value| {
        endpoint(
            path,
            json!([backend(
                &origin.url(),
                "/x",
                and(extra, "encoding", json!("no-op"))
            )]),
            json!({"output_encoding": "no-op"}),
        )
    };
    let one_instance = |ops: Value| {
        with_plugin_and(
            "message-edits",
            json!({"handle": true, "response": ops}),
            json!({"max_instances": 1}),
        )
    };
    let gw = gateway(service(json!([
        raw_endpoint("/pass", serve(Value::Null, Value::Null)),
        raw_endpoint(
            "/edit",
            serve(
                json!(["method=POST", "body=hello", "set=x-b:b", "seen"]),
                json!([
                    "status=201",
                    "echo=x-origin",
                    "set=x-r:1",
                    "remove=x-origin",
                    "body=edited",
                    "seen"
                ])
            )
        ),
        endpoint(
            "/decoded",
            json!([backend(
                &origin.url(),
                "/x",
                serve(json!(["set=x-b:b"]), Value::Null)
            )]),
            Value::Null
        ),
        raw_endpoint("/own", serve(Value::Null, json!(["own=202"]))),
        raw_endpoint("/tail", serve(json!(["set=x-b:tail", "pass"]), Value::Null)),
        raw_endpoint(
            "/forward-pass",
            serve(json!(["forward", "pass"]), Value::Null)
        ),
        raw_endpoint("/answer", serve(json!(["answer=203"]), Value::Null)),
        raw_endpoint(
            "/spent",
            serve(json!(["forward", "set=x-after:1"]), Value::Null)
        ),
        raw_endpoint("/twice", serve(json!(["forward", "forward"]), Value::Null)),
        raw_endpoint(
            "/elsewhere",
            serve(json!([format!("url={NOWHERE}/x")]), Value::Null)
        ),
        raw_endpoint(
            "/hook",
            with_plugin("message-edits", json!({"request": ["forward"]}))
        ),
        raw_endpoint("/keep", one_instance(json!(["keep"]))),
        raw_endpoint("/keep-return", one_instance(json!(["keep-return"]))),
    ])))
    .await;

    // A pass-through: the answer as the origin gave it, the request as the gateway built it.
    let calls = origin.count();
    let resp = get(&gw.url("/pass")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("x-origin"), Some("1"));
    assert_json(&resp, &json!({"from": "origin", "path": "/x"}));
    assert_eq!(origin.count(), calls + 1);
    assert!(origin.last().header("x-forwarded-for").is_some());

    // Both messages changed in place: what the origin got, what the client got.
    let resp = get(&gw.url("/edit")).await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(resp.text(), "edited");
    assert_eq!(resp.header("content-length"), Some("6"));
    assert_eq!(resp.header("x-r"), Some("1"));
    assert_eq!(resp.header("x-echo"), Some("1"));
    assert_eq!(resp.header("x-origin"), None);
    assert_eq!(resp.header("x-seen"), Some("201 6"));
    let sent = origin.last();
    assert_eq!(sent.method, Method::POST);
    assert_eq!(&sent.body[..], b"hello");
    assert_eq!(sent.header("content-length"), Some("5"));
    assert_eq!(sent.header("x-b"), Some("b"));
    let url = format!("{}/x", origin.url());
    assert_eq!(
        sent.header("x-seen"),
        Some(format!("POST {url} 5").as_str())
    );

    // A forwarded answer is decoded and filtered like any backend's.
    let resp = get(&gw.url("/decoded")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_json(&resp, &json!({"from": "origin", "path": "/x"}));
    assert_eq!(origin.last().header("x-b"), Some("b"));

    // `forward` as the answer: the gateway sends the request as the plugin left it, once the
    // call has returned, and passes the answer on unread; not after the plugin forwarded it.
    let resp = get(&gw.url("/tail")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("x-origin"), Some("1"));
    assert_json(&resp, &json!({"from": "origin", "path": "/x"}));
    assert_eq!(origin.last().header("x-b"), Some("tail"));
    let resp = get(&gw.url("/forward-pass")).await;
    assert_error_text(
        &resp,
        500,
        "answered `forward` after forwarding the request itself",
    );

    // The plugin drops the forwarded answer for one of its own, or answers without a call.
    let resp = get(&gw.url("/own")).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(resp.text(), "own");
    let calls = origin.count();
    let resp = get(&gw.url("/answer")).await;
    assert_eq!(resp.status, 203, "{}", resp.text());
    assert_eq!(resp.text(), "answered");
    assert_eq!(origin.count(), calls);

    // `forward` spends the request: a setter after it, or a second `forward`, says so.
    for path in ["/spent", "/twice"] {
        let resp = get(&gw.url(path)).await;
        assert_error_text(&resp, 500, "the request was forwarded");
    }
    assert_eq!(origin.count(), calls + 2);

    // `forward` keeps `send`'s rules: a host outside `allowed_hosts` is refused.
    let resp = get(&gw.url("/elsewhere")).await;
    assert_error_text(&resp, 500, "is not in the plugin's allowed_hosts");

    // A hook may not forward: the host sends the request when the hook answers `none`.
    let resp = get(&gw.url("/hook")).await;
    assert_error_text(&resp, 500, "forward is for `handle`");
    assert_eq!(origin.count(), calls + 2);

    // A handle kept past its call reaches nothing of the next call: a setter on it is refused,
    // and so is answering with it.
    let resp = get(&gw.url("/keep")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = get(&gw.url("/keep")).await;
    assert_error_text(&resp, 500, "a message handle from an earlier call");
    let resp = get(&gw.url("/keep-return")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = get(&gw.url("/keep-return")).await;
    assert_error_text(&resp, 500, "a response from an earlier call");
}
