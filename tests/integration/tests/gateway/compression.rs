//! Compressed backend answers (spec §1.7 step 3, §2.3, §2.4).
//!
//! KrakenD decodes gzip in two places: Go's transport, transparently, when the gateway asked for
//! gzip itself (no `Accept-Encoding` forwarded, no `Range`, not a HEAD), and Lura's response
//! parser, whenever an answer says `Content-Encoding: gzip`, before decoding it by the backend's
//! `encoding`. So a client's forwarded `Accept-Encoding: gzip` still gets decoded data from a
//! json/xml/string/safejson backend, a `no-op` backend hands the compressed body and its
//! `Content-Encoding` to the client that asked for them, and a plugin's gzip answer is decoded
//! like a backend's. The decompressed bytes count against the backend body limit (16 MiB).
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use sluice_integration::backend::{Backend, Received, Reply};
use sluice_integration::config::{backend, endpoint};
use sluice_integration::*;
use sluice_plugin::{
    BackendRequest, BackendResponse, BoxFuture, CallContext, ClientPlugin, ExecError, Executor,
    PluginContext, Registry, SharedExecutor, full,
};

const CACHE_TTL: u64 = 3600;
/// The backend body limit (`sluice_proxy::DEFAULT_MAX_BODY_BYTES`).
const BODY_LIMIT: usize = 16 << 20;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A gzip member that inflates to `mib` MiB of zeros from about a KiB per MiB: one MiB compressed
/// once with a sync flush (byte-aligned, not final), repeated, then a final empty block. The
/// trailer's CRC and size are left zero: a reader that honours the limit stops long before them.
fn gzip_bomb(mib: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; 1 << 20];
    let mut deflate = Compress::new(Compression::best(), false);
    let mut block = Vec::with_capacity(8 << 10);
    deflate
        .compress_vec(&zeros, &mut block, FlushCompress::Sync)
        .unwrap();
    assert_eq!(
        deflate.total_in(),
        zeros.len() as u64,
        "one MiB in one call"
    );
    let mut end = Vec::with_capacity(64);
    deflate
        .compress_vec(&[], &mut end, FlushCompress::Finish)
        .unwrap();
    let mut bomb = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    for _ in 0..mib {
        bomb.extend_from_slice(&block);
    }
    bomb.extend_from_slice(&end);
    bomb.extend_from_slice(&[0; 8]);
    bomb
}

/// Answers `reply(req)` gzip-compressed (with `Content-Encoding: gzip`) when the request's
/// `Accept-Encoding` mentions gzip, plainly otherwise.
async fn compressing_backend(content_type: &'static str, body: &'static str) -> Backend {
    Backend::start_sync(move |req: &Received| {
        let accepts_gzip = req
            .header("accept-encoding")
            .is_some_and(|v| v.contains("gzip"));
        let reply = Reply::new(200).header("content-type", content_type);
        if accepts_gzip {
            reply
                .header("content-encoding", "gzip")
                .body(gzip(body.as_bytes()))
        } else {
            reply.body(body)
        }
    })
    .await
}

/// Endpoint `path` on `backend_url` with the backend's extra keys, forwarding the client's
/// `Accept-Encoding`.
fn forwarding(path: &str, backend_url: &str, backend_extra: Value) -> Value {
    endpoint(
        path,
        json!([backend(backend_url, "/", backend_extra)]),
        json!({"input_headers": ["Accept-Encoding"]}),
    )
}

async fn get_with(url: &str, headers: &[(&str, &str)]) -> Response {
    request(Method::GET, url, headers, "").await
}

