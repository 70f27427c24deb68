//! Sending a spec's request as CE's harness does with Go's `http.DefaultClient`, since specs
//! encode what that client sends and does:
//! - headers: the spec's, names canonicalised on the wire; `User-Agent: Go-http-client/1.1`
//!   unless the spec sets one; `Accept-Encoding: gzip` unless the spec sets `Accept-Encoding`
//!   or `Range` (and then a gzip answer is decompressed and its `Content-Encoding` and
//!   `Content-Length` dropped); `Content-Length` for a body, and `0` for a POST, PUT or PATCH
//!   without one; a spec header `Host` sets the `Host` sent.
//! - body: a string as is, anything else as `json.Marshal` writes it.
//! - redirects followed (at most 10): 301, 302 and 303 turn into GET without a body, 307 and
//!   308 keep both; `Referer` is set to the previous URL.
//!
//! Only loopback hosts are contacted, and always through `127.0.0.1`: `localhost` in a URL
//! stays in `Host` but is not resolved.

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::check::Answer;
use super::spec::Input;
use super::url::Url;
use crate::go;

/// Bodies larger than this are refused (no spec needs more; a runaway answer must not be
/// buffered without bound).
const MAX_BODY: usize = 32 * 1024 * 1024;
/// Go's client gives up after this many redirects.
const MAX_REDIRECTS: usize = 10;

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

struct Outgoing {
    method: String,
    url: Url,
    host: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<Bytes>,
}

/// Sends `input` (following redirects) within `timeout`.
///
/// # Errors
/// The transport error, a refused host, too many redirects, an oversized or undecodable body,
/// or the timeout, as text.
pub async fn send(input: &Input, timeout: Duration) -> Result<Answer, String> {
    let url = Url::parse(&input.url)?;
    let mut host = None;
    let mut headers = Vec::new();
    for (name, value) in &input.header {
        // Go moves an exact `Host` key into `req.Host`; any other spelling is dropped on the
        // wire, because Go never writes `Header["Host"]`.
        if name == "Host" {
            host = Some(value.clone());
        } else if !name.eq_ignore_ascii_case("host") {
            headers.push((go::canonical_header_key(name), value.clone()));
        }
    }
    let body = input.body.as_ref().map(|b| match b {
        serde_json::Value::String(s) => Bytes::from(s.clone()),
        other => Bytes::from(go::json_marshal(other)),
    });
    let method = if input.method.is_empty() {
        "GET".to_owned()
    } else {
        input.method.clone()
    };
    let request = Outgoing {
        method,
        url,
        host,
        headers,
        body,
    };
    match tokio::time::timeout(timeout, follow(request)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

async fn follow(mut req: Outgoing) -> Result<Answer, String> {
    let mut referer: Option<String> = None;
    for _ in 0..=MAX_REDIRECTS {
        let (answer, requested_gzip) = exchange(&req, referer.as_deref()).await?;
        let location = answer.header_all("location").into_iter().next();
        let redirect = matches!(answer.status, 301 | 302 | 303 | 307 | 308);
        let Some(location) = location.filter(|l| redirect && !l.is_empty()) else {
            return finish(answer, requested_gzip);
        };
        let next = req
            .url
            .resolve(&location)
            .map_err(|e| format!("redirect to {location:?}: {e}"))?;
        if matches!(answer.status, 301..=303) {
            if req.method != "HEAD" {
                "GET".clone_into(&mut req.method);
            }
            req.body = None;
        }
        // Go keeps an explicit `Referer`, else sets the URL it is leaving.
        if !req.headers.iter().any(|(k, _)| k == "Referer") {
            referer = Some(req.url.to_string());
        }
        // The original `Host` override only holds for the first URL.
        req.host = None;
        req.url = next;
    }
    Err(format!("stopped after {MAX_REDIRECTS} redirects"))
}

/// Go's transport after the exchange: a gzip body it asked for is decompressed and loses
/// `Content-Encoding` and `Content-Length`; CE's harness decompresses any other gzip body for
/// the comparison only. `Transfer-Encoding` is never in Go's header map.
fn finish(mut answer: Answer, requested_gzip: bool) -> Result<Answer, String> {
    answer
        .headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("transfer-encoding"));
    let encoding = answer.header_all("content-encoding").into_iter().next();
    let gzip = |e: &str| e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip");
    if encoding.as_deref().is_some_and(gzip) {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(answer.body.as_slice())
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut plain)
            .map_err(|e| format!("the gzip body does not decode: {e}"))?;
        answer.body = plain;
        if requested_gzip {
            answer.headers.retain(|(k, _)| {
                !k.eq_ignore_ascii_case("content-encoding")
                    && !k.eq_ignore_ascii_case("content-length")
            });
        }
    }
    Ok(answer)
}

fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let n = HeaderName::from_bytes(name.as_bytes())
        .map_err(|e| format!("header name {name:?}: {e}"))?;
    let v = HeaderValue::from_str(value).map_err(|e| format!("header {name}: {value:?}: {e}"))?;
    Ok((n, v))
}

