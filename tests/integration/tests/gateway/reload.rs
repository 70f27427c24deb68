//! Hot reload: a new gateway swapped in whole while requests keep flowing. No request fails, and
//! each answer comes wholly from one of the configs, never a mix.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::*;
use sluice_plugin::Registry;

const RELOADS: usize = 20;
const CLIENTS: usize = 4;

/// A backend that says which config it belongs to.
async fn labelled(label: &'static str) -> Backend {
    Backend::start_sync(move |req: &Received| {
        Reply::json(200, &json!({"config": label, "path": req.path}))
    })
    .await
}

/// `/v` merges two backends of one config (groups `one` and `two`): an answer mixing configs
/// would show two labels.
fn config(b: &Backend, extra_endpoint: Option<&str>) -> Value {
    let mut endpoints = vec![endpoint(
        "/v",
        json!([
            backend(&b.url(), "/one", json!({"group": "one"})),
            backend(&b.url(), "/two", json!({"group": "two"}))
        ]),
        Value::Null,
    )];
    if let Some(path) = extra_endpoint {
        endpoints.push(endpoint(
            path,
            json!([backend(&b.url(), "/extra", Value::Null)]),
            Value::Null,
        ));
    }
    service(Value::Array(endpoints))
}

fn expected(label: &str) -> Value {
    json!({
        "one": {"config": label, "path": "/one"},
        "two": {"config": label, "path": "/two"}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_load_lose_nothing_and_never_mix_configs() {
    let (a, b) = (labelled("a").await, labelled("b").await);
    let (config_a, config_b) = (config(&a, None), config(&b, Some("/only-b")));
    let gw = start_gateway(config_a.clone()).await;
    let digest_a = gw.digest();

    let served = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let url: hyper::Uri = gw.url("/v").parse().unwrap();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (served, stop, url) = (Arc::clone(&served), Arc::clone(&stop), url.clone());
        // Keep-alive connections, so requests on one connection cross reloads.
        let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        clients.push(tokio::spawn(async move {
            let mut seen = [0usize; 2];
            let mut failures = Vec::new();
            // Bounded: stops when told, and in any case after 100,000 requests.
            for _ in 0..100_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let answer = tokio::time::timeout(Duration::from_secs(10), async {
                    let response = client.get(url.clone()).await?;
                    let status = response.status();
                    let body = response.into_body().collect().await?.to_bytes();
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, body))
                })
                .await;
                match answer {
                    Ok(Ok((status, body))) => {
                        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        if status != 200 {
                            failures.push(format!("{status}: {value}"));
                        } else if value == expected("a") {
                            seen[0] += 1;
                        } else if value == expected("b") {
                            seen[1] += 1;
                        } else {
                            failures.push(format!("mixed or wrong answer: {value}"));
                        }
                    }
                    Ok(Err(e)) => failures.push(format!("request failed: {e}")),
                    Err(_) => failures.push("no answer within 10s".to_owned()),
                }
                served.fetch_add(1, Ordering::Relaxed);
            }
            (seen, failures)
        }));
    }

    let registry = Registry::new();
    for i in 0..RELOADS {
        // Wait for traffic between reloads (a bounded wait on the counter, not a sleep).
        let before = served.load(Ordering::Relaxed);
        for _ in 0..10_000 {
            if served.load(Ordering::Relaxed) >= before + 20 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let next = if i % 2 == 0 { &config_b } else { &config_a };
        let reloaded = gw.reload(next, &registry).await.unwrap();
        assert_ne!(reloaded.from, reloaded.to, "reload {i}");
        assert_eq!(reloaded.moved_to, None);
    }
    stop.store(true, Ordering::Relaxed);

    let mut seen = [0usize; 2];
    let mut failures = Vec::new();
    for client in clients {
        let (s, f) = client.await.unwrap();
        seen[0] += s[0];
        seen[1] += s[1];
        failures.extend(f);
    }
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        seen[0] > 0 && seen[1] > 0,
        "answers from both configs: {seen:?}"
    );
    // Twenty reloads from a: a again, and what b added is gone.
    assert_eq!(gw.digest(), digest_a);
    assert_eq!(get(&gw.url("/v")).await.json(), expected("a"));
    assert_eq!(get(&gw.url("/only-b")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_fails_changes_nothing() {
    let a = labelled("a").await;
    let gw = start_gateway(config(&a, None)).await;
    let before = gw.digest();
    let health = get(&gw.url("/__health")).await.json();
    assert_eq!(health["config"], before.as_str(), "{health}");

    // An unknown plugin fails the build: the old gateway keeps serving, untouched.
    let mut broken = config(&a, Some("/new"));
    broken["endpoints"][1]["backend"][0]["extra_config"] =
        json!({"plugin/http-client": {"name": "no-such-plugin"}});
    let error = gw.reload(&broken, &Registry::new()).await.unwrap_err();
    assert!(error.to_string().contains("no-such-plugin"), "{error}");
    assert_eq!(gw.digest(), before);
    assert_eq!(get(&gw.url("/v")).await.json(), expected("a"));
    assert_eq!(get(&gw.url("/new")).await.status, 404);

    // A config the parser refuses never reaches the gateway either.
    let mut invalid = config(&a, None);
    invalid["endpoints"][0]["backend"][0]["encoding"] = json!("jsn");
    assert!(gw.reload(&invalid, &Registry::new()).await.is_err());
    assert_eq!(gw.digest(), before);
    assert_eq!(
        get(&gw.url("/__health")).await.json()["config"],
        before.as_str()
    );
}
