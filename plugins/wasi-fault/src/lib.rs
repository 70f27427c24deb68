//! `wasi-fault`: a standard `wasi:http/proxy` component that misbehaves on demand, to test the
//! host's containment in that world. Not for production. Written on the raw `wasi:http`
//! bindings so each fault is exactly what it says (no library in between to catch it).
//!
//! Behaviour by the incoming request's path (its last segment):
//! - `.../trap`: panics (a trap) without answering;
//! - `.../oom`: allocates until memory runs out;
//! - `.../headers`: answers 200 with 30,000 headers (the host traps it past its size bound);
//! - `.../send-headers`: calls the same URL with `/echo` as the path and 30,000 headers;
//! - `.../many-headers`, `.../send-many-headers`: the same with 1,200 tiny headers, within the
//!   host's size bound but not its count bound (a `send` refused is answered as its error);
//! - `.../leak`: answers 200 but leaks the incoming request (and its body) with `mem::forget`;
//! - anything else: `200`, header `x-served: <requests this instance served>`.

use std::cell::Cell;
use std::io::Write as _;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse,
    ResponseOutparam,
};

wasip2::http::proxy::export!(WasiFault);

/// How many headers the header faults try to add.
const HUGE: usize = 30_000;

thread_local! {
    static SERVED: Cell<u64> = const { Cell::new(0) };
}

struct WasiFault;

/// Many tiny headers: past the host's count bound, within its size bound.
const MANY: usize = 1_200;

/// `n` headers, long ones for [`HUGE`] (so the size bound applies), tiny ones otherwise.
fn fields(n: usize) -> Fields {
    let fields = Fields::new();
    for i in 0..n {
        let appended = if n == HUGE {
            fields.append(&format!("x-fault-{i}"), format!("value-{i}").as_bytes())
        } else {
            fields.append(&format!("h{i}"), b"")
        };
        if appended.is_err() {
            break;
        }
    }
    fields
}

fn answer(out: ResponseOutparam, status: u16, headers: Fields, body: &[u8]) {
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else {
        ResponseOutparam::set(out, Err(ErrorCode::InternalError(None)));
        return;
    };
    ResponseOutparam::set(out, Ok(response));
    if let Ok(mut stream) = outgoing.write() {
        let _ = stream.write_all(body);
        let _ = stream.flush();
    }
    let _ = OutgoingBody::finish(outgoing, None);
}

fn send_many(request: &IncomingRequest, n: usize) -> Result<u16, ErrorCode> {
    let outgoing = OutgoingRequest::new(fields(n));
    let _ = outgoing.set_scheme(request.scheme().as_ref());
    let _ = outgoing.set_authority(request.authority().as_deref());
    let _ = outgoing.set_path_with_query(Some("/echo"));
    let body = outgoing
        .body()
        .map_err(|()| ErrorCode::InternalError(None))?;
    let future = outgoing_handler::handle(outgoing, None)?;
    let _ = OutgoingBody::finish(body, None);
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => Ok(response.status()),
        Some(Ok(Err(code))) => Err(code),
        _ => Err(ErrorCode::InternalError(Some("no response".into()))),
    }
}

impl wasip2::exports::http::incoming_handler::Guest for WasiFault {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let served = SERVED.with(|s| {
            s.set(s.get() + 1);
            s.get()
        });
        let path = request.path_with_query().unwrap_or_default();
        let path = path.split('?').next().unwrap_or_default().to_owned();
        let segment = path.rsplit('/').next().unwrap_or_default();
        match segment {
            "trap" => panic!("wasi-fault: trap, as asked"),
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "headers" => answer(out, 200, fields(HUGE), b"many headers"),
            "many-headers" => answer(out, 200, fields(MANY), b"many headers"),
            "send-headers" | "send-many-headers" => {
                let n = if segment == "send-headers" {
                    HUGE
                } else {
                    MANY
                };
                match send_many(&request, n) {
                    Ok(status) => answer(out, status, Fields::new(), b"sent"),
                    Err(code) => ResponseOutparam::set(out, Err(code)),
                }
            }
            "leak" => {
                // Take the body (so the host-side body resource exists) and leak it all.
                let body = request.consume();
                std::mem::forget(body);
                std::mem::forget(request);
                answer(out, 200, Fields::new(), b"leaked");
            }
            _ => {
                let headers = Fields::new();
                let _ = headers.append("x-served", served.to_string().as_bytes());
                answer(out, 200, headers, b"ok");
            }
        }
    }
}
