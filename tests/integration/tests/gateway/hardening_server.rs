//! Every resource is bounded (server and proxy layer): each test is an adversarial client or
//! backend that held a resource without bound before the fix.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use sluice_integration::backend::Backend;
use sluice_integration::config::{backend, endpoint};
use sluice_integration::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A service with these endpoints and extra service fields (merged at the top level).
fn service_with(endpoints: Value, fields: Value) -> Value {
    let mut svc = service(endpoints);
    for (k, v) in fields.as_object().cloned().unwrap_or_default() {
        if k == "extra_config" {
            for (ns, block) in v.as_object().cloned().unwrap_or_default() {
                svc["extra_config"][ns] = block;
            }
        } else {
            svc[k] = v;
        }
    }
    svc
}

async fn ok_backend() -> Backend {
    Backend::start_sync(|_| Reply::json(200, &json!({"ok": true}))).await
}

/// What a raw connection saw: the status of the first answer (if any), when the answer's head
/// arrived, and when the server closed the connection (if it did before `limit`).
#[derive(Debug)]
struct Seen {
    status: Option<u16>,
    answered: Option<Duration>,
    closed: Option<Duration>,
    bytes: usize,
}

/// Writes `bytes`, then keeps the connection open without sending more, reading until the
/// server closes it or `limit` passes.
async fn send_and_watch(stream: &mut TcpStream, bytes: &[u8], limit: Duration) -> Seen {
    let started = Instant::now();
    stream.write_all(bytes).await.unwrap();
    let mut seen = Seen {
        status: None,
        answered: None,
        closed: None,
        bytes: 0,
    };
    let mut buf = vec![0_u8; 64 << 10];
    let mut head = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return seen,
            Ok(Ok(0)) | Ok(Err(_)) => {
                seen.closed = Some(started.elapsed());
                return seen;
            }
            Ok(Ok(n)) => {
                seen.bytes += n;
                if seen.status.is_none() {
                    head.extend_from_slice(&buf[..n.min(64)]);
                    if let Some(status) = std::str::from_utf8(&head)
                        .ok()
                        .and_then(|h| h.split(' ').nth(1))
                        .and_then(|s| s.get(..3))
                        .and_then(|s| s.parse().ok())
                    {
                        seen.status = Some(status);
                        seen.answered = Some(started.elapsed());
                    }
                }
            }
        }
    }
}

/// Item 1: 40 clients each announce a 1 MiB body, send 1 KiB and stall. The budget (4 MiB)
/// admits four; the other 36 get 503 at once instead of being buffered; a GET is served
/// meanwhile; the four are answered 408 and closed when `read_timeout` passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_bodies_have_a_deadline_and_a_shared_budget() {
    const READ_TIMEOUT: Duration = Duration::from_secs(3);
    let b = ok_backend().await;
    let gw = start_gateway(service_with(
        json!([
            endpoint(
                "/upload",
                json!([backend(&b.url(), "/upload", Value::Null)]),
                json!({"method": "POST"})
            ),
            endpoint(
                "/healthy",
                json!([backend(&b.url(), "/", Value::Null)]),
                Value::Null
            ),
        ]),
        json!({
            "read_timeout": "3s",
            "extra_config": {"sluice/server": {"max_buffered_body_bytes": 4 << 20}}
        }),
    ))
    .await;

    let mut request = format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
        gw.authority(),
        1 << 20
    )
    .into_bytes();
    request.extend_from_slice(&[b'x'; 1024]);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let started = Instant::now();
    for _ in 0..40 {
        let (addr, request, tx) = (gw.addr, request.clone(), tx.clone());
        tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let seen = send_and_watch(&mut stream, &request, READ_TIMEOUT * 3).await;
            let _ = tx.send(seen);
        });
    }
    drop(tx);

    let mut results = Vec::new();
    while results.len() < 36 {
        results.push(rx.recv().await.unwrap());
    }
    let refused_by = started.elapsed();
    assert!(
        results.iter().all(|s| s.status == Some(503)),
        "past the budget a body is refused: {results:?}"
    );
    // Served while four uploads still hold their share of the budget.
    let resp = get(&gw.url("/healthy")).await;
    assert_status(&resp, 200);
    assert!(
        started.elapsed() < READ_TIMEOUT,
        "36 refusals and a GET took {:?} (refusals after {refused_by:?})",
        started.elapsed()
    );

    while let Some(seen) = rx.recv().await {
        results.push(seen);
    }
    let stalled: Vec<&Seen> = results.iter().filter(|s| s.status != Some(503)).collect();
    assert_eq!(stalled.len(), 4, "{results:?}");
    for seen in stalled {
        assert_eq!(seen.status, Some(408), "{seen:?}");
        let closed = seen.closed.expect("the server closes a stalled upload");
        assert!(
            closed >= READ_TIMEOUT * 8 / 10 && closed < READ_TIMEOUT + Duration::from_secs(2),
            "closed after {closed:?}"
        );
    }
    for seen in &results {
        assert!(
            seen.closed.is_some(),
            "every refused upload is closed: {seen:?}"
        );
    }
}

