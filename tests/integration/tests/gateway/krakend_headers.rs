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
// no-op: the backend's headers, verbatim.

#[track_caller]
fn assert_no_header(resp: &Response, name: &str) {
    assert_eq!(resp.header_all(name), Vec::<String>::new(), "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_op_keeps_the_backends_content_type_verbatim() {
    let api = Backend::start_sync(|req: &Received| match req.path.as_str() {
        "/plain-json" => Reply::new(200)
            .header("content-type", "application/json")
            .header("set-cookie", "flavour=mint")
            .header("set-cookie", "size=large")
            .body("{\"pot\":\"full\"}\n"),
        "/odd-type" => Reply::new(201)
            .header(
                "content-type",
                "application/vnd.teapot+json;charset=ISO-8859-1",
            )
            .body("{}"),
        _ => Reply::new(200).body("no type at all"),
    })
    .await;
    let no_op = |path: &str, pattern: &str| {
        endpoint(
            path,
            json!([backend(&api.url(), pattern, json!({"encoding": "no-op"}))]),
            json!({"method": "POST", "output_encoding": "no-op"}),
        )
    };
    let gw = start_gateway(service(json!([
        no_op("/pot", "/plain-json"),
        no_op("/odd", "/odd-type"),
        no_op("/untyped", "/untyped"),
    ])))
    .await;

    let resp = request(Method::POST, &gw.url("/pot"), &[], "").await;
    assert_status(&resp, 200);
    assert_eq!(resp.text(), "{\"pot\":\"full\"}\n");
    assert_content_type(&resp, "application/json");
    assert_eq!(
        resp.header_all("set-cookie"),
        ["flavour=mint", "size=large"]
    );
    assert_no_cache_control(&resp);
    assert_completed(&resp, false);
    assert_version_header(&resp);
    // A bodyless POST still says `Content-Length: 0` to the backend, as Go's client does.
    assert_eq!(api.last().header_all("content-length"), ["0"]);

    let resp = request(Method::POST, &gw.url("/odd"), &[], "").await;
    assert_status(&resp, 201);
    assert_content_type(&resp, "application/vnd.teapot+json;charset=ISO-8859-1");

    // Without one, none is made up. (Go's server would sniff one from the body: a documented
    // difference, the body is handed on untouched.)
    let resp = request(Method::POST, &gw.url("/untyped"), &[], "").await;
    assert_status(&resp, 200);
    assert_eq!(resp.text(), "no type at all");
    assert_no_header(&resp, "content-type");
}

/// CE spec no-op_2: a no-op endpoint whose backend is a gateway's own unknown path hands on
/// gin's 404 as gin wrote it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_op_hands_on_the_routers_own_404() {
    let api = Backend::start_sync(|_: &Received| Reply::json(200, &json!({}))).await;
    let inner = start_gateway(service(json!([endpoint(
        "/kettle",
        json!([backend(&api.url(), "/", Value::Null)]),
        Value::Null
    )])))
    .await;
    let outer = start_gateway(service(json!([endpoint(
        "/kettle/missing",
        json!([backend(
            &format!("http://{}", inner.authority()),
            "/no-such-kettle",
            json!({"encoding": "no-op"})
        )]),
        json!({"method": "POST", "output_encoding": "no-op"})
    )])))
    .await;

    let resp = request(Method::POST, &outer.url("/kettle/missing"), &[], "").await;

    assert_status(&resp, 404);
    assert_eq!(resp.text(), "404 page not found");
    assert_content_type(&resp, "text/plain");
    assert_no_cache_control(&resp);
    assert_completed(&resp, false);
    assert_eq!(api.count(), 0);
}

