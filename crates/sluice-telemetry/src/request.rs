//! What one request carries: its id, when it started, which route's handles record it.

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderMap, HeaderName, HeaderValue};

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
}

/// One request's telemetry, from its head to its answer.
#[derive(Debug)]
pub struct RequestScope {
    started: Instant,
    /// Not instrumented (`skip_paths`).
    skipped: bool,
    /// An endpoint answers (its handle, absent when the endpoint is not instrumented).
    routed: bool,
    route: Option<Arc<ServerMetrics>>,
    request_id: HeaderValue,
    context: RequestContext,
}

impl RequestScope {
    /// Starts a request's scope: its id (the client's `X-Request-Id` when it is 1 to 128
    /// visible ASCII characters, else a new UUID), sent to the backends when `forward_id`, and
    /// its clock.
    pub fn begin(telemetry: &Telemetry, path: &str, headers: &HeaderMap, forward_id: bool) -> Self {
        let request_id = headers
            .get(REQUEST_ID_HEADER)
            .filter(|v| {
                let b = v.as_bytes();
                !b.is_empty() && b.len() <= MAX_REQUEST_ID && b.iter().all(|c| c.is_ascii_graphic())
            })
            .cloned()
            .unwrap_or_else(new_request_id);
        Self {
            started: Instant::now(),
            skipped: telemetry.skips(path),
            routed: false,
            route: None,
            context: RequestContext {
                request_id: forward_id.then(|| request_id.clone()),
            },
            request_id,
        }
    }

    /// The route's global layer handle, once the router found it (`None` for an endpoint
    /// left uninstrumented).
    pub fn set_route(&mut self, route: Option<&Arc<ServerMetrics>>) {
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
        &self,
        method: &http::Method,
        status: u16,
        size: u64,
        unrouted: Option<&Arc<ServerMetrics>>,
    ) {
        if self.skipped {
            return;
        }
        let handle = if self.routed {
            self.route.as_ref()
        } else {
            unrouted
        };
        if let Some(handle) = handle {
            handle.record(method.as_str(), status, self.started.elapsed(), size);
        }
    }
}

/// A random (version 4) UUID.
fn new_request_id() -> HeaderValue {
    let mut bytes: [u8; 16] = rand::random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut text = [0u8; 36];
    let mut j = 0;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text[j] = b'-';
            j += 1;
        }
        text[j] = HEX[usize::from(b >> 4)];
        text[j + 1] = HEX[usize::from(b & 0x0f)];
        j += 2;
    }
    HeaderValue::from_bytes(&text).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        let id = new_request_id();
        let s = id.to_str().unwrap_or_default();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc-123"));
        let scope = RequestScope::begin(&Telemetry::disabled(), "/", &headers, true);
        assert_eq!(scope.request_id(), "abc-123");
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("has space"));
        let scope = RequestScope::begin(&Telemetry::disabled(), "/", &headers, true);
        assert_eq!(scope.request_id().len(), 36);
    }
}