/// One request on a fresh connection; returns the answer and whether gzip was asked for.
async fn exchange(req: &Outgoing, referer: Option<&str>) -> Result<(Answer, bool), String> {
    if !is_loopback(&req.url.host) {
        return Err(format!(
            "refusing to contact {}: only loopback hosts are reached",
            req.url.host
        ));
    }
    let has = |name: &str| {
        req.headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(name))
    };
    let mut builder = http::Request::builder()
        .method(req.method.as_bytes())
        .uri(req.url.target());
    let mut headers = vec![header(
        "Host",
        req.host.as_deref().unwrap_or(&req.url.authority),
    )?];
    if !has("User-Agent") {
        headers.push(header("User-Agent", "Go-http-client/1.1")?);
    }
    let body = req.body.clone().unwrap_or_default();
    if req.body.is_some() || matches!(req.method.as_str(), "POST" | "PUT" | "PATCH") {
        headers.push(header("Content-Length", &body.len().to_string())?);
    }
    for (k, v) in &req.headers {
        headers.push(header(k, v)?);
    }
    if let Some(r) = referer {
        headers.push(header("Referer", r)?);
    }
    let requested_gzip = !has("Accept-Encoding") && !has("Range") && req.method != "HEAD";
    if requested_gzip {
        headers.push(header("Accept-Encoding", "gzip")?);
    }
    for (k, v) in headers {
        builder = builder.header(k, v);
    }
    let request = builder
        .body(Full::new(body))
        .map_err(|e| format!("cannot build the request: {e}"))?;

    let stream = TcpStream::connect(("127.0.0.1", req.url.port))
        .await
        .map_err(|e| format!("connect 127.0.0.1:{}: {e}", req.url.port))?;
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        // Go writes canonical names (`X-Y-Z`), not lower case.
        .title_case_headers(true)
        .handshake::<_, Full<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let driver = tokio::spawn(conn);
    let result = async {
        let resp = sender
            .send_request(request)
            .await
            .map_err(|e| format!("{} {}: {e}", req.method, req.url))?;
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|e| format!("reading the body of {}: {e}", req.url))?
            .to_bytes();
        let headers = parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        Ok((
            Answer {
                status: parts.status.as_u16(),
                headers,
                body: body.to_vec(),
            },
            requested_gzip,
        ))
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::json;

    use super::*;
    use crate::backend::{Backend, Received, Reply};

    fn input(
        method: &str,
        url: &str,
        header: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Input {
        Input {
            method: method.to_owned(),
            url: url.to_owned(),
            header: header
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body,
        }
    }

    #[tokio::test]
    async fn sends_what_go_sends_and_follows_redirects() {
        let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = Arc::clone(&seen);
        let backend = Backend::start_sync(move |r| {
            log.lock().expect("lock").push(r.clone());
            if r.path == "/StAtic" {
                Reply::new(301).header("location", "/static")
            } else {
                Reply::json(200, &json!({"ok": true}))
            }
        })
        .await;
        let port = backend.addr().port();
        let a = send(
            &input(
                "POST",
                &format!("http://localhost:{port}/StAtic"),
                &[("x-y-Z", "1")],
                Some(json!({"b": "<", "a": 1})),
            ),
            Duration::from_secs(5),
        )
        .await
        .expect("answer");
        assert_eq!(a.status, 200);
        let seen = seen.lock().expect("lock").clone();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].body_text(), r#"{"a":1,"b":"\u003c"}"#);
        assert_eq!(
            seen[0].header("host"),
            Some(format!("localhost:{port}").as_str())
        );
        assert_eq!(seen[0].header("user-agent"), Some("Go-http-client/1.1"));
        assert_eq!(seen[0].header("accept-encoding"), Some("gzip"));
        assert_eq!(seen[0].header("x-y-z"), Some("1"));
        assert_eq!(
            (seen[1].method.as_str(), seen[1].path.as_str()),
            ("GET", "/static")
        );
        assert_eq!(
            seen[1].header("referer"),
            Some(format!("http://localhost:{port}/StAtic").as_str())
        );
        assert!(seen[1].body.is_empty());
    }

    #[tokio::test]
    async fn empty_post_has_a_zero_length_and_gzip_is_undone() {
        let backend = Backend::start_sync(|r| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, b"hello").expect("gzip");
            Reply::new(200)
                .header("content-encoding", "gzip")
                .header("x-len", r.header("content-length").unwrap_or("none"))
                .body(gz.finish().expect("gzip"))
        })
        .await;
        let a = send(
            &input("POST", &format!("{}/x", backend.url()), &[], None),
            Duration::from_secs(5),
        )
        .await
        .expect("answer");
        assert_eq!(a.body, b"hello");
        assert_eq!(a.header_all("x-len"), ["0"]);
        assert!(a.header_all("content-encoding").is_empty());
    }

    #[tokio::test]
    async fn refuses_other_hosts() {
        let e = send(
            &input("GET", "http://example.com/", &[], None),
            Duration::from_secs(1),
        )
        .await
        .expect_err("refused");
        assert!(e.contains("only loopback"));
    }
}