/// Item 1 (`max_connections`): connections past the cap wait until one closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_max_connections_wait() {
    let b = ok_backend().await;
    let gw = start_gateway(service_with(
        json!([endpoint(
            "/healthy",
            json!([backend(&b.url(), "/", Value::Null)]),
            Value::Null
        )]),
        json!({"extra_config": {"sluice/server": {"max_connections": 2}}}),
    ))
    .await;
    let first = TcpStream::connect(gw.addr).await.unwrap();
    let mut second = TcpStream::connect(gw.addr).await.unwrap();
    // The second one is surely accepted once it is answered.
    let request = format!("GET /healthy HTTP/1.1\r\nHost: {}\r\n\r\n", gw.authority());
    let seen = send_and_watch(&mut second, request.as_bytes(), Duration::from_millis(500)).await;
    assert_eq!(seen.status, Some(200));
    let request = request.into_bytes();

    let addr = gw.addr;
    let third = tokio::spawn(async move { raw_request(addr, &request).await });
    let waited = tokio::time::timeout(Duration::from_millis(700), async {
        while !third.is_finished() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        waited.is_err(),
        "a third connection was served past the cap of 2"
    );
    drop(first);
    let resp = third.await.unwrap().unwrap();
    assert_eq!(resp.status, 200);
}

/// Item 1 (`idle_timeout`): a keep-alive connection waiting for its next request is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_after_idle_timeout() {
    let b = ok_backend().await;
    let gw = start_gateway(service_with(
        json!([endpoint(
            "/healthy",
            json!([backend(&b.url(), "/", Value::Null)]),
            Value::Null
        )]),
        json!({"idle_timeout": "1s"}),
    ))
    .await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    let request = format!("GET /healthy HTTP/1.1\r\nHost: {}\r\n\r\n", gw.authority());
    let seen = send_and_watch(&mut stream, request.as_bytes(), Duration::from_secs(4)).await;
    assert_eq!(seen.status, Some(200));
    let closed = seen.closed.expect("the idle connection is closed");
    assert!(
        closed >= Duration::from_millis(800) && closed < Duration::from_secs(3),
        "closed after {closed:?}"
    );
}

/// A backend streaming a body with no end (1 MiB frames, about a terabyte).
async fn endless_backend() -> Backend {
    Backend::start_sync(|_| {
        Reply::new(200)
            .header("content-type", "application/octet-stream")
            .repeat(
                Bytes::new(),
                Bytes::from(vec![b'x'; 1 << 20]),
                1 << 20,
                Bytes::new(),
            )
    })
    .await
}

/// Item 1 (`write_timeout`): a client that stops reading cannot hold a response open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_at_write_timeout() {
    let endless = endless_backend().await;
    let gw = start_gateway(service_with(
        json!([endpoint(
            "/stream",
            json!([backend(&endless.url(), "/", Value::Null)]),
            json!({"output_encoding": "no-op", "timeout": "60s"})
        )]),
        json!({"write_timeout": "1s"}),
    ))
    .await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    let request = format!("GET /stream HTTP/1.1\r\nHost: {}\r\n\r\n", gw.authority());
    stream.write_all(request.as_bytes()).await.unwrap();
    // The adversary: read nothing while the write deadline passes.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let seen = send_and_watch(&mut stream, b"", Duration::from_secs(3)).await;
    assert_eq!(seen.status, Some(200));
    assert!(
        seen.closed.is_some(),
        "the response was still being written 5.5s after a 1s write_timeout ({} bytes read)",
        seen.bytes
    );
}

