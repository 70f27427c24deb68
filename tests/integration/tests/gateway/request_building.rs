//! Spec §3 B: building and forwarding the backend request (cases 19-31).
#![allow(clippy::unwrap_used)]

use http::Method;
use serde_json::{Value, json};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::mocks::{ce, lura};
use sluice_integration::*;

const CACHE_TTL: u64 = 3600;

/// The CE param-forwarding endpoint of cases 19-21.
fn param_forwarding_endpoint(
    host: &str,
    method: &str,
    input_headers: Value,
    extra_query: &str,
) -> Value {
    endpoint(
        "/param_forwarding/some/{foo}/{bar}",
        json!([backend(
            host,
            &format!("/param_forwarding/{{bar}}?foo={{foo}}{extra_query}"),
            Value::Null
        )]),
        json!({"method": method, "input_headers": input_headers}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_19_header_allow_list_is_case_insensitive() {
    let mock = ce::mock().await;
    let gw = start_gateway(service(json!([param_forwarding_endpoint(
        &mock.url(),
        "GET",
        // The spelling in the config differs from the one on the wire.
        json!(["Authorization", "x-y-Z"]),
        ""
    )])))
    .await;

    let resp = request(
        Method::GET,
        &gw.url("/param_forwarding/some/foo/bar?a=1&b=2"),
        &[
            ("AUTHORIZATION", "bearer 123456"),
            ("X-Y-z", "true"),
            ("a-B-c", "ignore"),
        ],
        "",
    )
    .await;

    assert_complete_json(&resp, CACHE_TTL);
    assert_json(
        &resp,
        &json!({
            "foo": 42,
            "headers": {
                "Accept-Encoding": ["gzip"],
                "Authorization": ["bearer 123456"],
                "User-Agent": [SLUICE_VERSION],
                "X-Forwarded-Host": [gw.authority()],
                "X-Y-Z": ["true"]
            },
            "path": "/param_forwarding/bar",
            "query": {"foo": ["foo"]}
        }),
    );
    let seen = mock.last();
    assert_eq!(seen.method, Method::GET);
    assert_eq!(seen.path, "/param_forwarding/bar");
    assert_eq!(
        seen.query.as_deref(),
        Some("foo=foo"),
        "the client's query is dropped"
    );
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("a-b-c"), None);

    // The same with the header names spelled oddly on the wire (HTTP/1.1 clients lower-case them).
    let raw = raw_request(
        gw.addr,
        format!(
            "GET /param_forwarding/some/foo/bar HTTP/1.1\r\nHost: {}\r\nAUTHORIZATION: bearer 123456\r\n\
             x-Y-z: true\r\nA-b-C: ignore\r\nConnection: close\r\n\r\n",
            gw.authority()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(raw.status, 200);
    let seen = mock.last();
    assert_eq!(seen.header("authorization"), Some("bearer 123456"));
    assert_eq!(seen.header("x-y-z"), Some("true"));
    assert_eq!(seen.header("a-b-c"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_20_all_headers_with_wildcard() {
    let mock = ce::mock().await;
    let gw = start_gateway(service(json!([param_forwarding_endpoint(
        &mock.url(),
        "GET",
        json!(["*"]),
        ""
    )])))
    .await;

    let resp = request(
        Method::GET,
        &gw.url("/param_forwarding/some/foo/bar?a=1&b=2"),
        &[
            ("Authorization", "bearer 123456"),
            ("X-Y-Z", "true"),
            ("A-B-C", "ignore"),
            ("User-Agent", "Go-http-client/1.1"),
        ],
        "",
    )
    .await;

    assert_complete_json(&resp, CACHE_TTL);
    assert_json(
        &resp,
        &json!({
            "foo": 42,
            "headers": {
                "A-B-C": ["ignore"],
                "Accept-Encoding": ["gzip"],
                "Authorization": ["bearer 123456"],
                "User-Agent": ["Go-http-client/1.1"],
                "X-Forwarded-Host": [gw.authority()],
                "X-Forwarded-Via": [SLUICE_VERSION],
                "X-Y-Z": ["true"]
            },
            "path": "/param_forwarding/bar",
            "query": {"foo": ["foo"]}
        }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_21_post_body_is_forwarded() {
    let mock = ce::mock().await;
    let gw = start_gateway(service(json!([param_forwarding_endpoint(
        &mock.url(),
        "POST",
        json!(["Content-Type", "Authorization", "X-Y-Z"]),
        "&dump_body=1"
    )])))
    .await;

    let resp = request(
        Method::POST,
        &gw.url("/param_forwarding/some/foo/bar?a=1"),
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "bearer 123456"),
        ],
        r#"{"foo":"bar"}"#,
    )
    .await;

    assert_complete_json(&resp, CACHE_TTL);
    let body = resp.json();
    assert_eq!(body["body"], json!(r#"{"foo":"bar"}"#));
    assert_eq!(body["query"], json!({"dump_body": ["1"], "foo": ["foo"]}));
    assert_eq!(body["path"], json!("/param_forwarding/bar"));
    assert_eq!(body["foo"], json!(42));
    let seen = mock.last();
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.body.as_ref(), br#"{"foo":"bar"}"#);
    assert_eq!(seen.header("content-type"), Some("application/json"));
}

fn query_forwarding_endpoint(host: &str, input_query_strings: Value) -> Value {
    endpoint(
        "/query_forwarding/all/{name}",
        json!([backend(host, "/param_forwarding/{name}", Value::Null)]),
        json!({"input_query_strings": input_query_strings}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_22_all_query_strings_with_wildcard() {
    let mock = ce::mock().await;
    let gw = start_gateway(service(json!([query_forwarding_endpoint(
        &mock.url(),
        json!(["*"])
    )])))
    .await;

    let resp = request(
        Method::GET,
        &gw.url("/query_forwarding/all/foo?a=1&b=2&b=3"),
        &[("X-Y-Z", "true")],
        "",
    )
    .await;

    assert_complete_json(&resp, CACHE_TTL);
    let body = resp.json();
    assert_eq!(body["query"], json!({"a": ["1"], "b": ["2", "3"]}));
    assert_eq!(body["path"], json!("/param_forwarding/foo"));
    assert_eq!(
        body["headers"].get("X-Y-Z"),
        None,
        "headers are not forwarded by default"
    );
    assert_eq!(mock.last().header("x-y-z"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_23_query_allow_list() {
    let mock = ce::mock().await;
    let gw = start_gateway(service(json!([query_forwarding_endpoint(
        &mock.url(),
        json!(["a"])
    )])))
    .await;

    let resp = get(&gw.url("/query_forwarding/all/foo?a=1&b=2&b=3")).await;

    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(resp.json()["query"], json!({"a": ["1"]}));
    assert_eq!(mock.last().query.as_deref(), Some("a=1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_24_no_query_strings_by_default() {
    let echo = lura::echo().await;
    let gw = start_gateway(service(json!([endpoint(
        "/querystring-params-test/no-params",
        json!([backend(&echo.url(), "/no-params", Value::Null)]),
        Value::Null
    )])))
    .await;

    let resp = get(&gw.url("/querystring-params-test/no-params?a=1&b=2&c=3")).await;

    assert_complete_json(&resp, CACHE_TTL);
    // Exact bytes: keys sorted (headers, path, query), as the Go render writes them.
    let expected = format!(
        concat!(
            r#"{{"headers":{{"Accept-Encoding":["gzip"],"User-Agent":["{ua}"],"#,
            r#""X-Forwarded-Host":["{host}"]}},"path":"/no-params","query":{{}}}}"#
        ),
        ua = SLUICE_VERSION,
        host = gw.authority()
    );
    assert_eq!(resp.text(), expected);
    assert_eq!(echo.last().query, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_25_listed_query_strings() {
    let echo = lura::echo().await;
    let gw = start_gateway(service(json!([endpoint(
        "/querystring-params-test/optional-params",
        json!([backend(&echo.url(), "/optional-params", Value::Null)]),
        json!({"input_query_strings": ["a", "b"]})
    )])))
    .await;

    let resp = get(&gw.url("/querystring-params-test/optional-params?a=1&b=2&c=3")).await;

    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(resp.json()["query"], json!({"a": ["1"], "b": ["2"]}));
    assert_eq!(resp.json()["path"], json!("/optional-params"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_26_param_into_url_pattern_query() {
    let echo = lura::echo().await;
    let gw = start_gateway(service(json!([endpoint(
        "/querystring-params-test/url-params/{param}",
        json!([backend(&echo.url(), "/url-params?p={param}", Value::Null)]),
        Value::Null
    )])))
    .await;

    let resp = get(&gw.url("/querystring-params-test/url-params/some?a=1&b=2&c=3")).await;

    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(resp.json()["path"], json!("/url-params"));
    assert_eq!(resp.json()["query"], json!({"p": ["some"]}));
    assert_eq!(echo.last().query.as_deref(), Some("p=some"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_27_header_filters_none_listed_all() {
    let echo = lura::echo().await;
    let ep = |path: &str, input_headers: Value| {
        let mut e = endpoint(
            path,
            json!([backend(&echo.url(), "/header-params", Value::Null)]),
            Value::Null,
        );
        if !input_headers.is_null() {
            e["input_headers"] = input_headers;
        }
        e
    };
    let gw = start_gateway(service(json!([
        ep("/header-params-test/none", Value::Null),
        ep("/header-params-test/filter", json!(["X-Test-1"])),
        ep("/header-params-test/all", json!(["*"])),
    ])))
    .await;
    let sent = [("x-Test-1", "some"), ("X-TEST-2", "none")];

    let none = request(Method::GET, &gw.url("/header-params-test/none"), &sent, "").await;
    assert_complete_json(&none, CACHE_TTL);
    assert_eq!(
        none.json()["headers"],
        json!({
            "Accept-Encoding": ["gzip"],
            "User-Agent": [SLUICE_VERSION],
            "X-Forwarded-Host": [gw.authority()]
        })
    );

    let filtered = request(
        Method::GET,
        &gw.url("/header-params-test/filter"),
        &sent,
        "",
    )
    .await;
    assert_complete_json(&filtered, CACHE_TTL);
    assert_eq!(
        filtered.json()["headers"],
        json!({
            "Accept-Encoding": ["gzip"],
            "User-Agent": [SLUICE_VERSION],
            "X-Forwarded-Host": [gw.authority()],
            "X-Test-1": ["some"]
        })
    );

    let all = request(
        Method::GET,
        &gw.url("/header-params-test/all"),
        &[sent[0], sent[1], ("User-Agent", "KrakenD Test")],
        "",
    )
    .await;
    assert_complete_json(&all, CACHE_TTL);
    assert_eq!(
        all.json()["headers"],
        json!({
            "Accept-Encoding": ["gzip"],
            "User-Agent": ["KrakenD Test"],
            "X-Forwarded-Host": [gw.authority()],
            "X-Forwarded-Via": [SLUICE_VERSION],
            "X-Test-1": ["some"],
            "X-Test-2": ["none"]
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_28_post_with_three_allowed_headers() {
    let b1 = lura::param_forwarding_checker().await;
    let gw = start_gateway(service(json!([endpoint(
        "/param_forwarding/{first}/constant/{second}",
        json!([backend(&b1.url(), "/{first}/{second}", Value::Null)]),
        json!({"method": "POST", "input_headers": ["Content-Type", "Authorization", "X-Y-Z"]})
    )])))
    .await;

    let resp = request(
        Method::POST,
        &gw.url("/param_forwarding/foo/constant/bar"),
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "bearer 123456"),
            ("X-Y-Z", "true"),
            ("X-Not-Allowed", "1"),
        ],
        r#"{"foo":"bar"}"#,
    )
    .await;

    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(resp.text(), r#"{"path":"/foo/bar"}"#);
    assert_eq!(b1.last().header("x-not-allowed"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_29_x_forwarded_for_from_trusted_proxy() {
    let echo = lura::echo().await;
    let mut cfg = service(json!([endpoint(
        "/x-forwarded-for",
        json!([backend(&echo.url(), "/x-forwarded-for", Value::Null)]),
        Value::Null
    )]));
    cfg["extra_config"]["router"] = json!({
        "return_error_msg": true,
        "forwarded_by_client_ip": true,
        "remote_ip_headers": ["x-forwarded-for"],
        "trusted_proxies": ["127.0.0.1/32", "::1"]
    });
    let gw = start_gateway(cfg).await;

    let resp = request(
        Method::GET,
        &gw.url("/x-forwarded-for"),
        &[("x-forwarded-for", "123.45.67.89")],
        "",
    )
    .await;

    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(echo.last().header_all("x-forwarded-for"), ["123.45.67.89"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_30_backend_redirects_are_followed() {
    let mock = ce::mock().await;
    let gw = start_gateway(service(json!([endpoint(
        "/redirect/{code}",
        json!([backend(
            &mock.url(),
            "/redirect/?status={code}",
            Value::Null
        )]),
        Value::Null
    )])))
    .await;

    for code in [301, 302, 303, 307] {
        let before = mock.count();
        let resp = get(&gw.url(&format!("/redirect/{code}"))).await;

        assert_complete_json(&resp, CACHE_TTL);
        let body = resp.json();
        assert_eq!(body["foo"], json!(42), "code {code}");
        assert_eq!(body["path"], json!("/param_forwarding/"), "code {code}");
        assert_eq!(
            body["query"],
            json!({"status": [code.to_string()]}),
            "code {code}"
        );
        assert_eq!(
            body["headers"]["Referer"],
            json!([format!("{}/redirect/?status={code}", mock.url())]),
            "code {code}"
        );
        let seen = mock.received();
        assert_eq!(
            seen.len(),
            before + 2,
            "the redirect and its target, code {code}"
        );
        assert_eq!(seen[before].path, "/redirect/");
        assert_eq!(seen[before + 1].path, "/param_forwarding/");
        assert_eq!(seen[before + 1].method, Method::GET);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_31_multi_backend_post_each_backend_gets_the_body() {
    let echo = lura::body_echo().await;
    let gw = start_gateway(service(json!([endpoint(
        "/multipost/parallel/{param}",
        json!([
            backend(&echo.url(), "/first/{param}", json!({"group": "first"})),
            backend(&echo.url(), "/second/{param}", json!({"group": "second"}))
        ]),
        json!({"method": "POST"})
    )])))
    .await;

    let resp = request(
        Method::POST,
        &gw.url("/multipost/parallel/x"),
        &[("Content-Type", "application/json")],
        r#"{"foo":"bar"}"#,
    )
    .await;

    assert_complete_json(&resp, CACHE_TTL);
    let item = json!({"body": r#"{"foo":"bar"}"#, "method": "POST"});
    assert_json(&resp, &json!({"first": item, "second": item}));
    let mut paths: Vec<String> = echo.received().into_iter().map(|r| r.path).collect();
    paths.sort();
    assert_eq!(paths, ["/first/x", "/second/x"]);
}
