//! Shadow backends (`proxy.shadow`, `proxy.shadow_timeout`): KrakenD's traffic mirroring, as
//! Lura's `proxy/shadow.go` does it and KrakenD CE wires it (`proxy.NewShadowFactory` around the
//! default proxy factory). A shadow gets the request every backend of the endpoint gets, on its
//! own deadline, detached from the client; its answer never reaches the client nor delays it.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use http::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use sluice_integration::backend::{Backend, RawBackend, RawBehaviour};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::*;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

const CACHE_TTL: u64 = 3600;
/// How long a test waits for something that should happen (a failure, never a pause).
const PATIENCE: Duration = Duration::from_secs(10);

fn shadow() -> Value {
    json!({"extra_config": {"proxy": {"shadow": true}}})
}

fn shadow_with_timeout(timeout: &str) -> Value {
    json!({"extra_config": {"proxy": {"shadow": true, "shadow_timeout": timeout}}})
}

/// A backend that answers `reply` and reports every request it receives on a channel.
async fn reporting(reply: Reply) -> (Backend, mpsc::UnboundedReceiver<Received>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let backend = Backend::start(move |req| {
        let _ = tx.send(req);
        let reply = reply.clone();
        async move { reply }
    })
    .await;
    (backend, rx)
}

/// The next request a [`reporting`] backend received, within [`PATIENCE`].
async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("the backend was called in time")
        .expect("the backend is running")
}

/// A TCP backend that never answers: it reports when a request's head has arrived and when the
/// gateway closed the connection, so a test sees the cut itself.
struct Watcher {
    addr: SocketAddr,
    events: mpsc::UnboundedReceiver<(&'static str, Instant)>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watcher {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0_u8; 4096];
                    let mut arrived = false;
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => {
                                let _ = tx.send(("closed", Instant::now()));
                                return;
                            }
                            Ok(n) if !arrived => {
                                seen.extend_from_slice(&buf[..n]);
                                if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                                    arrived = true;
                                    let _ = tx.send(("arrived", Instant::now()));
                                }
                            }
                            Ok(_) => {}
                        }
                    }
                });
            }
        });
        Self { addr, events, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The instant of the next event, which must be `what`.
    async fn next(&mut self, what: &str) -> Instant {
        let (event, at) = tokio::time::timeout(PATIENCE, self.events.recv())
            .await
            .unwrap_or_else(|_| panic!("no {what} event in time"))
            .unwrap();
        assert_eq!(event, what);
        at
    }
}

/// The shadow gets what the other backends get: the method, the params in its own
/// url_pattern, the allowed query and headers, the X-Forwarded-* and User-Agent the gateway
/// sets, and the whole body (each shadow its own copy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shadow_gets_the_request_the_other_backends_get() {
    let (live, mut live_rx) = reporting(Reply::json(200, &json!({"live": true}))).await;
    let (next_a, mut a_rx) = reporting(Reply::json(200, &json!({"shadow": "a"}))).await;
    let (next_b, mut b_rx) = reporting(Reply::json(200, &json!({"shadow": "b"}))).await;
    let gw = start_gateway(service(json!([endpoint(
        "/users/{id}",
        json!([
            backend(&next_a.url(), "/v2/users/{id}", shadow()),
            backend(&live.url(), "/users/{id}", Value::Null),
            backend(&next_b.url(), "/v3/users/{id}?from=gw", shadow()),
        ]),
        json!({
            "method": "POST",
            "input_query_strings": ["q"],
            "input_headers": ["X-Test", "Content-Type", "User-Agent"]
        })
    )])))
    .await;

    let body = r#"{"name":"Elliot","tags":["a","b"]}"#;
    let resp = request(
        Method::POST,
        &gw.url("/users/42?q=1&q=2&skip=3"),
        &[
            ("X-Test", "t"),
            ("X-Other", "dropped"),
            ("Content-Type", "application/json"),
            ("User-Agent", "client/1"),
        ],
        body,
    )
    .await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_json(&resp, &json!({"live": true}));

    let live = next(&mut live_rx).await;
    assert_eq!(live.path, "/users/42");
    assert_eq!(live.query.as_deref(), Some("q=1&q=2"));
    assert_eq!(live.body_text(), body);
    assert_eq!(live.header("x-forwarded-via"), Some(SLUICE_VERSION));
    assert_eq!(
        live.header("x-forwarded-host"),
        Some(gw.authority().as_str())
    );
    for (shadow, path, query) in [
        (next(&mut a_rx).await, "/v2/users/42", "q=1&q=2"),
        (next(&mut b_rx).await, "/v3/users/42", "from=gw&q=1&q=2"),
    ] {
        assert_eq!(shadow.method, Method::POST);
        assert_eq!(shadow.path, path);
        assert_eq!(shadow.query.as_deref(), Some(query));
        assert_eq!(shadow.body_text(), body, "{path}");
        // Every header but Host (the backend's own authority) is the live backend's.
        let mut got = shadow.headers.clone();
        let mut want = live.headers.clone();
        got.remove("host");
        want.remove("host");
        assert_eq!(got, want, "{path}");
        assert_eq!(shadow.header("x-test"), Some("t"));
        assert_eq!(shadow.header("x-other"), None);
    }
}

