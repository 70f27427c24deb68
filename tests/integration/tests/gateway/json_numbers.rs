//! JSON numbers keep the backend's text through decode, filter, merge, sequential params and
//! render: KrakenD decodes with Go's `UseNumber`, so a client sees the backend's digits
//! (integers beyond 2^53, trailing zeros, long decimals), not a float64's rounding of them.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::*;

/// A ledger entry with numbers a float64 would change: 2^53 + 1, an amount with a trailing
/// zero, a decimal longer than 17 digits, a u64 beyond i64 and an integer beyond u64.
const LEDGER: &str = concat!(
    r#"{"account": 9007199254740993, "balance": 120.50, "rate": 0.123456789012345678901,"#,
    r#" "serial": 18446744073709551615, "huge": 340282366920938463463374607431768211457,"#,
    r#" "history": [1.10, 2.20, -0.0], "owner": {"id": 9007199254740995, "name": "ada"}}"#
);

fn ledger_backend() -> impl Fn(&Received) -> Reply + Send + Sync + 'static {
    |req: &Received| match req.path.as_str() {
        "/ledger" => Reply::new(200)
            .header("content-type", "application/json")
            .body(LEDGER),
        "/fees" => Reply::new(200)
            .header("content-type", "application/json")
            .body(r#"{"fee": 0.10, "cap": 1000000000000000000000}"#),
        _ => Reply::new(200)
            .header("content-type", "application/json")
            .body(format!(r#"{{"seen": "{}"}}"#, req.path)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_keep_their_text_through_filter_merge_and_render() {
    let mock = Backend::start_sync(ledger_backend()).await;
    let gw = start_gateway(service(json!([
        endpoint(
            "/account",
            json!([
                backend(
                    &mock.url(),
                    "/ledger",
                    json!({"allow": ["account", "balance", "rate", "serial", "huge",
                                     "history", "owner.id"]})
                ),
                backend(&mock.url(), "/fees", json!({"group": "fees"}))
            ]),
            Value::Null
        ),
        endpoint(
            "/account/xml",
            json!([backend(&mock.url(), "/ledger", json!({"deny": ["owner"]}))]),
            json!({"output_encoding": "xml"})
        ),
        endpoint(
            "/account/yaml",
            json!([backend(
                &mock.url(),
                "/ledger",
                json!({"allow": ["account", "balance"]})
            )]),
            json!({"output_encoding": "yaml"})
        ),
    ])))
    .await;

    let resp = get(&gw.url("/account")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.text(),
        concat!(
            r#"{"account":9007199254740993,"balance":120.50,"fees":{"cap":1000000000000000000000,"#,
            r#""fee":0.10},"history":[1.10,2.20,-0.0],"huge":340282366920938463463374607431768211457,"#,
            r#""owner":{"id":9007199254740995},"rate":0.123456789012345678901,"#,
            r#""serial":18446744073709551615}"#
        )
    );

    let xml = get(&gw.url("/account/xml")).await.text().to_owned();
    for element in [
        "<account>9007199254740993</account>",
        "<balance>120.50</balance>",
        "<rate>0.123456789012345678901</rate>",
        "<huge>340282366920938463463374607431768211457</huge>",
    ] {
        assert!(xml.contains(element), "{element} missing from {xml}");
    }

    let yaml = get(&gw.url("/account/yaml")).await.text().to_owned();
    assert_eq!(yaml, "account: 9007199254740993\nbalance: 120.50\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_params_carry_the_number_text() {
    let mock = Backend::start_sync(ledger_backend()).await;
    let gw = start_gateway(service(json!([endpoint(
        "/statement",
        json!([
            backend(
                &mock.url(),
                "/ledger",
                json!({"allow": ["account", "balance", "owner"]})
            ),
            backend(
                &mock.url(),
                "/statements/{resp0_account}/{resp0_balance}/{resp0_owner.id}",
                json!({"group": "statement"})
            )
        ]),
        json!({"extra_config": {"proxy": {"sequential": true}}})
    )])))
    .await;

    let resp = get(&gw.url("/statement")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        mock.last().path,
        "/statements/9007199254740993/120.50/9007199254740995"
    );
    let body: Value = serde_json::from_str(resp.text()).unwrap();
    assert_eq!(
        body["statement"]["seen"],
        "/statements/9007199254740993/120.50/9007199254740995"
    );
    assert!(
        resp.text()
            .contains(r#""account":9007199254740993,"balance":120.50"#),
        "{}",
        resp.text()
    );
}
