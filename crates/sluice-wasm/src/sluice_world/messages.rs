//! The host side of 0.3's `messages`: the request or answer a call works on stays in the
//! store ([`Held`]), and the guest reads and changes it part by part. What the plugin never
//! touches never crosses the boundary, a hook that changes nothing hands nothing back, and a
//! `handle` that `forward`s the request and passes the answer on moves neither.
//!
//! Each call lends its message under a rep of its own ([`State::call`]): a handle a guest kept
//! from an earlier call (an answer `forward` made) reaches nothing of a later one.

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use sluice_plugin::{AnswerHeaders, BackendRequest, ForwardedFields};
use wasmtime::component::Resource;

use super::bindings::sluice::plugin::messages::{HostIncomingResponse, HostOutgoingRequest};
use super::{
    HandedRequest, State, WitError, WitErrorKind, WitRequest, WitResponse, as_left, parse_method,
    parse_url, replace_request, replace_response, url_text,
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

/// The message a call works on, in the store for the length of the call.
#[derive(Default)]
pub(crate) enum Held {
    #[default]
    Nothing,
    Request(BackendRequest),
    Response(http::response::Parts, Bytes),
    /// A `forward` that failed took the request: nothing is held, and the request's methods
    /// say why.
    Forwarded,
}

/// What the hook did to the held message.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Changes {
    /// The headers or the body changed: the framing must be checked again.
    pub(crate) framing: bool,
}

/// The borrow handed to a call: its rep is the call's, as a store holds one message at a time.
pub(crate) fn lend<T: 'static>(call: u32) -> Resource<T> {
    Resource::new_borrow(call)
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
    /// Whether `handle` is this call's (its rep is the call's).
    fn ours<T>(&self, handle: &Resource<T>) -> Result<(), WitError> {
        if handle.rep() == self.call {
            Ok(())
        } else {
            Err(stale())
        }
    }

    /// The held request, if `handle` is this call's and the store still holds it.
    fn held_request<T>(&mut self, handle: &Resource<T>) -> Result<&mut BackendRequest, WitError> {
        self.ours(handle)?;
        match &mut self.held {
            Held::Request(request) => Ok(request),
            held => Err(gone(held)),
        }
    }

    /// The held answer, if `handle` is this call's and the store still holds it.
    fn held_response<T>(
        &mut self,
        handle: &Resource<T>,
    ) -> Result<(&mut http::response::Parts, &mut Bytes), WitError> {
        self.ours(handle)?;
        match &mut self.held {
            Held::Response(parts, body) => Ok((parts, body)),
            held => Err(gone(held)),
        }
    }

    /// [`State::held_response`] with every header field in the map: the fields the client
    /// left unparsed are parsed on the first look at the headers (a plugin that never looks
    /// never pays for them).
    fn held_response_headers<T>(
        &mut self,
        handle: &Resource<T>,
    ) -> Result<(&mut http::response::Parts, &mut Bytes), WitError> {
        let (parts, body) = self.held_response(handle)?;
        ForwardedFields::into_map(&mut parts.extensions, &mut parts.headers);
        Ok((parts, body))
    }

    /// The held request's headers, with the call's changes beside them.
    fn request_headers<T>(
        &mut self,
        handle: &Resource<T>,
    ) -> Result<(&mut HeaderMap, &mut Changes), WitError> {
        self.ours(handle)?;
        match &mut self.held {
            Held::Request(request) => Ok((&mut request.headers, &mut self.changes)),
            held => Err(gone(held)),
        }
    }

    /// The held answer's headers (every field in the map, as [`State::held_response_headers`]
    /// puts them), with the call's changes beside them.
    fn response_headers<T>(
        &mut self,
        handle: &Resource<T>,
    ) -> Result<(&mut HeaderMap, &mut Changes), WitError> {
        self.ours(handle)?;
        match &mut self.held {
            Held::Response(parts, _) => {
                ForwardedFields::into_map(&mut parts.extensions, &mut parts.headers);
                Ok((&mut parts.headers, &mut self.changes))
            }
            held => Err(gone(held)),
        }
    }

    /// Takes the held request, leaving `Held::Nothing` (or the store as it was, with the
    /// error, when it holds none).
    fn take_held_request<T>(&mut self, handle: &Resource<T>) -> Result<BackendRequest, WitError> {
        self.ours(handle)?;
        match std::mem::take(&mut self.held) {
            Held::Request(held) => Ok(held),
            other => {
                let error = gone(&other);
                self.held = other;
                Err(error)
            }
        }
    }
}

