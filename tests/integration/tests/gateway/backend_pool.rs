//! The pool of backend connections (plain http, HTTP/1.1), as KrakenD's transport options
//! configure it: connections are reused, a connection the backend closed while idle costs no
//! request, idle ones close after `idle_connection_timeout`, at most
//! `max_idle_connections_per_host` stay, and `disable_keep_alives` dials every call.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

fn one_endpoint(url: &str, extra: Value) -> Value {
    let mut config = service(json!([endpoint(
        "/data",
        json!([backend(url, "/data", json!({}))]),
        json!({})
    )]));
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        config.extend(extra.clone());
    }
    config
}

fn peers(mock: &Backend) -> HashSet<SocketAddr> {
    mock.received().iter().map(|r| r.peer).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_calls_share_one_connection_and_send_the_urls_host() {
    let mock = Backend::start_sync(|_| Reply::json(200, &json!({"ok": true}))).await;
    let gw = start_gateway(one_endpoint(&mock.url(), json!({}))).await;
    for _ in 0..20 {
        assert_eq!(get(&gw.url("/data")).await.status, 200);
    }
    assert_eq!(mock.count(), 20);
    assert_eq!(peers(&mock).len(), 1, "one connection for sequential calls");
    assert_eq!(
        mock.last().header("host"),
        Some(mock.authority().as_str()),
        "Host is the URL's authority"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_keep_alives_dials_every_call() {
    let mock = Backend::start_sync(|_| Reply::json(200, &json!({"ok": true}))).await;
    let gw = start_gateway(one_endpoint(
        &mock.url(),
        json!({"disable_keep_alives": true}),
    ))
    .await;
    for _ in 0..5 {
        assert_eq!(get(&gw.url("/data")).await.status, 200);
    }
    assert_eq!(peers(&mock).len(), 5, "a new connection per call");
}

/// A backend on raw sockets: answers each request with a keep-alive 200 and then, when
/// `close_after_answer`, closes the connection without saying so (as a backend's idle timeout
/// does). Reports each connection's end (EOF from the gateway) with the time since its last
/// answer.
/// With `hold`, each connection's first answer waits until that many connections have a
/// request waiting.
async fn raw_backend(
    close_after_answer: bool,
    hold: Option<usize>,
) -> (SocketAddr, mpsc::UnboundedReceiver<Duration>, Arc<()>) {
    let hold = hold.map(|n| Arc::new(tokio::sync::Barrier::new(n)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (ends, ended) = mpsc::unbounded_channel();
    let alive = Arc::new(());
    let guard = Arc::downgrade(&alive);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            if guard.upgrade().is_none() {
                return;
            }
            let ends = ends.clone();
            let mut hold = hold.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut filled = 0;
                let mut last_answer = Instant::now();
                loop {
                    let Ok(n) = stream.read(&mut buf[filled..]).await else {
                        return;
                    };
                    if n == 0 {
                        let _ = ends.send(last_answer.elapsed());
                        return;
                    }
                    filled += n;
                    // Requests without a body: one per blank line.
                    while let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.copy_within(end + 4..filled, 0);
                        filled -= end + 4;
                        if let Some(barrier) = hold.take() {
                            barrier.wait().await;
                        }
                        let answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: keep-alive\r\n\r\n{\"ok\":true}";
                        if stream.write_all(answer).await.is_err() {
                            return;
                        }
                        last_answer = Instant::now();
                        if close_after_answer {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, ended, alive)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_backend_closed_while_idle_costs_no_request() {
    let (addr, _ended, _alive) = raw_backend(true, None).await;
    let gw = start_gateway(one_endpoint(&format!("http://{addr}"), json!({}))).await;
    // Every call finds the previous connection closed by the backend, either already known to
    // be closed or found so when the request is written: each must still be answered.
    for i in 0..30 {
        let response = get(&gw.url("/data")).await;
        assert_eq!(response.status, 200, "call {i}: {}", response.text());
        assert_eq!(response.json(), json!({"ok": true}), "call {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_after_idle_connection_timeout() {
    let (addr, mut ended, _alive) = raw_backend(false, None).await;
    let gw = start_gateway(one_endpoint(
        &format!("http://{addr}"),
        json!({"idle_connection_timeout": "300ms"}),
    ))
    .await;
    assert_eq!(get(&gw.url("/data")).await.status, 200);
    let idle_for = tokio::time::timeout(Duration::from_secs(10), ended.recv())
        .await
        .expect("the idle connection is closed by the gateway")
        .unwrap();
    // Swept every half limit: closed after the limit, before 1.5 times it (plus scheduling).
    assert!(
        idle_for >= Duration::from_millis(300) && idle_for < Duration::from_secs(3),
        "closed after {idle_for:?} idle"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_idle_connections_per_host_stay_open() {
    // Four calls held until all four wait need four connections; once idle, one may stay.
    let (addr, mut ended, _alive) = raw_backend(false, Some(4)).await;
    let gw = start_gateway(one_endpoint(
        &format!("http://{addr}"),
        json!({"max_idle_connections_per_host": 1}),
    ))
    .await;
    let url = gw.url("/data");
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { get(&url).await.status })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    for i in 0..3 {
        tokio::time::timeout(Duration::from_secs(10), ended.recv())
            .await
            .unwrap_or_else(|_| panic!("connection {i} of the 3 extra is closed"));
    }
    // The one kept is reused: a further call opens nothing and closes nothing.
    assert_eq!(get(&gw.url("/data")).await.status, 200);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), ended.recv())
            .await
            .is_err(),
        "the kept connection stays open"
    );
}

/// A backend on raw sockets that writes `answer` for every request (each read up to its blank
/// line), closing the connection after it when `close`. Counts the connections it accepted.
async fn scripted_backend(answer: &'static [u8], close: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut filled = 0;
                loop {
                    let Ok(n) = stream.read(&mut buf[filled..]).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    filled += n;
                    while let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.copy_within(end + 4..filled, 0);
                        filled -= end + 4;
                        if stream.write_all(answer).await.is_err() || close {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_after_an_answer_are_never_taken_for_the_next_one() {
    // A second answer smuggled behind the first: the connection is not reused, so every call
    // gets the first answer on a connection of its own.
    let (addr, accepted) = scripted_backend(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}\
HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"evil\":true}",
        false,
    )
    .await;
    let gw = start_gateway(one_endpoint(&format!("http://{addr}"), json!({}))).await;
    for i in 0..3 {
        let response = get(&gw.url("/data")).await;
        assert_eq!(response.status, 200, "call {i}: {}", response.text());
        assert_eq!(response.json(), json!({"ok": true}), "call {i}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3, "a connection per call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_in_chunks_until_the_close_or_after_1xx_are_read_whole() {
    let cases: [(&str, &'static [u8], bool, usize); 4] = [
        (
            "chunked, with an extension and a trailer",
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
5;ext=1\r\n{\"ok\"\r\n6\r\n:true}\r\n0\r\nx-trailer: t\r\n\r\n",
            false,
            1,
        ),
        (
            "HTTP/1.0 until the close",
            b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"ok\":true}",
            true,
            3,
        ),
        (
            "after 100 Continue and 103 Early Hints",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}",
            false,
            1,
        ),
        (
            "Connection: close",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}",
            true,
            3,
        ),
    ];
    for (what, answer, close, connections) in cases {
        let (addr, accepted) = scripted_backend(answer, close).await;
        let gw = start_gateway(one_endpoint(&format!("http://{addr}"), json!({}))).await;
        for i in 0..3 {
            let response = get(&gw.url("/data")).await;
            assert_eq!(
                response.status,
                200,
                "{what}, call {i}: {}",
                response.text()
            );
            assert_eq!(response.json(), json!({"ok": true}), "{what}, call {i}");
            assert!(
                response.header("link").is_none(),
                "{what}: a 1xx's headers are not kept"
            );
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            connections,
            "{what}: connections"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_answer_is_a_bad_gateway_and_its_connection_is_dropped() {
    for (what, answer) in [
        (
            "two lengths",
            &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"[..],
        ),
        (
            "a bad chunk size",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n",
        ),
        ("not HTTP", b"SSH-2.0-OpenSSH_9.6\r\n\r\n"),
    ] {
        let (addr, accepted) = scripted_backend(answer, false).await;
        let gw = start_gateway(one_endpoint(&format!("http://{addr}"), json!({}))).await;
        for i in 0..2 {
            let response = get(&gw.url("/data")).await;
            assert!(
                response.status.is_server_error(),
                "{what}, call {i}: {} {}",
                response.status,
                response.text()
            );
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            2,
            "{what}: a connection per call"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_hands_on_a_chunked_answers_trailers_and_reuses_its_connection() {
    use http_body_util::BodyExt;
    use sluice_plugin::{BackendRequest, CallContext, Executor};

    let (addr, accepted) = scripted_backend(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
3\r\nhel\r\n2\r\nlo\r\n0\r\nX-Checksum: abc\r\n\r\n",
        false,
    )
    .await;
    let client =
        sluice_client::DefaultClient::new(&sluice_config::TransportOptions::default(), None)
            .unwrap();
    for call in 0..2 {
        let request = BackendRequest {
            method: http::Method::GET,
            url: format!("http://{addr}/x").parse().unwrap(),
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::new(),
        };
        let ctx = CallContext::new(
            tokio::time::Instant::now() + Duration::from_secs(5),
            1 << 20,
        );
        let response = client.execute(request, &ctx).await.unwrap();
        assert_eq!(response.status(), 200, "call {call}");
        let collected = response.into_body().collect().await.unwrap();
        let trailers = collected
            .trailers()
            .cloned()
            .unwrap_or_else(|| panic!("no trailers, call {call}"));
        assert_eq!(trailers.get("x-checksum").unwrap(), "abc", "call {call}");
        assert_eq!(collected.to_bytes(), "hello", "call {call}");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one connection for both calls"
    );
}
