//! Headers exactly as KrakenD CE writes them, where clients compare them (spec §2.3, §2.9,
//! §2.12; CE specs no-op_1, no-op_2, router_404, router_405, xml_1, xml_2): the `Content-Type`
//! of every render and of the router's own answers, `Cache-Control`, `X-KrakenD-Completed`, and
//! the `Content-Length` of forwarded requests (Go's `shouldSendContentLength`).
//!
//! Paths and values are this file's own; the expected bytes follow what gin, krakend-xml (mxj)
//! and Go's transport write.
#![allow(clippy::unwrap_used)]

use http::Method;
use serde_json::{Value, json};
use sluice_integration::backend::{Backend, Received, Reply};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::*;

const CACHE_TTL: u64 = 3600;

// ---------------------------------------------------------------------------------------------
// The xml render: krakend-xml over mxj, `application/xml` without a charset.

const SHELF_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<shelf room="kitchen" floor="1">
  <jar label="Tea &amp; Co">
    <kind>assam</kind>
    <grams>250</grams>
  </jar>
  <jar label='Spare'>
    <kind>rooibos</kind>
    <grams/>
  </jar>
  <note>keep "dry" &lt;always&gt;</note>
  <empty></empty>
  <caddy>tin</caddy>
</shelf>
"#;

/// [`SHELF_XML`] decoded and written back as mxj does: no declaration, no whitespace, attributes
/// and elements sorted, repeated elements repeated, empty ones self-closed, values escaped.
const SHELF_OUT: &str = concat!(
    r#"<shelf floor="1" room="kitchen"><caddy>tin</caddy><empty/>"#,
    r#"<jar label="Tea &amp; Co"><grams>250</grams><kind>assam</kind></jar>"#,
    r#"<jar label="Spare"><grams/><kind>rooibos</kind></jar>"#,
    "<note>keep &quot;dry&quot; &lt;always&gt;</note></shelf>"
);

const ORDER_JSON: &str = r##"{"order":7,"-id":"o7","#text":"t","ok":true,"none":null,"meta":{},"flags":[],"tags":["x","y"],"note":"<hi>","items":[{"sku":"a&b","qty":2},{"sku":"c","qty":1}]}"##;

/// [`ORDER_JSON`] as mxj writes it: several keys, so wrapped in `<doc>`; `-id` an attribute of
/// it and `#text` its text.
const ORDER_OUT: &str = concat!(
    r#"<doc id="o7">t<flags/><items><qty>2</qty><sku>a&amp;b</sku></items>"#,
    "<items><qty>1</qty><sku>c</sku></items><meta/><none/><note>&lt;hi&gt;</note>",
    "<ok>true</ok><order>7</order><tags>x</tags><tags>y</tags></doc>"
);

async fn pantry() -> Backend {
    Backend::start_sync(|req: &Received| match req.path.as_str() {
        "/shelf" => Reply::new(200)
            .header("content-type", "application/xml; charset=utf-8")
            .body(SHELF_XML),
        _ => Reply::new(200)
            .header("content-type", "application/json")
            .body(ORDER_JSON),
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xml_in_xml_out_as_krakend_xml_writes_it() {
    let api = pantry().await;
    let gw = start_gateway(service(json!([endpoint(
        "/pantry/shelf",
        json!([backend(&api.url(), "/shelf", json!({"encoding": "xml"}))]),
        json!({"output_encoding": "xml"})
    )])))
    .await;

    let resp = get(&gw.url("/pantry/shelf")).await;

    assert_status(&resp, 200);
    assert_content_type(&resp, "application/xml");
    assert_eq!(resp.text(), SHELF_OUT);
    assert_cache_control(&resp, CACHE_TTL);
    assert_completed(&resp, true);
    assert_version_header(&resp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_in_xml_out_is_wrapped_in_doc() {
    let api = pantry().await;
    let gw = start_gateway(service(json!([
        endpoint(
            "/pantry/order",
            json!([backend(&api.url(), "/order", Value::Null)]),
            json!({"output_encoding": "xml"})
        ),
        endpoint(
            "/pantry/any",
            json!([backend(&api.url(), "/order", Value::Null)]),
            json!({"output_encoding": "negotiate"})
        ),
    ])))
    .await;

    let resp = get(&gw.url("/pantry/order")).await;
    assert_status(&resp, 200);
    assert_content_type(&resp, "application/xml");
    assert_eq!(resp.text(), ORDER_OUT);
    assert_cache_control(&resp, CACHE_TTL);
    assert_completed(&resp, true);

    // Negotiated XML is the same render.
    let resp = request(
        Method::GET,
        &gw.url("/pantry/any"),
        &[("Accept", "text/xml")],
        "",
    )
    .await;
    assert_status(&resp, 200);
    assert_content_type(&resp, "application/xml");
    assert_eq!(resp.text(), ORDER_OUT);
}
