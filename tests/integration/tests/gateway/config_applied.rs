//! Config fields that were read and dropped, now applied: `router.error_body` and
//! `proxy.sequential_propagated_params`.

#![allow(clippy::unwrap_used)]

use http::Method;
use serde_json::{Value, json};
use sluice_integration::backend::{Backend, Received, Reply};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::*;

/// `router.error_body` (KrakenD CE): the router's 404 and 405 answer with the configured JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_error_body_shapes_404_and_405() {
    let origin = Backend::start_sync(|_: &Received| Reply::json(200, &json!({}))).await;
    let mut config = service(json!([endpoint(
        "/only-get",
        json!([backend(&origin.url(), "/", Value::Null)]),
        Value::Null
    )]));
    config["extra_config"]["router"]["error_body"] =
        json!({"404": {"error": "nothing here"}, "405": {"error": "wrong verb", "code": 405}});
    let gw = start_gateway(config).await;

    let resp = get(&gw.url("/nowhere")).await;
    assert_status(&resp, 404);
    assert_content_type(&resp, "application/json; charset=utf-8");
    assert_json(&resp, &json!({"error": "nothing here"}));
    assert_completed(&resp, false);

    let resp = request(Method::POST, &gw.url("/only-get"), &[], "").await;
    assert_status(&resp, 405);
    assert_json(&resp, &json!({"error": "wrong verb", "code": 405}));
    assert_eq!(origin.count(), 0);
}

/// A propagated `resp0_a.b` is the `{Resp0_a.b}` placeholder of a later backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn propagated_params_fill_later_url_patterns() {
    let origin = Backend::start_sync(|req: &Received| match req.path.as_str() {
        "/first" => Reply::json(200, &json!({"a": {"b": 42}})),
        path => Reply::json(200, &json!({"path": path})),
    })
    .await;
    let gw = start_gateway(service(json!([endpoint(
        "/chain",
        json!([
            backend(&origin.url(), "/first", json!({"group": "first"})),
            backend(
                &origin.url(),
                "/second/{Resp0_first.a.b}",
                json!({"group": "second"})
            )
        ]),
        json!({"extra_config": {"proxy": {"sequential": true,
            "sequential_propagated_params": ["resp0_first.a.b"]}}})
    )])))
    .await;

    let resp = get(&gw.url("/chain")).await;
    assert_status(&resp, 200);
    assert_eq!(resp.json()["second"], json!({"path": "/second/42"}));
}

/// A `del` with several paths (as KrakenD accepts it) deletes each of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flatmap_del_deletes_every_path_it_lists() {
    let origin = Backend::start_sync(|_: &Received| {
        Reply::json(200, &json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4}))
    })
    .await;
    let gw = start_gateway(service(json!([endpoint(
        "/trimmed",
        json!([backend(
            &origin.url(),
            "/",
            json!({"extra_config": {"proxy": {"flatmap_filter": [
                {"type": "del", "args": ["a", "b.c"]}
            ]}}})
        )]),
        Value::Null
    )])))
    .await;

    let resp = get(&gw.url("/trimmed")).await;
    assert_status(&resp, 200);
    assert_json(&resp, &json!({"b": {"d": 3}, "e": 4}));
}