/// Item 2: a `no-op` answer's body ends when the endpoint deadline passes, however much the
/// backend still has to send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_timeout_bounds_a_no_op_body() {
    let endless = endless_backend().await;
    let gw = start_gateway(service(json!([endpoint(
        "/stream",
        json!([backend(&endless.url(), "/", Value::Null)]),
        json!({"output_encoding": "no-op", "timeout": "1s"})
    )])))
    .await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    let request = format!("GET /stream HTTP/1.1\r\nHost: {}\r\n\r\n", gw.authority());
    let seen = send_and_watch(&mut stream, request.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(seen.status, Some(200));
    let closed = seen.closed.unwrap_or_else(|| {
        panic!(
            "still streaming after 5s ({} MiB) with a 1s endpoint timeout",
            seen.bytes >> 20
        )
    });
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
}

/// Item 3: `.`/`..` param values are refused (also with `disable_path_decoding`), and values
/// from a sequential backend's answer stay one path segment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn params_never_change_the_backend_path() {
    let b = Backend::start_sync(|r| {
        if r.path == "/first" {
            Reply::json(200, &json!({"next": "../admin"}))
        } else {
            Reply::json(200, &json!({"path": r.path}))
        }
    })
    .await;
    let endpoints = json!([
        endpoint(
            "/items/{id}",
            json!([backend(&b.url(), "/items/{id}", Value::Null)]),
            Value::Null
        ),
        endpoint(
            "/seq",
            json!([
                backend(&b.url(), "/first", json!({"group": "a"})),
                backend(&b.url(), "/items/{resp0_a.next}", json!({"group": "b"}))
            ]),
            json!({"extra_config": {"proxy": {"sequential": true}}})
        ),
    ]);
    let guarded = start_gateway(service(endpoints.clone())).await;
    let mut decoding_off = service(endpoints);
    decoding_off["extra_config"]["router"]["disable_path_decoding"] = json!(true);
    let decoding_off = start_gateway(decoding_off).await;

    for (gw, path) in [
        (&guarded, "/items/.."),
        (&guarded, "/items/."),
        (&decoding_off, "/items/.."),
        (&decoding_off, "/items/%2e%2e"),
        (&decoding_off, "/items/%2E"),
        (&decoding_off, "/items/a%2F..%2F..%2Fadmin"),
    ] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", gw.authority());
        let resp = raw_request(gw.addr, request.as_bytes()).await.unwrap();
        assert_eq!(resp.status, 400, "{path}: {resp:?}");
    }
    assert_eq!(b.count(), 0, "no refused param reached the backend");

    let resp = get(&guarded.url("/seq")).await;
    assert_status(&resp, 200);
    let paths: Vec<String> = b.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/first", "/items/..%2Fadmin"]);
}

/// Item 4: hop-by-hop headers (and those `Connection` names) are dropped on the way to the
/// backend, with `input_headers: ["*"]`, and on the way back, also from a `no-op` answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_removed_both_ways() {
    let b = Backend::start_sync(|_| {
        Reply::new(200)
            .header("connection", "X-Backend-Secret")
            .header("x-backend-secret", "1")
            .header("keep-alive", "timeout=5")
            .header("proxy-connection", "keep-alive")
            .header("x-kept", "1")
            .body("hi")
    })
    .await;
    let gw = start_gateway(service(json!([endpoint(
        "/raw",
        json!([backend(&b.url(), "/", Value::Null)]),
        json!({"output_encoding": "no-op", "input_headers": ["*"]})
    )])))
    .await;
    let request = format!(
        "GET /raw HTTP/1.1\r\nHost: {}\r\nConnection: X-Secret\r\nX-Secret: 1\r\n\
         Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n\
         Trailer: X-T\r\nX-Kept: 1\r\n\r\n",
        gw.authority()
    );
    let resp = raw_request(gw.addr, request.as_bytes()).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"hi");
    for name in [
        "x-backend-secret",
        "keep-alive",
        "proxy-connection",
        "upgrade",
        "trailer",
    ] {
        assert_eq!(
            resp.header(name),
            None,
            "{name} reached the client: {resp:?}"
        );
    }
    assert_eq!(resp.header("x-kept"), Some("1"));

    let got = b.last();
    for name in [
        "connection",
        "x-secret",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
    ] {
        assert_eq!(got.header(name), None, "{name} reached the backend");
    }
    assert_eq!(got.header("x-kept"), Some("1"));
}

