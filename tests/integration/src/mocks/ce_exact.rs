//! KrakenD CE's mock backend as its integration harness (`tests/integration.go`,
//! `mockBackendBuilder`) serves it, answer for answer, for running CE's own specs unchanged.
//!
//! It differs from [`super::ce`], whose values the in-process tests were written against: that
//! one serves a different XML document, adds `/no-op/` and `/__debug/` subtrees, and is lenient
//! where Go is not (a listed `X-Forwarded-For`, an escaped path). Here everything follows the Go
//! program and Go's `net/http`:
//! - `ServeMux` with the subtrees `/param_forwarding/`, `/collection/`, `/delayed/`,
//!   `/redirect/` and the exact paths `/xml`, `/jwk/symmetric`; a subtree root without its
//!   slash, or a path that is not clean, gets a 301 (`http.Redirect`); anything else
//!   `404 page not found\n`.
//! - all but `/jwk/symmetric` answer 400 `invalid X-Forwarded-For` unless the first
//!   `X-Forwarded-For` value, as a whole, parses as a loopback IP.
//! - the echo reports `r.URL.Path` (unescaped), `r.URL.Query()` and `r.Header` (canonical
//!   names, without `Host`, `Transfer-Encoding`, `Trailer`, `X-Forwarded-For`), encoded as
//!   `json.Encoder` does, with `Content-Type: application/json` and two `Set-Cookie`.
//! - `/delayed/` checks the header, waits 200 ms, then echoes.
//! - `/redirect/` redirects to `/param_forwarding/?<query>` with the code in `status`; a
//!   missing `status` makes the Go handler panic, so the connection closes unanswered.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::backend::{Backend, Received, Reply};
use crate::go;

/// Where CE's harness listens (`-krakend_backend_port`, default 8081).
pub const ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8081);

/// How long `/delayed/` waits (`-krakend_delay`, default 200 ms).
pub const DELAY: Duration = Duration::from_millis(200);

/// The `Set-Cookie` values of every echo answer.
pub const COOKIES: [&str; 2] = ["test1=test1", "test2=test2"];

/// The document `/xml` serves (CE's, indented, without a trailing newline).
pub const XML_USER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<user type="admin">
  <name>Elliot</name>
  <social>
    <facebook>https://facebook.com</facebook>
    <twitter>https://twitter.com</twitter>
    <youtube>https://youtube.com</youtube>
  </social>
</user>"#;

/// The key set `/jwk/symmetric` serves: CE's test keys, which live in its harness's source, so
/// they are read from the checkout at run time ([`jwk_set_from_harness`]) and never committed
/// here. Unset, the path answers 404 (the specs that need it are skipped today anyway).
static JWK_SYMMETRIC: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Serves `keys` under `/jwk/symmetric` from now on (the first call wins).
pub fn serve_jwk_set(keys: String) {
    let _ = JWK_SYMMETRIC.set(keys);
}

/// The key set inside CE's `integration.go`: the first raw string literal of
/// `symmetricJWKEndpoint`.
pub fn jwk_set_from_harness(integration_go: &str) -> Option<String> {
    let body = &integration_go[integration_go.find("func symmetricJWKEndpoint")?..];
    let open = body.find('`')? + 1;
    let len = body[open..].find('`')?;
    Some(body[open..open + len].to_owned())
}

/// Serves the mock on `addr` (normally [`ADDR`]); listening when this returns.
///
/// # Errors
/// When `addr` cannot be bound.
pub async fn serve(addr: SocketAddr) -> std::io::Result<Backend> {
    Backend::bind(addr, |req: Received| async move {
        match route(&req) {
            // `route` has checked `X-Forwarded-For` already, as Go does before the delay.
            Route::Delayed => {
                tokio::time::sleep(DELAY).await;
                echo(&req)
            }
            Route::Now(reply) => *reply,
        }
    })
    .await
}

