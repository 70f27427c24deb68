//! `message-edits`: applies the edits its settings list to the message the gateway holds, in
//! place, in order. It exercises every part of `sluice:plugin@0.3`'s `messages` for the
//! gateway's tests; not for production.
//!
//! Settings: `{"request": ["op", ...], "response": ["op", ...], "handle": false}`, all optional.
//! In hooks mode (the default) a hook runs only for a part given. With `"handle": true` the
//! plugin serves in handle mode: `handle` applies the request ops, `forward`s the request (unless
//! an op answered or forwarded it already), applies the response ops to the answer `forward`
//! made and passes it on. An op is `verb` or `verb=argument`:
//! - `method=PUT`, `url=http://host:port/path`, `body=text`, `status=201` (response only);
//! - `set=name:value`, `append=name:value`, `remove=name`;
//! - `headers=name:value;name:value`: replaces every field (`;` separates fields);
//! - `whole=name:value`: sets that header on a `copy` of the whole message and hands it back
//!   with `replace`;
//! - `echo=name` (response only): sets `x-echo` to the first value of header `name`;
//! - `seen`: adds `x-seen: <what the hook read>`: the method, URL and body length on the way in,
//!   the status and body length on the way back;
//! - `answer=203`: answers at once with that status and body `answered` (request only);
//! - `lose`: `replace`s the request with one whose method HTTP does not allow, ignores the
//!   error and carries on (request only): the host must fail the call, not send half of it.
//! - `forward` (request only): forwards the request there and then; the ops after it work on a
//!   spent request (and in hooks mode the host refuses it);
//! - `pass` (request only, handle mode): answers `forward` at once: the gateway sends the
//!   request as it now stands and passes the answer on unread;
//! - `own=202` (response only, handle mode): drops the answer `forward` made and answers with
//!   that status and body `own`;
//! - `keep` (response only, handle mode): on an instance's first request, keeps the answer's
//!   handle past the call and answers with a copy of it; on the next, sets a header on the
//!   kept handle (a handle from an earlier call: the host refuses it);
//! - `keep-return` (response only, handle mode): the same, but the next request answers with
//!   the kept handle itself.
//!
//! A setter's error (a header name HTTP does not allow, say) is the hook's error.

use std::cell::RefCell;

use sluice_plugin_sdk::{
    Answer, Error, Hooks, IncomingResponse, OutgoingRequest, Plugin, Response, export_plugin,
};

/// The plugin: the ops of each hook.
#[derive(Debug)]
pub struct MessageEdits {
    request: Option<Vec<String>>,
    response: Option<Vec<String>>,
    handle: bool,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    request: Option<Vec<String>>,
    response: Option<Vec<String>>,
    #[serde(default)]
    handle: bool,
}

thread_local! {
    /// An answer's handle kept past its call (`keep`): an instance runs one call at a time.
    static KEPT: RefCell<Option<IncomingResponse>> = const { RefCell::new(None) };
}

/// Where the request ops left the request.
enum Step {
    /// An op answered it.
    Answer(Response),
    /// Send it on (`forward` already did, with this answer).
    Go(Option<IncomingResponse>),
    /// Have the gateway send it after the call (`pass`).
    Pass,
}

fn split(op: &str) -> (&str, &str) {
    op.split_once('=').unwrap_or((op, ""))
}

fn field(argument: &str) -> Result<(&str, &str), Error> {
    argument
        .split_once(':')
        .ok_or_else(|| Error::plugin(format!("message-edits: {argument:?} is not name:value")))
}

fn encoded(fields: &str) -> Vec<u8> {
    let mut list = Vec::new();
    for field in fields.split(';').filter(|f| !f.is_empty()) {
        list.extend_from_slice(field.as_bytes());
        list.push(b'\n');
    }
    list
}

impl Plugin for MessageEdits {
    fn init(settings: &str) -> Result<Self, String> {
        let s: Settings = sluice_plugin_sdk::parse_settings(settings)?;
        Ok(MessageEdits {
            request: s.request,
            response: s.response,
            handle: s.handle,
        })
    }

    fn hooks(&self) -> Hooks {
        let mut hooks = Hooks::empty();
        if self.handle {
            return hooks;
        }
        if self.request.is_some() {
            hooks |= Hooks::ON_REQUEST;
        }
        if self.response.is_some() {
            hooks |= Hooks::ON_RESPONSE;
        }
        hooks
    }

