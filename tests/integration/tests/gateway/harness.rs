//! The harness itself, without a gateway: the mock backends answer what the conformance cases
//! rely on, and the clients read them correctly.
#![allow(clippy::unwrap_used)]

use http::Method;
use serde_json::json;
use sluice_integration::mocks::{ce, lura, misbehaving};
use sluice_integration::*;

#[tokio::test]
async fn ce_echo_requires_a_loopback_x_forwarded_for() {
    let mock = ce::mock().await;

    let rejected = get(&format!("{}/param_forwarding/x", mock.url())).await;
    assert_eq!(rejected.status, 400);

    let resp = request(
        Method::POST,
        &format!("{}/param_forwarding/x?dump_body=1&b=2&b=3", mock.url()),
        &[("x-forwarded-for", "127.0.0.1"), ("x-y-z", "true")],
        "hello",
    )
    .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.header_all("set-cookie"), ce::COOKIES);
    assert!(resp.text().ends_with("}\n"));
    assert_eq!(
        resp.json(),
        json!({
            "body": "hello",
            "foo": 42,
            "headers": {"Content-Length": ["5"], "X-Y-Z": ["true"]},
            "path": "/param_forwarding/x",
            "query": {"b": ["2", "3"], "dump_body": ["1"]}
        })
    );
    // Keys come sorted, as Go writes maps.
    assert!(
        resp.text()
            .starts_with(r#"{"body":"hello","foo":42,"headers":"#)
    );
    assert_eq!(mock.sent_bodies().last().unwrap(), &resp.body);
    let seen = mock.last();
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.body.as_ref(), b"hello");
}

#[tokio::test]
async fn ce_mock_routes() {
    let mock = ce::mock().await;
    let url = |p: &str| format!("{}{p}", mock.url());

    let collection = get(&url("/collection/2")).await;
    let items = collection.json();
    assert_eq!(items.as_array().unwrap().len(), 10);
    assert_eq!(items[9], json!({"i": 9, "path": "/collection/2"}));

    let redirect = get(&url("/redirect/?status=307")).await;
    assert_eq!(redirect.status, 307);
    assert_eq!(
        redirect.header("location"),
        Some("/param_forwarding/?status=307")
    );

    let slash = get(&url("/param_forwarding?a=1")).await;
    assert_eq!(slash.status, 301);
    assert_eq!(slash.header("location"), Some("/param_forwarding/?a=1"));

    let xml = get(&url("/xml")).await;
    assert_eq!(xml.text(), ce::XML_USER);
    assert_eq!(xml.header("content-type"), Some("application/xml"));

    let unknown = get(&url("/unknown")).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.text(), "404 page not found\n");
    assert_eq!(unknown.header("content-type"), Some(TEXT_UTF8));

    let delayed_start = std::time::Instant::now();
    let delayed = request(
        Method::GET,
        &url("/delayed/"),
        &[("x-forwarded-for", "::1")],
        "",
    )
    .await;
    assert_eq!(delayed.status, 200);
    assert!(delayed_start.elapsed() >= std::time::Duration::from_millis(200));

    let debug = get(&url("/__debug/")).await;
    assert_eq!(debug.json(), json!({"message": "pong"}));
}

#[tokio::test]
async fn lura_backends() {
    let b4 = lura::sad_panda().await;
    let resp = get(&b4.url()).await;
    assert_eq!(resp.status, 429);
    assert_eq!(resp.text(), "sad panda");

    let seq = lura::sequential().await;
    let resp = get(&format!("{}/recipient/42", seq.url())).await;
    assert_eq!(resp.json(), json!({"path": "/recipient/42", "random": 42}));
    assert_eq!(get(&format!("{}/42", seq.url())).await.status, 404);

    let b1 = lura::param_forwarding_checker().await;
    let ok = request(
        Method::POST,
        &format!("{}/foo/bar", b1.url()),
        &[
            ("content-type", "application/json"),
            ("authorization", "bearer 123456"),
            ("x-y-z", "true"),
        ],
        r#"{"foo":"bar"}"#,
    )
    .await;
    assert_eq!(ok.text(), r#"{"path":"/foo/bar"}"#);
    let ko = request(Method::POST, &format!("{}/foo/bar", b1.url()), &[], "").await;
    assert_eq!(ko.status, 400);

    let echo = lura::echo().await;
    let resp = get(&format!("{}/e?a=1", echo.url())).await;
    assert_eq!(
        resp.text(),
        r#"{"headers":{},"path":"/e","query":{"a":["1"]}}"#
    );
}

#[tokio::test]
async fn misbehaving_backends_misbehave() {
    let reset = misbehaving::reset().await;
    assert!(
        try_request(Method::GET, &reset.url(), &[], "")
            .await
            .is_err()
    );
    assert_eq!(reset.connections(), 1);

    let close = misbehaving::close().await;
    assert!(
        try_request(Method::GET, &close.url(), &[], "")
            .await
            .is_err()
    );

    let garbage = misbehaving::garbage_status_line().await;
    assert!(
        try_request(Method::GET, &garbage.url(), &[], "")
            .await
            .is_err()
    );

    let hang = misbehaving::hang().await;
    let waited = tokio::time::timeout(
        std::time::Duration::from_millis(100),
        try_request(Method::GET, &hang.url(), &[], ""),
    )
    .await;
    assert!(waited.is_err());
    assert_eq!(hang.count(), 1);
}

#[tokio::test]
async fn huge_body_streams_100_mib() {
    use http_body_util::BodyExt;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let huge = misbehaving::huge_body(true).await;
    let client =
        Client::builder(TokioExecutor::new()).build_http::<http_body_util::Empty<bytes::Bytes>>();
    let resp = client.get(huge.url().parse().unwrap()).await.unwrap();
    let expected = misbehaving::HUGE_BODY_LEN + 2;
    assert_eq!(
        resp.headers()["content-length"].to_str().unwrap(),
        expected.to_string()
    );
    // Count without keeping it.
    let mut body = resp.into_body();
    let (mut total, mut first, mut last) = (0_usize, None, 0_u8);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            first.get_or_insert(data[0]);
            last = data[data.len() - 1];
            total += data.len();
        }
    }
    assert_eq!(total, expected);
    assert_eq!((first, last), (Some(b'{'), b'}'));
}

#[tokio::test]
async fn raw_request_reads_a_response() {
    let b3 = lura::user().await;
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        b3.authority()
    );
    let resp = raw_request(b3.addr(), req.as_bytes()).await.unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, br#"{"email":"some@email.com","name":"a"}"#);
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_serves_until_shut_down() {
    let b3 = lura::user().await;
    let gw = start_gateway(service(json!([{
        "endpoint": "/ok",
        "backend": [{"host": [b3.url()], "url_pattern": "/"}]
    }])))
    .await;
    let url = gw.url("/ok");
    assert_eq!(gw.url("/ok"), format!("http://{}/ok", gw.addr));
    assert_eq!(get(&url).await.status, 200);

    gw.shutdown().await;

    assert!(try_request(Method::GET, &url, &[], "").await.is_err());
    assert_eq!(b3.count(), 1);
}