enum Route {
    Now(Box<Reply>),
    Delayed,
}

impl Route {
    fn now(reply: Reply) -> Route {
        Route::Now(Box::new(reply))
    }
}

/// The registered patterns: subtrees end with `/`.
const PATTERNS: [&str; 6] = [
    "/param_forwarding/",
    "/xml",
    "/collection/",
    "/delayed/",
    "/redirect/",
    "/jwk/symmetric",
];

fn matches(pattern: &str, path: &str) -> bool {
    if pattern.ends_with('/') {
        path.starts_with(pattern)
    } else {
        path == pattern
    }
}

/// Go's 301 via `RedirectHandler`, keeping the query.
fn mux_redirect(req: &Received, path: &str) -> Reply {
    let url = match req.query.as_deref() {
        Some(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_owned(),
    };
    go_redirect(req, &url, 301)
}

fn go_redirect(req: &Received, url: &str, code: u16) -> Reply {
    let r = go::redirect(req.method.as_str(), url, code);
    let mut reply = Reply::new(code).header("location", &r.location);
    if let Some(ct) = r.content_type {
        reply = reply.header("content-type", ct);
    }
    reply.body(r.body)
}

fn route(req: &Received) -> Route {
    // Go's server unescapes the path before any handler runs and rejects a bad escape.
    let Some(path) = go::path_unescape(&req.path) else {
        return Route::now(
            Reply::new(400)
                .header("content-type", "text/plain; charset=utf-8")
                .header("connection", "close")
                .body("400 Bad Request"),
        );
    };
    // ServeMux: `/tree` -> `/tree/` first, then unclean paths -> their clean form.
    let cleaned = go::clean_path(&req.path);
    if !cleaned.ends_with('/')
        && !PATTERNS.iter().any(|p| matches(p, &cleaned))
        && PATTERNS.contains(&format!("{cleaned}/").as_str())
    {
        return Route::now(mux_redirect(req, &format!("{cleaned}/")));
    }
    if cleaned != req.path {
        return Route::now(mux_redirect(req, &cleaned));
    }
    let Some(pattern) = PATTERNS.iter().find(|p| matches(p, &path)) else {
        return Route::now(Reply::not_found());
    };
    if *pattern == "/jwk/symmetric" {
        return Route::now(match JWK_SYMMETRIC.get() {
            Some(keys) => Reply::new(200)
                .header("content-type", "application/json")
                .body(keys.clone()),
            None => Reply::not_found(),
        });
    }
    if let Some(refused) = refuse_xff(req) {
        return Route::now(refused);
    }
    Route::now(match *pattern {
        "/param_forwarding/" => echo(req),
        "/delayed/" => return Route::Delayed,
        "/xml" => Reply::new(200)
            .header("content-type", "application/xml; charset=utf-8")
            .body(XML_USER),
        "/collection/" => {
            let items: Vec<Value> = (0..10).map(|i| json!({"path": path, "i": i})).collect();
            go_json(Reply::new(200), &Value::Array(items))
        }
        _ => redirect(req),
    })
}

/// `checkXForwardedFor`: `net.ParseIP` of the first value, which must be a loopback address.
fn refuse_xff(req: &Received) -> Option<Reply> {
    let loopback = req
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
        .is_some_and(|ip| match ip {
            IpAddr::V4(v4) => v4.is_loopback(),
            // Go treats an IPv4-mapped address as the IPv4 one.
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        });
    (!loopback).then(|| Reply::go_error(400, "invalid X-Forwarded-For"))
}

/// `json.NewEncoder(rw).Encode(v)` after `rw.Header().Add("Content-Type", "application/json")`.
fn go_json(reply: Reply, value: &Value) -> Reply {
    let mut body = go::json_marshal(value);
    body.push('\n');
    reply.header("content-type", "application/json").body(body)
}

/// `r.Header` minus `X-Forwarded-For` (the echo deletes it) and what Go's server takes out of
/// the map (`Host`, `Transfer-Encoding`, `Trailer`).
fn echoed_headers(req: &Received) -> Value {
    let mut headers: Map<String, Value> = Map::new();
    for (name, value) in &req.headers {
        if matches!(
            name.as_str(),
            "host" | "transfer-encoding" | "trailer" | "x-forwarded-for"
        ) {
            continue;
        }
        let values = headers
            .entry(go::canonical_header_key(name.as_str()))
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = values {
            values.push(Value::String(
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ));
        }
    }
    Value::Object(headers)
}

/// `echoEndpoint`.
fn echo(req: &Received) -> Reply {
    let raw_query = req.query.as_deref().unwrap_or("");
    let query = go::parse_query(raw_query);
    let path = go::path_unescape(&req.path).unwrap_or_default();
    let mut resp = Map::new();
    if query
        .get("dump_body")
        .and_then(|v| v.first())
        .map(String::as_str)
        == Some("1")
    {
        resp.insert("body".to_owned(), Value::String(req.body_text()));
    }
    resp.insert("foo".to_owned(), json!(42));
    resp.insert("headers".to_owned(), echoed_headers(req));
    resp.insert("path".to_owned(), Value::String(path));
    resp.insert("query".to_owned(), json!(query));
    let mut reply = Reply::new(200);
    for cookie in COOKIES {
        reply = reply.header("set-cookie", cookie);
    }
    go_json(reply, &Value::Object(resp))
}

/// `redirectEndpoint`.
fn redirect(req: &Received) -> Reply {
    let raw_query = req.query.as_deref().unwrap_or("");
    let query = go::parse_query(raw_query);
    // `u.String()` of the request URL with its path replaced.
    let target = if raw_query.is_empty() {
        "/param_forwarding/".to_owned()
    } else {
        format!("/param_forwarding/?{raw_query}")
    };
    let code = match query.get("status").and_then(|v| v.first()) {
        // `status[0]` of a missing key: the handler panics.
        None => return Reply::abort(),
        Some(s) if s == "301" => 301,
        Some(s) => match go::atoi(s) {
            Ok(code) => code,
            Err(e) => return Reply::go_error(400, &e),
        },
    };
    // `WriteHeader` panics outside 100..=999; a 1xx would be an informational answer, which
    // this backend cannot send, so it ends the connection too.
    match u16::try_from(code) {
        Ok(code @ 200..=999) => go_redirect(req, &target, code),
        _ => Reply::abort(),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, Method};

    use super::*;

    fn req(method: Method, target: &str, xff: Option<&str>) -> Received {
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target.to_owned(), None),
        };
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:8081"));
        headers.insert("user-agent", HeaderValue::from_static("ua"));
        if let Some(x) = xff {
            headers.insert(
                "x-forwarded-for",
                HeaderValue::from_str(x).expect("valid header"),
            );
        }
        Received {
            seq: 0,
            method,
            path,
            query,
            headers,
            body: Bytes::new(),
            peer: SocketAddr::from(([127, 0, 0, 1], 1)),
        }
    }

    fn now(r: Route) -> Reply {
        match r {
            Route::Now(reply) => *reply,
            Route::Delayed => panic!("delayed"),
        }
    }

    fn body(r: &Reply) -> String {
        match &r.body {
            crate::backend::ReplyBody::Full(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("unexpected body {other:?}"),
        }
    }

    #[test]
    fn echo_is_go_bytes() {
        let r = now(route(&req(
            Method::GET,
            "/param_forwarding/a%20b?x=1&x=2&y=<",
            Some("127.0.0.1"),
        )));
        assert_eq!(r.status, 200);
        assert_eq!(
            body(&r),
            "{\"foo\":42,\"headers\":{\"User-Agent\":[\"ua\"]},\"path\":\"/param_forwarding/a b\",\
             \"query\":{\"x\":[\"1\",\"2\"],\"y\":[\"\\u003c\"]}}\n"
        );
        let cookies: Vec<_> = r.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["test1=test1", "test2=test2"]);
    }

    #[test]
    fn xff_must_be_one_loopback_ip() {
        for xff in [None, Some("10.0.0.1"), Some("127.0.0.1, 127.0.0.1")] {
            let r = now(route(&req(Method::GET, "/param_forwarding/", xff)));
            assert_eq!(
                (r.status.as_u16(), body(&r)),
                (400, "invalid X-Forwarded-For\n".to_owned())
            );
        }
        let r = now(route(&req(Method::GET, "/xml", Some("::ffff:127.0.0.1"))));
        assert_eq!(r.status, 200);
        serve_jwk_set("{}".to_owned());
        let r = now(route(&req(Method::GET, "/jwk/symmetric", None)));
        assert_eq!(r.status, 200);
        assert_eq!(
            jwk_set_from_harness("x\nfunc symmetricJWKEndpoint() {\n w(`{\"keys\":[]}`)\n}")
                .as_deref(),
            Some("{\"keys\":[]}")
        );
    }

    #[test]
    fn mux_redirects_and_404() {
        let r = now(route(&req(Method::GET, "/param_forwarding?a=1", None)));
        assert_eq!(r.status, 301);
        assert_eq!(r.headers["location"], "/param_forwarding/?a=1");
        let r = now(route(&req(Method::GET, "/collection//2", None)));
        assert_eq!(r.headers["location"], "/collection/2");
        for path in ["/", "/unknown", "/xml/"] {
            let r = now(route(&req(Method::GET, path, Some("127.0.0.1"))));
            assert_eq!(
                (r.status.as_u16(), body(&r)),
                (404, "404 page not found\n".to_owned())
            );
        }
    }

    #[test]
    fn redirect_endpoint() {
        let r = now(route(&req(
            Method::GET,
            "/redirect/?status=307",
            Some("127.0.0.1"),
        )));
        assert_eq!(r.status, 307);
        assert_eq!(r.headers["location"], "/param_forwarding/?status=307");
        assert_eq!(
            body(&r),
            "<a href=\"/param_forwarding/?status=307\">Temporary Redirect</a>.\n\n"
        );
        let r = now(route(&req(
            Method::GET,
            "/redirect/?status=x",
            Some("127.0.0.1"),
        )));
        assert_eq!(
            (r.status.as_u16(), body(&r)),
            (
                400,
                "strconv.Atoi: parsing \"x\": invalid syntax\n".to_owned()
            )
        );
        let r = now(route(&req(Method::GET, "/redirect/", Some("127.0.0.1"))));
        assert!(matches!(r.body, crate::backend::ReplyBody::Abort));
    }

    #[tokio::test]
    async fn over_http() {
        let mock = serve(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let url = |p: &str| format!("{}{p}", mock.url());
        let xff = [("x-forwarded-for", "127.0.0.1"), ("x-y-z", "1")];
        let started = std::time::Instant::now();
        let r = crate::client::request(Method::GET, &url("/delayed/a"), &xff, "").await;
        assert!(started.elapsed() >= DELAY);
        assert_eq!(
            r.text(),
            "{\"foo\":42,\"headers\":{\"X-Y-Z\":[\"1\"]},\"path\":\"/delayed/a\",\"query\":{}}\n"
        );
        // The Go handler panics on a missing `status`: no answer at all.
        let e = crate::client::try_request(Method::GET, &url("/redirect/"), &xff, "").await;
        assert!(e.is_err(), "{e:?}");
    }

    #[test]
    fn delayed_checks_first() {
        let r = now(route(&req(Method::GET, "/delayed/", None)));
        assert_eq!(r.status, 400);
        assert!(matches!(
            route(&req(Method::GET, "/delayed/", Some("127.0.0.1"))),
            Route::Delayed
        ));
    }
}