/// Whatever the shadow answers (slowly, an error, more than the body limit, a reset, data that
/// would merge), the client gets the other backends' answer, complete, and at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shadow_answer_never_reaches_nor_delays_the_client() {
    let live = Backend::start_sync(|_| Reply::json(200, &json!({"live": true}))).await;
    let release = Arc::new(Notify::new());
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel();
    let held = Arc::clone(&release);
    let slow = Backend::start(move |_| {
        let _ = arrived_tx.send(());
        let held = Arc::clone(&held);
        async move {
            held.notified().await;
            Reply::json(200, &json!({"live": "slow shadow"}))
        }
    })
    .await;
    let failing = Backend::start_sync(|_| Reply::json(500, &json!({"live": "failing"}))).await;
    let huge = Backend::start_sync(|_| {
        Reply::new(200)
            .header("content-type", "application/json")
            .repeat(
                bytes::Bytes::from_static(br#"{"live":"huge","pad":""#),
                bytes::Bytes::from(vec![b'x'; 64 << 10]),
                (20 << 20) / (64 << 10),
                bytes::Bytes::from_static(br#""}"#),
            )
    })
    .await;
    let reset = RawBackend::start(RawBehaviour::Reset).await;
    let merging =
        Backend::start_sync(|_| Reply::json(200, &json!({"live": "merged", "extra": 1}))).await;
    let mut endpoints = Vec::new();
    for (path, shadow_url) in [
        ("/slow", slow.url()),
        ("/failing", failing.url()),
        ("/huge", huge.url()),
        ("/reset", reset.url()),
        ("/merging", merging.url()),
    ] {
        endpoints.push(endpoint(
            path,
            json!([
                backend(&live.url(), "/", Value::Null),
                backend(&shadow_url, "/", shadow())
            ]),
            json!({"timeout": "10s"}),
        ));
    }
    let gw = start_gateway(service(Value::Array(endpoints))).await;

    // The slow shadow is held until the client has its answer: a gateway that waited for it
    // would answer only at the 10s deadline.
    let started = Instant::now();
    let resp = get(&gw.url("/slow")).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_complete_json(&resp, CACHE_TTL);
    assert_json(&resp, &json!({"live": true}));
    tokio::time::timeout(PATIENCE, arrived.recv())
        .await
        .expect("the slow shadow was called")
        .unwrap();
    release.notify_one();

    for path in ["/failing", "/huge", "/reset", "/merging"] {
        let resp = get(&gw.url(path)).await;
        assert_complete_json(&resp, CACHE_TTL);
        assert_eq!(resp.text(), r#"{"live":true}"#, "{path}");
    }
    // Every shadow was called (the reset one too: it took a connection). A shadow runs on
    // its own, so its call may arrive a moment after the client's answer.
    for (name, shadow) in [
        ("failing", &failing),
        ("huge", &huge),
        ("merging", &merging),
    ] {
        tokio::time::timeout(PATIENCE, async {
            while shadow.count() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the {name} shadow was never called"));
        assert_eq!(shadow.count(), 1, "{name}");
    }
    tokio::time::timeout(PATIENCE, async {
        while reset.connections() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the reset shadow was called");
}

/// `shadow_timeout` is the shadow's deadline: the gateway closes its connection then, seen by
/// the backend; without it the endpoint's timeout applies; it may be longer than the endpoint's
/// timeout, the shadow then outliving the client's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_timeout_cuts_a_slow_shadow() {
    let live = Backend::start_sync(|_| Reply::json(200, &json!({"live": true}))).await;
    let mut short = Watcher::start().await;
    let mut default = Watcher::start().await;
    let mut long = Watcher::start().await;
    let gw = start_gateway(service(json!([
        endpoint(
            "/short",
            json!([
                backend(&live.url(), "/", Value::Null),
                backend(&short.url(), "/", shadow_with_timeout("300ms"))
            ]),
            json!({"timeout": "5s"})
        ),
        endpoint(
            "/default",
            json!([
                backend(&live.url(), "/", Value::Null),
                backend(&default.url(), "/", shadow())
            ]),
            json!({"timeout": "700ms"})
        ),
        endpoint(
            "/long",
            json!([
                backend(&live.url(), "/", Value::Null),
                backend(&long.url(), "/", shadow_with_timeout("1500ms"))
            ]),
            json!({"timeout": "300ms"})
        ),
    ])))
    .await;

    for (path, watcher, cut, before) in [
        ("/short", &mut short, 300, 2_500),
        ("/default", &mut default, 700, 2_500),
        ("/long", &mut long, 1_500, 3_500),
    ] {
        let sent = Instant::now();
        let resp = get(&gw.url(path)).await;
        let answered = sent.elapsed();
        assert_complete_json(&resp, CACHE_TTL);
        watcher.next("arrived").await;
        let closed = watcher.next("closed").await - sent;
        assert!(
            closed >= Duration::from_millis(cut) && closed < Duration::from_millis(before),
            "{path}: the shadow's connection closed after {closed:?}, expected at {cut}ms"
        );
        assert!(answered < closed, "{path}: answered after {answered:?}");
    }
}

/// A client that goes away does not cancel the shadow: it runs to its own deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_does_not_cancel_the_shadow() {
    let mut live = Watcher::start().await;
    let mut mirror = Watcher::start().await;
    let gw = start_gateway(service(json!([endpoint(
        "/leave",
        json!([
            backend(&live.url(), "/", Value::Null),
            backend(&mirror.url(), "/", shadow_with_timeout("1s"))
        ]),
        json!({"timeout": "5s"})
    )])))
    .await;

    let sent = Instant::now();
    let url = gw.url("/leave");
    let client = tokio::spawn(async move { try_request(Method::GET, &url, &[], "").await });
    live.next("arrived").await;
    mirror.next("arrived").await;
    client.abort();
    // The gateway drops the client's request: the live call is cancelled with it (long
    // before its 5s deadline)...
    let live_closed = live.next("closed").await - sent;
    assert!(live_closed < Duration::from_secs(1), "{live_closed:?}");
    // ...and the shadow keeps its connection until its own deadline.
    let closed = mirror.next("closed").await - sent;
    assert!(
        closed >= Duration::from_secs(1) && closed < Duration::from_secs(3),
        "{closed:?}"
    );
}

/// Completeness is the other backends': a failing shadow leaves the answer complete, a
/// working shadow does not make up for a failing backend. `shadow: false` is a backend like
/// any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completeness_is_the_other_backends() {
    let a = Backend::start_sync(|_| Reply::json(200, &json!({"a": 1}))).await;
    let b = Backend::start_sync(|_| Reply::json(200, &json!({"b": 2}))).await;
    let failing = Backend::start_sync(|_| Reply::json(503, &json!({"c": 3}))).await;
    let mirror = Backend::start_sync(|_| Reply::json(200, &json!({"m": 4}))).await;
    let gw = start_gateway(service(json!([
        endpoint(
            "/complete",
            json!([
                backend(&a.url(), "/", Value::Null),
                backend(&b.url(), "/", Value::Null),
                backend(&failing.url(), "/", shadow())
            ]),
            Value::Null
        ),
        endpoint(
            "/partial",
            json!([
                backend(&a.url(), "/", Value::Null),
                backend(&failing.url(), "/", Value::Null),
                backend(&mirror.url(), "/", shadow())
            ]),
            Value::Null
        ),
        endpoint(
            "/failed",
            json!([
                backend(&failing.url(), "/", Value::Null),
                backend(&mirror.url(), "/", shadow())
            ]),
            Value::Null
        ),
        endpoint(
            "/not-shadow",
            json!([
                backend(&a.url(), "/", Value::Null),
                backend(
                    &mirror.url(),
                    "/",
                    json!({"extra_config": {"proxy": {"shadow": false}}})
                )
            ]),
            Value::Null
        ),
    ])))
    .await;

    let resp = get(&gw.url("/complete")).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_json(&resp, &json!({"a": 1, "b": 2}));

    let resp = get(&gw.url("/partial")).await;
    assert_partial_json(&resp);
    assert_json(&resp, &json!({"a": 1}));

    let resp = get(&gw.url("/failed")).await;
    assert_status(&resp, 500);
    assert_completed(&resp, false);
    assert!(
        resp.text().contains("invalid status code 503"),
        "{}",
        resp.text()
    );

    let resp = get(&gw.url("/not-shadow")).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_json(&resp, &json!({"a": 1, "m": 4}));

    // The shadows were called all the same, once per request that had one.
    tokio::time::timeout(PATIENCE, async {
        while failing.count() < 3 || mirror.count() < 3 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("every shadow was called");
}

/// In a sequential endpoint the shadows are not part of the sequence (Lura splits them off
/// before building the merge): they start at once, the other backends are numbered without
/// them for `{resp<N>_...}`, and several shadows make a sequence of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadows_stand_beside_a_sequential_endpoint() {
    let (mirror, mut mirror_rx) = reporting(Reply::json(200, &json!({"id": 999, "sid": 5}))).await;
    let (second_mirror, mut second_rx) = reporting(Reply::json(200, &json!({}))).await;
    let mirror_called = Arc::new(Notify::new());
    let first = {
        let mirror_called = Arc::clone(&mirror_called);
        Backend::start(move |_| {
            let mirror_called = Arc::clone(&mirror_called);
            async move {
                // The first backend of the sequence answers only once the shadow was called:
                // the shadow does not wait for the sequence.
                tokio::time::timeout(PATIENCE, mirror_called.notified())
                    .await
                    .expect("the shadow is called beside the first backend");
                Reply::json(200, &json!({"id": 7}))
            }
        })
        .await
    };
    let (then, mut then_rx) = reporting(Reply::json(200, &json!({"then": true}))).await;
    let gw = start_gateway(service(json!([endpoint(
        "/seq",
        json!([
            backend(&mirror.url(), "/mirror", shadow()),
            backend(&first.url(), "/first", Value::Null),
            backend(&second_mirror.url(), "/mirror/{resp0_sid}", shadow()),
            backend(&then.url(), "/then/{resp0_id}", Value::Null)
        ]),
        json!({"extra_config": {"proxy": {"sequential": true}}})
    )])))
    .await;

    let client = tokio::spawn({
        let url = gw.url("/seq");
        async move { get(&url).await }
    });
    assert_eq!(next(&mut mirror_rx).await.path, "/mirror");
    mirror_called.notify_one();
    let resp = client.await.unwrap();
    assert_complete_json(&resp, CACHE_TTL);
    assert_json(&resp, &json!({"id": 7, "then": true}));
    // resp0 is the first backend that is not a shadow, not the shadow listed first.
    assert_eq!(next(&mut then_rx).await.path, "/then/7");
    // The shadows' own sequence: the second shadow reads the first one's answer.
    assert_eq!(next(&mut second_rx).await.path, "/mirror/5");
}

/// A client plugin on a shadow backend runs as on any backend: here `native/hmac-signer`
/// signs the shadow's request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_on_a_shadow_backend_runs_as_on_any_backend() {
    let live = Backend::start_sync(|_| Reply::json(200, &json!({"live": true}))).await;
    let (mirror, mut mirror_rx) = reporting(Reply::json(200, &json!({}))).await;
    let mut registry = sluice_plugin::Registry::new();
    sluice_builtin_plugins::register_all(&mut registry).unwrap();
    let secret = "shadow-secret";
    let gw = start_gateway_with_registry(
        service(json!([endpoint(
            "/signed",
            json!([
                backend(&live.url(), "/", Value::Null),
                backend(
                    &mirror.url(),
                    "/mirror?x=1",
                    json!({"extra_config": {
                        "proxy": {"shadow": true},
                        "plugin/http-client": {
                            "name": "native/hmac-signer",
                            "native/hmac-signer": {"secret": secret, "key_id": "gw-1"}
                        }
                    }})
                )
            ]),
            json!({"method": "POST"})
        )])),
        registry,
    )
    .await;

    let resp = request(Method::POST, &gw.url("/signed"), &[], "payload").await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_json(&resp, &json!({"live": true}));
    let got = next(&mut mirror_rx).await;
    assert_eq!(got.header("x-key-id"), Some("gw-1"));
    let timestamp: u64 = got
        .header("x-signature-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    let to_sign =
        sluice_builtin_plugins::string_to_sign("POST", "/mirror?x=1", timestamp, b"payload");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(to_sign.as_bytes());
    assert_eq!(
        got.header("x-signature"),
        Some(hex::encode(mac.finalize().into_bytes()).as_str())
    );
}

/// What Sluice cannot honour is refused at start-up with the file and the JSON path: a
/// `shadow` that is not a boolean, a `shadow_timeout` that is not a duration, an endpoint
/// whose every backend is a shadow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_shadow_values_are_refused_with_file_and_path() {
    let host = "http://127.0.0.1:9999";
    for (proxy, expected) in [
        (
            json!({"shadow": "true"}),
            "test.json: endpoints[0].backend[1].extra_config.proxy.shadow: expected true or false, found a string",
        ),
        (
            json!({"shadow": true, "shadow_timeout": "2 seconds"}),
            "test.json: endpoints[0].backend[1].extra_config.proxy.shadow_timeout: invalid duration \"2 seconds\"",
        ),
        (
            json!({"shadow": true, "shadow_timeout": 2}),
            "test.json: endpoints[0].backend[1].extra_config.proxy.shadow_timeout: expected a duration string",
        ),
    ] {
        let config = service(json!([endpoint(
            "/x",
            json!([
                backend(host, "/", Value::Null),
                backend(host, "/", json!({"extra_config": {"proxy": proxy}}))
            ]),
            Value::Null
        )]));
        let error = try_start_gateway(config, sluice_plugin::Registry::new())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{expected}\n{error}");
    }
    let config = service(json!([endpoint(
        "/x",
        json!([backend(host, "/", shadow()), backend(host, "/", shadow())]),
        Value::Null
    )]));
    let error = try_start_gateway(config, sluice_plugin::Registry::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("test.json: endpoints[0].backend: every backend is a shadow"),
        "{error}"
    );
}
