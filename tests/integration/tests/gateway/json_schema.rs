//! `validation/json-schema`: a body valid against the endpoint's schema reaches the backend; an
//! invalid one, one that is not JSON, or none at all gets KrakenD's 400 and no backend call.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::*;
use sluice_plugin::Registry;
use sluice_stage::Components;

fn components() -> Components {
    Components::new().with(sluice_validation::JsonSchema)
}

fn config(url: &str, schema: Value) -> Value {
    service(json!([endpoint(
        "/v",
        json!([backend(url, "/v", Value::Null)]),
        json!({"method": "POST", "extra_config": {"validation/json-schema": schema}})
    )]))
}

fn schema() -> Value {
    json!({
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string", "pattern": "^[a-z]+$"}, "age": {"type": "integer"}}
    })
}

async fn post(gw: &Gateway, body: &'static str) -> Response {
    request(
        Method::POST,
        &gw.url("/v"),
        &[("content-type", "application/json")],
        Bytes::from_static(body.as_bytes()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_validated_before_the_backends() {
    let mock =
        Backend::start_sync(|req: &Received| Reply::json(200, &json!({"got": req.body_text()})))
            .await;
    let gw = try_start_gateway_with_components(
        config(&mock.url(), schema()),
        Registry::new(),
        &components(),
    )
    .await
    .unwrap();

    let resp = post(&gw, r#"{"name": "ada", "age": 36}"#).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json(), json!({"got": r#"{"name": "ada", "age": 36}"#}));
    assert_eq!(mock.count(), 1);

    // KrakenD's answer to a validation error (return_error_msg is on in these configs): 400, the
    // error text as text/plain, X-KrakenD-Completed false.
    let resp = post(&gw, r#"{"name": "Ada", "age": "old"}"#).await;
    assert_eq!(resp.status, 400);
    assert!(
        resp.text()
            .starts_with("jsonschema validation failed with 'schema#'\n- at '/"),
        "{}",
        resp.text()
    );
    assert_eq!(resp.text().lines().count(), 3, "{}", resp.text());
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(resp.header("x-krakend-completed"), Some("false"));
    assert!(resp.header("cache-control").is_none());

    let resp = post(&gw, "not json").await;
    assert_eq!(resp.status, 400);
    assert!(!resp.text().is_empty());
    let resp = post(&gw, "").await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.text(), "could not validate an empty body");
    assert_eq!(mock.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_return_error_msg_the_body_is_empty() {
    let mock = Backend::start_sync(|_| Reply::json(200, &json!({}))).await;
    let mut config = config(&mock.url(), json!({"type": "number"}));
    config["extra_config"]["router"]["return_error_msg"] = json!(false);
    let gw = try_start_gateway_with_components(config, Registry::new(), &components())
        .await
        .unwrap();
    // The CE spec jsonschema_1: an object against {"type": "number"}.
    let resp = post(&gw, r#"{"foo": 42}"#).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.text(), "");
    assert_eq!(post(&gw, "42").await.status, 200);
    assert_eq!(mock.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_that_does_not_compile_stops_the_start() {
    for schema in [
        json!({"type": "nope"}),
        json!({"$ref": "https://example.com/schema.json"}),
        json!("string"),
    ] {
        let error = try_start_gateway_with_components(
            config("http://127.0.0.1:10", schema),
            Registry::new(),
            &components(),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("test.json: endpoints[0].extra_config[\"validation/json-schema\"]: "),
            "{error}"
        );
    }
}
