//! The gateway under misbehaving backends and malformed clients: every failure becomes a clean
//! answer within the endpoint timeout, nothing takes the gateway down, and the next healthy
//! request is served.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};
use sluice_integration::backend::Backend;
use sluice_integration::config::{backend, endpoint};
use sluice_integration::mocks::{lura, misbehaving};
use sluice_integration::*;

const TIMEOUT_MS: u64 = 1000;

/// A gateway with `/bad` on `bad_host`, `/healthy` on a good backend, endpoint timeout 1s.
async fn gateway_with(bad_host: &str) -> (Gateway, Backend) {
    let healthy = lura::user().await;
    let gw = start_gateway(service(json!([
        endpoint(
            "/bad",
            json!([backend(bad_host, "/", Value::Null)]),
            json!({"timeout": format!("{TIMEOUT_MS}ms")})
        ),
        endpoint(
            "/healthy",
            json!([backend(&healthy.url(), "/", Value::Null)]),
            Value::Null
        ),
        endpoint(
            "/items/{id}",
            json!([backend(&healthy.url(), "/items/{id}", Value::Null)]),
            Value::Null
        ),
        endpoint(
            "/upload",
            json!([backend(&healthy.url(), "/upload", Value::Null)]),
            json!({"method": "POST"})
        ),
    ])))
    .await;
    (gw, healthy)
}

