//! A plugin reaches only the hosts its config allows, on every hop; the gateway owns the `Host`
//! header; redirects the default client follows keep credentials on their host and resend a
//! body only when `send_body_on_redirect` says so. Each test fails on a gateway that follows a
//! plugin's redirect anywhere, forwards a chosen `Host`, or replays credentials and bodies.

#![allow(clippy::unwrap_used)]

use http::Method;
use serde_json::{Value, json};
use sluice_integration::backend::{Backend, Received, Reply};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::plugins::registry;
use sluice_integration::*;

/// A backend whose `/jump` redirects to `target` (an absolute URL), `/hop` to its own `/ok`,
/// and whose other paths answer `{"ok": true}`.
async fn redirecting(target: String) -> Backend {
    Backend::start_sync(move |req: &Received| match req.path.as_str() {
        "/jump" => Reply::new(302).header("Location", &target),
        "/hop" => Reply::new(302).header("Location", "/ok"),
        _ => Reply::json(200, &json!({"ok": true})),
    })
    .await
}

async fn counting() -> Backend {
    Backend::start_sync(|_: &Received| Reply::json(200, &json!({"stranger": true}))).await
}

fn plugin(name: &str, settings: Value) -> Value {
    let mut block = json!({ "name": name });
    if !settings.is_null() {
        block[name] = settings;
    }
    json!({"extra_config": {"plugin/http-client": block}})
}

/// Every kind of plugin: the Sluice world calling `send` (fan-out) and in hooks mode
/// (header-rewrite, the host makes the call), the standard wasi:http world (wasi-passthrough),
/// and a compiled-in plugin (native/fan-out). A redirect from an allowed host to one the config
/// never named is refused; a redirect within the allowed host is followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_cannot_take_a_plugin_to_a_host_it_was_not_granted() {
    let stranger = counting().await;
    let allowed = redirecting(format!("{}/stolen", stranger.url())).await;
    let fan_out = |name: &str, first: &str| {
        plugin(
            name,
            json!({"urls": [format!("{}{first}", allowed.url()), format!("{}/ok", allowed.url())]}),
        )
    };
    let gw = start_gateway_with_registry(
        service(json!([
            endpoint(
                "/fan-out/jump",
                json!([backend(&allowed.url(), "/", fan_out("fan-out", "/jump"))]),
                Value::Null
            ),
            endpoint(
                "/fan-out/hop",
                json!([backend(&allowed.url(), "/", fan_out("fan-out", "/hop"))]),
                Value::Null
            ),
            endpoint(
                "/native/jump",
                json!([backend(
                    &allowed.url(),
                    "/",
                    fan_out("native/fan-out", "/jump")
                )]),
                Value::Null
            ),
            endpoint(
                "/native/hop",
                json!([backend(
                    &allowed.url(),
                    "/",
                    fan_out("native/fan-out", "/hop")
                )]),
                Value::Null
            ),
            endpoint(
                "/wasi/jump",
                json!([backend(
                    &allowed.url(),
                    "/jump",
                    plugin("wasi-passthrough", Value::Null)
                )]),
                Value::Null
            ),
            endpoint(
                "/wasi/hop",
                json!([backend(
                    &allowed.url(),
                    "/hop",
                    plugin("wasi-passthrough", Value::Null)
                )]),
                Value::Null
            ),
            endpoint(
                "/hooks/jump",
                json!([backend(
                    &allowed.url(),
                    "/jump",
                    plugin("header-rewrite", json!({"request": {"set": {"X-A": "b"}}}))
                )]),
                Value::Null
            ),
            endpoint(
                "/hooks/hop",
                json!([backend(
                    &allowed.url(),
                    "/hop",
                    plugin("header-rewrite", json!({"request": {"set": {"X-A": "b"}}}))
                )]),
                Value::Null
            ),
        ])),
        registry(),
    )
    .await;

    for kind in ["fan-out", "native", "wasi", "hooks"] {
        let resp = get(&gw.url(&format!("/{kind}/jump"))).await;
        assert_status(&resp, 500);
        // wasi:http reports it as its own error code, the Sluice world and natives in words.
        assert!(
            resp.text().contains("allowed_hosts") || resp.text().contains("HttpRequestDenied"),
            "{kind}: the error names the rule: {}",
            resp.text()
        );
        assert_eq!(
            stranger.count(),
            0,
            "{kind}: the redirect reached a host not granted"
        );

        let resp = get(&gw.url(&format!("/{kind}/hop"))).await;
        assert_status(&resp, 200);
    }
}

/// A plugin's `Host` header never goes out (the URL's authority is the virtual host), and
/// neither does a client's, with `input_headers: ["*"]` (kept here as a regression check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neither_a_plugin_nor_a_client_chooses_the_virtual_host() {
    let origin = Backend::start_sync(|_: &Received| Reply::json(200, &json!({"ok": true}))).await;
    let gw = start_gateway_with_registry(
        service(json!([
            endpoint(
                "/plugin",
                json!([backend(
                    &origin.url(),
                    "/plugin",
                    plugin(
                        "header-rewrite",
                        json!({"request": {"set": {"Host": "internal.admin.example"}}})
                    )
                )]),
                Value::Null
            ),
            endpoint(
                "/client",
                json!([backend(&origin.url(), "/client", Value::Null)]),
                json!({"input_headers": ["*"]})
            ),
        ])),
        registry(),
    )
    .await;

    let resp = get(&gw.url("/plugin")).await;
    assert_status(&resp, 200);
    assert_eq!(origin.last().header_all("host"), [origin.authority()]);

    let resp = request(
        Method::GET,
        &gw.url("/client"),
        &[("Host", "internal.admin.example")],
        "",
    )
    .await;
    assert_status(&resp, 200);
    assert_eq!(origin.last().path, "/client");
    assert_eq!(origin.last().header_all("host"), [origin.authority()]);
}