/// A call on a message the store no longer holds: `forward` sent it, or a `replace` the host
/// refused took it (a borrow cannot outlive its call, so nothing else empties the store
/// mid-call).
fn gone(held: &Held) -> WitError {
    plugin_error(match held {
        Held::Response(..) | Held::Forwarded => {
            "the request was forwarded: `copy` it before `forward` to send it again".into()
        }
        _ => "the message is gone: the host refused what `replace` handed back, and nothing is \
              sent"
            .into(),
    })
}

/// A message handle a guest kept from an earlier call.
fn stale() -> WitError {
    plugin_error("a message handle from an earlier call: a handle is only valid in its own".into())
}

/// The header methods both resources share, on the held message's headers (`$headers`: the
/// `State` method that lends them with the call's changes).
macro_rules! header_methods {
    ($rep:ty, $headers:ident, $what:literal) => {
        fn header(&mut self, h: Resource<$rep>, name: String) -> Option<Vec<u8>> {
            first(self.$headers(&h).ok()?.0, &name)
        }

        fn headers(&mut self, h: Resource<$rep>) -> Vec<u8> {
            self.$headers(&h)
                .map(|(headers, _)| headers::encode(headers))
                .unwrap_or_default()
        }

        fn set_header(
            &mut self,
            h: Resource<$rep>,
            field: String,
            v: Vec<u8>,
        ) -> Result<(), WitError> {
            let (headers, changes) = self.$headers(&h)?;
            set(headers, changes, $what, &field, v, false)
        }

        fn append_header(
            &mut self,
            h: Resource<$rep>,
            field: String,
            v: Vec<u8>,
        ) -> Result<(), WitError> {
            let (headers, changes) = self.$headers(&h)?;
            set(headers, changes, $what, &field, v, true)
        }

        fn remove_header(&mut self, h: Resource<$rep>, field: String) {
            if let Ok((headers, changes)) = self.$headers(&h) {
                remove(headers, changes, &field);
            }
        }

        fn set_headers(&mut self, h: Resource<$rep>, list: Vec<u8>) -> Result<(), WitError> {
            let (headers, changes) = self.$headers(&h)?;
            replace_all(headers, changes, $what, list)
        }
    };
}

impl super::bindings::sluice::plugin::messages::Host for State {}

impl HostOutgoingRequest for State {
    header_methods!(OutgoingRequest, request_headers, "the plugin's request");

    fn copy(&mut self, h: Resource<OutgoingRequest>) -> WitRequest {
        let handling = self.handling && self.handed.is_none();
        let Ok(r) = self.held_request(&h) else {
            return WitRequest {
                method: String::new(),
                url: String::new(),
                headers: Vec::new(),
                body: Vec::new(),
            };
        };
        let copy = WitRequest {
            method: r.method.as_str().to_owned(),
            url: url_text(&r.url),
            headers: headers::encode(&r.headers),
            body: r.body.to_vec(),
        };
        if handling {
            // `handle` working on a copy (the SDK's default): a `send` of it unchanged (a
            // pass-through) reuses the host's parsed URL and headers instead of parsing the
            // guest's text again.
            let parts = (r.url.clone(), r.headers.clone());
            self.handed = Some(std::sync::Arc::new(HandedRequest {
                method: r.method.clone(),
                body: r.body.clone(),
                url: copy.url.clone(),
                headers: copy.headers.clone(),
            }));
            self.handed_parts = Some(parts);
        }
        copy
    }

    fn replace(
        &mut self,
        h: Resource<OutgoingRequest>,
        request: WitRequest,
    ) -> Result<(), WitError> {
        let held = self.take_held_request(&h)?;
        // What `copy` handed out, to tell the parts the guest left as they were.
        let url = url_text(&held.url);
        let encoded = headers::encode(&held.headers);
        replace_request(self, held, &url, &encoded, request)
    }

    fn method(&mut self, h: Resource<OutgoingRequest>) -> String {
        self.held_request(&h)
            .map(|r| r.method.as_str().to_owned())
            .unwrap_or_default()
    }

