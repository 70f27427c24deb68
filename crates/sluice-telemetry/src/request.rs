//! What one request carries: its id, when it started, which route's handles record it.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use crate::trace::{
    AttrValue, SharedAttributes, Span, SpanKind, Status, TRACEPARENT, TraceParent, TraceRoot,
};
use crate::{ServerMetrics, Telemetry};

/// The request id header: read from the client when it sends a usable one, generated
/// otherwise, written on every access log line and sent to every backend.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-sent request id kept (longer ones are replaced).
const MAX_REQUEST_ID: usize = 128;

/// What the pipeline needs to know about the request it serves.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// The request id (`X-Request-Id`) to send to the backends, when they get one.
    pub request_id: Option<HeaderValue>,
    /// Where the request's spans hang (the request span, or the client's context or a new
    /// trace when it is off); `None` without tracing.
    pub trace: Option<TraceParent>,
    /// The proxy stage's span, once started: the backends' spans hang from it.
    pub stage: OnceLock<TraceParent>,
}

impl RequestContext {
    /// The context a backend's spans start under.
    pub fn parent(&self) -> Option<&TraceParent> {
        self.stage.get().or(self.trace.as_ref())
    }
}

/// An endpoint's global layer: its metrics, its route as spans name it, its static span
/// attributes (both shared by every request span of the route).
#[derive(Debug)]
pub struct RouteTelemetry {
    pub(crate) metrics: Option<Arc<ServerMetrics>>,
    pub(crate) route: Arc<str>,
    pub(crate) trace_attributes: SharedAttributes,
}

/// One request's telemetry, from its head to its answer.
#[derive(Debug)]
pub struct RequestScope {
    started: Instant,
    /// Not instrumented (`skip_paths`).
    skipped: bool,
    /// An endpoint answers (its handle, absent when the endpoint is not instrumented).
    routed: bool,
    route: Option<Arc<RouteTelemetry>>,
    /// Boxed: an untraced request's scope (most are) is then 128 bytes smaller, in state every
    /// request writes.
    span: Option<Box<Span>>,
    request_id: HeaderValue,
    context: RequestContext,
}

impl RequestScope {
    /// Starts a request's scope: its id (the client's `X-Request-Id` when it is 1 to 128
    /// visible ASCII characters, else a new UUID, made only when it is sent to the backends,
    /// `forward_id`, or written in the access log, `logged`), and its clock.
    pub fn begin(
        telemetry: &Telemetry,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        forward_id: bool,
        logged: bool,
    ) -> Self {
        let path = uri.path();
        // Only the backends (`forward_id`) and the access log (`logged`) read it: otherwise
        // the client's is not looked up either.
        let request_id = if forward_id || logged {
            headers
                .get(REQUEST_ID_HEADER)
                .filter(|v| {
                    let b = v.as_bytes();
                    !b.is_empty()
                        && b.len() <= MAX_REQUEST_ID
                        && b.iter().all(|c| c.is_ascii_graphic())
                })
                .cloned()
                .unwrap_or_else(new_request_id)
        } else {
            HeaderValue::from_static("")
        };
        let skipped = telemetry.skips(path);
        let (span, trace) = match (telemetry.tracer(), telemetry.settings()) {
            (Some(tracer), Some(settings)) if !skipped => {
                let global = &settings.global;
                let incoming = (!global.disable_propagation)
                    .then(|| headers.get(TRACEPARENT))
                    .flatten();
                let root = TraceRoot::new(tracer, incoming);
                if global.disable_traces {
                    (None, Some(root.parent().clone()))
                } else {
                    let mut span = root.span(path, SpanKind::Server);
                    if span.is_recording() {
                        set_url_full(&mut span, uri);
                        if let Some(host) = headers
                            .get(http::header::HOST)
                            .and_then(|h| h.to_str().ok())
                        {
                            span.set("server.address", host);
                        }
                        span.set("http.request.method", AttrValue::method(method));
                        if let Some(len) = headers
                            .get(http::header::CONTENT_LENGTH)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<i64>().ok())
                        {
                            span.set("http.request.body.size", len);
                        }
                        if let Some(ua) = headers
                            .get(http::header::USER_AGENT)
                            .and_then(|h| h.to_str().ok())
                        {
                            span.set("user_agent.original", ua);
                        }
                        if let Some(peer) = peer {
                            set_client_address(&mut span, peer);
                        }
                        span.set("krakend.stage", "global");
                        if let Some(statics) = telemetry.global_trace_attributes() {
                            span.set_shared(statics);
                        }
                        if global.report_headers {
                            span.set_headers("request", headers, &global.skip_headers);
                        }
                    }
                    let parent = span.as_parent();
                    (Some(Box::new(span)), Some(parent))
                }
            }
            _ => (None, None),
        };
        Self {
            started: Instant::now(),
            skipped,
            routed: false,
            route: None,
            span,
            context: RequestContext {
                request_id: forward_id.then(|| request_id.clone()),
                trace,
                stage: OnceLock::new(),
            },
            request_id,
        }
    }

    /// The trace id, when the request is traced.
    pub fn trace_id(&self) -> Option<String> {
        self.context
            .trace
            .as_ref()
            .map(|t| t.context().trace_id_hex())
    }

    /// The route's global layer, once the router found it (`None` for an endpoint left
    /// uninstrumented).
    pub fn set_route(&mut self, route: Option<&Arc<RouteTelemetry>>) {
        self.routed = true;
        self.route = route.cloned();
    }

    /// What the pipeline carries.
    pub fn context(&self) -> &RequestContext {
        &self.context
    }

    /// The request id.
    pub fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or("")
    }

    /// When the request's head was read.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Records the answer: `status`, its body size (as far as known) and the time since the
    /// head. Answers no endpoint gave are recorded under `unrouted` (their route is the
    /// status text).
    pub fn finish(
        &mut self,
        method: &http::Method,
        status: u16,
        size: u64,
        response_headers: &HeaderMap,
        telemetry: &Telemetry,
        unrouted: Option<&Arc<ServerMetrics>>,
    ) {
        if self.skipped {
            return;
        }
        let metrics = if self.routed {
            self.route.as_ref().and_then(|r| r.metrics.as_ref())
        } else {
            unrouted
        };
        if let Some(metrics) = metrics {
            metrics.record(method.as_str(), status, self.started.elapsed(), size);
        }
        if let Some(mut span) = self.span.take()
            && span.is_recording()
        {
            match &self.route {
                Some(r) => span.set("http.route", &r.route),
                None => span.set("http.route", &crate::handles::status_route(status)),
            }
            span.set("http.response.status_code", i64::from(status));
            span.set(
                "http.response.body.size",
                i64::try_from(size).unwrap_or(i64::MAX),
            );
            if let Some(r) = &self.route {
                span.set_shared(&r.trace_attributes);
            }
            if let Some(global) = telemetry.settings().map(|s| &s.global)
                && global.report_headers
            {
                span.set_headers("response", response_headers, &global.skip_headers);
            }
            span.set_status(Status::Ok);
        }
    }
}