/// Authorization, Cookie and their kin follow a redirect on the same host (any port, as Go
/// compares host names) and are dropped when it leaves for another host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_that_leave_the_host_drop_credentials() {
    let elsewhere =
        Backend::start_sync(|_: &Received| Reply::json(200, &json!({"landed": true}))).await;
    // `localhost` is another host name for the same loopback address.
    let other_host = format!("http://localhost:{}/land", elsewhere.addr().port());
    let origin = Backend::start_sync(move |req: &Received| match req.path.as_str() {
        "/leave" => Reply::new(302).header("Location", &other_host),
        "/stay" => Reply::new(302).header("Location", "/land"),
        _ => Reply::json(200, &json!({"landed": true})),
    })
    .await;
    // (`Proxy-Authorization` never reaches a backend: the request builder drops it.)
    let credentials = json!({"input_headers": ["Authorization", "Cookie"]});
    let gw = start_gateway(service(json!([
        endpoint(
            "/leave",
            json!([backend(&origin.url(), "/leave", Value::Null)]),
            credentials.clone()
        ),
        endpoint(
            "/stay",
            json!([backend(&origin.url(), "/stay", Value::Null)]),
            credentials
        ),
    ])))
    .await;
    let sent = [
        ("Authorization", "Bearer secret"),
        ("Cookie", "session=secret"),
    ];

    let resp = request(Method::GET, &gw.url("/leave"), &sent, "").await;
    assert_status(&resp, 200);
    let landed = elsewhere.last();
    assert_eq!(landed.path, "/land");
    for (name, _) in sent {
        assert_eq!(
            landed.header(name),
            None,
            "{name} followed the redirect to another host"
        );
    }
    assert_eq!(origin.last().header("authorization"), Some("Bearer secret"));

    let resp = request(Method::GET, &gw.url("/stay"), &sent, "").await;
    assert_status(&resp, 200);
    let landed = origin.last();
    assert_eq!(landed.path, "/land");
    for (name, value) in sent {
        assert_eq!(landed.header(name), Some(value), "{name} on the same host");
    }
}

/// `backend/http/client.send_body_on_redirect`: without it a 307 to a request with a body is
/// not followed (KrakenD's Go client cannot replay the body), with it the body is resent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_body_on_redirect_is_honoured() {
    let origin = Backend::start_sync(|req: &Received| match req.path.as_str() {
        "/post" => Reply::new(307).header("Location", "/landing"),
        _ => Reply::json(200, &json!({"got": req.body_text()})),
    })
    .await;
    let resend = json!({"extra_config": {"backend/http/client": {"send_body_on_redirect": true}}});
    let gw = start_gateway(service(json!([
        endpoint(
            "/plain",
            json!([backend(&origin.url(), "/post", Value::Null)]),
            json!({"method": "POST"})
        ),
        endpoint(
            "/resend",
            json!([backend(&origin.url(), "/post", resend)]),
            json!({"method": "POST"})
        ),
    ])))
    .await;

    let resp = request(Method::POST, &gw.url("/plain"), &[], r#"{"a":1}"#).await;
    assert_status(&resp, 500);
    assert!(
        origin.received().iter().all(|r| r.path != "/landing"),
        "the 307 was followed without send_body_on_redirect"
    );

    let resp = request(Method::POST, &gw.url("/resend"), &[], r#"{"a":1}"#).await;
    assert_status(&resp, 200);
    assert_json(&resp, &json!({"got": r#"{"a":1}"#}));
    assert_eq!(origin.last().path, "/landing");
    assert_eq!(origin.last().method, Method::POST);
}

/// A key beside `name` that neither Sluice nor the plugin reads (a misspelt `allowed_hosts`,
/// which would otherwise leave the default in force) stops start-up with its JSON path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_plugin_limit_is_refused() {
    for name in ["fan-out", "native/fan-out"] {
        let mut extra = plugin(
            name,
            json!({"urls": ["http://127.0.0.1:19/a", "http://127.0.0.1:19/b"]}),
        );
        extra["extra_config"]["plugin/http-client"]["allowed_host"] = json!(["*"]);
        let config = service(json!([endpoint(
            "/x",
            json!([backend("http://127.0.0.1:19", "/", extra)]),
            Value::Null
        )]));
        let error = match try_start_gateway(config, registry()).await {
            Ok(gw) => panic!("{name}: started on {} with a misspelt limit", gw.addr),
            Err(e) => e.to_string(),
        };
        assert!(
            error.contains(r#"endpoints[0].backend[0].extra_config["plugin/http-client"].allowed_host: not a key plugin"#),
            "{name}: {error}"
        );
        assert!(error.contains("allowed_hosts"), "{name}: {error}");
    }
}
