//! `security/cors` against real parts: preflights answered before routing (allowed and
//! refused, as rs/cors answers them), actual answers decorated, credentials, passthrough.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::*;
use sluice_plugin::Registry;
use sluice_stage::Components;

fn components() -> Components {
    Components::new()
        .with(sluice_security::cors::Cors)
        .with(sluice_jwt::JwtValidator::new())
}

async fn start(cors: Value, mock: &Backend, router: Value) -> Gateway {
    let mut config = service(json!([
        endpoint(
            "/items/{id}",
            json!([backend(&mock.url(), "/i/{id}", Value::Null)]),
            Value::Null
        ),
        endpoint(
            "/items/{id}",
            json!([backend(&mock.url(), "/i/{id}", Value::Null)]),
            json!({"method": "PUT"})
        ),
    ]));
    config["extra_config"]["security/cors"] = cors;
    if !router.is_null() {
        config["extra_config"]["router"] = router;
    }
    try_start_gateway_with_components(config, Registry::new(), &components())
        .await
        .unwrap()
}

async fn preflight(gw: &Gateway, path: &str, headers: &[(&str, &str)]) -> Response {
    request(Method::OPTIONS, &gw.url(path), headers, Bytes::new()).await
}

const ALLOW_HEADERS: [&str; 6] = [
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-allow-credentials",
    "access-control-max-age",
    "access-control-expose-headers",
];