/// A `no-op` answer's fields reach the client as the backend wrote them (repeats in order, odd
/// spacing, its own `Date`), without hop-by-hop fields, those `Connection` names or forged
/// gateway headers, whichever server writes the answer (the gateway's own loop for a bodiless
/// request, hyper for one with a body) and with a stage that acts on answers (CORS) between:
/// the fields handed on unread (`ForwardedFields`) and those put in a map agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_op_fields_reach_the_client_as_the_backend_wrote_them() {
    const ANSWER: &str = "HTTP/1.1 203 Non-Authoritative Information\r\n\
        Server: raw\r\nSet-Cookie: a=1\r\nConnection: close, X-Hop\r\nX-Hop: secret\r\n\
        x-mixed-CASE:\tspaced  \r\nSet-Cookie: b=2\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\n\
        X-Sluice: forged\r\nX-KrakenD-Completed: true\r\nKeep-Alive: timeout=5\r\n\
        Proxy-Authenticate: Basic\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi";
    let b = RawBackend::start(RawBehaviour::Write(Bytes::from_static(ANSWER.as_bytes()))).await;
    let endpoints = json!([
        endpoint(
            "/raw",
            json!([backend(&b.url(), "/", json!({"encoding": "no-op"}))]),
            json!({"output_encoding": "no-op"})
        ),
        endpoint(
            "/raw",
            json!([backend(&b.url(), "/", json!({"encoding": "no-op"}))]),
            json!({"method": "POST", "output_encoding": "no-op"})
        ),
    ]);
    let plain = start_gateway(service(endpoints.clone())).await;
    let mut with_cors = service(endpoints);
    with_cors["extra_config"]["security/cors"] = json!({"allow_origins": ["*"]});
    let cors = sluice_stage::Components::new().with(sluice_security::cors::Cors);
    let with_cors =
        try_start_gateway_with_components(with_cors, sluice_plugin::Registry::new(), &cors)
            .await
            .unwrap();

    for (gw, origin) in [(&plain, ""), (&with_cors, "Origin: http://a.example\r\n")] {
        for (method, body) in [("GET", ""), ("POST", "x")] {
            let request = format!(
                "{method} /raw HTTP/1.1\r\nHost: {}\r\n{origin}Content-Length: {}\r\n\r\n{body}",
                gw.authority(),
                body.len()
            );
            let request = if body.is_empty() {
                request.replace("Content-Length: 0\r\n", "")
            } else {
                request
            };
            let resp = raw_request(gw.addr, request.as_bytes()).await.unwrap();
            let case = format!("{method} {origin:?}: {resp:?}");
            assert_eq!(resp.status, 203, "{case}");
            assert_eq!(resp.body, b"hi", "{case}");
            let mut fields: Vec<(String, String)> = resp
                .headers
                .iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
                .filter(|(name, _)| !name.starts_with("access-control-") && name != "vary")
                .filter(|(name, _)| name != "x-sluice")
                .collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            let expected = [
                ("content-length", "2"),
                ("content-type", "text/plain"),
                ("date", "Tue, 01 Dec 2026 10:00:00 GMT"),
                ("server", "raw"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2"),
                ("x-krakend-completed", "false"),
                ("x-mixed-case", "spaced"),
            ];
            let expected: Vec<(String, String)> = expected
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect();
            assert_eq!(fields, expected, "{case}");
            let versions: Vec<_> = resp
                .headers
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case("x-sluice"))
                .collect();
            assert_eq!(versions.len(), 1, "{case}");
            assert_ne!(versions[0].1, "forged", "{case}");
            if !origin.is_empty() {
                assert_eq!(
                    resp.header("access-control-allow-origin"),
                    Some("*"),
                    "{case}"
                );
            }
        }
    }
}

