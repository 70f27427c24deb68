//! The one place where a pipeline's outcome becomes the client's response (spec §2.9):
//! status rules, `X-KrakenD-Completed`, `Cache-Control` and the output encodings.

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use serde_json::{Map, Value};
use sluice_config::OutputEncoding;
use sluice_plugin::{Body, empty, full};
use sluice_transform::render::{self, Negotiated};

use crate::backend::Answer;
use crate::endpoint::{EndpointPipeline, Outcome};

/// `X-KrakenD-Completed`: kept under KrakenD's name because clients read it.
pub static COMPLETED: HeaderName = HeaderName::from_static("x-krakend-completed");
/// `X-Sluice`: the gateway's version (KrakenD's `X-KrakenD`).
pub static VERSION_HEADER: HeaderName = HeaderName::from_static("x-sluice");

// The content types KrakenD CE writes: gin's JSON, String and YAML renders, krakend-xml's
// render (gin's `MIMEXML`, no charset), and Go's sniffing of an error text.
const JSON: HeaderValue = HeaderValue::from_static(render::JSON_CONTENT_TYPE);
const TEXT: HeaderValue = HeaderValue::from_static(render::TEXT_CONTENT_TYPE);
const XML: HeaderValue = HeaderValue::from_static(render::XML_CONTENT_TYPE);
const YAML: HeaderValue = HeaderValue::from_static(render::YAML_CONTENT_TYPE);
/// gin's `serveError` (its own 404 and 405): `text/plain`, without a charset.
const GIN_TEXT: HeaderValue = HeaderValue::from_static("text/plain");
const TRUE: HeaderValue = HeaderValue::from_static("true");
const FALSE: HeaderValue = HeaderValue::from_static("false");

/// Service-wide rendering settings.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// `router.return_error_msg`.
    pub return_error_msg: bool,
    /// The `X-Sluice` value.
    pub version: HeaderValue,
}

/// Turns the outcome into the response.
pub fn render(
    pipeline: &EndpointPipeline,
    outcome: Outcome,
    accept: Option<&HeaderValue>,
    options: &RenderOptions,
) -> Response<Body> {
    let Outcome { answer, error } = outcome;
    let (mut response, complete) = match answer {
        Some(Answer::Raw(backend)) => return no_op(backend, options),
        Some(Answer::Json {
            text,
            group,
            complete,
        }) => {
            // A group always holds data.
            let empty = group.is_none() && &text[..] == b"{}";
            let text = match group {
                Some(group) => {
                    sluice_transform::merge::merge_json_texts([(Some(&*group), &text[..])]).into()
                }
                None => text,
            };
            (encode_text(pipeline, text, accept), complete && !empty)
        }
        Some(Answer::Data { data, complete }) => {
            let empty = data.is_empty();
            (encode(pipeline, data, accept), complete && !empty)
        }
        None => {
            let error = error.unwrap_or(crate::error::ProxyError::Timeout);
            return error_response(error.status(), &error, options);
        }
    };
    let completed = complete && error.is_none();
    let headers = response.headers_mut();
    headers.insert(COMPLETED.clone(), if completed { TRUE } else { FALSE });
    // Lura: on whenever the TTL is not zero, the age in whole seconds (so a sub-second TTL
    // says `max-age=0`).
    let ttl = pipeline.endpoint.cache_ttl;
    if completed && !ttl.is_zero() {
        let value = format!("public, max-age={}", ttl.as_secs());
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(header::CACHE_CONTROL, v);
        }
    }
    headers.insert(VERSION_HEADER.clone(), options.version.clone());
    response
}

/// A response for a pipeline error: the status, and the message only with `return_error_msg`.
pub fn error_response(
    status: StatusCode,
    error: &crate::error::ProxyError,
    options: &RenderOptions,
) -> Response<Body> {
    let mut response = if options.return_error_msg {
        let (body, content_type) = error.body();
        let mut r = Response::new(full(body));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, content_type.unwrap_or(TEXT));
        r
    } else {
        Response::new(empty())
    };
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(COMPLETED.clone(), FALSE);
    headers.insert(VERSION_HEADER.clone(), options.version.clone());
    response
}

/// The router's own 404 or 405 (KrakenD CE's `NoRoute` and `NoMethod` handlers): gin's text
/// (`404 page not found`, `405 method not allowed`) as `text/plain` without a charset, or the
/// `router.error_body` JSON (see [`error_body_json`]) as gin's `c.JSON` writes it;
/// `X-KrakenD-Completed: false` either way.
pub fn router_error(status: StatusCode, error_body: Option<&Bytes>) -> Response<Body> {
    let mut response = match error_body {
        Some(json) => {
            let mut response = Response::new(full(json.clone()));
            response.headers_mut().insert(header::CONTENT_TYPE, JSON);
            response
        }
        None => {
            let text = if status == StatusCode::METHOD_NOT_ALLOWED {
                "405 method not allowed"
            } else {
                "404 page not found"
            };
            let mut response = Response::new(full(Bytes::from_static(text.as_bytes())));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, GIN_TEXT);
            response
        }
    };
    *response.status_mut() = status;
    response.headers_mut().insert(COMPLETED.clone(), FALSE);
    response
}

