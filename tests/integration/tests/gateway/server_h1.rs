//! The gateway's own HTTP/1.1 connection loop (sluice-server's h1.rs) and its hand-over to
//! hyper: requests without a body are served by the loop, anything else by hyper on the same
//! connection, with nothing lost or reordered between them.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};
use sluice_integration::backend::Backend;
use sluice_integration::config::{backend, endpoint};
use sluice_integration::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A backend that answers with what it was sent: method, path and body.
async fn echo_backend() -> Backend {
    Backend::start_sync(|r| {
        Reply::json(
            200,
            &json!({"method": r.method.as_str(), "path": r.path, "body": r.body_text()}),
        )
    })
    .await
}

async fn gateway_on(b: &Backend, fields: Value) -> Gateway {
    let mut svc = service(json!([
        endpoint(
            "/get",
            json!([backend(&b.url(), "/g", Value::Null)]),
            json!({})
        ),
        endpoint(
            "/post",
            json!([backend(&b.url(), "/p", Value::Null)]),
            json!({"method": "POST"})
        ),
    ]));
    for (k, v) in fields.as_object().cloned().unwrap_or_default() {
        svc[k] = v;
    }
    start_gateway(svc).await
}

/// Writes `bytes` on one connection and reads until the gateway closes it (at most 10 s).
async fn exchange(gw: &Gateway, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(gw.authority()).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let seen = read_until_closed(&mut stream, Duration::from_secs(10), "the gateway closes").await;
    String::from_utf8_lossy(&seen).into_owned()
}

/// Everything `stream` gives until the gateway closes it, which must happen within `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration, what: &str) -> Vec<u8> {
    let mut seen = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut seen))
        .await
        .unwrap_or_else(|_| panic!("{what}: not closed within {limit:?}"))
        .unwrap();
    seen
}

/// Requests written in one go, bodiless and with a body mixed: every one answered, in order,
/// the ones after the first body by hyper on the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_cross_the_hand_over_in_order() {
    let b = echo_backend().await;
    let gw = gateway_on(&b, json!({})).await;
    let host = gw.authority();
    let requests = format!(
        "GET /get?n=1 HTTP/1.1\r\nHost: {host}\r\n\r\n\
         GET /get?n=2 HTTP/1.1\r\nHost: {host}\r\n\r\n\
         POST /post HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\n\r\nhello\
         GET /get?n=3 HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    let seen = exchange(&gw, requests.as_bytes()).await;
    assert_eq!(seen.matches("HTTP/1.1 200 OK").count(), 4, "{seen}");
    let order: Vec<usize> = [
        "\"method\":\"GET\"",
        "\"body\":\"hello\"",
        "connection: close",
    ]
    .iter()
    .map(|needle| {
        seen.find(needle)
            .unwrap_or_else(|| panic!("{needle}: {seen}"))
    })
    .collect();
    assert!(order[0] < order[1] && order[1] < order[2], "{seen}");
    let methods: Vec<String> = b.received().iter().map(|r| r.method.to_string()).collect();
    assert_eq!(methods, ["GET", "GET", "POST", "GET"]);
}