    fn set_method(&mut self, h: Resource<OutgoingRequest>, method: String) -> Result<(), WitError> {
        let parsed = parse_method(&method).map_err(|e| plugin_error(e.message))?;
        self.held_request(&h)?.method = parsed;
        Ok(())
    }

    fn url(&mut self, h: Resource<OutgoingRequest>) -> String {
        self.held_request(&h)
            .map(|r| url_text(&r.url))
            .unwrap_or_default()
    }

    fn set_url(&mut self, h: Resource<OutgoingRequest>, url: String) -> Result<(), WitError> {
        let parsed = parse_url(&url).map_err(|e| plugin_error(e.message))?;
        self.held_request(&h)?.url = parsed;
        Ok(())
    }

    fn body(&mut self, h: Resource<OutgoingRequest>) -> Vec<u8> {
        self.held_request(&h)
            .map(|r| r.body.to_vec())
            .unwrap_or_default()
    }

    fn set_body(&mut self, h: Resource<OutgoingRequest>, body: Vec<u8>) {
        if let Ok(request) = self.held_request(&h) {
            request.body = Bytes::from(body);
            self.changes.framing = true;
        }
    }

    async fn forward(
        &mut self,
        h: Resource<OutgoingRequest>,
    ) -> Result<Resource<IncomingResponse>, WitError> {
        // `handling` is set only in a request's `handle` call, where the body limit is too.
        let (true, Some(max_body_bytes)) = (self.handling, self.max_body_bytes) else {
            return Err(plugin_error(
                "forward is for `handle`: an `on-request` hook answers `none` to have the host \
                 send the request"
                    .into(),
            ));
        };
        let request = as_left(
            self.take_held_request(&h)?,
            std::mem::take(&mut self.changes),
        );
        self.held = Held::Forwarded;
        // The fields beyond the content ones are parsed only if the plugin reads them.
        let (parts, body) = self
            .call_out(request, max_body_bytes, AnswerHeaders::Forward)
            .await?;
        self.held = Held::Response(parts, body);
        Ok(Resource::new_own(self.call))
    }

    fn drop(&mut self, _: Resource<OutgoingRequest>) -> wasmtime::Result<()> {
        // Only borrows are handed out; the store owns the message.
        Ok(())
    }
}

impl HostIncomingResponse for State {
    header_methods!(IncomingResponse, response_headers, "the plugin's answer");

    fn copy(&mut self, h: Resource<IncomingResponse>) -> WitResponse {
        match self.held_response_headers(&h) {
            Ok((parts, body)) => WitResponse {
                status: parts.status.as_u16(),
                headers: headers::encode(&parts.headers),
                body: body.to_vec(),
            },
            Err(_) => WitResponse {
                status: 0,
                headers: Vec::new(),
                body: Vec::new(),
            },
        }
    }

    fn replace(
        &mut self,
        h: Resource<IncomingResponse>,
        response: WitResponse,
    ) -> Result<(), WitError> {
        self.held_response_headers(&h)?;
        let parts = match std::mem::take(&mut self.held) {
            Held::Response(parts, _) => parts,
            other => {
                let error = gone(&other);
                self.held = other;
                return Err(error);
            }
        };
        let encoded = headers::encode(&parts.headers);
        replace_response(self, parts, encoded, response)
    }

    fn status(&mut self, h: Resource<IncomingResponse>) -> u16 {
        self.held_response(&h)
            .map_or(0, |(parts, _)| parts.status.as_u16())
    }

    fn set_status(&mut self, h: Resource<IncomingResponse>, status: u16) -> Result<(), WitError> {
        let status = http::StatusCode::from_u16(status)
            .map_err(|_| plugin_error(format!("invalid status {status}")))?;
        self.held_response(&h)?.0.status = status;
        Ok(())
    }

    fn body(&mut self, h: Resource<IncomingResponse>) -> Vec<u8> {
        self.held_response(&h)
            .map(|(_, body)| body.to_vec())
            .unwrap_or_default()
    }

    fn set_body(&mut self, h: Resource<IncomingResponse>, body: Vec<u8>) {
        if let Ok((_, held)) = self.held_response(&h) {
            *held = Bytes::from(body);
            self.changes.framing = true;
        }
    }

    fn drop(&mut self, _: Resource<IncomingResponse>) -> wasmtime::Result<()> {
        // The store owns the answer: a guest that drops the one `forward` made may still
        // answer with its own.
        Ok(())
    }
}
