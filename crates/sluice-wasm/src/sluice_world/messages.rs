//! The host side of 0.3's `messages`: the request or answer a hook works on stays in the
//! store ([`Held`]), and the guest reads and changes it part by part. What the hook never
//! touches never crosses the boundary, and a hook that changes nothing hands nothing back.

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use sluice_plugin::BackendRequest;
use wasmtime::component::Resource;

use super::bindings::sluice::plugin::messages::{HostIncomingResponse, HostOutgoingRequest};
use super::{
    State, WitError, WitErrorKind, WitRequest, WitResponse, parse_method, parse_url,
    replace_request, replace_response, url_text,
};
use crate::headers;

/// The rep of `outgoing-request`: the one the store holds (there is one per call).
#[allow(
    unreachable_pub,
    reason = "bindgen's generated module re-exports it as `pub`"
)]
pub enum OutgoingRequest {}

/// The rep of `incoming-response`: the one the store holds.
#[allow(
    unreachable_pub,
    reason = "bindgen's generated module re-exports it as `pub`"
)]
pub enum IncomingResponse {}

/// The message a hook call works on, in the store for the length of the call.
#[derive(Default)]
pub(crate) enum Held {
    #[default]
    Nothing,
    Request(BackendRequest),
    Response(http::response::Parts, Bytes),
}

/// What the hook did to the held message.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Changes {
    /// The headers or the body changed: the framing must be checked again.
    pub(crate) framing: bool,
}

/// The borrow handed to a hook. Its rep is unused: a store holds one message at a time.
pub(crate) fn lend<T: 'static>() -> Resource<T> {
    Resource::new_borrow(0)
}

fn plugin_error(message: String) -> WitError {
    WitError {
        kind: WitErrorKind::Plugin,
        message,
    }
}

fn first(headers: &HeaderMap, name: &str) -> Option<Vec<u8>> {
    headers.get(name).map(|v| v.as_bytes().to_vec())
}

fn set(
    headers: &mut HeaderMap,
    changes: &mut Changes,
    what: &'static str,
    field: &str,
    v: Vec<u8>,
    append: bool,
) -> Result<(), WitError> {
    headers::set_from_guest(|| what.into(), headers, field, v, append)
        .map_err(|e| plugin_error(e.message))?;
    changes.framing = true;
    Ok(())
}

fn remove(headers: &mut HeaderMap, changes: &mut Changes, field: &str) {
    // A name HTTP does not allow names no field: there is nothing to remove.
    if let Ok(n) = HeaderName::from_bytes(field.as_bytes())
        && headers.remove(n).is_some()
    {
        changes.framing = true;
    }
}

fn replace_all(
    headers: &mut HeaderMap,
    changes: &mut Changes,
    what: &'static str,
    list: Vec<u8>,
) -> Result<(), WitError> {
    *headers = headers::from_guest(|| what.into(), list).map_err(|e| plugin_error(e.message))?;
    changes.framing = true;
    Ok(())
}

impl State {
    fn held_request(&mut self) -> Option<&mut BackendRequest> {
        match &mut self.held {
            Held::Request(request) => Some(request),
            _ => None,
        }
    }

    fn held_response(&mut self) -> Option<(&mut http::response::Parts, &mut Bytes)> {
        match &mut self.held {
            Held::Response(parts, body) => Some((parts, body)),
            _ => None,
        }
    }

    /// The held request's headers, with the call's changes beside them.
    fn request_headers(&mut self) -> Result<(&mut HeaderMap, &mut Changes), WitError> {
        match &mut self.held {
            Held::Request(request) => Ok((&mut request.headers, &mut self.changes)),
            _ => Err(gone()),
        }
    }

    /// The held answer's headers, with the call's changes beside them.
    fn response_headers(&mut self) -> Result<(&mut HeaderMap, &mut Changes), WitError> {
        match &mut self.held {
            Held::Response(parts, _) => Ok((&mut parts.headers, &mut self.changes)),
            _ => Err(gone()),
        }
    }
}

/// A call on a message the store no longer holds: a `replace` the host refused took it (a
/// borrow cannot outlive its hook call, so nothing else empties the store mid-call).
fn gone() -> WitError {
    plugin_error(
        "the message is gone: the host refused what `replace` handed back, and nothing is \
         sent"
            .into(),
    )
}

/// The header methods both resources share, on the held message's headers (`$headers`: the
/// `State` method that lends them with the call's changes).
macro_rules! header_methods {
    ($rep:ty, $headers:ident, $what:literal) => {
        fn header(&mut self, _: Resource<$rep>, name: String) -> Option<Vec<u8>> {
            first(self.$headers().ok()?.0, &name)
        }

        fn headers(&mut self, _: Resource<$rep>) -> Vec<u8> {
            self.$headers()
                .map(|(headers, _)| headers::encode(headers))
                .unwrap_or_default()
        }

        fn set_header(
            &mut self,
            _: Resource<$rep>,
            field: String,
            v: Vec<u8>,
        ) -> Result<(), WitError> {
            let (headers, changes) = self.$headers()?;
            set(headers, changes, $what, &field, v, false)
        }

        fn append_header(
            &mut self,
            _: Resource<$rep>,
            field: String,
            v: Vec<u8>,
        ) -> Result<(), WitError> {
            let (headers, changes) = self.$headers()?;
            set(headers, changes, $what, &field, v, true)
        }

        fn remove_header(&mut self, _: Resource<$rep>, field: String) {
            if let Ok((headers, changes)) = self.$headers() {
                remove(headers, changes, &field);
            }
        }

        fn set_headers(&mut self, _: Resource<$rep>, list: Vec<u8>) -> Result<(), WitError> {
            let (headers, changes) = self.$headers()?;
            replace_all(headers, changes, $what, list)
        }
    };
}

