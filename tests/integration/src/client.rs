//! A small HTTP/1.1 client for tests (hyper-util's legacy client, no redirects followed, no
//! connection reuse across calls).

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// No test request may take longer than this; a gateway that never answers fails the test
/// instead of hanging it.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Response {
    /// The first value of a header, if present and valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every value of a header.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    /// The body as text.
    ///
    /// # Panics
    /// If it is not UTF-8.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("UTF-8 body")
    }

    /// The body parsed as JSON.
    ///
    /// # Panics
    /// If it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// `GET url`.
///
/// # Panics
/// On a transport error or after [`CLIENT_TIMEOUT`].
pub async fn get(url: &str) -> Response {
    request(Method::GET, url, &[], Bytes::new()).await
}

/// Sends one request.
///
/// # Panics
/// On a transport error or after [`CLIENT_TIMEOUT`].
pub async fn request(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Response {
    let m = method.clone();
    try_request(method, url, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{m} {url} failed: {e}"))
}

/// Sends one request; transport errors are returned.
///
/// # Panics
/// If `url` or a header is malformed.
pub async fn try_request(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Result<Response, String> {
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http::<Full<Bytes>>();
    let mut req = http::Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(body.into()))
        .expect("valid request");
    for (name, value) in headers {
        req.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
            HeaderValue::from_str(value).expect("valid header value"),
        );
    }
    let call = async {
        let resp = client.request(req).await.map_err(|e| format!("{e:?}"))?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("{e:?}"))?
            .to_bytes();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    };
    match tokio::time::timeout(CLIENT_TIMEOUT, call).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {CLIENT_TIMEOUT:?}")),
    }
}