/// The gateway still serves a good request.
async fn assert_still_healthy(gw: &Gateway) {
    let resp = get(&gw.url("/healthy")).await;
    assert_complete_json(&resp, 3600);
    assert_eq!(resp.text(), r#"{"email":"some@email.com","name":"a"}"#);
}

/// `GET /bad` answers 500 within the timeout (plus margin).
async fn assert_bad_is_500_in_time(gw: &Gateway) -> Response {
    let start = Instant::now();
    let resp = get(&gw.url("/bad")).await;
    let elapsed = start.elapsed();
    assert_status(&resp, 500);
    assert_completed(&resp, false);
    assert_no_cache_control(&resp);
    let limit = Duration::from_millis(TIMEOUT_MS * 3 / 2);
    assert!(
        elapsed < limit,
        "answered after {elapsed:?}, limit {limit:?}"
    );
    resp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_backend_answers_500_within_the_timeout() {
    let hang = misbehaving::hang().await;
    let (gw, _healthy) = gateway_with(&hang.url()).await;

    let start = Instant::now();
    assert_bad_is_500_in_time(&gw).await;
    assert!(
        start.elapsed() >= Duration::from_millis(TIMEOUT_MS * 8 / 10),
        "it waited for the backend until about the deadline"
    );
    assert_eq!(hang.count(), 1);
    assert_still_healthy(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_body_answers_500_within_the_timeout() {
    let stall = misbehaving::stall_body().await;
    let (gw, _healthy) = gateway_with(&stall.url()).await;

    assert_bad_is_500_in_time(&gw).await;
    assert_still_healthy(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_connection_is_a_500() {
    let reset = misbehaving::reset().await;
    let (gw, _healthy) = gateway_with(&reset.url()).await;

    assert_bad_is_500_in_time(&gw).await;
    assert!(reset.connections() >= 1);
    assert_still_healthy(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_connection_without_answer_is_a_500() {
    let close = misbehaving::close().await;
    let (gw, _healthy) = gateway_with(&close.url()).await;

    assert_bad_is_500_in_time(&gw).await;
    assert!(close.connections() >= 1);
    assert_still_healthy(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_is_a_500() {
    let invalid = misbehaving::invalid_json().await;
    let (gw, _healthy) = gateway_with(&invalid.url()).await;

    let resp = assert_bad_is_500_in_time(&gw).await;
    assert!(
        !resp.body.is_empty(),
        "return_error_msg is on: the decode error is told"
    );
    assert_eq!(invalid.count(), 1);
    assert_still_healthy(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unaccepted_status_is_a_500() {
    let wrong = misbehaving::wrong_status().await;
    let (gw, _healthy) = gateway_with(&wrong.url()).await;

    let resp = assert_bad_is_500_in_time(&gw).await;
    assert_eq!(
        resp.text(),
        format!("invalid status code 503 [GET /]: {}/", wrong.url())
    );
    assert_still_healthy(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_status_line_is_a_500() {
    let garbage = misbehaving::garbage_status_line().await;
    let (gw, _healthy) = gateway_with(&garbage.url()).await;

    assert_bad_is_500_in_time(&gw).await;
    assert!(garbage.connections() >= 1);
    assert_still_healthy(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_chunked_body_is_refused() {
    let huge = misbehaving::huge_body(false).await;
    let (gw, _healthy) = gateway_with(&huge.url()).await;

    let resp = assert_bad_is_500_in_time(&gw).await;
    assert!(resp.body.len() < 64 * 1024, "the huge body is not relayed");
    assert_still_healthy(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_body_with_content_length_is_refused() {
    let huge = misbehaving::huge_body(true).await;
    let (gw, _healthy) = gateway_with(&huge.url()).await;

    let resp = assert_bad_is_500_in_time(&gw).await;
    assert!(resp.body.len() < 64 * 1024, "the huge body is not relayed");
    assert_still_healthy(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_head_is_refused() {
    let (gw, healthy) = gateway_with("http://127.0.0.1:59999").await;
    // Well above the default `max_header_bytes` of 1 MiB.
    let big = "a".repeat(2 * 1024 * 1024);
    let req = format!(
        "GET /healthy HTTP/1.1\r\nHost: {}\r\nX-Big: {big}\r\nConnection: close\r\n\r\n",
        gw.authority()
    );

    let resp = raw_request(gw.addr, req.as_bytes()).await.unwrap();

    assert!(matches!(resp.status, 431 | 400), "status {}", resp.status);
    assert_eq!(healthy.count(), 0, "the backend never saw it");
    assert_still_healthy(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_and_malformed_params_are_a_400() {
    let (gw, healthy) = gateway_with("http://127.0.0.1:59999").await;

    for path in ["/items/a%2Fb", "/items/a%3Fb", "/items/%zz"] {
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            gw.authority()
        );
        let resp = raw_request(gw.addr, req.as_bytes()).await.unwrap();
        assert_eq!(
            resp.status,
            400,
            "{path}: {:?}",
            String::from_utf8_lossy(&resp.body)
        );
    }
    assert_eq!(healthy.count(), 0, "the backend never saw them");

    let resp = get(&gw.url("/items/plain")).await;
    assert_complete_json(&resp, 3600);
    assert_eq!(healthy.last().path, "/items/plain");
}

/// A request carrying both `Content-Length` and `Transfer-Encoding`, followed by a second
/// request that only exists if the first body is framed by `Content-Length`.
fn smuggling_attempt(gw: &Gateway) -> String {
    format!(
        concat!(
            "POST /upload HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n",
            "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
            "2\r\n{{}}\r\n0\r\n\r\n",
            "GET /healthy HTTP/1.1\r\nHost: x\r\n\r\n"
        ),
        gw.authority()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_with_transfer_encoding_is_a_400() {
    let (gw, healthy) = gateway_with("http://127.0.0.1:59999").await;

    let resp = raw_request(gw.addr, smuggling_attempt(&gw).as_bytes())
        .await
        .unwrap();

    assert_eq!(resp.status, 400);
    assert_eq!(
        healthy.count(),
        0,
        "neither the request nor the smuggled one reached the backend"
    );
    assert_still_healthy(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggled_request_is_never_served() {
    let (gw, healthy) = gateway_with("http://127.0.0.1:59999").await;

    let all = raw_exchange(gw.addr, smuggling_attempt(&gw).as_bytes())
        .await
        .unwrap();

    let text = String::from_utf8_lossy(&all);
    assert_eq!(
        text.matches("HTTP/1.1 ").count(),
        1,
        "one answer, then the connection is closed: {text}"
    );
    assert!(
        healthy.received().iter().all(|r| r.path == "/upload"),
        "the smuggled GET /healthy never reached a backend: {:?}",
        healthy.received()
    );
    assert_still_healthy(&gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_does_not_hurt_the_gateway() {
    let hang = misbehaving::hang().await;
    let (gw, _healthy) = gateway_with(&hang.url()).await;

    // The client gives up long before the endpoint timeout.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(100),
        try_request(Method::GET, &gw.url("/bad"), &[], ""),
    )
    .await;
    assert!(
        abandoned.is_err(),
        "the hanging backend cannot have answered"
    );

    assert_still_healthy(&gw).await;
}
