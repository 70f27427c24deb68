//! `wasi-passthrough`: a standard `wasi:http/proxy` component, built without the Sluice SDK.
//!
//! The gateway presents the backend request as the incoming request (its URL is the backend
//! URL); this component forwards it unchanged with `wasi:http/outgoing-handler` (which the
//! gateway routes through its own client and allow-list) and streams the answer back.
//!
//! One optional setting, read through `wasi:config/store` (values are JSON text):
//! `response_header`: a header name added to every answer with the value `wasi-passthrough`.

#[allow(unsafe_code, unreachable_pub, missing_docs, clippy::all)]
mod config {
    wit_bindgen::generate!({
        path: "wit",
        world: "config-reader",
    });
}

use wstd::http::{Body, Client, Error, Request, Response};

/// Reads a setting (its JSON text) from `wasi:config/store`, if the host offers one.
fn setting(key: &str) -> Option<String> {
    config::wasi::config::store::get(key).ok().flatten()
}

/// The value of a JSON string setting.
fn string_setting(key: &str) -> Option<String> {
    let text = setting(key)?;
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains(['\\', '"']) {
        None
    } else {
        Some(inner.to_owned())
    }
}

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    let (parts, body) = request.into_parts();
    let mut outgoing = Request::builder().method(parts.method).uri(parts.uri);
    for (name, value) in &parts.headers {
        outgoing = outgoing.header(name, value);
    }
    let outgoing = outgoing.body(body)?;
    let mut response = Client::new().send(outgoing).await?;
    if let Some(name) = string_setting("response_header")
        && let Ok(name) = wstd::http::HeaderName::from_bytes(name.as_bytes())
    {
        response.headers_mut().insert(
            name,
            wstd::http::HeaderValue::from_static("wasi-passthrough"),
        );
    }
    Ok(response)
}
