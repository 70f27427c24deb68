//! The backends the conformance cases talk to: the KrakenD CE mock backend ([`ce`], and
//! [`ce_exact`] for running CE's own specs), the Lura integration backends ([`lura`]) and
//! backends that misbehave on purpose ([`misbehaving`]).

pub mod ce_exact;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::backend::{Received, Reply};

/// The request headers as a Go server sees them in `r.Header`, minus what the mocks remove:
/// `Host` (Go moves it out of the map), `Transfer-Encoding` (same) and `X-Forwarded-For`
/// (removed by the echo because its value depends on the machine).
pub fn echoed_headers(req: &Received) -> BTreeMap<String, Vec<String>> {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &req.headers {
        if matches!(
            name.as_str(),
            "host" | "transfer-encoding" | "x-forwarded-for"
        ) {
            continue;
        }
        headers
            .entry(crate::go::canonical_header_key(name.as_str()))
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    headers
}

/// Builds an object whose keys are already sorted, so the bytes are the same whatever map
/// type serde_json was built with.
fn sorted_object(entries: BTreeMap<&str, Value>) -> Value {
    let mut map = Map::new();
    for (k, v) in entries {
        map.insert(k.to_owned(), v);
    }
    Value::Object(map)
}

/// `name -> [values]` as a JSON object (sorted by name).
fn to_value(map: BTreeMap<String, Vec<String>>) -> Value {
    let mut obj = Map::new();
    for (k, vs) in map {
        obj.insert(k, Value::Array(vs.into_iter().map(Value::String).collect()));
    }
    Value::Object(obj)
}

/// The KrakenD CE mock backend (`tests/integration.go` of krakend-ce).
pub mod ce {
    use std::net::IpAddr;
    use std::time::Duration;

    use super::{BTreeMap, Received, Reply, Value, echoed_headers, json, sorted_object, to_value};
    use crate::backend::Backend;

    /// The `Set-Cookie` values every echo answer carries.
    pub const COOKIES: [&str; 2] = ["test1=test1", "test2=test2"];

    /// The XML document served under `/xml`. Elements are in alphabetical order so that any
    /// re-serialisation that sorts keys gives the same bytes.
    pub const XML_USER: &str = concat!(
        r#"<user type="admin"><name>Elliot</name><social>"#,
        "<facebook>https://facebook.com</facebook>",
        "<github>https://github.com</github>",
        "<twitter>https://twitter.com</twitter>",
        "</social></user>"
    );

    /// [`XML_USER`] decoded the way KrakenD's `xml` decoder does (attributes prefixed with `-`).
    pub fn xml_user_json() -> Value {
        json!({"user": {
            "-type": "admin",
            "name": "Elliot",
            "social": {
                "facebook": "https://facebook.com",
                "github": "https://github.com",
                "twitter": "https://twitter.com"
            }
        }})
    }

    /// The CE mock backend:
    /// - `/param_forwarding/*`, `/no-op/*`: echo `{"foo":42,"headers":{..},"path":..,"query":{..}}`
    ///   (plus `"body"` when `dump_body=1`), `Content-Type: application/json`, a trailing newline
    ///   and two `Set-Cookie`; 400 when `X-Forwarded-For` is missing or not loopback.
    /// - `/collection/*`: an array of 10 `{"i":i,"path":path}`.
    /// - `/delayed/*`: waits 200 ms, then echoes.
    /// - `/redirect/?status=N`: redirects with code N to `/param_forwarding/?<same query>`.
    /// - `/xml`: [`XML_USER`] as `application/xml`.
    /// - `/__debug/*`: `{"message":"pong"}` (what KrakenD's debug endpoint answers).
    /// - a subtree root without its slash (`/param_forwarding`): 301 to the slashed path, as Go's
    ///   `ServeMux` does.
    /// - anything else: 404 `404 page not found\n`, `text/plain; charset=utf-8`.
    pub async fn mock() -> Backend {
        Backend::start(|req: Received| async move {
            if req.path.starts_with("/delayed/") {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            route(&req)
        })
        .await
    }

    const SUBTREES: [&str; 6] = [
        "/param_forwarding",
        "/no-op",
        "/collection",
        "/delayed",
        "/redirect",
        "/__debug",
    ];

    fn route(req: &Received) -> Reply {
        let path = req.path.as_str();
        if SUBTREES.contains(&path) {
            let location = match &req.query {
                Some(q) => format!("{path}/?{q}"),
                None => format!("{path}/"),
            };
            return Reply::new(301)
                .header("location", &location)
                .header("content-type", "text/html; charset=utf-8")
                .body(format!("<a href=\"{location}\">Moved Permanently</a>.\n\n"));
        }
        if path.starts_with("/param_forwarding/")
            || path.starts_with("/no-op/")
            || path.starts_with("/delayed/")
        {
            return echo(req);
        }
        if path.starts_with("/collection/") {
            let items: Vec<Value> = (0..10).map(|i| json!({"i": i, "path": path})).collect();
            return Reply::go_json(200, &Value::Array(items));
        }
        if path == "/redirect/" {
            let status = req
                .query_map()
                .get("status")
                .and_then(|v| v.first())
                .and_then(|s| s.parse::<u16>().ok())
                .unwrap_or(302);
            let location = match &req.query {
                Some(q) => format!("/param_forwarding/?{q}"),
                None => "/param_forwarding/".to_owned(),
            };
            return Reply::new(status).header("location", &location);
        }
        if path == "/xml" {
            return Reply::new(200)
                .header("content-type", "application/xml")
                .body(XML_USER);
        }
        if path.starts_with("/__debug/") {
            return Reply::json(200, &json!({"message": "pong"}));
        }
        Reply::not_found()
    }

    fn loopback_xff(req: &Received) -> bool {
        req.header("x-forwarded-for")
            .and_then(|v| v.split(',').next())
            .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
            .is_some_and(|ip| ip.is_loopback())
    }

    /// The echo answer for `req`, exactly as the mock builds it.
    pub fn echo(req: &Received) -> Reply {
        if !loopback_xff(req) {
            return Reply::go_error(400, "X-Forwarded-For is not a loopback address");
        }
        let query = req.query_map();
        let dump_body = query
            .get("dump_body")
            .is_some_and(|v| v.iter().any(|x| x == "1"));
        let mut entries = BTreeMap::new();
        if dump_body {
            entries.insert("body", Value::String(req.body_text()));
        }
        entries.insert("foo", json!(42));
        entries.insert("headers", to_value(echoed_headers(req)));
        entries.insert("path", Value::String(req.path.clone()));
        entries.insert("query", to_value(query));
        let mut reply = Reply::go_json(200, &sorted_object(entries));
        for cookie in COOKIES {
            reply = reply.header("set-cookie", cookie);
        }
        reply
    }
}

/// The backends of Lura's `test/integration_test.go` (b1..b12 there; named by what they do here).
pub mod lura {
    use std::time::Duration;

    use super::{BTreeMap, Received, Reply, Value, echoed_headers, json, sorted_object, to_value};
    use crate::backend::Backend;

    /// b1: checks a forwarded POST (method POST, `Content-Type: application/json`,
    /// `Authorization: bearer 123456`, `X-Y-Z: true`, body `{"foo":"bar"}`) and answers
    /// `{"path": <path>}`; 400 naming the first mismatch otherwise.
    pub async fn param_forwarding_checker() -> Backend {
        Backend::start_sync(|req| {
            let checks = [
                ("method", req.method.as_str() == "POST"),
                (
                    "content-type",
                    req.header("content-type") == Some("application/json"),
                ),
                (
                    "authorization",
                    req.header("authorization") == Some("bearer 123456"),
                ),
                ("x-y-z", req.header("x-y-z") == Some("true")),
                ("body", req.body.as_ref() == br#"{"foo":"bar"}"#),
            ];
            match checks.iter().find(|(_, ok)| !ok) {
                Some((what, _)) => Reply::go_error(400, &format!("unexpected {what}")),
                None => Reply::json(200, &json!({"path": req.path})),
            }
        })
        .await
    }

    /// b2: a two-item collection.
    pub async fn collection() -> Backend {
        Backend::start_sync(|_| {
            Reply::json(
                200,
                &json!([
                    {"body": "some content", "date": "123456789"},
                    {"body": "some other content", "date": "123496789"}
                ]),
            )
        })
        .await
    }

    /// b3: `{"email":"some@email.com","name":"a"}`.
    pub async fn user() -> Backend {
        Backend::start_sync(|_| Reply::json(200, &json!({"email": "some@email.com", "name": "a"})))
            .await
    }

    /// b4: 429 `sad panda` (`text/plain; charset=utf-8`, no trailing newline).
    pub async fn sad_panda() -> Backend {
        Backend::start_sync(|_| Reply::text(429, "sad panda")).await
    }

    /// b5: sleeps 1 s, then `{"slow":true}`.
    pub async fn slow() -> Backend {
        Backend::start(|_| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Reply::json(200, &json!({"slow": true}))
        })
        .await
    }

    /// The Lura echo (query-string, header and multi-POST backends):
    /// `{"headers":{..},"path":..,"query":{..}}`, `X-Forwarded-For` and `Host` left out.
    pub async fn echo() -> Backend {
        Backend::start_sync(|req| {
            let mut entries = BTreeMap::new();
            entries.insert("headers", to_value(echoed_headers(req)));
            entries.insert("path", Value::String(req.path.clone()));
            entries.insert("query", to_value(req.query_map()));
            Reply::json(200, &sorted_object(entries))
        })
        .await
    }

    /// Provider and recipient of the sequential cases: `/provider/*` and `/recipient/*` answer
    /// `{"path": <path>, "random": 42}`; anything else is a 404.
    pub async fn sequential() -> Backend {
        Backend::start_sync(|req| {
            if req.path.starts_with("/provider/") || req.path.starts_with("/recipient/") {
                Reply::json(200, &json!({"path": req.path, "random": 42}))
            } else {
                Reply::not_found()
            }
        })
        .await
    }

    /// 500 `booom\n` as Go's `http.Error` writes it.
    pub async fn booom() -> Backend {
        Backend::start_sync(|_| Reply::go_error(500, "booom")).await
    }

    /// Always answers `status` with this JSON body.
    pub async fn fixed(status: u16, body: Value) -> Backend {
        Backend::start_sync(move |_| Reply::json(status, &body)).await
    }

    /// Answers `received` as `{"method":..,"body":..}` (for checking cloned bodies).
    pub async fn body_echo() -> Backend {
        Backend::start_sync(|req: &Received| {
            Reply::json(
                200,
                &json!({"body": req.body_text(), "method": req.method.as_str()}),
            )
        })
        .await
    }
}

/// Backends that break the rules, for the robustness tests.
pub mod misbehaving {
    use bytes::Bytes;

    use crate::backend::{Backend, RawBackend, RawBehaviour, Reply};

    /// 100 MiB.
    pub const HUGE_BODY_LEN: usize = 100 * 1024 * 1024;
    const CHUNK_LEN: usize = 64 * 1024;
    static CHUNK: [u8; CHUNK_LEN] = [b' '; CHUNK_LEN];

    /// Never answers (the handler never completes); the connection stays open until the test
    /// ends.
    pub async fn hang() -> Backend {
        Backend::start(|_| std::future::pending::<Reply>()).await
    }

    /// Sends 200 headers with `Content-Length: 100`, then never sends the body.
    pub async fn stall_body() -> Backend {
        Backend::start_sync(|_| {
            Reply::new(200)
                .header("content-type", "application/json")
                .header("content-length", "100")
                .stall()
        })
        .await
    }

    /// Resets the connection after reading the request head.
    pub async fn reset() -> RawBackend {
        RawBackend::start(RawBehaviour::Reset).await
    }

    /// Closes the connection after reading the request head, without a byte of answer.
    pub async fn close() -> RawBackend {
        RawBackend::start(RawBehaviour::Close).await
    }

    /// Answers a status line that is not HTTP.
    pub async fn garbage_status_line() -> RawBackend {
        RawBackend::start(RawBehaviour::Write(Bytes::from_static(
            b"HTTP/1.1 abc Nope\r\nContent-Length: 2\r\n\r\n{}",
        )))
        .await
    }

    /// 200 `application/json` whose body is not JSON.
    pub async fn invalid_json() -> Backend {
        Backend::start_sync(|_| {
            Reply::new(200)
                .header("content-type", "application/json")
                .body(r#"{"foo": "#)
        })
        .await
    }

    /// A 100 MiB body that is valid JSON (`{` + 100 MiB of spaces + `}`, so only its size can
    /// make the gateway refuse it), streamed in 64 KiB frames of one static buffer; chunked or
    /// with its `Content-Length`.
    pub async fn huge_body(with_content_length: bool) -> Backend {
        Backend::start_sync(move |_| {
            let chunk = Bytes::from_static(&CHUNK);
            let times = HUGE_BODY_LEN / CHUNK_LEN;
            let mut reply = Reply::new(200).header("content-type", "application/json");
            if with_content_length {
                reply = reply.header("content-length", &(times * CHUNK_LEN + 2).to_string());
            }
            reply.repeat(
                Bytes::from_static(b"{"),
                chunk,
                times,
                Bytes::from_static(b"}"),
            )
        })
        .await
    }

    /// 503 with a JSON body: a status KrakenD does not accept.
    pub async fn wrong_status() -> Backend {
        Backend::start_sync(|_| Reply::json(503, &serde_json::json!({"ok": false}))).await
    }
}
