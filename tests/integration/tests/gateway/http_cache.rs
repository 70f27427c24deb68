//! `qos/http-cache` against real backends (counting their calls): a fresh answer is served
//! without the backend and still goes through the backend's filters; a stale one is revalidated
//! or fetched again; `Vary`, `no-store` and `private` are honoured; the byte budget evicts;
//! `shared` shares.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::*;
use sluice_plugin::Registry;
use sluice_stage::Components;

fn components() -> Components {
    Components::new().with(sluice_qos::HttpCache::default())
}

async fn start(config: Value) -> Gateway {
    try_start_gateway_with_components(config, Registry::new(), &components())
        .await
        .unwrap()
}

fn cached(url: &str, pattern: &str, cache: Value, extra: Value) -> Value {
    let mut b = backend(url, pattern, extra);
    b["extra_config"]["qos/http-cache"] = cache;
    b
}

/// One endpoint `path` with one cached backend.
fn one(path: &str, b: Value, extra: Value) -> Value {
    endpoint(path, json!([b]), extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_answers_are_served_from_the_cache_and_still_filtered() {
    let mock = Backend::start_sync(|req: &Received| {
        Reply::json(200, &json!({"a": req.seq, "b": "hidden"}))
            .header("cache-control", "max-age=60")
    })
    .await;
    let gw = start(service(json!([
        one(
            "/f",
            cached(&mock.url(), "/f", json!({}), json!({"allow": ["a"]})),
            Value::Null
        ),
        one(
            "/g",
            cached(&mock.url(), "/g", json!({}), Value::Null),
            Value::Null
        )
    ])))
    .await;
    for _ in 0..3 {
        let resp = get(&gw.url("/f")).await;
        assert_eq!(resp.status, 200);
        // The cached answer goes through `allow` as the fresh one did.
        assert_eq!(resp.json(), json!({"a": 0}));
        assert_eq!(resp.header("x-krakend-completed"), Some("true"));
    }
    assert_eq!(mock.count(), 1);
    // Another URL is another entry.
    assert_eq!(
        get(&gw.url("/g")).await.json(),
        json!({"a": 1, "b": "hidden"})
    );
    assert_eq!(mock.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_answers_are_revalidated_or_fetched_again() {
    let mock = Backend::start_sync(|req: &Received| {
        match req.path.as_str() {
            // Always revalidated (no-cache), and never changes: 304 to its ETag.
            "/etag" if req.header("if-none-match") == Some("\"v1\"") => {
                Reply::new(304).header("etag", "\"v1\"")
            }
            "/etag" => Reply::json(200, &json!({"v": 1, "seq": req.seq}))
                .header("cache-control", "no-cache")
                .header("etag", "\"v1\""),
            // Fresh for two seconds (the Date header has a one-second grain), without a validator.
            _ => Reply::json(200, &json!({"seq": req.seq})).header("cache-control", "max-age=2"),
        }
    })
    .await;
    let gw = start(service(json!([
        one(
            "/etag",
            cached(&mock.url(), "/etag", json!({}), Value::Null),
            Value::Null
        ),
        one(
            "/short",
            cached(&mock.url(), "/short", json!({}), Value::Null),
            Value::Null
        )
    ])))
    .await;

    assert_eq!(
        get(&gw.url("/etag")).await.json(),
        json!({"v": 1, "seq": 0})
    );
    assert_eq!(mock.last().header("if-none-match"), None);
    // Revalidated: the backend is asked with the validator, answers 304, and the client gets the
    // stored answer.
    let resp = get(&gw.url("/etag")).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json(), json!({"v": 1, "seq": 0}));
    assert_eq!(mock.count(), 2);
    assert_eq!(mock.last().header("if-none-match"), Some("\"v1\""));

    let first = get(&gw.url("/short")).await.json();
    let calls = mock.count();
    assert_eq!(get(&gw.url("/short")).await.json(), first);
    assert_eq!(mock.count(), calls);
    // Once max-age has passed, the backend is called again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while mock.count() == calls && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        get(&gw.url("/short")).await;
    }
    assert_eq!(mock.count(), calls + 1);
    assert_ne!(get(&gw.url("/short")).await.json(), first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vary_no_store_and_private() {
    let mock = Backend::start_sync(|req: &Received| {
        let lang = req.header("x-lang").unwrap_or("-").to_owned();
        let reply = Reply::json(200, &json!({"lang": lang, "seq": req.seq}));
        match req.path.as_str() {
            "/vary" => reply
                .header("cache-control", "max-age=60")
                .header("vary", "X-Lang"),
            "/no-store" => reply.header("cache-control", "no-store, max-age=60"),
            _ => reply.header("cache-control", "private, max-age=60"),
        }
    })
    .await;
    let gw = start(service(json!([
        one(
            "/vary",
            cached(&mock.url(), "/vary", json!({}), Value::Null),
            json!({"input_headers": ["X-Lang"]})
        ),
        one(
            "/no-store",
            cached(&mock.url(), "/no-store", json!({}), Value::Null),
            Value::Null
        ),
        one(
            "/private",
            cached(&mock.url(), "/private", json!({}), Value::Null),
            Value::Null
        )
    ])))
    .await;
    let lang = |l: &'static str| {
        let url = gw.url("/vary");
        async move {
            request(Method::GET, &url, &[("x-lang", l)], bytes::Bytes::new())
                .await
                .json()
        }
    };
    assert_eq!(lang("en").await, json!({"lang": "en", "seq": 0}));
    assert_eq!(lang("en").await, json!({"lang": "en", "seq": 0}));
    assert_eq!(mock.count(), 1);
    // Another value of the varying header is not served the stored variant.
    assert_eq!(lang("fr").await, json!({"lang": "fr", "seq": 1}));
    assert_eq!(lang("fr").await, json!({"lang": "fr", "seq": 1}));
    assert_eq!(mock.count(), 2);

    for path in ["/no-store", "/private"] {
        let before = mock.count();
        get(&gw.url(path)).await;
        get(&gw.url(path)).await;
        assert_eq!(mock.count(), before + 2, "{path} was cached");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_byte_budget_evicts_the_least_recently_used() {
    // Each answer costs ~1 KiB of the 2.5 KiB budget (body, headers, key, bookkeeping): two fit.
    let mock = Backend::start_sync(|req: &Received| {
        Reply::json(200, &json!({"path": req.path, "pad": "x".repeat(700)}))
            .header("cache-control", "max-age=60")
    })
    .await;
    let cache = json!({"max_size": 2560, "max_items": 100});
    let gw = start(service(json!([one(
        "/big/{n}",
        cached(&mock.url(), "/big/{n}", cache, Value::Null),
        Value::Null
    )])))
    .await;
    let fetch = |n: u32| {
        let url = gw.url(&format!("/big/{n}"));
        async move { assert_eq!(get(&url).await.status, 200) }
    };
    fetch(1).await;
    fetch(2).await;
    assert_eq!(mock.count(), 2);
    fetch(1).await;
    assert_eq!(mock.count(), 2, "both fit");
    // A third pushes out the least recently used: 2 (1 was just read).
    fetch(3).await;
    assert_eq!(mock.count(), 3);
    fetch(1).await;
    fetch(3).await;
    assert_eq!(mock.count(), 3);
    fetch(2).await;
    assert_eq!(mock.count(), 4, "2 was evicted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_caches_serve_every_backend_that_shares() {
    let mock = Backend::start_sync(|req: &Received| {
        Reply::json(200, &json!({"seq": req.seq})).header("cache-control", "max-age=60")
    })
    .await;
    let gw = start(service(json!([
        one(
            "/a",
            cached(&mock.url(), "/same", json!({"shared": true}), Value::Null),
            Value::Null
        ),
        one(
            "/b",
            cached(&mock.url(), "/same", json!({"shared": true}), Value::Null),
            Value::Null
        ),
        one(
            "/c",
            cached(&mock.url(), "/same", json!({}), Value::Null),
            Value::Null
        ),
        one(
            "/p",
            cached(&mock.url(), "/same", json!({"shared": true}), Value::Null),
            json!({"method": "POST"})
        )
    ])))
    .await;
    assert_eq!(get(&gw.url("/a")).await.json(), json!({"seq": 0}));
    assert_eq!(get(&gw.url("/b")).await.json(), json!({"seq": 0}));
    assert_eq!(mock.count(), 1);
    // A backend without `shared` has its own cache.
    assert_eq!(get(&gw.url("/c")).await.json(), json!({"seq": 1}));
    assert_eq!(mock.count(), 2);
    // A successful POST to the URL invalidates it (RFC 9111 §4.4).
    let resp = request(Method::POST, &gw.url("/p"), &[], bytes::Bytes::new()).await;
    assert_eq!(resp.status, 200);
    assert_eq!(mock.count(), 3);
    assert_eq!(get(&gw.url("/a")).await.json(), json!({"seq": 3}));
    assert_eq!(get(&gw.url("/b")).await.json(), json!({"seq": 3}));
    assert_eq!(mock.count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn its_config_is_checked() {
    let with = |cache: Value| {
        service(json!([one(
            "/a",
            cached("http://127.0.0.1:10", "/a", cache, Value::Null),
            Value::Null
        )]))
    };
    let at = "test.json: endpoints[0].backend[0].extra_config[\"qos/http-cache\"]";
    for (cache, expected) in [
        (
            json!({"max_size": 4096}),
            format!("{at}.max_items: max_size needs max_items as well"),
        ),
        (
            json!({"max_size": 10, "max_items": 1}),
            format!("{at}.max_size: expected a number of bytes, 1024 or more"),
        ),
        (
            json!({"ttl": 1}),
            format!("{at}.ttl: field \"ttl\" is not supported"),
        ),
        (
            json!({"shared": "yes"}),
            format!("{at}.shared: expected true or false"),
        ),
    ] {
        let error = try_start_gateway_with_components(with(cache), Registry::new(), &components())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains(&expected), "{expected}\n{error}");
    }
}
