//! Differential fuzzing of the request-smuggling guard against httparse: whenever httparse reads
//! a complete request head carrying conflicting or repeated framing headers (`Content-Length`
//! with `Transfer-Encoding`, or either twice), the guard must refuse within that head; and the
//! guard must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let verdict = sluice_server::guard_refuses(data);
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(head_len)) = request.parse(data) else {
        return;
    };
    let count = |name: &str| {
        request
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .count()
    };
    let (content_length, transfer_encoding) = (count("content-length"), count("transfer-encoding"));
    if (content_length > 0 && transfer_encoding > 0) || content_length > 1 || transfer_encoding > 1
    {
        assert!(
            verdict.is_some_and(|at| at < head_len),
            "conflicting framing not refused: {:?}",
            String::from_utf8_lossy(data)
        );
    }
});