fn assert_no_allow(resp: &Response, what: &str) {
    for name in ALLOW_HEADERS {
        assert_eq!(resp.header(name), None, "{what}: {name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflights_are_answered_before_routing() {
    let mock = Backend::start_sync(|_| Reply::json(200, &json!({"ok": true}))).await;
    let gw = start(
        json!({
            "allow_origins": ["https://app.example", "https://*.tenant.example"],
            "allow_methods": ["GET", "PUT"],
            "allow_headers": ["Authorization", "Content-Type"],
            "expose_headers": ["x-request-id"],
            "max_age": "12h",
            "allow_credentials": true
        }),
        &mock,
        Value::Null,
    )
    .await;

    let resp = preflight(
        &gw,
        "/items/1",
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "PUT"),
            (
                "access-control-request-headers",
                "authorization,content-type",
            ),
        ],
    )
    .await;
    assert_eq!(resp.status, 204);
    assert_eq!(resp.text(), "");
    assert_eq!(
        resp.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(resp.header("access-control-allow-methods"), Some("PUT"));
    assert_eq!(
        resp.header("access-control-allow-headers"),
        Some("authorization,content-type")
    );
    assert_eq!(
        resp.header("access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(resp.header("access-control-max-age"), Some("43200"));
    assert_eq!(
        resp.header("vary"),
        Some("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
    );
    assert_eq!(resp.header("x-krakend-completed"), None);
    // A wildcard origin, on a path no endpoint has: still answered, never routed.
    let resp = preflight(
        &gw,
        "/nowhere",
        &[
            ("origin", "https://a.tenant.example"),
            ("access-control-request-method", "GET"),
        ],
    )
    .await;
    assert_eq!(resp.status, 204);
    assert_eq!(
        resp.header("access-control-allow-origin"),
        Some("https://a.tenant.example")
    );
    assert_eq!(resp.header("access-control-allow-headers"), None);

    // Refused preflights: answered all the same, without the allow headers.
    for (what, headers) in [
        (
            "origin",
            vec![
                ("origin", "https://evil.example"),
                ("access-control-request-method", "GET"),
            ],
        ),
        (
            "method",
            vec![
                ("origin", "https://app.example"),
                ("access-control-request-method", "DELETE"),
            ],
        ),
        (
            "header",
            vec![
                ("origin", "https://app.example"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "x-pingother"),
            ],
        ),
        ("no origin", vec![("access-control-request-method", "GET")]),
    ] {
        let resp = preflight(&gw, "/items/1", &headers).await;
        assert_eq!(resp.status, 204, "{what}");
        assert_no_allow(&resp, what);
        assert!(resp.header("vary").is_some(), "{what}");
    }
    assert_eq!(mock.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actual_answers_are_decorated() {
    let mock = Backend::start_sync(|_| Reply::json(200, &json!({"ok": true}))).await;
    let gw = start(
        json!({
            "allow_origins": ["https://app.example"],
            "allow_methods": ["GET"],
            "expose_headers": ["Content-Length", "x-trace"],
            "allow_credentials": true
        }),
        &mock,
        Value::Null,
    )
    .await;
    let resp = request(
        Method::GET,
        &gw.url("/items/1"),
        &[("origin", "https://APP.example")],
        Bytes::new(),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json(), json!({"ok": true}));
    assert_eq!(resp.header("vary"), Some("Origin"));
    assert_eq!(
        resp.header("access-control-allow-origin"),
        Some("https://APP.example")
    );
    assert_eq!(
        resp.header("access-control-expose-headers"),
        Some("Content-Length, X-Trace")
    );
    assert_eq!(
        resp.header("access-control-allow-credentials"),
        Some("true")
    );
    // Another origin, a method not allowed, no origin: Vary only.
    let resp = request(
        Method::GET,
        &gw.url("/items/1"),
        &[("origin", "https://evil.example")],
        Bytes::new(),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("vary"), Some("Origin"));
    assert_no_allow(&resp, "other origin");
    let resp = request(
        Method::PUT,
        &gw.url("/items/1"),
        &[("origin", "https://app.example")],
        Bytes::new(),
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_no_allow(&resp, "PUT not allowed");
    let resp = get(&gw.url("/items/1")).await;
    assert_eq!(resp.header("vary"), Some("Origin"));
    assert_no_allow(&resp, "no origin");
    // The router's own answers are decorated too.
    let resp = request(
        Method::GET,
        &gw.url("/missing"),
        &[("origin", "https://app.example")],
        Bytes::new(),
    )
    .await;
    assert_eq!(resp.status, 404);
    assert_eq!(
        resp.header("access-control-allow-origin"),
        Some("https://app.example")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_lets_the_router_answer_preflights() {
    let mock = Backend::start_sync(|_| Reply::json(200, &json!({"ok": true}))).await;
    let gw = start(
        json!({"options_passthrough": true, "allow_private_network": true, "allow_methods": ["GET", "PUT"]}),
        &mock,
        json!({"auto_options": true}),
    )
    .await;
    let resp = preflight(
        &gw,
        "/items/1",
        &[
            ("origin", "http://localhost:3000"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-anything"),
            ("access-control-request-private-network", "true"),
        ],
    )
    .await;
    // The router's automatic OPTIONS answer, with the preflight's headers.
    assert_eq!(resp.status, 200);
    assert!(
        resp.header("allow").is_some_and(|a| a.contains("PUT")),
        "{:?}",
        resp.headers
    );
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        resp.header("access-control-allow-headers"),
        Some("x-anything")
    );
    assert_eq!(
        resp.header("access-control-allow-private-network"),
        Some("true")
    );
    assert!(
        resp.header("vary")
            .is_some_and(|v| v.ends_with("Access-Control-Request-Private-Network"))
    );

    // Without passthrough, options_success_status answers.
    let gw = start(json!({"options_success_status": 200}), &mock, Value::Null).await;
    let resp = preflight(
        &gw,
        "/items/1",
        &[
            ("origin", "http://x"),
            ("access-control-request-method", "GET"),
        ],
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("access-control-allow-origin"), Some("*"));
    assert_eq!(mock.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_config_problems_name_their_path() {
    let mock = Backend::start_sync(|_| Reply::json(200, &json!({}))).await;
    let mut config = service(json!([endpoint(
        "/a",
        json!([backend(&mock.url(), "/a", Value::Null)]),
        Value::Null
    )]));
    config["extra_config"]["security/cors"] =
        json!({"allow_methods": ["get"], "max_age": 5, "allow_origin": ["*"]});
    let error = try_start_gateway_with_components(config, Registry::new(), &components())
        .await
        .unwrap_err()
        .to_string();
    for expected in [
        "extra_config[\"security/cors\"].allow_methods[0]: expected one of GET",
        "extra_config[\"security/cors\"].max_age: expected a duration string",
        "extra_config[\"security/cors\"].allow_origin: field \"allow_origin\" is not supported",
    ] {
        assert!(error.contains(expected), "{expected}\n{error}");
    }
}
