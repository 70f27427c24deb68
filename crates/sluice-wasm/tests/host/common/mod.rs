//! Test support: the example plugins (built once per test binary), an in-process backend and a
//! stand-in for the gateway's default client.

#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sluice_plugin::{
    BackendRequest, BackendResponse, BoxFuture, CallContext, ClientPlugin, ErrorKind, ExecError,
    Executor, Instant, OutboundClient, PluginContext, SharedExecutor,
};
use sluice_wasm::{WasmHost, WasmHostOptions};

/// The secret the test backend verifies `hmac-signer` signatures with.
pub const HMAC_SECRET: &str = "s3cr3t";

/// A fresh folder named `sluice-<name>-…` in the target's temporary folder, removed with the
/// guard (also when the test fails half-way).
pub fn tempdir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("sluice-{name}-"))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("tempdir")
}

/// The plugins workspace.
pub fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins")
}

/// Builds the example plugins once (via `plugins/build.sh`) and returns `plugins/dist`.
///
/// `SLUICE_PLUGINS_DIST` skips the build and uses that folder; `SLUICE_GUEST_TARGET_DIR` sets
/// the guest build's target dir (default: the repository's `target/`).
pub fn dist() -> &'static Path {
    static DIST: OnceLock<PathBuf> = OnceLock::new();
    DIST.get_or_init(|| {
        if let Some(dir) = std::env::var_os("SLUICE_PLUGINS_DIST") {
            return PathBuf::from(dir);
        }
        let installed = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output();
        if let Ok(out) = installed
            && out.status.success()
            && !String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.trim() == "wasm32-wasip2")
        {
            panic!("the wasm32-wasip2 target is missing: run `rustup target add wasm32-wasip2`");
        }
        let dir = plugins_dir();
        let mut cmd = Command::new("bash");
        cmd.arg(dir.join("build.sh")).current_dir(&dir);
        // Our own CARGO_TARGET_DIR (the host's) is not meant for the guest build.
        cmd.env_remove("CARGO_TARGET_DIR");
        if let Some(target) = std::env::var_os("SLUICE_GUEST_TARGET_DIR") {
            cmd.env("CARGO_TARGET_DIR", target);
        }
        let out = cmd.output().expect("cannot run plugins/build.sh");
        assert!(
            out.status.success(),
            "plugins/build.sh failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        dir.join("dist")
    })
}

/// The path of one built plugin.
pub fn plugin_file(name: &str) -> PathBuf {
    dist().join(format!("{name}.wasm"))
}

/// One host per test binary (the engine is meant to be shared).
pub fn host() -> &'static WasmHost {
    static HOST: OnceLock<WasmHost> = OnceLock::new();
    HOST.get_or_init(|| {
        let options = WasmHostOptions {
            pool_instances: 200,
            cache_dir: Some(
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("sluice-wasm-cache-shared"),
            ),
            ..WasmHostOptions::default()
        };
        WasmHost::new(options).expect("wasm host")
    })
}

/// Loads one plugin of `dist()` into the shared host.
pub fn load(name: &str) -> Arc<dyn ClientPlugin> {
    let (loaded, plugin) = host().load_file(&plugin_file(name)).expect("plugin loads");
    assert_eq!(loaded, name);
    plugin
}

/// Builds an executor for a backend at `backend_url` with the given `plugin/http-client` object.
pub fn build(
    plugin: &Arc<dyn ClientPlugin>,
    extra: serde_json::Value,
    backend_url: &str,
) -> Result<SharedExecutor, String> {
    let mut extra = extra.as_object().cloned().expect("extra is an object");
    // Each backend reserves its max_instances of the shared pool; the default grows with the
    // machine's cores, so pin it to keep the tests running at once within the pool anywhere.
    extra
        .entry("max_instances")
        .or_insert_with(|| serde_json::json!(4));
    let name = extra
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or_default()
        .to_owned();
    let settings = extra.get(&name).cloned();
    let hosts = vec![backend_url.to_owned()];
    let client = OutboundClient::for_backend(default_client(), &name, &extra, &hosts)?;
    plugin.build(PluginContext {
        extra: &extra,
        settings: settings.as_ref(),
        backend_hosts: &hosts,
        client: Arc::new(client),
        backend_label: "GET /test -> /backend",
        url_pattern: "/backend",
        settings_path: "settings",
    })
}

/// A request as the gateway would build it.
pub fn request(method: &str, url: &str) -> BackendRequest {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "user-agent",
        http::HeaderValue::from_static("Sluice Version test"),
    );
    headers.insert(
        "x-forwarded-for",
        http::HeaderValue::from_static("127.0.0.1"),
    );
    BackendRequest {
        method: method.parse().expect("method"),
        url: url.parse().expect("url"),
        headers,
        body: Bytes::new(),
    }
}