/// Item 5: behind a trusted proxy, `X-Forwarded-For: 6.6.6.6, junk` does not make 6.6.6.6 the
/// client: the walk stops at the junk and the peer is the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_x_forwarded_for_entry_that_does_not_parse_ends_the_walk() {
    let b = ok_backend().await;
    let mut svc = service(json!([endpoint(
        "/ip",
        json!([backend(&b.url(), "/", Value::Null)]),
        Value::Null
    )]));
    svc["extra_config"]["router"]["forwarded_by_client_ip"] = json!(true);
    svc["extra_config"]["router"]["remote_ip_headers"] = json!(["X-Forwarded-For"]);
    svc["extra_config"]["router"]["trusted_proxies"] = json!(["127.0.0.1/32"]);
    let gw = start_gateway(svc).await;

    let resp = request(
        http::Method::GET,
        &gw.url("/ip"),
        &[("X-Forwarded-For", "6.6.6.6, junk")],
        Bytes::new(),
    )
    .await;
    assert_status(&resp, 200);
    assert_eq!(b.last().header("x-forwarded-for"), Some("127.0.0.1"));

    // A well-formed chain is still honoured.
    request(
        http::Method::GET,
        &gw.url("/ip"),
        &[("X-Forwarded-For", "6.6.6.6, 127.0.0.1")],
        Bytes::new(),
    )
    .await;
    assert_eq!(b.last().header("x-forwarded-for"), Some("6.6.6.6"));
}

fn big_head(gw: &Gateway, header_bytes: usize) -> Vec<u8> {
    let mut request = format!("GET /healthy HTTP/1.1\r\nHost: {}\r\n", gw.authority());
    let line = format!("X-Pad: {}\r\n", "p".repeat(8000));
    for _ in 0..header_bytes / line.len() {
        request.push_str(&line);
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// Item 6: 100 KiB of headers is refused by default (64 KiB), and served when configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_header_bytes_defaults_to_64_kib() {
    let b = ok_backend().await;
    let endpoints = json!([endpoint(
        "/healthy",
        json!([backend(&b.url(), "/", Value::Null)]),
        Value::Null
    )]);
    let gw = start_gateway(service(endpoints.clone())).await;
    let resp = raw_request(gw.addr, &big_head(&gw, 100 << 10))
        .await
        .unwrap();
    assert_eq!(resp.status, 431, "{resp:?}");
    let resp = raw_request(gw.addr, &big_head(&gw, 32 << 10))
        .await
        .unwrap();
    assert_eq!(resp.status, 200);

    let mut svc = service(endpoints);
    svc["max_header_bytes"] = json!(1 << 20);
    let gw = start_gateway(svc).await;
    let resp = raw_request(gw.addr, &big_head(&gw, 100 << 10))
        .await
        .unwrap();
    assert_eq!(resp.status, 200, "still configurable");
}

/// Item 7: a `Content-Length` line padded past 64 bytes no longer switches the guard off: the
/// ambiguous request is refused, and so is a second one pipelined after a padded first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_guard_fails_closed() {
    let b = ok_backend().await;
    let gw = start_gateway(service(json!([endpoint(
        "/upload",
        json!([backend(&b.url(), "/upload", Value::Null)]),
        json!({"method": "POST"})
    )])))
    .await;
    let pad = " ".repeat(80);
    let host = gw.authority();
    let ambiguous = format!(
        "POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Length:{pad}4\r\n\
         Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    );
    let resp = raw_request(gw.addr, ambiguous.as_bytes()).await.unwrap();
    assert_eq!(resp.status, 400, "{resp:?}");

    let pipelined = format!(
        "POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Length:{pad}4\r\n\r\nbody\
         POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\n\
         Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    );
    let all = raw_exchange(gw.addr, pipelined.as_bytes()).await.unwrap();
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(!text.contains("HTTP/1.1 200"), "{text}");
    assert_eq!(b.count(), 0, "no ambiguous request reached the backend");
}
