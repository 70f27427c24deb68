//! `grpc-caller`: a plugin that calls a gRPC method itself, through `host.send-http2`
//! (WIT `sluice:plugin@0.1.1`), with no generated code: it writes the request message and reads
//! the answer's fields by hand, to show what the wire looks like.
//!
//! Settings:
//! `{"method": "/flight_finder.Flights/GetFlight", "input": {"id": 1}, "output": {"1": "id", "2": "code"}}`:
//! - `method`: the gRPC method called on the backend's host;
//! - `input`: query keys of the client's request, each sent as the integer field of that
//!   number (varint) of the request message;
//! - `output`: fields of the answer's message to return, by number: integers (varint) and
//!   strings (UTF-8) become a JSON object keyed by the names given.
//!
//! A `grpc-status` other than OK answers `502` with `{"grpc_status", "grpc_message"}`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

// The generated bindings (and the export glue) need `unsafe`; the plugin's own code does not.
#[allow(unsafe_code, unreachable_pub, missing_docs, clippy::all)]
mod bindings {
    wit_bindgen::generate!({
        // Still on 0.1.1 (header pairs), on purpose: the gateway's tests run it to check that
        // components built on 0.1 keep working beside 0.2 ones.
        path: "wit/0.1",
        world: "sluice:plugin/http-client@0.1.1",
    });
}

use bindings::exports::sluice::plugin::handler::{Guest, HookSet};
use bindings::sluice::plugin::host;
use bindings::sluice::plugin::types::{Error, ErrorKind, Request, RequestOrResponse, Response};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    method: String,
    #[serde(default)]
    input: BTreeMap<String, u32>,
    #[serde(default)]
    output: BTreeMap<u32, String>,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// The plugin (its state is the settings, read once by `init`).
#[derive(Debug)]
pub struct Plugin;

impl Guest for Plugin {
    fn init(settings: String) -> Result<(), String> {
        let settings: Settings =
            serde_json::from_str(&settings).map_err(|e| format!("grpc-caller: {e}"))?;
        if !settings.method.starts_with('/') || settings.method.matches('/').count() != 2 {
            return Err(format!(
                "grpc-caller: method {:?} is not /package.Service/Method",
                settings.method
            ));
        }
        let _ = SETTINGS.set(settings);
        Ok(())
    }

    fn hooks() -> HookSet {
        HookSet::empty()
    }

    fn handle(request: Request) -> Result<Response, Error> {
        let settings = SETTINGS.get().ok_or_else(|| fault("not initialised"))?;
        let (origin, rest) = split_url(&request.url);
        let query = rest.split_once('?').map_or("", |(_, q)| q);
        // The request message: each mapped query value as a varint field.
        let mut message = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if let Some(number) = settings.input.get(key) {
                let value: u64 = value
                    .parse()
                    .map_err(|_| fault(&format!("{key}={value:?} is not a whole number")))?;
                put_varint(&mut message, u64::from(*number) << 3);
                put_varint(&mut message, value);
            }
        }
        // One length-prefixed, uncompressed message.
        let mut body = vec![0u8];
        body.extend_from_slice(&u32::try_from(message.len()).unwrap_or(0).to_be_bytes());
        body.extend_from_slice(&message);
        let answer = host::send_http2(&Request {
            method: "POST".into(),
            url: format!("{origin}{}", settings.method),
            headers: vec![
                ("content-type".into(), b"application/grpc".to_vec()),
                ("te".into(), b"trailers".to_vec()),
            ],
            body,
        })?;
        let status_of = |headers: &[(String, Vec<u8>)], name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        let status = status_of(&answer.trailers, "grpc-status")
            .or_else(|| status_of(&answer.headers, "grpc-status"))
            .unwrap_or_else(|| "2".into());
        if answer.status != 200 || status != "0" {
            let message = status_of(&answer.trailers, "grpc-message")
                .or_else(|| status_of(&answer.headers, "grpc-message"))
                .unwrap_or_default();
            return Ok(json_response(
                502,
                &serde_json::json!({"grpc_status": status.parse::<u32>().unwrap_or(2),
                                    "grpc_message": message}),
            ));
        }
        if answer.body.len() < 5 || answer.body[0] != 0 {
            return Err(fault("the answer is not one uncompressed gRPC message"));
        }
        let fields = read_fields(&answer.body[5..]).ok_or_else(|| fault("malformed message"))?;
        let mut out = serde_json::Map::new();
        for (number, value) in fields {
            if let Some(name) = settings.output.get(&number) {
                out.insert(name.clone(), value);
            }
        }
        Ok(json_response(200, &serde_json::Value::Object(out)))
    }

    fn on_request(request: Request) -> Result<RequestOrResponse, Error> {
        Ok(RequestOrResponse::Request(request))
    }

    fn on_response(response: Response) -> Result<Response, Error> {
        Ok(response)
    }
}

// The export glue is generated `unsafe` code, allowed for this one item.
#[allow(unsafe_code)]
mod glue {
    use crate::Plugin;
    crate::bindings::export!(Plugin with_types_in crate::bindings);
}

fn fault(message: &str) -> Error {
    Error {
        kind: ErrorKind::Plugin,
        message: format!("grpc-caller: {message}"),
    }
}

fn json_response(status: u16, value: &serde_json::Value) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: value.to_string().into_bytes(),
    }
}

/// `scheme://authority` and the rest of an absolute URL.
fn split_url(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => url.split_at(after_scheme + i),
        None => (url, ""),
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

/// The top-level varint and length-delimited fields of a message (others skipped).
fn read_fields(bytes: &[u8]) -> Option<Vec<(u32, serde_json::Value)>> {
    let mut at = 0;
    let mut fields = Vec::new();
    while at < bytes.len() {
        let key = get_varint(bytes, &mut at)?;
        let number = u32::try_from(key >> 3).ok()?;
        match key & 7 {
            0 => fields.push((number, get_varint(bytes, &mut at)?.into())),
            1 => at += 8,
            2 => {
                let len = usize::try_from(get_varint(bytes, &mut at)?).ok()?;
                let data = bytes.get(at..at + len)?;
                at += len;
                if let Ok(text) = std::str::from_utf8(data) {
                    fields.push((number, text.into()));
                }
            }
            5 => at += 4,
            _ => return None,
        }
    }
    Some(fields)
}