    fn serve(&self, request: &OutgoingRequest) -> Result<Answer, Error> {
        let response = match self.apply_request(request)? {
            Step::Answer(response) => return Ok(Answer::Response(response)),
            Step::Pass => return Ok(Answer::Forward),
            Step::Go(Some(response)) => response,
            Step::Go(None) => request.forward()?,
        };
        for op in self.response.iter().flatten() {
            match split(op) {
                ("own", status) => {
                    drop(response);
                    let status = status.parse().unwrap_or(200);
                    return Ok(Answer::Response(Response::new(status).with_body(b"own")));
                }
                ("keep" | "keep-return", _) => return keep(op == "keep-return", response),
                _ => {}
            }
        }
        self.edit_response(&response)?;
        Ok(Answer::Forwarded(response))
    }

    fn edit_request(&self, request: &OutgoingRequest) -> Result<Option<Response>, Error> {
        match self.apply_request(request)? {
            Step::Answer(response) => Ok(Some(response)),
            Step::Go(_) | Step::Pass => Ok(None),
        }
    }

    fn edit_response(&self, response: &IncomingResponse) -> Result<(), Error> {
        for op in self.response.iter().flatten() {
            match split(op) {
                ("status", s) => response.set_status(s.parse().unwrap_or(0))?,
                ("body", b) => response.set_body(b.as_bytes()),
                ("set", f) => field(f).and_then(|(n, v)| response.set_header(n, v.as_bytes()))?,
                ("append", f) => {
                    field(f).and_then(|(n, v)| response.append_header(n, v.as_bytes()))?;
                }
                ("remove", n) => response.remove_header(n),
                ("headers", f) => response.set_headers(&encoded(f))?,
                ("whole", f) => {
                    let (name, value) = field(f)?;
                    let mut whole = response.copy();
                    whole.set_header(name, value.as_bytes());
                    response.replace(&whole)?;
                }
                ("echo", n) => {
                    let value = response.header(n).unwrap_or_default();
                    response.set_header("x-echo", &value)?;
                }
                ("seen", _) => {
                    let seen = format!("{} {}", response.status(), response.body().len());
                    response.set_header("x-seen", seen.as_bytes())?;
                }
                _ => return Err(Error::plugin(format!("message-edits: unknown op {op:?}"))),
            }
        }
        Ok(())
    }
}

/// `keep`: on the first request, keeps `response`'s handle and answers with a copy; on the
/// next, uses the kept handle (`give_back`: as the answer itself; otherwise to set a header).
fn keep(give_back: bool, response: IncomingResponse) -> Result<Answer, Error> {
    let Some(kept) = KEPT.with(|k| k.borrow_mut().take()) else {
        let copy = response.copy();
        KEPT.with(|k| *k.borrow_mut() = Some(response));
        return Ok(Answer::Response(copy));
    };
    if give_back {
        return Ok(Answer::Forwarded(kept));
    }
    kept.set_header("x-kept", b"1")?;
    Ok(Answer::Forwarded(response))
}

impl MessageEdits {
    fn apply_request(&self, request: &OutgoingRequest) -> Result<Step, Error> {
        let mut forwarded = None;
        for op in self.request.iter().flatten() {
            match split(op) {
                ("method", m) => request.set_method(m)?,
                ("url", u) => request.set_url(u)?,
                ("body", b) => request.set_body(b.as_bytes()),
                ("set", f) => field(f).and_then(|(n, v)| request.set_header(n, v.as_bytes()))?,
                ("append", f) => {
                    field(f).and_then(|(n, v)| request.append_header(n, v.as_bytes()))?;
                }
                ("remove", n) => request.remove_header(n),
                ("headers", f) => request.set_headers(&encoded(f))?,
                ("whole", f) => {
                    let (name, value) = field(f)?;
                    let mut whole = request.copy();
                    whole.set_header(name, value.as_bytes());
                    request.replace(&whole)?;
                }
                ("seen", _) => {
                    let seen = format!(
                        "{} {} {}",
                        request.method(),
                        request.url(),
                        request.body().len()
                    );
                    request.set_header("x-seen", seen.as_bytes())?;
                }
                ("lose", _) => {
                    let mut whole = request.copy();
                    whole.method = "NOT A METHOD".into();
                    let _ignored = request.replace(&whole);
                }
                ("answer", status) => {
                    let status = status.parse().unwrap_or(200);
                    return Ok(Step::Answer(Response::new(status).with_body(b"answered")));
                }
                ("forward", _) => forwarded = Some(request.forward()?),
                ("pass", _) => return Ok(Step::Pass),
                _ => return Err(Error::plugin(format!("message-edits: unknown op {op:?}"))),
            }
        }
        Ok(Step::Go(forwarded))
    }
}

export_plugin!(MessageEdits);