#[track_caller]
fn assert_error_text(resp: &Response, status: u16, starts_with: &str) {
    assert_status(resp, status);
    assert_completed(resp, false);
    assert_no_cache_control(resp);
    assert!(
        resp.text().starts_with(starts_with),
        "body {:?} should start with {starts_with:?}",
        resp.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_asked_gzip_is_decoded_as_before() {
    let api = compressing_backend("application/json", r#"{"tea":"green"}"#).await;
    let gw = start_gateway(service(json!([
        endpoint(
            "/tea",
            json!([backend(&api.url(), "/", Value::Null)]),
            Value::Null
        ),
        endpoint(
            "/tea/raw",
            json!([backend(&api.url(), "/", json!({"encoding": "no-op"}))]),
            json!({"output_encoding": "no-op"})
        ),
    ])))
    .await;

    let resp = get(&gw.url("/tea")).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(resp.text(), r#"{"tea":"green"}"#);
    assert_eq!(api.last().header_all("accept-encoding"), ["gzip"]);

    // The client asked for nothing: as from Go's transport, it gets the body decoded, without
    // Content-Encoding.
    let raw = get(&gw.url("/tea/raw")).await;
    assert_status(&raw, 200);
    assert_eq!(raw.text(), r#"{"tea":"green"}"#);
    assert_eq!(raw.header("content-encoding"), None);
    assert_content_type(&raw, "application/json");
    assert_eq!(api.last().header_all("accept-encoding"), ["gzip"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_accept_encoding_gzip_is_decoded_for_every_decoding_backend() {
    let json_api = compressing_backend("application/json", r#"{"cups":3,"milk":false}"#).await;
    let xml_api = compressing_backend(
        "application/xml",
        r#"<pot size="large"><leaf>oolong</leaf><leaf>sencha</leaf></pot>"#,
    )
    .await;
    let text_api = compressing_backend("text/plain", "steep for three minutes").await;
    let list_api = compressing_backend("application/json", r#"[1,2]"#).await;
    let gw = start_gateway(service(json!([
        forwarding("/json", &json_api.url(), Value::Null),
        forwarding("/xml", &xml_api.url(), json!({"encoding": "xml"})),
        forwarding("/string", &text_api.url(), json!({"encoding": "string"})),
        forwarding(
            "/safejson",
            &list_api.url(),
            json!({"encoding": "safejson"})
        ),
    ])))
    .await;
    let accept = [("Accept-Encoding", "gzip, deflate, br")];

    let resp = get_with(&gw.url("/json"), &accept).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(resp.text(), r#"{"cups":3,"milk":false}"#);
    assert_eq!(resp.header("content-encoding"), None);
    // The client's value went as it came, and the gateway added none of its own.
    assert_eq!(
        json_api.last().header_all("accept-encoding"),
        ["gzip, deflate, br"]
    );

    let resp = get_with(&gw.url("/xml"), &accept).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_json(
        &resp,
        &json!({"pot": {"-size": "large", "leaf": ["oolong", "sencha"]}}),
    );

    let resp = get_with(&gw.url("/string"), &accept).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_json(&resp, &json!({"content": "steep for three minutes"}));

    let resp = get_with(&gw.url("/safejson"), &accept).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_json(&resp, &json!({"collection": [1, 2]}));

    // A client that asks for identity gets the same data, uncompressed all the way.
    let resp = get_with(&gw.url("/json"), &[("Accept-Encoding", "identity")]).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(resp.text(), r#"{"cups":3,"milk":false}"#);
    assert_eq!(json_api.last().header_all("accept-encoding"), ["identity"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_op_hands_the_compressed_answer_to_the_client_that_asked() {
    let api = compressing_backend("application/json", r#"{"kettle":"on"}"#).await;
    let gw = start_gateway(service(json!([endpoint(
        "/kettle",
        json!([backend(&api.url(), "/", json!({"encoding": "no-op"}))]),
        json!({"output_encoding": "no-op", "input_headers": ["Accept-Encoding"]})
    )])))
    .await;

    let resp = get_with(&gw.url("/kettle"), &[("Accept-Encoding", "gzip")]).await;

    assert_status(&resp, 200);
    assert_eq!(resp.header_all("content-encoding"), ["gzip"]);
    assert_content_type(&resp, "application/json");
    assert_eq!(resp.body, Bytes::from(gzip(br#"{"kettle":"on"}"#)));
    assert_eq!(
        resp.header("content-length"),
        Some(resp.body.len().to_string().as_str())
    );
    assert_completed(&resp, false);
    assert_no_cache_control(&resp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_gzip_is_a_clear_backend_error() {
    // Says gzip, sends JSON.
    let liar = Backend::start_sync(|_: &Received| {
        Reply::new(200)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(r#"{"not":"compressed"}"#)
    })
    .await;
    // Real gzip, cut short.
    let truncated = Backend::start_sync(|_: &Received| {
        let mut body = gzip(br#"{"half":"a body, and the rest is missing"}"#);
        body.truncate(body.len() / 2);
        Reply::new(200)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(body)
    })
    .await;
    let gw = start_gateway(service(json!([
        endpoint(
            "/liar/asked",
            json!([backend(&liar.url(), "/", Value::Null)]),
            Value::Null
        ),
        forwarding("/liar/forwarded", &liar.url(), Value::Null),
        forwarding(
            "/truncated",
            &truncated.url(),
            json!({"encoding": "string"})
        ),
    ])))
    .await;

    for path in ["/liar/asked", "/liar/forwarded", "/truncated"] {
        let resp = get_with(&gw.url(path), &[("Accept-Encoding", "gzip")]).await;
        assert_error_text(&resp, 500, "backend body is not valid gzip: ");
        assert_content_type(&resp, TEXT_UTF8);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_content_encoding_is_refused_not_decoded_as_text() {
    let brotli = Backend::start_sync(|_: &Received| {
        Reply::new(200)
            .header("content-type", "text/plain")
            .header("content-encoding", "br")
            .body(&b"\x1b\x03\x00\xf8\xa5\x02"[..])
    })
    .await;
    let gw = start_gateway(service(json!([forwarding(
        "/br",
        &brotli.url(),
        json!({"encoding": "string"})
    )])))
    .await;

    let resp = get_with(&gw.url("/br"), &[("Accept-Encoding", "br")]).await;

    assert_error_text(
        &resp,
        500,
        r#"backend body has Content-Encoding "br", which cannot be decoded (only gzip can)"#,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_bomb_is_cut_at_the_body_limit() {
    // 64 MiB of zeros from about 64 KiB: four times the limit.
    let bomb = Bytes::from(gzip_bomb(64));
    assert!(bomb.len() < 200 << 10, "compressed: {}", bomb.len());
    let served = bomb.clone();
    let api = Backend::start_sync(move |_: &Received| {
        Reply::new(200)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(served.clone())
    })
    .await;
    let gw = start_gateway(service(json!([
        endpoint(
            "/bomb/asked",
            json!([backend(&api.url(), "/", Value::Null)]),
            Value::Null
        ),
        forwarding("/bomb/forwarded", &api.url(), json!({"encoding": "string"})),
        endpoint(
            "/bomb/no-op",
            json!([backend(&api.url(), "/", json!({"encoding": "no-op"}))]),
            json!({"output_encoding": "no-op"})
        ),
    ])))
    .await;
    let too_large = format!("backend body larger than {BODY_LIMIT} bytes once decompressed");

    for (path, headers) in [
        ("/bomb/asked", &[][..]),
        ("/bomb/forwarded", &[("Accept-Encoding", "gzip")][..]),
        // The gateway asked for gzip on the client's behalf: it decodes, within the limit.
        ("/bomb/no-op", &[][..]),
    ] {
        let started = Instant::now();
        let resp = get_with(&gw.url(path), headers).await;
        assert_error_text(&resp, 500, &too_large);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{path} took {:?}",
            started.elapsed()
        );
    }
    // The client that asked for gzip through no-op gets the bomb as it is, for it to judge.
    let passthrough = start_gateway(service(json!([endpoint(
        "/bomb",
        json!([backend(&api.url(), "/", json!({"encoding": "no-op"}))]),
        json!({"output_encoding": "no-op", "input_headers": ["Accept-Encoding"]})
    )])))
    .await;
    let resp = get_with(&passthrough.url("/bomb"), &[("Accept-Encoding", "gzip")]).await;
    assert_status(&resp, 200);
    assert_eq!(resp.body, bomb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_are_decoded_before_they_are_handed_on() {
    let busy = Backend::start_sync(|_: &Received| {
        Reply::new(429)
            .header("content-type", "text/plain")
            .header("content-encoding", "gzip")
            .body(gzip(b"slow down"))
    })
    .await;
    let gw = start_gateway(service(json!([
        forwarding(
            "/busy/code",
            &busy.url(),
            json!({"extra_config": {"backend/http": {"return_error_code": true}}})
        ),
        forwarding(
            "/busy/details",
            &busy.url(),
            json!({"extra_config": {"backend/http": {"return_error_details": "pot"}}})
        ),
    ])))
    .await;
    let accept = [("Accept-Encoding", "gzip")];

    let resp = get_with(&gw.url("/busy/code"), &accept).await;
    assert_status(&resp, 429);
    assert_eq!(resp.text(), "slow down");
    assert_content_type(&resp, "text/plain");
    assert_eq!(resp.header("content-encoding"), None);

    let resp = get_with(&gw.url("/busy/details"), &accept).await;
    assert_status(&resp, 200);
    assert_json(
        &resp,
        &json!({"error_pot": {
            "http_status_code": 429,
            "http_body": "slow down",
            "http_body_encoding": "text/plain"
        }}),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_asks_for_no_gzip_for_a_range_or_a_head() {
    let api = Backend::start_sync(|req: &Received| {
        Reply::new(200)
            .header("content-type", "application/json")
            .body(if req.method == Method::HEAD {
                ""
            } else {
                r#"{"ok":true}"#
            })
    })
    .await;
    let gw = start_gateway(service(json!([
        endpoint(
            "/ranged",
            json!([backend(&api.url(), "/", Value::Null)]),
            json!({"input_headers": ["Range"]})
        ),
        endpoint(
            "/head",
            json!([backend(
                &api.url(),
                "/",
                json!({"method": "HEAD", "encoding": "no-op"})
            )]),
            json!({"output_encoding": "no-op"})
        ),
    ])))
    .await;

    let resp = get_with(&gw.url("/ranged"), &[("Range", "bytes=0-10")]).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(api.last().header("accept-encoding"), None);
    assert_eq!(api.last().header("range"), Some("bytes=0-10"));
    let resp = get(&gw.url("/ranged")).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(api.last().header_all("accept-encoding"), ["gzip"]);

    let resp = get(&gw.url("/head")).await;
    assert_status(&resp, 200);
    assert_eq!(api.last().method, Method::HEAD);
    assert_eq!(api.last().header("accept-encoding"), None);
}

/// A compiled-in plugin answering gzip-compressed JSON, whatever it is asked.
#[derive(Debug)]
struct GzipAnswer;

impl ClientPlugin for GzipAnswer {
    fn origin(&self) -> String {
        "compression test".to_owned()
    }
    fn build(&self, _ctx: PluginContext<'_>) -> Result<SharedExecutor, String> {
        Ok(Arc::new(GzipAnswer))
    }
}

impl Executor for GzipAnswer {
    fn execute<'a>(
        &'a self,
        _request: BackendRequest,
        _ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        let mut response = BackendResponse::new(full(gzip(br#"{"brewed_by":"plugin"}"#)));
        let headers = response.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        headers.insert(
            http::header::CONTENT_ENCODING,
            http::HeaderValue::from_static("gzip"),
        );
        Box::pin(async move { Ok(response) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugins_gzip_answer_goes_through_the_same_decoding() {
    let mut plugins = Registry::new();
    plugins
        .register("gzip-answer", Arc::new(GzipAnswer))
        .unwrap();
    let with_plugin = json!({"extra_config": {"plugin/http-client": {"name": "gzip-answer"}}});
    let mut no_op = with_plugin.clone();
    no_op["encoding"] = json!("no-op");
    let gw = start_gateway_with_registry(
        service(json!([
            endpoint(
                "/brew",
                json!([backend("http://127.0.0.1:19", "/", with_plugin)]),
                Value::Null
            ),
            endpoint(
                "/brew/raw",
                json!([backend("http://127.0.0.1:19", "/", no_op)]),
                json!({"output_encoding": "no-op"})
            ),
        ])),
        plugins,
    )
    .await;

    let resp = get(&gw.url("/brew")).await;
    assert_complete_json(&resp, CACHE_TTL);
    assert_eq!(resp.text(), r#"{"brewed_by":"plugin"}"#);

    let raw = get(&gw.url("/brew/raw")).await;
    assert_status(&raw, 200);
    assert_eq!(raw.header_all("content-encoding"), ["gzip"]);
    assert_eq!(raw.body, Bytes::from(gzip(br#"{"brewed_by":"plugin"}"#)));
}
