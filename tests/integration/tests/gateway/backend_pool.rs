//! The pool of backend connections (plain http, HTTP/1.1), as KrakenD's transport options
//! configure it: connections are reused, a connection the backend closed while idle costs no
//! request, idle ones close after `idle_connection_timeout`, at most
//! `max_idle_connections_per_host` stay, and `disable_keep_alives` dials every call.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
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
