//! Rate limits as KrakenD configures them, against real servers: the endpoint limit (503 past
//! `max_rate`, 429 past a client's, by ip, header or param, `every`), the service limit before
//! routing, the backend limit failing the call, and the Redis limits shared by three gateways
//! behind nginx (round robin), with Redis stopped mid-run and Redis silent, and two gateways
//! sharing buckets through a three-node Redis Cluster.
//!
//! The Redis tests start their own `redis-server` (Debian's package) on a free loopback port
//! with a temporary directory, and nginx (`/usr/sbin/nginx`) likewise; both are stopped when the
//! test ends. The cluster test forms its cluster with `redis-cli --cluster create` (Debian's
//! redis-tools).
#![allow(clippy::unwrap_used)]

use std::net::TcpListener as StdListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::*;
use sluice_plugin::Registry;
use sluice_ratelimit::{RateLimits, RedisStats};
use sluice_stage::Components;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn components() -> (Components, Arc<RedisStats>) {
    let limits = RateLimits::new();
    let stats = limits.redis_stats();
    (Components::new().with(limits), stats)
}

async fn start(config: Value) -> Gateway {
    let (components, _) = components();
    try_start_gateway_with_components(config, Registry::new(), &components)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn ok_backend() -> Backend {
    Backend::start_sync(|_: &Received| Reply::json(200, &json!({"ok": true}))).await
}

fn limited(path: &str, url: &str, limit: Value) -> Value {
    endpoint(
        path,
        json!([backend(url, "/", Value::Null)]),
        json!({"extra_config": {"qos/ratelimit/router": limit}}),
    )
}

async fn status(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> u16 {
    request(Method::GET, &gw.url(path), headers, Bytes::new())
        .await
        .status
        .as_u16()
}

/// A refusal as gin's AbortWithError leaves it: the status, nothing else.
fn assert_bare(resp: &Response, status: u16) {
    assert_eq!(resp.status, status);
    assert_eq!(resp.body.len(), 0, "{:?}", resp.text());
    assert_eq!(resp.header("content-type"), None);
    assert_eq!(resp.header("x-krakend-completed"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_limits_answer_503_for_all_and_429_per_client() {
    let mock = ok_backend().await;
    let url = mock.url();
    let hour = "1h";
    let gw = start(service(json!([
        limited("/all", &url, json!({"max_rate": 3, "capacity": 3, "every": hour})),
        limited("/ip", &url, json!({"client_max_rate": 2, "client_capacity": 2, "strategy": "ip", "every": hour})),
        limited("/real-ip", &url, json!({"client_max_rate": 1, "client_capacity": 1, "strategy": "ip", "key": "X-Real-IP", "every": hour})),
        limited("/header", &url, json!({"client_max_rate": 2, "client_capacity": 2, "strategy": "header", "key": "X-Api-Key", "every": hour})),
        limited("/param/{user}", &url, json!({"client_max_rate": 1, "client_capacity": 1, "strategy": "param", "key": "user", "every": hour})),
        limited("/both", &url, json!({"max_rate": 3, "capacity": 3, "client_max_rate": 2, "client_capacity": 2, "strategy": "header", "key": "X-Api-Key", "every": hour})),
    ])))
    .await;

    // max_rate: three, then 503 for everyone.
    for _ in 0..3 {
        assert_eq!(status(&gw, "/all", &[]).await, 200);
    }
    let resp = get(&gw.url("/all")).await;
    assert_bare(&resp, 503);
    assert_eq!(status(&gw, "/all", &[("x-api-key", "other")]).await, 503);

    // strategy ip: two for this client, then 429.
    assert_eq!(status(&gw, "/ip", &[]).await, 200);
    assert_eq!(status(&gw, "/ip", &[]).await, 200);
    assert_bare(&get(&gw.url("/ip")).await, 429);

    // strategy ip with key: the IP in the header (first of a list, port dropped) is the client;
    // a header without an IP falls back to the connection's.
    assert_eq!(
        status(&gw, "/real-ip", &[("x-real-ip", "10.0.0.1, 10.0.0.9")]).await,
        200
    );
    assert_eq!(
        status(&gw, "/real-ip", &[("x-real-ip", "10.0.0.1:4000")]).await,
        429
    );
    assert_eq!(
        status(&gw, "/real-ip", &[("x-real-ip", "10.0.0.2")]).await,
        200
    );
    assert_eq!(
        status(&gw, "/real-ip", &[("x-real-ip", "garbage")]).await,
        200
    );
    assert_eq!(status(&gw, "/real-ip", &[]).await, 429);

    // strategy header: a bucket per value; no header is no identity, refused as KrakenD does.
    for key in ["a", "b"] {
        assert_eq!(status(&gw, "/header", &[("x-api-key", key)]).await, 200);
        assert_eq!(status(&gw, "/header", &[("x-api-key", key)]).await, 200);
        assert_eq!(status(&gw, "/header", &[("x-api-key", key)]).await, 429);
    }
    assert_eq!(status(&gw, "/header", &[]).await, 429);

    // strategy param: a bucket per value of {user}.
    assert_eq!(status(&gw, "/param/ann", &[]).await, 200);
    assert_eq!(status(&gw, "/param/ann", &[]).await, 429);
    assert_eq!(status(&gw, "/param/bob", &[]).await, 200);

    // Both: the client's bucket first; a refused client takes nothing from the endpoint's.
    let calls = mock.count();
    for _ in 0..5 {
        status(&gw, "/both", &[("x-api-key", "a")]).await;
    }
    assert_eq!(
        mock.count() - calls,
        2,
        "two for client a, its refusals spent nothing"
    );
    assert_eq!(status(&gw, "/both", &[("x-api-key", "b")]).await, 200);
    assert_eq!(status(&gw, "/both", &[("x-api-key", "c")]).await, 503);
}

/// Polls `path` until it answers 200, returning how long that took.
async fn time_until_allowed(gw: &Gateway, path: &str) -> Duration {
    let start = Instant::now();
    loop {
        if status(gw, path, &[]).await == 200 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{path} never refilled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_refill_at_max_rate_per_every() {
    let mock = ok_backend().await;
    let url = mock.url();
    let gw = start(service(json!([
        // 2 every 2s: a token a second.
        limited(
            "/every",
            &url,
            json!({"max_rate": 2, "capacity": 1, "every": "2s"})
        ),
        // 60 a minute, capacity by default (1: the rate per second).
        limited("/minute", &url, json!({"max_rate": 60, "every": "1m"})),
    ])))
    .await;
    for path in ["/every", "/minute"] {
        assert_eq!(status(&gw, path, &[]).await, 200);
        assert_eq!(status(&gw, path, &[]).await, 503, "{path}: capacity 1");
        let waited = time_until_allowed(&gw, path).await;
        assert!(
            waited >= Duration::from_millis(800) && waited < Duration::from_millis(2000),
            "{path}: refilled after {waited:?}, expected about 1s"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_limit_runs_before_routing() {
    let mock = ok_backend().await;
    let mut config = service(json!([endpoint(
        "/a",
        json!([backend(&mock.url(), "/", Value::Null)]),
        Value::Null
    )]));
    config["extra_config"]["qos/ratelimit/service"] = json!({"max_rate": 2, "capacity": 2, "client_max_rate": 100, "client_capacity": 100, "strategy": "ip", "every": "1h"});
    let gw = start(config).await;
    assert_eq!(status(&gw, "/a", &[]).await, 200);
    // A path no endpoint has still takes a token: the limit is before the router.
    assert_eq!(status(&gw, "/nowhere", &[]).await, 404);
    assert_bare(&get(&gw.url("/a")).await, 503);
    assert_eq!(mock.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_limit_fails_the_call() {
    let mock = ok_backend().await;
    let limit = json!({"extra_config": {"qos/ratelimit/proxy": {"max_rate": 1, "capacity": 1, "every": "1h"}}});
    let gw = start(service(json!([
        endpoint(
            "/one",
            json!([backend(&mock.url(), "/", limit.clone())]),
            Value::Null
        ),
        endpoint(
            "/two",
            json!([
                backend(&mock.url(), "/", limit.clone()),
                backend(&mock.url(), "/free", json!({"group": "free"}))
            ]),
            Value::Null
        ),
    ])))
    .await;
    assert_eq!(status(&gw, "/one", &[]).await, 200);
    // The bucket is empty: the backend is not called and fails as KrakenD's ErrLimited, a 500
    // with its message under return_error_msg.
    let resp = get(&gw.url("/one")).await;
    assert_eq!(resp.status, 500);
    assert_eq!(resp.text(), "rate limit exceded");
    assert_eq!(mock.count(), 1);

    // Another backend's limit is its own; beside a free backend the answer is incomplete.
    assert_eq!(status(&gw, "/two", &[]).await, 200);
    let resp = get(&gw.url("/two")).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-krakend-completed"), Some("false"));
    assert_eq!(resp.json(), json!({"free": {"ok": true}}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_is_applied_or_refused_at_its_path() {
    let url = "http://127.0.0.1:10";
    let mut config = service(json!([
        limited(
            "/a",
            url,
            json!({"max_rate": -1, "client_max_rate": 5, "capacity": 1.5, "burst": 3})
        ),
        limited(
            "/b",
            url,
            json!({"client_max_rate": 5, "strategy": "header"})
        ),
        limited(
            "/c",
            url,
            json!({"client_max_rate": 5, "strategy": "cookie", "every": "soon"})
        ),
        limited("/d", url, json!({"capacity": 5})),
        endpoint(
            "/e",
            json!([backend(
                url,
                "/",
                json!({"extra_config": {"qos/ratelimit/proxy": {"capacity": 1, "every": "0s"}}})
            )]),
            json!({"extra_config": {"qos/ratelimit/router/redis": {"max_rate": 1, "connection_name": "missing"}}})
        ),
    ]));
    config["extra_config"]["qos/ratelimit/service"] =
        json!({"client_max_rate": 1, "strategy": "param", "key": "id"});
    config["extra_config"]["redis"] = json!({
        "connection_pools": [
            {"name": "p", "address": "127.0.0.1:6379", "tls": {}, "conn_max_idle_time": "1m"},
            {"name": "q", "address": "redis://127.0.0.1"},
            {"address": "127.0.0.1:1"}
        ],
        "clusters": [{"name": "c", "addresses": ["127.0.0.1:7000"], "max_redirects": 3}]
    });
    let (components, _) = components();
    let error = try_start_gateway_with_components(config, Registry::new(), &components)
        .await
        .unwrap_err()
        .to_string();
    let r = "extra_config[\"qos/ratelimit/router\"]";
    for expected in [
        format!("endpoints[0].{r}.max_rate: expected a number of requests, 0 or more, found -1"),
        format!("endpoints[0].{r}.capacity: expected a whole number of requests"),
        format!("endpoints[0].{r}.burst: field \"burst\" is not supported"),
        format!("endpoints[0].{r}.client_max_rate: client_max_rate needs a strategy"),
        format!("endpoints[1].{r}.key: strategy \"header\" needs key"),
        format!("endpoints[2].{r}.strategy: expected one of \"ip\", \"header\", \"param\", found \"cookie\""),
        format!("endpoints[2].{r}.every:"),
        format!("endpoints[3].{r}: a rate limit needs max_rate or client_max_rate"),
        "endpoints[4].backend[0].extra_config[\"qos/ratelimit/proxy\"]: a backend rate limit needs max_rate".to_owned(),
        "endpoints[4].backend[0].extra_config[\"qos/ratelimit/proxy\"].every: expected a period longer than zero".to_owned(),
        "extra_config[\"qos/ratelimit/service\"].strategy: strategy \"param\" cannot apply to the service limit".to_owned(),
        "extra_config[\"redis\"].connection_pools[0].tls: \"tls\": TLS to Redis is not supported".to_owned(),
        "extra_config[\"redis\"].connection_pools[0].conn_max_idle_time:".to_owned(),
        "extra_config[\"redis\"].connection_pools[1].address: expected host:port, found \"redis://127.0.0.1\"".to_owned(),
        "extra_config[\"redis\"].connection_pools[2]: a connection pool needs a name".to_owned(),
        "extra_config[\"redis\"].clusters[0].max_redirects: \"max_redirects\": Sluice's Redis Cluster client follows MOVED and ASK redirections within max_retries".to_owned(),
    ] {
        assert!(error.contains(&expected), "missing: {expected}\n{error}");
    }

    // A pool the limit names must exist.
    let mut config = service(json!([endpoint(
        "/e",
        json!([backend(url, "/", Value::Null)]),
        json!({"extra_config": {"qos/ratelimit/router/redis": {"max_rate": 1, "connection_name": "missing"}}})
    )]));
    config["extra_config"]["redis"] =
        json!({"connection_pools": [{"name": "rl", "address": "127.0.0.1:6379"}]});
    let error = try_start_gateway_with_components(config, Registry::new(), &components)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("endpoints[0].extra_config[\"qos/ratelimit/router/redis\"].connection_name: no Redis connection pool or cluster named \"missing\""),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_clusters_are_refused_at_the_path_of_what_is_wrong() {
    let url = "http://127.0.0.1:10";
    let mut config = service(json!([endpoint(
        "/e",
        json!([backend(url, "/", Value::Null)]),
        json!({"extra_config": {"qos/ratelimit/router/redis": {"max_rate": 1, "connection_name": "rl"}}})
    )]));
    config["extra_config"]["redis"] = json!({
        "connection_pools": [{"name": "rl", "address": "127.0.0.1:6379"}],
        "clusters": [
            {"name": "c1", "addresses": ["127.0.0.1:7000"], "read_only": true},
            {"name": "c2", "addresses": "127.0.0.1:7000", "dial_timeout": 5},
            {"name": "c3", "addresses": ["127.0.0.1:7000", ["127.0.0.1:7001"]], "pool_size": -1},
            {"name": "rl", "addresses": ["127.0.0.1:7000"]}
        ]
    });
    let (components, _) = components();
    let error = try_start_gateway_with_components(config, Registry::new(), &components)
        .await
        .unwrap_err()
        .to_string();
    let c = "extra_config[\"redis\"].clusters";
    for expected in [
        format!("{c}[0].read_only: field \"read_only\" is not supported by Sluice"),
        format!("{c}[1].addresses: expected an array, found a string"),
        format!("{c}[1].dial_timeout:"),
        format!("{c}[2].addresses[1]: expected a host:port string, found an array"),
        format!("{c}[2].pool_size: expected a number of connections from 0 to 256, found -1"),
        format!("{c}[3].name: a second connection named \"rl\""),
    ] {
        assert!(error.contains(&expected), "missing: {expected}\n{error}");
    }
    // Every line names the file.
    assert!(
        error
            .lines()
            .filter(|l| l.contains(c))
            .all(|l| l.contains(".json")),
        "{error}"
    );
}

/// A free loopback port (bound, then released for the server about to take it).
fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A folder of its own (`sluice-<what>-…`) for a server's files, removed when dropped: the
/// servers below hold it as a field, dropped after their `Drop` has stopped the process.
fn temp_dir(what: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("sluice-{what}-"))
        .tempdir()
        .unwrap()
}

/// A `redis-server` of our own, stopped on drop.
struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// Arguments after the common ones (cluster mode).
    extra: Vec<String>,
}

impl RedisServer {
    async fn start() -> Self {
        Self::start_with(|_, _| Vec::new()).await
    }

    /// A server whose extra arguments are `extra(port, dir)`.
    async fn start_with(extra: impl FnOnce(u16, &Path) -> Vec<String>) -> Self {
        let port = free_port();
        let dir = temp_dir("redis");
        let extra = extra(port, dir.path());
        let mut server = RedisServer {
            child: None,
            port,
            dir,
            extra,
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.pings().await {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn pings(&self) -> bool {
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        if stream.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut buf = [0u8; 16];
        matches!(stream.read(&mut buf).await, Ok(n) if buf[..n].starts_with(b"+PONG"))
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// nginx balancing round robin over `upstreams`, stopped on drop.
struct Nginx {
    child: Child,
    port: u16,
    /// Its prefix (configuration, pid, temp files); removed after the process is stopped.
    _dir: tempfile::TempDir,
}

impl Nginx {
    async fn start(upstreams: &[String]) -> Self {
        let port = free_port();
        let dir = temp_dir("nginx");
        let servers: String = upstreams
            .iter()
            .map(|u| format!("        server {u};\n"))
            .collect();
        let d = dir.path().display();
        // One process (no master), no daemon: killing the child stops it all.
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 512; }}\n\
             http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n\
             \x20   fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n\
             \x20   upstream gateways {{\n{servers}        keepalive 32;\n    }}\n\
             \x20   server {{\n        listen 127.0.0.1:{port};\n        location / {{\n\
             \x20           proxy_pass http://gateways;\n            proxy_http_version 1.1;\n\
             \x20           proxy_set_header Connection \"\";\n        }}\n    }}\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let bin = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .find(|b| Command::new(b).arg("-v").output().is_ok())
            .expect("nginx must be installed (apt-get install nginx)");
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .args(["-e", "stderr"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let nginx = Nginx {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(resp) =
                try_request(Method::GET, &nginx.url("/__health"), &[], Bytes::new()).await
                && resp.status == 200
            {
                break;
            }
            assert!(Instant::now() < deadline, "nginx did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        nginx
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_service(endpoints: Value, pool: Value) -> Value {
    let mut config = service(endpoints);
    config["extra_config"]["redis"] = json!({"connection_pools": [pool]});
    config
}

fn redis_limited(path: &str, url: &str, limit: Value) -> Value {
    let mut limit = limit;
    limit["connection_name"] = json!("rl");
    endpoint(
        path,
        json!([backend(url, "/", Value::Null)]),
        json!({"extra_config": {"qos/ratelimit/router/redis": limit}}),
    )
}

struct Load {
    accepted: usize,
    refused: usize,
    other: usize,
    elapsed: Duration,
}

/// `workers` clients sending `url` back to back (keep-alive) for `duration`.
async fn load(url: &str, workers: usize, duration: Duration) -> Load {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let accepted = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let other = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let end = start + duration;
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (client, url) = (client.clone(), url.to_owned());
            let (accepted, refused, other) = (
                Arc::clone(&accepted),
                Arc::clone(&refused),
                Arc::clone(&other),
            );
            tokio::spawn(async move {
                while Instant::now() < end {
                    let req = http::Request::get(&url).body(Empty::new()).unwrap();
                    match client.request(req).await {
                        Ok(resp) => {
                            let status = resp.status().as_u16();
                            let _ = resp.into_body().collect().await;
                            match status {
                                200 => accepted.fetch_add(1, Ordering::Relaxed),
                                503 => refused.fetch_add(1, Ordering::Relaxed),
                                _ => other.fetch_add(1, Ordering::Relaxed),
                            };
                        }
                        Err(_) => {
                            other.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    Load {
        accepted: accepted.load(Ordering::Relaxed),
        refused: refused.load(Ordering::Relaxed),
        other: other.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_behind_nginx_share_one_redis_limit() {
    let mut redis = RedisServer::start().await;
    let pool =
        json!({"name": "rl", "address": redis.address(), "pool_size": 2, "pool_timeout": "300ms"});
    let mut gateways = Vec::new();
    let mut mocks = Vec::new();
    let mut stats = Vec::new();
    for _ in 0..3 {
        let mock = ok_backend().await;
        let url = mock.url();
        let config = redis_service(
            json!([
                // 100 a second, a burst of 10, shared by the three.
                redis_limited("/shared", &url, json!({"max_rate": 100, "capacity": 10})),
                redis_limited("/strict", &url, json!({"max_rate": 1000, "capacity": 1000})),
                redis_limited(
                    "/strict-client",
                    &url,
                    json!({"client_max_rate": 1000, "client_capacity": 1000, "strategy": "header", "key": "X-Api-Key"})
                ),
                redis_limited(
                    "/lenient",
                    &url,
                    json!({"max_rate": 1000, "capacity": 1000, "on_failure_allow": true})
                ),
            ]),
            pool.clone(),
        );
        let (components, stat) = components();
        let gw = try_start_gateway_with_components(config, Registry::new(), &components)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        gateways.push(gw);
        mocks.push(mock);
        stats.push(stat);
    }
    let upstreams: Vec<String> = gateways.iter().map(Gateway::authority).collect();
    let nginx = Nginx::start(&upstreams).await;

    let run = load(&nginx.url("/shared"), 8, Duration::from_secs(3)).await;
    eprintln!(
        "scale-out: {} accepted, {} refused in {:?}",
        run.accepted, run.refused, run.elapsed
    );
    assert_eq!(run.other, 0, "only 200 and 503 expected");
    let secs = run.elapsed.as_secs_f64();
    let expected = 10.0 + 100.0 * secs;
    let accepted = run.accepted as f64;
    assert!(
        (accepted - expected).abs() <= expected * 0.10,
        "accepted {} in {secs:.2}s, expected {expected:.0} ± 10% (refused {})",
        run.accepted,
        run.refused
    );
    assert!(
        run.refused as f64 > accepted,
        "the load must exceed the limit to test it: {} refused",
        run.refused
    );
    // Round robin: every gateway served its share of the accepted requests.
    let served: Vec<usize> = mocks.iter().map(Backend::count).collect();
    assert_eq!(served.iter().sum::<usize>(), run.accepted, "{served:?}");
    assert!(
        served.iter().all(|n| *n as f64 > accepted / 6.0),
        "{served:?}"
    );
    assert!(stats.iter().all(|s| s.snapshot().0 == 0));

    // Redis stops: each limit does what its on_failure_allow says, quickly, on every gateway.
    let ok = |path| {
        let url = nginx.url(path);
        async move { request(Method::GET, &url, &[("x-api-key", "k")], Bytes::new()).await }
    };
    assert_eq!(ok("/strict").await.status, 200);
    redis.stop();
    for _ in 0..3 {
        let started = Instant::now();
        assert_bare(&ok("/strict").await, 503);
        assert_bare(&ok("/strict-client").await, 429);
        assert_eq!(ok("/lenient").await.status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "three checks against a dead Redis took {:?}",
            started.elapsed()
        );
    }
    let (failures, allowed, refused) = stats.iter().fold((0, 0, 0), |acc, s| {
        let (f, a, r) = s.snapshot();
        (acc.0 + f, acc.1 + a, acc.2 + r)
    });
    assert_eq!(failures, 9, "every failed check is counted");
    assert_eq!((allowed, refused), (3, 6));

    // Redis is back (same port, empty): the limits use it again.
    redis.spawn().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let before: u64 = stats.iter().map(|s| s.snapshot().0).sum();
        let status = ok("/strict").await.status;
        let after: u64 = stats.iter().map(|s| s.snapshot().0).sum();
        if status == 200 && before == after {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the limits never reconnected to Redis"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_endpoint_and_client_buckets() {
    let redis = RedisServer::start().await;
    let pool = json!({"name": "rl", "address": redis.address()});
    let mock = ok_backend().await;
    let config = || {
        let mut c = redis_service(
            json!([
                redis_limited(
                    "/all",
                    &mock.url(),
                    json!({"max_rate": 3, "capacity": 3, "every": "1h"})
                ),
                redis_limited(
                    "/mine/{user}",
                    &mock.url(),
                    json!({"client_max_rate": 1, "client_capacity": 1, "strategy": "param", "key": "user", "every": "1h"})
                ),
            ]),
            pool.clone(),
        );
        c["extra_config"]["qos/ratelimit/service/redis"] = json!({
            "connection_pool": "rl", "client_max_rate": 4, "client_capacity": 4,
            "strategy": "header", "key": "X-Api-Key", "every": "1h"
        });
        c
    };
    let a = start(config()).await;
    let b = start(config()).await;
    let key = [("x-api-key", "first")];
    assert_eq!(status(&a, "/all", &key).await, 200);
    assert_eq!(status(&b, "/all", &key).await, 200);
    assert_eq!(status(&a, "/all", &key).await, 200);
    assert_eq!(
        status(&b, "/all", &key).await,
        503,
        "the fourth, whichever gateway"
    );
    // The service's client bucket (4 for this key) was spent across both gateways too.
    assert_eq!(status(&a, "/mine/x", &key).await, 429);
    let key = [("x-api-key", "second")];
    assert_eq!(status(&a, "/mine/ann", &key).await, 200);
    assert_eq!(status(&b, "/mine/ann", &key).await, 429);
    assert_eq!(status(&b, "/mine/bob", &key).await, 200);
    // Nothing readable lands in Redis: client keys are hashes.
    let keys = redis_keys(&redis).await;
    assert!(
        keys.iter()
            .all(|k| !k.contains("second") && !k.contains("ann")),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .any(|k| k.starts_with("sluice:ratelimit:router:GET /all")),
        "{keys:?}"
    );
}

/// `KEYS *` over a raw connection (RESP).
async fn redis_keys(redis: &RedisServer) -> Vec<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", redis.port))
        .await
        .unwrap();
    stream.write_all(b"KEYS *\r\n").await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await;
        match n {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| !l.starts_with('*') && !l.starts_with('$'))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_redis_costs_a_request_at_most_the_pool_timeout() {
    // Accepts connections and never answers: a hung Redis, or a black-holed network.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = silent.local_addr().unwrap().to_string();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            conns.push(conn);
        }
    });
    let mock = ok_backend().await;
    let mut config = redis_service(
        json!([
            redis_limited("/strict", &mock.url(), json!({"max_rate": 10})),
            redis_limited(
                "/lenient",
                &mock.url(),
                json!({"max_rate": 10, "on_failure_allow": true})
            ),
            endpoint(
                "/cluster",
                json!([backend(&mock.url(), "/", Value::Null)]),
                json!({"extra_config": {"qos/ratelimit/router/redis": {"max_rate": 10, "connection_name": "rlc"}}})
            ),
        ]),
        json!({"name": "rl", "address": address, "pool_timeout": "150ms", "dial_timeout": "1s"}),
    );
    // A cluster whose only seed is silent: the client never learns the slot map.
    config["extra_config"]["redis"]["clusters"] = json!([
        {"name": "rlc", "addresses": [address], "pool_timeout": "150ms", "dial_timeout": "1s"}
    ]);
    let gw = start(config).await;
    for (path, expected) in [
        ("/strict", 503),
        ("/lenient", 200),
        ("/strict", 503),
        ("/cluster", 503),
        ("/cluster", 503),
    ] {
        let started = Instant::now();
        assert_eq!(status(&gw, path, &[]).await, expected, "{path}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(140) && took < Duration::from_millis(1000),
            "{path} took {took:?}, expected about the 150ms pool_timeout"
        );
    }
    held.abort();
}

/// Runs `redis-cli` with `args`, killed if it takes longer than `limit`: its output, or `None`
/// when it failed or timed out.
async fn redis_cli(args: &[String], limit: Duration) -> Option<String> {
    let mut child = Command::new("redis-cli")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-cli must be installed (apt-get install redis-tools)");
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait().unwrap() {
            Some(status) => {
                // The output is a few lines: it fits the pipe, so the child never blocked on it.
                let mut out = String::new();
                std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).ok()?;
                return status.success().then_some(out);
            }
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Three `redis-server`s in cluster mode, formed into one cluster (no replicas); each is
/// stopped on drop.
struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    async fn start() -> Self {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            nodes.push(
                RedisServer::start_with(|port, dir| {
                    vec![
                        "--cluster-enabled".into(),
                        "yes".into(),
                        "--cluster-config-file".into(),
                        dir.join(format!("nodes-{port}.conf")).display().to_string(),
                    ]
                })
                .await,
            );
        }
        let cluster = RedisCluster { nodes };
        let mut create: Vec<String> = vec!["--cluster".into(), "create".into()];
        create.extend(cluster.addresses());
        create.extend(["--cluster-replicas", "0", "--cluster-yes"].map(String::from));
        assert!(
            redis_cli(&create, Duration::from_secs(30)).await.is_some(),
            "redis-cli --cluster create failed"
        );
        // Every node must see the whole cluster before a client asks any of them for the map.
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &cluster.nodes {
            let info = [
                "-p".to_owned(),
                node.port.to_string(),
                "cluster".into(),
                "info".into(),
            ];
            loop {
                let out = redis_cli(&info, Duration::from_secs(5)).await;
                if out.is_some_and(|o| o.contains("cluster_state:ok")) {
                    break;
                }
                assert!(Instant::now() < deadline, "the cluster never became ok");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        cluster
    }

    fn addresses(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::address).collect()
    }

    fn stop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_buckets_through_a_redis_cluster() {
    let mut cluster = RedisCluster::start().await;
    let mock = ok_backend().await;
    // Names the cluster with connection_name (endpoints) and connection_pool (service), as a
    // pool would be; two seeds of three, the client finds the third.
    let config = || {
        let mut c = service(json!([
            endpoint(
                "/shared",
                json!([backend(&mock.url(), "/", Value::Null)]),
                json!({"extra_config": {"qos/ratelimit/router/redis": {
                    "connection_name": "rlc", "max_rate": 20, "capacity": 20, "every": "1h"
                }}})
            ),
            endpoint(
                "/mine",
                json!([backend(&mock.url(), "/", Value::Null)]),
                json!({"extra_config": {"qos/ratelimit/router/redis": {
                    "connection_name": "rlc", "client_max_rate": 2, "client_capacity": 2,
                    "strategy": "header", "key": "X-User", "every": "1h"
                }}})
            ),
            endpoint(
                "/lenient",
                json!([backend(&mock.url(), "/", Value::Null)]),
                json!({"extra_config": {"qos/ratelimit/router/redis": {
                    "connection_name": "rlc", "max_rate": 1000, "capacity": 1000,
                    "on_failure_allow": true
                }}})
            ),
        ]));
        c["extra_config"]["redis"] = json!({"clusters": [{
            "name": "rlc",
            "addresses": &cluster.addresses()[..2],
            "pool_size": 2,
            "pool_timeout": "300ms",
            "dial_timeout": "1s"
        }]});
        c["extra_config"]["qos/ratelimit/service/redis"] = json!({
            "connection_pool": "rlc", "client_max_rate": 100000, "client_capacity": 100000,
            "strategy": "ip", "every": "1h", "on_failure_allow": true
        });
        c
    };
    let (components_a, stats_a) = components();
    let (components_b, stats_b) = components();
    let a = try_start_gateway_with_components(config(), Registry::new(), &components_a)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let b = try_start_gateway_with_components(config(), Registry::new(), &components_b)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    // Both gateways at once, far past the limit: 20 in all (the bucket refills 20 an hour,
    // nothing within the run), whatever the split; the rest get KrakenD's 503.
    let (url_a, url_b) = (a.url("/shared"), b.url("/shared"));
    let (run_a, run_b) = tokio::join!(
        load(&url_a, 4, Duration::from_secs(1)),
        load(&url_b, 4, Duration::from_secs(1)),
    );
    eprintln!(
        "cluster: a {} accepted, {} refused; b {} accepted, {} refused",
        run_a.accepted, run_a.refused, run_b.accepted, run_b.refused
    );
    assert_eq!((run_a.other, run_b.other), (0, 0), "only 200 and 503");
    assert_eq!(run_a.accepted + run_b.accepted, 20, "one bucket for both");
    assert!(
        run_a.refused > 20 && run_b.refused > 20,
        "the load must exceed the limit on both gateways"
    );
    assert_bare(&get(&a.url("/shared")).await, 503);
    assert_bare(&get(&b.url("/shared")).await, 503);

    // A bucket per client, shared by the gateways, its keys spread over the cluster's nodes.
    for user in 0..12 {
        let user = format!("user-{user}");
        let h = [("x-user", user.as_str())];
        assert_eq!(status(&a, "/mine", &h).await, 200, "{user}");
        assert_eq!(status(&b, "/mine", &h).await, 200, "{user}");
        assert_bare(
            &request(Method::GET, &a.url("/mine"), &h, Bytes::new()).await,
            429,
        );
        assert_eq!(status(&b, "/mine", &h).await, 429, "{user}");
    }
    let mut holding = 0;
    for node in &cluster.nodes {
        let keys = redis_keys(node).await;
        if keys
            .iter()
            .any(|k| k.starts_with("sluice:ratelimit:router:GET /mine:c:"))
        {
            holding += 1;
        }
    }
    assert!(holding >= 2, "client buckets on {holding} node(s) of 3");
    for stats in [&stats_a, &stats_b] {
        assert_eq!(stats.snapshot(), (0, 0, 0));
    }

    // The cluster goes away: each limit does what its on_failure_allow says, within its
    // pool_timeout, as with a pool. The service limit lets requests through; /mine refuses a
    // client it would have let in, /lenient lets everyone in.
    cluster.stop();
    for gw in [&a, &b] {
        let h = [("x-user", "late")];
        let started = Instant::now();
        assert_bare(
            &request(Method::GET, &gw.url("/mine"), &h, Bytes::new()).await,
            429,
        );
        assert_eq!(status(gw, "/lenient", &h).await, 200);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "four checks against a dead cluster took {:?}",
            started.elapsed()
        );
    }
    for stats in [&stats_a, &stats_b] {
        // (failures, allowed on failure, refused on failure)
        assert_eq!(stats.snapshot(), (4, 3, 1));
    }
}
