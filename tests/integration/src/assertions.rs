//! Assertions on KrakenD's response contract.

use crate::client::Response;

/// `X-KrakenD-Completed`.
pub const COMPLETED: &str = "x-krakend-completed";
/// The version header (KrakenD's `X-KrakenD`).
pub const VERSION_HEADER: &str = "x-sluice";
/// `application/json; charset=utf-8`, the JSON render's content type.
pub const JSON_UTF8: &str = "application/json; charset=utf-8";
/// `text/plain; charset=utf-8`.
pub const TEXT_UTF8: &str = "text/plain; charset=utf-8";

/// Asserts the status, with the body in the message.
///
/// # Panics
/// When it differs.
#[track_caller]
pub fn assert_status(resp: &Response, status: u16) {
    assert_eq!(
        resp.status.as_u16(),
        status,
        "status; body: {:?}; headers: {:?}",
        String::from_utf8_lossy(&resp.body),
        resp.headers
    );
}

/// Asserts `X-KrakenD-Completed` is exactly `true` or `false`.
///
/// # Panics
/// When it differs or is missing.
#[track_caller]
pub fn assert_completed(resp: &Response, completed: bool) {
    let want = if completed { "true" } else { "false" };
    assert_eq!(resp.header_all(COMPLETED), [want], "X-KrakenD-Completed");
}

/// Asserts there is no `Cache-Control`.
///
/// # Panics
/// When there is one.
#[track_caller]
pub fn assert_no_cache_control(resp: &Response) {
    assert_eq!(resp.header("cache-control"), None, "Cache-Control");
}

/// Asserts `Cache-Control: public, max-age=<secs>`.
///
/// # Panics
/// When it differs.
#[track_caller]
pub fn assert_cache_control(resp: &Response, secs: u64) {
    assert_eq!(
        resp.header_all("cache-control"),
        [format!("public, max-age={secs}")],
        "Cache-Control"
    );
}

/// Asserts the exact `Content-Type`.
///
/// # Panics
/// When it differs.
#[track_caller]
pub fn assert_content_type(resp: &Response, content_type: &str) {
    assert_eq!(
        resp.header_all("content-type"),
        [content_type],
        "Content-Type"
    );
}

/// Asserts `X-Sluice: Version <v>` (KrakenD's `X-KrakenD: Version <v>`, header renamed).
///
/// # Panics
/// When it is missing or differs.
#[track_caller]
pub fn assert_version_header(resp: &Response) {
    assert_eq!(
        resp.header_all(VERSION_HEADER),
        [format!("Version {}", crate::VERSION)],
        "X-Sluice"
    );
}

/// Asserts a JSON body equals `expected` structurally.
///
/// # Panics
/// When it differs or is not JSON.
#[track_caller]
pub fn assert_json(resp: &Response, expected: &serde_json::Value) {
    assert_eq!(&resp.json(), expected, "JSON body");
}

/// The canonical rendering of a successful complete JSON answer: 200, JSON content type,
/// version header, Completed true and `Cache-Control: public, max-age=<secs>`.
///
/// # Panics
/// When any of it differs.
#[track_caller]
pub fn assert_complete_json(resp: &Response, cache_ttl_secs: u64) {
    assert_status(resp, 200);
    assert_content_type(resp, JSON_UTF8);
    assert_version_header(resp);
    assert_completed(resp, true);
    assert_cache_control(resp, cache_ttl_secs);
}

/// A partial answer: 200, JSON, Completed false, no `Cache-Control`.
///
/// # Panics
/// When any of it differs.
#[track_caller]
pub fn assert_partial_json(resp: &Response) {
    assert_status(resp, 200);
    assert_content_type(resp, JSON_UTF8);
    assert_completed(resp, false);
    assert_no_cache_control(resp);
}
