//! `fault`: misbehaves on demand, to test the host's containment. Not for production.
//!
//! Settings (all optional): `{"hang_url": "http://127.0.0.1:9/slow", "reject": "message",
//! "panic_in_init": true}`. `reject` makes `init` fail with that message; `panic_in_init`
//! makes it trap.
//!
//! Behaviour by the backend request's path (its last segment):
//! - `.../trap`: panics (a trap);
//! - `.../loop`: spins forever (cut at the deadline by epoch interruption);
//! - `.../oom`: allocates until memory runs out (the memory limit);
//! - `.../hang`: calls `hang_url` through the gateway (a backend that never answers);
//! - `.../refused`: calls `http://refused.invalid/`, a host not allowed;
//! - `.../headers`: answers 200 with 30,000 headers;
//! - `.../send-headers`: calls `<origin>/echo` with 30,000 headers, answering what `send` says;
//! - anything else: `200 {"ok": true, "path": "...", "served": <requests this instance served>}`.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use sluice_plugin_sdk::{Error, Plugin, Request, Response, export_plugin, send};

#[derive(Debug, Default, Deserialize)]
struct Settings {
    hang_url: Option<String>,
    reject: Option<String>,
    #[serde(default)]
    panic_in_init: bool,
}

/// The plugin.
#[derive(Debug)]
pub struct Fault {
    hang_url: Option<String>,
    served: AtomicU64,
}

impl Plugin for Fault {
    fn init(settings: &str) -> Result<Self, String> {
        let s: Settings = sluice_plugin_sdk::parse_settings(settings)?;
        if s.panic_in_init {
            panic!("fault: panic in init, as asked");
        }
        if let Some(message) = s.reject {
            return Err(message);
        }
        Ok(Fault {
            hang_url: s.hang_url,
            served: AtomicU64::new(0),
        })
    }

    fn handle(&self, request: Request) -> Result<Response, Error> {
        let served = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        let path = request.path().to_owned();
        match path.rsplit('/').next().unwrap_or("") {
            "trap" => panic!("fault: trap, as asked"),
            "loop" => {
                let mut i: u64 = 0;
                loop {
                    i = std::hint::black_box(i.wrapping_add(1));
                }
            }
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "hang" => {
                let url = self
                    .hang_url
                    .clone()
                    .ok_or_else(|| Error::plugin("fault: no hang_url"))?;
                send(Request::new("GET", url))
            }
            "refused" => send(Request::new("GET", "http://refused.invalid/")),
            "headers" => {
                let mut response = Response::new(200);
                response.headers = huge_headers();
                Ok(response)
            }
            "send-headers" => {
                let mut call = Request::new("GET", format!("{}/echo", request.origin()));
                call.headers = huge_headers();
                send(call)
            }
            _ => Ok(Response::json(
                200,
                &serde_json::json!({ "ok": true, "path": path, "served": served }),
            )),
        }
    }
}

/// 30,000 distinct headers: far past any sane bound (and `http::HeaderMap`'s capacity).
fn huge_headers() -> Vec<u8> {
    let mut response = Response::new(200);
    for i in 0..30_000 {
        response.append_header(&format!("x-fault-{i}"), format!("value-{i}"));
    }
    response.headers
}

export_plugin!(Fault);