/// HTTP/1.0 (hyper's), `Connection: close` and HEAD (the loop's) end or frame the answer as
/// HTTP/1.1 says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_ends_and_head_answers() {
    let b = echo_backend().await;
    let gw = gateway_on(&b, json!({})).await;
    let host = gw.authority();

    let seen = exchange(
        &gw,
        format!("GET /get HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(seen.starts_with("HTTP/1.0 200 OK\r\n"), "{seen}");

    let seen = exchange(
        &gw,
        format!("GET /get HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(seen.starts_with("HTTP/1.1 200 OK\r\n"), "{seen}");
    assert!(seen.contains("\r\nconnection: close\r\n"), "{seen}");
    assert!(seen.contains("\r\ndate: "), "{seen}");
    assert!(
        seen.ends_with('}'),
        "the whole body, then the close: {seen}"
    );

    let seen = exchange(
        &gw,
        format!(
            "HEAD /get HTTP/1.1\r\nHost: {host}\r\n\r\n\
             GET /get HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    let (head_answer, get_answer) = seen.split_at(seen.rfind("HTTP/1.1 ").unwrap());
    assert!(head_answer.starts_with("HTTP/1.1 "), "{seen}");
    assert!(
        head_answer.ends_with("\r\n\r\n"),
        "no body after HEAD's head: {seen}"
    );
    assert!(get_answer.starts_with("HTTP/1.1 200 OK"), "{seen}");
}

/// A head sent a byte at a time is read whole; one that stops half-way is closed at
/// `read_header_timeout` without an answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_in_pieces_and_heads_that_stall() {
    let b = echo_backend().await;
    let gw = gateway_on(&b, json!({"read_header_timeout": "1s"})).await;
    let host = gw.authority();

    let request = format!("GET /get HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let mut stream = TcpStream::connect(&host).await.unwrap();
    for byte in request.as_bytes() {
        stream.write_all(&[*byte]).await.unwrap();
        stream.flush().await.unwrap();
    }
    let seen = read_until_closed(&mut stream, Duration::from_secs(10), "answered").await;
    assert!(
        seen.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        seen.escape_ascii()
    );

    let mut stream = TcpStream::connect(&host).await.unwrap();
    stream
        .write_all(format!("GET /get HTTP/1.1\r\nHost: {host}\r\n").as_bytes())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let seen = read_until_closed(&mut stream, Duration::from_secs(5), "the head's deadline").await;
    assert!(seen.is_empty(), "{}", seen.escape_ascii());
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

/// Heads the loop does not take are hyper's to refuse, as before: a bad header name (400), too
/// many headers (431), a folded header line (400).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_heads_get_hypers_answers() {
    let b = echo_backend().await;
    let gw = gateway_on(&b, json!({})).await;
    let host = gw.authority();
    let many: String = (0..101).map(|i| format!("x-{i}: 1\r\n")).collect();
    for (request, status) in [
        (
            format!("GET /get HTTP/1.1\r\nHost: {host}\r\nBad Name: 1\r\n\r\n"),
            "400",
        ),
        (
            format!("GET /get HTTP/1.1\r\nHost: {host}\r\n{many}\r\n"),
            "431",
        ),
        (
            format!("GET /get HTTP/1.1\r\nHost: {host}\r\nX: a\r\n b\r\n\r\n"),
            "400",
        ),
    ] {
        let seen = exchange(&gw, request.as_bytes()).await;
        assert!(
            seen.starts_with(&format!("HTTP/1.1 {status} ")),
            "{status}: {seen}"
        );
    }
    assert_eq!(b.count(), 0);
}

/// Shutdown closes a keep-alive connection that waits for its next request at once, and lets
/// one with a request in flight finish it, with `connection: close`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_connections_and_finishes_busy_ones() {
    let slow = Backend::start(|_| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Reply::json(200, &json!({"slow": true}))
    })
    .await;
    let gw = gateway_on(&slow, json!({"max_shutdown_wait_time": "5s"})).await;
    let host = gw.authority();
    let request = format!("GET /get HTTP/1.1\r\nHost: {host}\r\n\r\n");

    // One connection served once and now idle, one with a request in flight.
    let mut idle = TcpStream::connect(&host).await.unwrap();
    idle.write_all(request.as_bytes()).await.unwrap();
    let mut first = vec![0_u8; 4096];
    let n = idle.read(&mut first).await.unwrap();
    assert!(
        first[..n].starts_with(b"HTTP/1.1 200 OK"),
        "{}",
        first[..n].escape_ascii()
    );
    let mut busy = TcpStream::connect(&host).await.unwrap();
    busy.write_all(request.as_bytes()).await.unwrap();
    // In flight once the backend has it (the second request it sees).
    tokio::time::timeout(Duration::from_secs(5), async {
        while slow.count() < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the busy request reached the backend");

    let started = std::time::Instant::now();
    let stopping = tokio::spawn(gw.shutdown());
    let rest = read_until_closed(&mut idle, Duration::from_secs(2), "the idle connection").await;
    assert!(rest.is_empty(), "{}", rest.escape_ascii());
    let answer = read_until_closed(&mut busy, Duration::from_secs(3), "the busy connection").await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    stopping.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