/// A call context with `timeout` left.
pub fn ctx(timeout: Duration) -> CallContext {
    CallContext::new(Instant::now() + timeout, 1 << 20)
}

/// Runs one request and reads the whole answer.
pub async fn call(
    exec: &SharedExecutor,
    req: BackendRequest,
    timeout: Duration,
) -> Result<(http::StatusCode, http::HeaderMap, Bytes), ExecError> {
    let ctx = ctx(timeout);
    let response = exec.execute(req, &ctx).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Ok((parts.status, parts.headers, body))
}

/// Parses a JSON body.
pub fn json(body: &Bytes) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)))
}

// ---------------------------------------------------------------------------------------------
// The default client stand-in.

/// A minimal default executor on hyper-util's pooled legacy client.
#[derive(Debug)]
pub struct TestClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

/// The shared test client.
pub fn default_client() -> SharedExecutor {
    static CLIENT: OnceLock<SharedExecutor> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let client = Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(5))
                .build_http();
            Arc::new(TestClient { client })
        })
        .clone()
}

impl Executor for TestClient {
    fn execute<'a>(
        &'a self,
        request: BackendRequest,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        Box::pin(async move {
            let mut req = http::Request::new(Full::new(request.body));
            *req.method_mut() = request.method;
            *req.uri_mut() = request.url;
            *req.headers_mut() = request.headers;
            // As the gateway's client: no timer of its own when the caller races the deadline.
            let call = self.client.request(req);
            let response = if ctx.caller_enforces_deadline {
                call.await
            } else {
                tokio::time::timeout_at(ctx.deadline, call)
                    .await
                    .map_err(|_| ExecError::timeout())?
            }
            .map_err(|e| {
                let kind = if e.is_connect() {
                    ErrorKind::Connect
                } else {
                    ErrorKind::Protocol
                };
                ExecError::upstream(kind, e.to_string())
            })?;
            Ok(response.map(|body: Incoming| {
                body.map_err(|e| Box::new(e) as sluice_plugin::BoxError)
                    .boxed_unsync()
            }))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The backend.

/// An in-process HTTP backend on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct Backend {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The address.
    pub addr: SocketAddr,
}

/// Starts the backend. Routes:
/// - `/__debug/*`: `{"message":"pong"}`;
/// - `/a`: `{"x":1}`, `/b`: `{"y":2}`;
/// - `/signed/*`: checks the `hmac-signer` headers, 200 `{"verified":true,...}` or 401;
/// - `/hang`: never answers;
/// - anything else: echoes `{"method","path","query","headers","body"}`.
pub async fn start_backend() -> Backend {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(serve);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Backend {
        url: format!("http://{addr}"),
        addr,
    }
}

async fn serve(req: http::Request<Incoming>) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let json_response = |status: u16, value: serde_json::Value| {
        let mut r = http::Response::new(Full::new(Bytes::from(value.to_string())));
        *r.status_mut() =
            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        r.headers_mut().insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        r
    };
    if path.starts_with("/__debug/") {
        return Ok(json_response(200, serde_json::json!({"message": "pong"})));
    }
    match path.as_str() {
        "/a" => return Ok(json_response(200, serde_json::json!({"x": 1}))),
        "/b" => return Ok(json_response(200, serde_json::json!({"y": 2}))),
        "/hang" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        _ => {}
    }
    if path.starts_with("/signed/") {
        let header = |n: &str| {
            parts
                .headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let timestamp = header("x-signature-timestamp");
        let signature = header("x-signature");
        let key_id = header("x-key-id");
        let target = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_default();
        let expected = expected_signature(parts.method.as_str(), &target, &timestamp, &body);
        let verified = !signature.is_empty() && signature == expected;
        return Ok(json_response(
            if verified { 200 } else { 401 },
            serde_json::json!({"verified": verified, "key_id": key_id, "timestamp": timestamp}),
        ));
    }
    let headers: serde_json::Map<String, serde_json::Value> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                serde_json::Value::String(v.to_str().unwrap_or("?").to_owned()),
            )
        })
        .collect();
    Ok(json_response(
        200,
        serde_json::json!({
            "method": parts.method.as_str(),
            "path": path,
            "query": parts.uri.query(),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        }),
    ))
}

/// The backend's side of `hmac-signer`'s scheme (see `plugins/hmac-signer/src/sign.rs`).
pub fn expected_signature(
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    body: &[u8],
) -> String {
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    let body_hash = hex::encode(Sha256::digest(body));
    let sts = format!("{method}\n{path_and_query}\n{timestamp}\n{body_hash}");
    let mut mac = Hmac::<Sha256>::new_from_slice(HMAC_SECRET.as_bytes()).expect("hmac key");
    mac.update(sts.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}
