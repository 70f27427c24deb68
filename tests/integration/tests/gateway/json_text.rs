//! An endpoint that changes nothing in the data after its backends (no `flatmap_filter`, no
//! `static`, not sequential) keeps each JSON answer as the text its render writes, straight
//! from the body, where a backend's only manipulation is `group` (or none). The client must
//! get the same bytes, headers and `X-KrakenD-Completed` as from values: every answer below is
//! compared with the same backend read through an `allow` list naming every key, which takes
//! the values path.
#![allow(clippy::unwrap_used)]

use http::Method;
use serde_json::{Value, json};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::*;

/// Keys out of order, a repeated key (the last wins, as in a map), escapes read and written
/// as Go writes them, numbers as written but for the exponent serde_json normalises, nesting.
const USER: &str = concat!(
    r#" {"name": "Ell\u00e9t \"E\"", "id": 7, "tags": ["b", "a", {"z": 1, "y": [1E5, -0.0]}],"#,
    r#" "html": "<a href=\/x>&</a>", "id": 8, "address": {"zip": "10001", "city": "NY"},"#,
    "\n \"line\": \"\u{2028}\", \"empty\": {}, \"nothing\": null} trailing"
);
const USER_KEYS: [&str; 7] = ["address", "empty", "html", "id", "line", "name", "nothing"];
const USER_JSON: &str = concat!(
    r#"{"address":{"city":"NY","zip":"10001"},"empty":{},"html":"\u003ca href=/x\u003e\u0026\u003c/a\u003e","#,
    r#""id":8,"line":"\u2028","name":"Ellét \"E\"","nothing":null,"#,
    r#""tags":["b","a",{"y":[1e+5,-0.0],"z":1}]}"#
);

fn backends() -> impl Fn(&Received) -> Reply + Send + Sync + 'static {
    |req: &Received| {
        let body = match req.path.as_str() {
            "/user" => USER,
            "/orders" => r#"{"orders": [{"id": 1}], "count": 1}"#,
            "/empty" => "{}",
            "/null" => "null",
            "/array" => "[1, 2]",
            "/broken" => r#"{"a": 1"#,
            _ => return Reply::new(500).body("down"),
        };
        Reply::new(200)
            .header("content-type", "application/json")
            .body(body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_answers_are_the_bytes_values_render() {
    let mock = Backend::start_sync(backends()).await;
    let url = mock.url();
    let mut all_user_keys = USER_KEYS.to_vec();
    all_user_keys.push("tags");
    let gw = start_gateway(service(json!([
        endpoint(
            "/user",
            json!([backend(&url, "/user", Value::Null)]),
            Value::Null
        ),
        endpoint(
            "/user/values",
            json!([backend(&url, "/user", json!({"allow": all_user_keys}))]),
            Value::Null
        ),
        endpoint(
            "/grouped",
            json!([
                backend(&url, "/user", json!({"group": "user"})),
                backend(&url, "/orders", json!({"group": "o<"})),
                backend(&url, "/orders", Value::Null)
            ]),
            Value::Null
        ),
        // One backend on the values path (`allow`) beside text ones: merged as values.
        endpoint(
            "/mixed",
            json!([
                backend(&url, "/user", json!({"group": "user"})),
                backend(&url, "/orders", json!({"allow": ["count"]}))
            ]),
            Value::Null
        ),
        endpoint(
            "/partial",
            json!([
                backend(&url, "/user", json!({"group": "user"})),
                backend(&url, "/down", json!({"group": "down"}))
            ]),
            Value::Null
        ),
        endpoint(
            "/negotiated",
            json!([backend(&url, "/orders", Value::Null)]),
            json!({"output_encoding": "negotiate"})
        ),
        endpoint(
            "/empty",
            json!([backend(&url, "/empty", Value::Null)]),
            Value::Null
        ),
        endpoint(
            "/empty/grouped",
            json!([backend(&url, "/empty", json!({"group": "g"}))]),
            Value::Null
        ),
        endpoint(
            "/null",
            json!([backend(&url, "/null", Value::Null)]),
            Value::Null
        ),
        endpoint(
            "/array",
            json!([backend(&url, "/array", Value::Null)]),
            Value::Null
        ),
        endpoint(
            "/broken",
            json!([backend(&url, "/broken", Value::Null)]),
            Value::Null
        ),
    ])))
    .await;

    let text = get(&gw.url("/user")).await;
    let values = get(&gw.url("/user/values")).await;
    for resp in [&text, &values] {
        assert_status(resp, 200);
        assert_complete_json(resp, 3600);
        assert_eq!(resp.text(), USER_JSON);
    }

    let grouped = get(&gw.url("/grouped")).await;
    assert_complete_json(&grouped, 3600);
    assert_eq!(
        grouped.text(),
        format!(
            r#"{{"count":1,"o\u003c":{{"count":1,"orders":[{{"id":1}}]}},"orders":[{{"id":1}}],"user":{USER_JSON}}}"#
        )
    );

    let mixed = get(&gw.url("/mixed")).await;
    assert_complete_json(&mixed, 3600);
    assert_eq!(mixed.text(), format!(r#"{{"count":1,"user":{USER_JSON}}}"#));

    let partial = get(&gw.url("/partial")).await;
    assert_status(&partial, 200);
    assert_completed(&partial, false);
    assert_no_cache_control(&partial);
    assert_eq!(partial.text(), format!(r#"{{"user":{USER_JSON}}}"#));

    let json = request(
        Method::GET,
        &gw.url("/negotiated"),
        &[("accept", "application/json")],
        "",
    )
    .await;
    assert_content_type(&json, "application/json; charset=utf-8");
    assert_eq!(json.text(), r#"{"count":1,"orders":[{"id":1}]}"#);
    let xml = request(
        Method::GET,
        &gw.url("/negotiated"),
        &[("accept", "application/xml")],
        "",
    )
    .await;
    assert_content_type(&xml, "application/xml");
    assert!(xml.text().contains("<count>1</count>"), "{}", xml.text());

    // No data is no complete answer, whichever path read it; a group always holds data.
    for path in ["/empty", "/null"] {
        let resp = get(&gw.url(path)).await;
        assert_status(&resp, 200);
        assert_completed(&resp, false);
        assert_eq!(resp.text(), "{}", "{path}");
    }
    let grouped = get(&gw.url("/empty/grouped")).await;
    assert_complete_json(&grouped, 3600);
    assert_eq!(grouped.text(), r#"{"g":{}}"#);

    // What is not an object, or not JSON, is decoded as before, with its error.
    for path in ["/array", "/broken"] {
        let resp = get(&gw.url(path)).await;
        assert_status(&resp, 500);
        assert_completed(&resp, false);
    }
}
