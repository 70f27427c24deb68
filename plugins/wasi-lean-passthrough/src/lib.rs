//! `wasi-lean-passthrough`: the pass-through of `wasi-passthrough`, written on the raw
//! `wasi:http` bindings (the `wasip2` crate) instead of an async runtime.
//!
//! It shows what a standard `wasi:http/proxy` component costs the gateway when it makes few
//! host calls: the headers are copied host-side (`fields.clone`), never read into the guest,
//! and each body is moved with `blocking-splice`, so its bytes never enter guest memory. wstd
//! (as in `wasi-passthrough`) reads every header and body chunk into the guest and polls
//! between them: about twice the host calls for the same work (see docs/plugins.md).

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, IncomingBody, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam,
};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};

struct LeanPassthrough;

impl Guest for LeanPassthrough {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        match forward(request) {
            Ok((response, body)) => {
                let Ok(sink) = response.body() else {
                    return ResponseOutparam::set(out, Err(internal("the answer has no body")));
                };
                ResponseOutparam::set(out, Ok(response));
                // The answer's status and headers are out; a failure from here on can only
                // cut its body short, which the gateway reports as the plugin's error.
                if let Ok(stream) = sink.write() {
                    let copied = splice(body.stream.as_ref(), &stream);
                    drop(stream);
                    if copied.is_ok() {
                        let _ = OutgoingBody::finish(sink, None);
                    }
                }
            }
            Err(code) => ResponseOutparam::set(out, Err(code)),
        }
    }
}

/// A body to copy from: its stream, dropped before the body (a child before its parent).
struct Source {
    stream: Option<InputStream>,
    _body: IncomingBody,
}

/// Sends `request` on unchanged and returns the backend's answer, ready to be handed back.
fn forward(request: IncomingRequest) -> Result<(OutgoingResponse, Source), ErrorCode> {
    let outgoing = OutgoingRequest::new(request.headers().clone());
    let bad = |what: &str| internal(&format!("cannot set the {what}"));
    outgoing
        .set_method(&request.method())
        .map_err(|()| bad("method"))?;
    outgoing
        .set_scheme(request.scheme().as_ref())
        .map_err(|()| bad("scheme"))?;
    outgoing
        .set_authority(request.authority().as_deref())
        .map_err(|()| bad("authority"))?;
    outgoing
        .set_path_with_query(request.path_with_query().as_deref())
        .map_err(|()| bad("path"))?;
    let sink = outgoing.body().map_err(|()| bad("body"))?;
    let pending = outgoing_handler::handle(outgoing, None)?;
    let source = request
        .consume()
        .map_err(|()| internal("the request has no body"))?;
    if let Ok(stream) = source.stream() {
        let copied = match sink.write() {
            Ok(to) => splice(Some(&stream), &to),
            Err(()) => Err(internal("cannot write the request body")),
        };
        copied?;
    }
    drop(source);
    OutgoingBody::finish(sink, None)?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(answer)) => answer?,
        _ => return Err(internal("no answer")),
    };
    let answer = OutgoingResponse::new(response.headers().clone());
    answer
        .set_status_code(response.status())
        .map_err(|()| internal("invalid status"))?;
    let body = response
        .consume()
        .map_err(|()| internal("the answer has no body"))?;
    let stream = body.stream().ok();
    Ok((
        answer,
        Source {
            stream,
            _body: body,
        },
    ))
}

/// Moves every byte of `from` into `to` host-side, until `from` ends.
fn splice(from: Option<&InputStream>, to: &OutputStream) -> Result<(), ErrorCode> {
    let Some(from) = from else {
        return Ok(());
    };
    loop {
        match to.blocking_splice(from, u64::MAX) {
            Ok(_) => {}
            Err(StreamError::Closed) => return to.blocking_flush().map_err(|_| closed()),
            Err(StreamError::LastOperationFailed(_)) => return Err(closed()),
        }
    }
}

fn internal(message: &str) -> ErrorCode {
    ErrorCode::InternalError(Some(message.to_owned()))
}

fn closed() -> ErrorCode {
    internal("a body stream failed")
}

wasip2::http::proxy::export!(LeanPassthrough);
