//! `qos/circuit-breaker` against real backends: it opens after more than `max_errors`
//! consecutive errors, answers KrakenD's error while open without calling the backend, lets one
//! trial through after `timeout`, and closes on its success (or opens again on its failure).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::*;
use sluice_plugin::Registry;
use sluice_stage::Components;

fn components() -> Components {
    Components::new().with(sluice_qos::CircuitBreaker)
}

async fn start(config: Value) -> Gateway {
    try_start_gateway_with_components(config, Registry::new(), &components())
        .await
        .unwrap()
}

/// A backend that answers 200 `{"ok": true}` while `healthy`, else 500.
async fn switchable() -> (Backend, Arc<AtomicBool>) {
    let healthy = Arc::new(AtomicBool::new(false));
    let h = Arc::clone(&healthy);
    let mock = Backend::start_sync(move |_| {
        if h.load(Ordering::SeqCst) {
            Reply::json(200, &json!({"ok": true}))
        } else {
            Reply::text(500, "down")
        }
    })
    .await;
    (mock, healthy)
}

/// Sends GETs until one answers `status`, for at most `limit`.
async fn until_status(url: &str, status: u16, limit: Duration) -> Response {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let resp = get(url).await;
        if resp.status == status || tokio::time::Instant::now() > deadline {
            return resp;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_answers_half_opens_and_closes() {
    let (mock, healthy) = switchable().await;
    let cb = json!({"interval": 60, "timeout": 1, "max_errors": 2, "name": "cb-test",
        "log_status_change": true});
    let gw = start(service(json!([endpoint(
        "/cb",
        json!([backend(
            &mock.url(),
            "/x",
            json!({"extra_config": {"qos/circuit-breaker": cb}})
        )]),
        Value::Null
    )])))
    .await;
    let url = gw.url("/cb");

    // max_errors 2: the third consecutive error opens it; each is the backend's own error.
    for n in 1..=3 {
        let resp = get(&url).await;
        assert_eq!(resp.status, 500);
        assert!(
            resp.text().starts_with("invalid status code 500"),
            "{}",
            resp.text()
        );
        assert_eq!(mock.count(), n);
    }
    // Open: KrakenD's breaker error, as any backend error (500, the text with return_error_msg,
    // X-KrakenD-Completed false), and the backend is not called.
    let resp = get(&url).await;
    assert_eq!(resp.status, 500);
    assert_eq!(resp.text(), "circuit breaker is open");
    assert_eq!(resp.header("x-krakend-completed"), Some("false"));
    assert_eq!(mock.count(), 3);

    // After `timeout`, one trial goes through; it fails, so the breaker opens again at once.
    let trial = until_count(&mock, 4, &url).await;
    assert!(trial, "no trial call reached the backend after the timeout");
    let resp = get(&url).await;
    assert_eq!(resp.text(), "circuit breaker is open");
    assert_eq!(mock.count(), 4);

    // The backend recovers: the next trial succeeds and closes the breaker.
    healthy.store(true, Ordering::SeqCst);
    let resp = until_status(&url, 200, Duration::from_secs(5)).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json(), json!({"ok": true}));
    assert_eq!(mock.count(), 5);
    for n in 6..=8 {
        assert_eq!(get(&url).await.status, 200);
        assert_eq!(mock.count(), n);
    }
}

/// Sends GETs until the backend has seen `count` calls (for at most 5 s): whether it did.
async fn until_count(mock: &Backend, count: usize, url: &str) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while mock.count() < count {
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        get(url).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_counts_as_an_error() {
    // A timeout counts: the endpoint's deadline cuts the call, and the breaker sees it.
    let slow = Backend::start(|_| async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        Reply::json(200, &json!({}))
    })
    .await;
    // A no-op backend's statuses are passed on, not judged: only transport errors count.
    let (failing, _) = switchable().await;
    let cb = json!({"interval": 0, "timeout": 60, "max_errors": 0});
    let gw = start(service(json!([
        endpoint(
            "/slow",
            json!([backend(&slow.url(), "/s", json!({"extra_config": {"qos/circuit-breaker": cb}}))]),
            json!({"timeout": "200ms"})
        ),
        endpoint(
            "/noop",
            json!([backend(&failing.url(), "/n", json!({"encoding": "no-op",
                "extra_config": {"qos/circuit-breaker": cb}}))]),
            json!({"output_encoding": "no-op"})
        ),
        endpoint(
            "/details",
            json!([backend(&failing.url(), "/d", json!({
                "extra_config": {"qos/circuit-breaker": cb, "backend/http": {"return_error_details": "d"}}}))]),
            Value::Null
        )
    ])))
    .await;

    let resp = get(&gw.url("/slow")).await;
    assert_eq!(resp.status, 500);
    assert_eq!(resp.text(), "context deadline exceeded");
    let resp = get(&gw.url("/slow")).await;
    assert_eq!(resp.text(), "circuit breaker is open");
    assert_eq!(slow.count(), 1);

    for _ in 0..3 {
        let resp = get(&gw.url("/noop")).await;
        assert_eq!(resp.status, 500);
        assert_eq!(resp.text(), "down");
    }
    // return_error_details turns the status into data: not an error either.
    for _ in 0..3 {
        let resp = get(&gw.url("/details")).await;
        assert_eq!(resp.status, 200);
        assert_eq!(resp.json()["error_d"]["http_status_code"], 500);
    }
    assert_eq!(failing.count(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn its_config_is_checked() {
    let cb = |v: Value| {
        service(json!([endpoint(
            "/a",
            json!([backend(
                "http://127.0.0.1:10",
                "/a",
                json!({"extra_config": {"qos/circuit-breaker": v}})
            )]),
            Value::Null
        )]))
    };
    let error = try_start_gateway_with_components(
        cb(json!({"interval": -1, "timeout": "10s", "name": 3, "threshold": 1})),
        Registry::new(),
        &components(),
    )
    .await
    .unwrap_err()
    .to_string();
    let at = "test.json: endpoints[0].backend[0].extra_config[\"qos/circuit-breaker\"]";
    for expected in [
        format!("{at}.threshold: field \"threshold\" is not supported"),
        format!("{at}.max_errors: field \"max_errors\" is required"),
        format!("{at}.interval: expected a whole number of seconds, 0 or more, found -1"),
        format!("{at}.timeout: expected a whole number of seconds, 0 or more, found a string"),
        format!("{at}.name: expected a string, found a number"),
    ] {
        assert!(error.contains(&expected), "{expected}\n{error}");
    }
    // Without the component, the namespace is refused (fail closed).
    let error = try_start_gateway_with_components(
        cb(json!({"interval": 1, "timeout": 1, "max_errors": 1})),
        Registry::new(),
        &Components::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(error.contains("qos/circuit-breaker"), "{error}");
}
