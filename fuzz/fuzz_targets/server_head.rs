//! The gateway's own HTTP/1.1 loop takes only heads without a body, and reads them as httparse
//! does: whatever the bytes, a head it serves is a complete request head of the same length
//! with neither `Content-Length` nor `Transfer-Encoding` (those go to hyper behind the
//! smuggling guard), and it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(taken) = sluice_server::own_loop_takes(data) else {
        return;
    };
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut request = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(head_len)) = request.parse(data) else {
        panic!("taken, but not a complete head: {:?}", String::from_utf8_lossy(data));
    };
    assert_eq!(taken, head_len);
    for header in request.headers.iter() {
        for framing in ["content-length", "transfer-encoding", "expect", "upgrade"] {
            assert!(
                !header.name.trim().eq_ignore_ascii_case(framing),
                "served with {}: {:?}",
                header.name,
                String::from_utf8_lossy(data)
            );
        }
    }
});