/// `url.full` of the request span: the request target as the client sent it. The usual
/// origin form (`/path?query`) is written as is, without `Display`'s formatting machinery.
fn set_url_full(span: &mut Span, uri: &Uri) {
    match origin_form(uri) {
        Some(target) => span.set("url.full", target),
        None => span.set_uri("url.full", uri),
    }
}

fn origin_form(uri: &Uri) -> Option<&str> {
    uri.path_and_query()
        .filter(|_| uri.scheme().is_none() && uri.authority().is_none())
        .map(|pq| pq.as_str())
}

/// `client.address`: IPv4 (nearly every client) written by hand on the stack, without
/// `Display`'s formatting machinery.
fn set_client_address(span: &mut Span, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => span.set("client.address", ipv4_text(v4, &mut [0; 15])),
        IpAddr::V6(_) => span.set_display("client.address", ip),
    }
}

/// An IPv4 address as text, written by hand into `text` (for `client.address` and the
/// backends' `X-Forwarded-For`: `Display` and a `String` cost more than the rest of either).
pub fn ipv4_text(ip: std::net::Ipv4Addr, text: &mut [u8; 15]) -> &str {
    let mut n = 0;
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            text[n] = b'.';
            n += 1;
        }
        if octet >= 100 {
            text[n] = b'0' + octet / 100;
            n += 1;
        }
        if octet >= 10 {
            text[n] = b'0' + octet / 10 % 10;
            n += 1;
        }
        text[n] = b'0' + octet % 10;
        n += 1;
    }
    std::str::from_utf8(&text[..n]).unwrap_or_default()
}

/// A random (version 4) UUID. Its bytes are shared by the header's clones (the context, the
/// backend requests) rather than copied or re-allocated on the first clone.
fn new_request_id() -> HeaderValue {
    // One 128-bit draw (an array of bytes would be drawn byte by byte).
    let mut bytes = rand::random::<u128>().to_be_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut text = [b'-'; 36];
    // 8-4-4-4-12 hex digits.
    crate::trace::write_hex(&mut text[..8], &bytes[..4]);
    crate::trace::write_hex(&mut text[9..13], &bytes[4..6]);
    crate::trace::write_hex(&mut text[14..18], &bytes[6..8]);
    crate::trace::write_hex(&mut text[19..23], &bytes[8..10]);
    crate::trace::write_hex(&mut text[24..], &bytes[10..]);
    HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(text))
        .unwrap_or_else(|_| HeaderValue::from_static("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        for ip in ["0.0.0.0", "127.0.0.1", "10.20.100.255", "255.255.255.255"] {
            let parsed: std::net::Ipv4Addr = ip.parse().unwrap_or([1, 1, 1, 1].into());
            assert_eq!(ipv4_text(parsed, &mut [0; 15]), ip);
        }
        for (uri, origin) in [
            ("/a?b=c", Some("/a?b=c")),
            ("/", Some("/")),
            ("http://h:8080/p?q", None),
            ("*", Some("*")),
        ] {
            let parsed: Uri = uri.parse().unwrap_or_default();
            assert_eq!(origin_form(&parsed), origin, "{uri}");
            // What is written as is, is what `Display` would write.
            if let Some(origin) = origin {
                assert_eq!(origin, parsed.to_string());
            }
        }
    }

    #[test]
    fn request_ids() {
        let id = new_request_id();
        let s = id.to_str().unwrap_or_default();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
        for (i, c) in s.char_indices() {
            if matches!(i, 8 | 13 | 18 | 23) {
                assert_eq!(c, '-', "{s}");
            } else {
                assert!(c.is_ascii_hexdigit() && !c.is_ascii_uppercase(), "{s}");
            }
        }
        assert_ne!(new_request_id(), id);
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc-123"));
        let scope = RequestScope::begin(
            &Telemetry::disabled(),
            &Method::GET,
            &Uri::from_static("/"),
            &headers,
            None,
            true,
            false,
        );
        assert_eq!(scope.request_id(), "abc-123");
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("has space"));
        let scope = RequestScope::begin(
            &Telemetry::disabled(),
            &Method::GET,
            &Uri::from_static("/"),
            &headers,
            None,
            true,
            false,
        );
        assert_eq!(scope.request_id().len(), 36);
    }
}