impl super::bindings::sluice::plugin::messages::Host for State {}

impl HostOutgoingRequest for State {
    header_methods!(OutgoingRequest, request_headers, "the plugin's request");

    fn copy(&mut self, _: Resource<OutgoingRequest>) -> WitRequest {
        match self.held_request() {
            Some(r) => WitRequest {
                method: r.method.as_str().to_owned(),
                url: url_text(&r.url),
                headers: headers::encode(&r.headers),
                body: r.body.to_vec(),
            },
            None => WitRequest {
                method: String::new(),
                url: String::new(),
                headers: Vec::new(),
                body: Vec::new(),
            },
        }
    }

    fn replace(
        &mut self,
        _: Resource<OutgoingRequest>,
        request: WitRequest,
    ) -> Result<(), WitError> {
        let held = match std::mem::take(&mut self.held) {
            Held::Request(held) => held,
            other => {
                self.held = other;
                return Err(gone());
            }
        };
        // What `copy` handed out, to tell the parts the guest left as they were.
        let url = url_text(&held.url);
        let encoded = headers::encode(&held.headers);
        replace_request(self, held, &url, &encoded, request)
    }

    fn method(&mut self, _: Resource<OutgoingRequest>) -> String {
        self.held_request()
            .map(|r| r.method.as_str().to_owned())
            .unwrap_or_default()
    }

    fn set_method(&mut self, _: Resource<OutgoingRequest>, method: String) -> Result<(), WitError> {
        let parsed = parse_method(&method).map_err(|e| plugin_error(e.message))?;
        self.held_request().ok_or_else(gone)?.method = parsed;
        Ok(())
    }

    fn url(&mut self, _: Resource<OutgoingRequest>) -> String {
        self.held_request()
            .map(|r| url_text(&r.url))
            .unwrap_or_default()
    }

    fn set_url(&mut self, _: Resource<OutgoingRequest>, url: String) -> Result<(), WitError> {
        let parsed = parse_url(&url).map_err(|e| plugin_error(e.message))?;
        self.held_request().ok_or_else(gone)?.url = parsed;
        Ok(())
    }

    fn body(&mut self, _: Resource<OutgoingRequest>) -> Vec<u8> {
        self.held_request()
            .map(|r| r.body.to_vec())
            .unwrap_or_default()
    }

    fn set_body(&mut self, _: Resource<OutgoingRequest>, body: Vec<u8>) {
        if let Held::Request(request) = &mut self.held {
            request.body = Bytes::from(body);
            self.changes.framing = true;
        }
    }

    fn drop(&mut self, _: Resource<OutgoingRequest>) -> wasmtime::Result<()> {
        // Only borrows are handed out; the store owns the message.
        Ok(())
    }
}

impl HostIncomingResponse for State {
    header_methods!(IncomingResponse, response_headers, "the plugin's answer");

    fn copy(&mut self, _: Resource<IncomingResponse>) -> WitResponse {
        match self.held_response() {
            Some((parts, body)) => WitResponse {
                status: parts.status.as_u16(),
                headers: headers::encode(&parts.headers),
                body: body.to_vec(),
            },
            None => WitResponse {
                status: 0,
                headers: Vec::new(),
                body: Vec::new(),
            },
        }
    }

    fn replace(
        &mut self,
        _: Resource<IncomingResponse>,
        response: WitResponse,
    ) -> Result<(), WitError> {
        let (parts, _) = match std::mem::take(&mut self.held) {
            Held::Response(parts, body) => (parts, body),
            other => {
                self.held = other;
                return Err(gone());
            }
        };
        let encoded = headers::encode(&parts.headers);
        replace_response(self, parts, encoded, response)
    }

    fn status(&mut self, _: Resource<IncomingResponse>) -> u16 {
        self.held_response()
            .map_or(0, |(parts, _)| parts.status.as_u16())
    }

    fn set_status(&mut self, _: Resource<IncomingResponse>, status: u16) -> Result<(), WitError> {
        let status = http::StatusCode::from_u16(status)
            .map_err(|_| plugin_error(format!("invalid status {status}")))?;
        self.held_response().ok_or_else(gone)?.0.status = status;
        Ok(())
    }

    fn body(&mut self, _: Resource<IncomingResponse>) -> Vec<u8> {
        self.held_response()
            .map(|(_, body)| body.to_vec())
            .unwrap_or_default()
    }

    fn set_body(&mut self, _: Resource<IncomingResponse>, body: Vec<u8>) {
        if let Held::Response(_, held) = &mut self.held {
            *held = Bytes::from(body);
            self.changes.framing = true;
        }
    }

    fn drop(&mut self, _: Resource<IncomingResponse>) -> wasmtime::Result<()> {
        Ok(())
    }
}