// ---------------------------------------------------------------------------------------------
// The router's own answers (gin's serveError, CE's NoRoute/NoMethod handlers, router.error_body).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_404_and_405_are_gins_plain_text() {
    let api = Backend::start_sync(|_: &Received| Reply::json(200, &json!({}))).await;
    let gw = start_gateway(service(json!([endpoint(
        "/cups",
        json!([backend(&api.url(), "/", Value::Null)]),
        Value::Null
    )])))
    .await;

    let resp = get(&gw.url("/saucers")).await;
    assert_status(&resp, 404);
    assert_eq!(resp.text(), "404 page not found");
    assert_content_type(&resp, "text/plain");
    assert_completed(&resp, false);
    assert_no_cache_control(&resp);
    assert_version_header(&resp);

    let resp = request(Method::DELETE, &gw.url("/cups"), &[], "").await;
    assert_status(&resp, 405);
    assert_eq!(resp.text(), "405 method not allowed");
    assert_content_type(&resp, "text/plain");
    assert_completed(&resp, false);
    assert_no_cache_control(&resp);
    assert_version_header(&resp);

    // Without method-not-allowed handling, gin answers the NoRoute 404.
    let mut config = service(json!([endpoint(
        "/cups",
        json!([backend(&api.url(), "/", Value::Null)]),
        Value::Null
    )]));
    config["extra_config"]["router"]["disable_handle_method_not_allowed"] = json!(true);
    let strict = start_gateway(config).await;
    let resp = request(Method::DELETE, &strict.url("/cups"), &[], "").await;
    assert_status(&resp, 404);
    assert_eq!(resp.text(), "404 page not found");
    assert_content_type(&resp, "text/plain");
    assert_completed(&resp, false);
    assert_eq!(api.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_error_body_is_json_as_gin_writes_it() {
    let api = Backend::start_sync(|_: &Received| Reply::json(200, &json!({}))).await;
    let mut config = service(json!([endpoint(
        "/cups",
        json!([backend(&api.url(), "/", Value::Null)]),
        Value::Null
    )]));
    config["extra_config"]["router"]["error_body"] = json!({
        "404": {"error": "<no cup> & no saucer", "code": 404},
        "405": {"allowed": ["GET"], "error": "method"}
    });
    let gw = start_gateway(config).await;

    let resp = get(&gw.url("/saucers")).await;
    assert_status(&resp, 404);
    // Go's json.Marshal: keys sorted, <, > and & escaped.
    assert_eq!(
        resp.text(),
        r#"{"code":404,"error":"\u003cno cup\u003e \u0026 no saucer"}"#
    );
    assert_content_type(&resp, JSON_UTF8);
    assert_completed(&resp, false);
    assert_no_cache_control(&resp);

    let resp = request(Method::PUT, &gw.url("/cups"), &[], "").await;
    assert_status(&resp, 405);
    assert_eq!(resp.text(), r#"{"allowed":["GET"],"error":"method"}"#);
    assert_content_type(&resp, JSON_UTF8);
    assert_completed(&resp, false);
}

/// gin redirects with Go's `http.Redirect`: a GET gets an HTML body and its type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_redirects_as_go_writes_them() {
    let api = Backend::start_sync(|_: &Received| Reply::json(200, &json!({}))).await;
    let gw = start_gateway(service(json!([
        endpoint(
            "/cups",
            json!([backend(&api.url(), "/", Value::Null)]),
            Value::Null
        ),
        endpoint(
            "/cups",
            json!([backend(&api.url(), "/", Value::Null)]),
            json!({"method": "POST"})
        ),
    ])))
    .await;

    let resp = get(&gw.url("/CUPS?sugar=1&milk='oat'")).await;
    assert_status(&resp, 301);
    assert_eq!(resp.header("location"), Some("/cups?sugar=1&milk='oat'"));
    assert_content_type(&resp, "text/html; charset=utf-8");
    assert_eq!(
        resp.text(),
        "<a href=\"/cups?sugar=1&amp;milk=&#39;oat&#39;\">Moved Permanently</a>.\n\n"
    );

    let resp = request(Method::POST, &gw.url("/cups/"), &[], "tea").await;
    assert_status(&resp, 307);
    assert_eq!(resp.header("location"), Some("/cups"));
    assert_no_header(&resp, "content-type");
    assert_eq!(resp.text(), "");
    assert_eq!(api.count(), 0);
}

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

// ---------------------------------------------------------------------------------------------
// The other renders (gin's c.JSON, c.String, c.YAML), Cache-Control and X-KrakenD-Completed.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_render_has_gins_content_type() {
    let api = Backend::start_sync(|req: &Received| match req.path.as_str() {
        "/list" => Reply::json(200, &json!([{"name": "<b>"}, {"name": "c&d"}])),
        "/text" => Reply::text(200, "brewing"),
        "/nested" => Reply::json(200, &json!({"collection": {"not": "a list"}})),
        _ => Reply::json(200, &json!({"a": "<x>", "n": 1})),
    })
    .await;
    let render = |path: &str, pattern: &str, encoding: &str, output: &str| {
        endpoint(
            path,
            json!([backend(&api.url(), pattern, json!({"encoding": encoding}))]),
            json!({"output_encoding": output}),
        )
    };
    let mut list = render("/r/collection", "/list", "json", "json-collection");
    list["backend"][0]["is_collection"] = json!(true);
    let gw = start_gateway(service(json!([
        render("/r/json", "/obj", "json", "json"),
        render("/r/string", "/text", "string", "string"),
        render("/r/yaml", "/obj", "json", "yaml"),
        list,
        render("/r/nested", "/nested", "json", "json-collection"),
        render("/r/negotiate", "/obj", "json", "negotiate"),
    ])))
    .await;

    let resp = get(&gw.url("/r/json")).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(resp.text(), r#"{"a":"\u003cx\u003e","n":1}"#);

    let resp = get(&gw.url("/r/string")).await;
    assert_status(&resp, 200);
    assert_content_type(&resp, TEXT_UTF8);
    assert_eq!(resp.text(), "brewing");
    assert_cache_control(&resp, CACHE_TTL);
    assert_completed(&resp, true);

    let resp = get(&gw.url("/r/yaml")).await;
    assert_status(&resp, 200);
    assert_content_type(&resp, "application/yaml; charset=utf-8");
    assert_cache_control(&resp, CACHE_TTL);
    assert_completed(&resp, true);

    // gin's c.JSON of the collection: Go's escaping, whatever the collection holds.
    let resp = get(&gw.url("/r/collection")).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(
        resp.text(),
        r#"[{"name":"\u003cb\u003e"},{"name":"c\u0026d"}]"#
    );
    let resp = get(&gw.url("/r/nested")).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(resp.text(), r#"{"not":"a list"}"#);

    for (accept, content_type) in [
        ("application/json", JSON_UTF8),
        ("application/xml", "application/xml"),
        ("text/plain", "application/yaml; charset=utf-8"),
        ("application/x-yaml", "application/yaml; charset=utf-8"),
    ] {
        let resp = request(
            Method::GET,
            &gw.url("/r/negotiate"),
            &[("Accept", accept)],
            "",
        )
        .await;
        assert_status(&resp, 200);
        assert_content_type(&resp, content_type);
        assert_cache_control(&resp, CACHE_TTL);
        assert_completed(&resp, true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_control_only_on_complete_answers_with_a_ttl() {
    let api = Backend::start_sync(|req: &Received| match req.path.as_str() {
        "/fail" => Reply::go_error(503, "out of tea"),
        "/empty" => Reply::json(200, &json!({})),
        _ => Reply::json(200, &json!({"tea": "hot"})),
    })
    .await;
    let ttl = |path: &str, cache_ttl: &str| {
        endpoint(
            path,
            json!([backend(&api.url(), "/ok", Value::Null)]),
            json!({"cache_ttl": cache_ttl}),
        )
    };
    let mut no_ttl = service(json!([
        ttl("/ttl/90s", "90s"),
        ttl("/ttl/1500ms", "1500ms"),
        // Lura: on when the TTL is not zero, in whole seconds.
        ttl("/ttl/500ms", "500ms"),
        endpoint(
            "/ttl/none",
            json!([backend(&api.url(), "/ok", Value::Null)]),
            Value::Null
        ),
        endpoint(
            "/partial",
            json!([
                backend(&api.url(), "/ok", Value::Null),
                backend(&api.url(), "/fail", Value::Null)
            ]),
            json!({"cache_ttl": "60s"})
        ),
        endpoint(
            "/empty",
            json!([backend(&api.url(), "/empty", Value::Null)]),
            json!({"cache_ttl": "60s"})
        ),
        endpoint(
            "/failed",
            json!([backend(&api.url(), "/fail", Value::Null)]),
            json!({"cache_ttl": "60s"})
        ),
    ]));
    no_ttl.as_object_mut().unwrap().remove("cache_ttl");
    let gw = start_gateway(no_ttl).await;

    for (path, max_age) in [("/ttl/90s", 90), ("/ttl/1500ms", 1), ("/ttl/500ms", 0)] {
        let resp = get(&gw.url(path)).await;
        assert_complete_json(&resp, max_age);
    }

    let resp = get(&gw.url("/ttl/none")).await;
    assert_status(&resp, 200);
    assert_content_type(&resp, JSON_UTF8);
    assert_completed(&resp, true);
    assert_no_cache_control(&resp);

    let resp = get(&gw.url("/partial")).await;
    assert_status(&resp, 200);
    assert_eq!(resp.text(), r#"{"tea":"hot"}"#);
    assert_completed(&resp, false);
    assert_no_cache_control(&resp);

    // Complete but empty: not "completed" for KrakenD.
    let resp = get(&gw.url("/empty")).await;
    assert_status(&resp, 200);
    assert_eq!(resp.text(), "{}");
    assert_content_type(&resp, JSON_UTF8);
    assert_completed(&resp, false);
    assert_no_cache_control(&resp);

    // An error answer: Go's sniffing types the message.
    let resp = get(&gw.url("/failed")).await;
    assert_status(&resp, 500);
    assert_content_type(&resp, TEXT_UTF8);
    assert_completed(&resp, false);
    assert_no_cache_control(&resp);
    assert_version_header(&resp);
}

// ---------------------------------------------------------------------------------------------
// Content-Length on forwarded requests: Go's transfer.go `shouldSendContentLength`.

/// An endpoint `/cl/<name>` (client method `client`) calling the backend with `method`, `no-op`
/// so any answer passes.
fn forward(name: &str, client: &str, method: &str, backend_url: &str) -> Value {
    endpoint(
        &format!("/cl/{name}"),
        json!([backend(
            backend_url,
            &format!("/{name}"),
            json!({"method": method, "encoding": "no-op"})
        )]),
        json!({"method": client, "output_encoding": "no-op", "input_headers": ["*"]}),
    )
}

async fn echo_backend() -> Backend {
    Backend::start_sync(|_: &Received| Reply::json(200, &json!({}))).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_on_forwarded_requests_follows_go() {
    let api = echo_backend().await;
    let url = api.url();
    let gw = start_gateway(service(json!([
        forward("get", "GET", "GET", &url),
        forward("head", "POST", "HEAD", &url),
        forward("options", "POST", "OPTIONS", &url),
        forward("delete", "DELETE", "DELETE", &url),
        forward("post", "POST", "POST", &url),
        forward("put", "PUT", "PUT", &url),
        forward("patch", "PATCH", "PATCH", &url),
    ])))
    .await;
    let client_method = |name: &str| match name {
        "get" => Method::GET,
        "delete" => Method::DELETE,
        "put" => Method::PUT,
        "patch" => Method::PATCH,
        _ => Method::POST,
    };

    // (backend, Content-Length without a body, with a 3-byte body)
    let cases: [(&str, Option<&str>, Option<&str>); 7] = [
        ("get", None, Some("3")),
        ("head", None, None),
        ("options", None, Some("3")),
        ("delete", None, Some("3")),
        ("post", Some("0"), Some("3")),
        ("put", Some("0"), Some("3")),
        ("patch", Some("0"), Some("3")),
    ];
    for (name, empty, with_body) in cases {
        let path = format!("/cl/{name}");
        let resp = request(client_method(name), &gw.url(&path), &[], "").await;
        assert_status(&resp, 200);
        let seen = api.last();
        assert_eq!(seen.method.as_str(), name.to_uppercase(), "{name}");
        assert_eq!(
            seen.header("content-length"),
            empty,
            "{name} without a body"
        );
        assert_eq!(seen.header("transfer-encoding"), None, "{name}");

        // The client's own `Content-Length: 0`, forwarded by `*`, is not what decides.
        request(
            client_method(name),
            &gw.url(&path),
            &[("Content-Length", "0")],
            "",
        )
        .await;
        assert_eq!(
            api.last().header("content-length"),
            empty,
            "{name} with Content-Length: 0"
        );

        if name == "head" {
            continue;
        }
        request(client_method(name), &gw.url(&path), &[], "tea").await;
        let seen = api.last();
        assert_eq!(
            seen.header("content-length"),
            with_body,
            "{name} with a body"
        );
        assert_eq!(seen.header("transfer-encoding"), None, "{name}");
        assert_eq!(seen.body_text(), "tea", "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_client_request_is_forwarded_with_its_length() {
    let api = echo_backend().await;
    let url = api.url();
    let gw = start_gateway(service(json!([
        forward("post", "POST", "POST", &url),
        forward("delete", "DELETE", "DELETE", &url),
        forward("get", "GET", "GET", &url),
    ])))
    .await;
    let chunked = |method: &str, path: &str, chunks: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\n{chunks}",
            gw.authority()
        )
    };

    // (method, path, chunked body, backend Content-Length, backend body)
    let cases = [
        (
            "POST",
            "/cl/post",
            "3\r\ntea\r\n4\r\n pot\r\n0\r\n\r\n",
            Some("7"),
            "tea pot",
        ),
        ("POST", "/cl/post", "0\r\n\r\n", Some("0"), ""),
        ("DELETE", "/cl/delete", "0\r\n\r\n", None, ""),
        (
            "DELETE",
            "/cl/delete",
            "2\r\nab\r\n0\r\n\r\n",
            Some("2"),
            "ab",
        ),
        ("GET", "/cl/get", "0\r\n\r\n", None, ""),
    ];
    for (method, path, chunks, length, body) in cases {
        let resp = raw_request(gw.addr, chunked(method, path, chunks).as_bytes())
            .await
            .unwrap();
        assert_eq!(resp.status, 200, "{method} {path} {chunks:?}");
        let seen = api.last();
        assert_eq!(seen.header("content-length"), length, "{method} {chunks:?}");
        assert_eq!(seen.header("transfer-encoding"), None, "{method}");
        assert_eq!(seen.body_text(), body, "{method}");
    }
}