/// gin's trailing-slash and fixed-path redirect to `target` (path and query): 301 for a GET, 307
/// otherwise, written by Go's `http.Redirect`, so a GET also gets `text/html; charset=utf-8` and
/// its short HTML body, a HEAD the type alone; bytes past ASCII in `Location` are %-escaped.
pub fn router_redirect(method: &Method, target: &str) -> Response<Body> {
    let status = if method == Method::GET {
        StatusCode::MOVED_PERMANENTLY
    } else {
        StatusCode::TEMPORARY_REDIRECT
    };
    let mut location = String::with_capacity(target.len());
    for byte in target.bytes() {
        if byte.is_ascii() {
            location.push(char::from(byte));
        } else {
            location.push_str(&format!("%{byte:02x}"));
        }
    }
    let body = if method == Method::GET {
        let mut html = String::with_capacity(location.len() + 40);
        html.push_str("<a href=\"");
        for c in location.chars() {
            match c {
                '&' => html.push_str("&amp;"),
                '<' => html.push_str("&lt;"),
                '>' => html.push_str("&gt;"),
                '"' => html.push_str("&#34;"),
                '\'' => html.push_str("&#39;"),
                c => html.push(c),
            }
        }
        html.push_str("\">Moved Permanently</a>.\n\n");
        full(html)
    } else {
        empty()
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if method == Method::GET || method == Method::HEAD {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
    }
    response
}

/// A `router.error_body` value as Go's `json.Marshal` writes it (keys sorted, `<`, `>`, `&`
/// escaped), serialised once at start-up.
pub fn error_body_json(value: &Value) -> Bytes {
    Bytes::from(render::to_json_value(value))
}

/// A plain-text response (client errors), as Go's sniffing types a text body.
pub fn text(status: StatusCode, message: &'static str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::from_static(message.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, TEXT);
    response
}

fn no_op(backend: Response<Body>, options: &RenderOptions) -> Response<Body> {
    let (mut parts, body) = backend.into_parts();
    crate::hop::strip_hop_by_hop(&mut parts.headers);
    // The fields handed on as the backend wrote them (without hop-by-hop ones): the gateway's
    // own two are set below.
    if let Some(fields) = parts.extensions.get_mut::<sluice_plugin::ForwardedFields>() {
        fields.remove_named(&[
            COMPLETED.as_str().as_bytes(),
            VERSION_HEADER.as_str().as_bytes(),
        ]);
    }
    parts.headers.insert(COMPLETED.clone(), FALSE);
    parts
        .headers
        .insert(VERSION_HEADER.clone(), options.version.clone());
    Response::from_parts(parts, body)
}

/// [`encode`] for data kept as JSON text: the text itself when the answer is JSON.
fn encode_text(
    pipeline: &EndpointPipeline,
    text: Bytes,
    accept: Option<&HeaderValue>,
) -> Response<Body> {
    let json = match pipeline.output_encoding() {
        OutputEncoding::Json | OutputEncoding::NoOp => true,
        OutputEncoding::Negotiate => {
            render::negotiate(accept.and_then(|v| v.to_str().ok())) == Negotiated::Json
        }
        _ => false,
    };
    if !json {
        let data = sluice_transform::decode::json_text_data(None, &text);
        return encode(pipeline, data, accept);
    }
    let mut response = Response::new(full(text));
    response.headers_mut().insert(header::CONTENT_TYPE, JSON);
    response
}

fn encode(
    pipeline: &EndpointPipeline,
    data: Map<String, Value>,
    accept: Option<&HeaderValue>,
) -> Response<Body> {
    let (body, content_type) = match pipeline.output_encoding() {
        OutputEncoding::Json | OutputEncoding::NoOp => (render::to_json(&data), JSON),
        OutputEncoding::JsonCollection => (render::to_json_collection(&data), JSON),
        OutputEncoding::String => (render::to_string_content(&data), TEXT),
        OutputEncoding::Xml => (render::to_xml(&data), XML),
        OutputEncoding::Yaml => (render::to_yaml(&data), YAML),
        OutputEncoding::Negotiate => {
            let accept = accept.and_then(|v| v.to_str().ok());
            match render::negotiate(accept) {
                Negotiated::Json => (render::to_json(&data), JSON),
                Negotiated::Xml => (render::to_xml(&data), XML),
                Negotiated::Yaml => (render::to_yaml(&data), YAML),
            }
        }
    };
    let mut response = Response::new(full(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

/// A component's refusal (a stage's [`sluice_stage::EarlyAnswer`]): its status, headers and
/// body as they are, as KrakenD's middlewares abort (no `X-KrakenD-Completed`, no
/// `Cache-Control`, no `Content-Type` without a body).
pub fn early(answer: sluice_stage::EarlyAnswer) -> Response<Body> {
    let sluice_stage::EarlyAnswer {
        status,
        headers,
        body,
    } = answer;
    let mut response = Response::new(if body.is_empty() { empty() } else { full(body) });
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_escape_as_go() {
        let get = router_redirect(&Method::GET, "/caf\u{e9}?q=\"x\"");
        assert_eq!(get.status(), StatusCode::MOVED_PERMANENTLY);
        assert_eq!(get.headers()[header::LOCATION], "/caf%c3%a9?q=\"x\"");
        let head = router_redirect(&Method::HEAD, "/a");
        assert_eq!(head.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(
            head.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let put = router_redirect(&Method::PUT, "/a");
        assert!(!put.headers().contains_key(header::CONTENT_TYPE));
    }
}
