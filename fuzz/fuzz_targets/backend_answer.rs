//! The plain-http client's reading of a backend's answer (`sluice_client::read_answer`: the
//! head, its framing, the body by length, chunks or until the close): whatever the bytes, it
//! returns an answer or an error, never panics, and never makes a body longer than what came.
//! The first byte picks the request's method (odd: HEAD, so no body).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let method = if first & 1 == 1 {
        http::Method::HEAD
    } else {
        http::Method::GET
    };
    if let Ok((_, body, _, _)) = sluice_client::read_answer(bytes, &method) {
        assert!(body.len() <= bytes.len());
        if method == http::Method::HEAD {
            assert!(body.is_empty());
        }
    }
});
