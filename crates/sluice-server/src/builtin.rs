//! The gateway's own endpoints: `/__health`, `/__debug/` and `/__echo/`.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::Response;
use http::header::{self, HeaderValue};
use serde_json::{Map, Value, json};
use sluice_plugin::{Body, full};

fn json_response(value: &Value) -> Response<Body> {
    let mut response = Response::new(full(serde_json::to_vec(value).unwrap_or_default()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// `GET /__health`: `{"agents":{},"now":"<time>","status":"ok"}`, as KrakenD answers, and the
/// digest of the config being served (`"config"`), so a reload can be seen from outside.
pub(crate) fn health(digest: &str) -> Response<Body> {
    let mut body = json!({"agents": {}, "now": now_rfc3339(), "status": "ok"});
    if !digest.is_empty() {
        body["config"] = Value::String(digest.to_owned());
    }
    json_response(&body)
}

/// `/__debug/*`: logs the request and answers `{"message":"pong"}`.
pub(crate) fn debug(parts: &http::request::Parts, body: &Bytes) -> Response<Body> {
    tracing::debug!(method = %parts.method, uri = %parts.uri, headers = ?parts.headers, body = %String::from_utf8_lossy(body), "debug endpoint");
    json_response(&json!({"message": "pong"}))
}

/// `/__echo/*`: the request as the gateway received it.
pub(crate) fn echo(parts: &http::request::Parts, body: &Bytes) -> Response<Body> {
    let mut headers = Map::new();
    for name in parts.headers.keys() {
        let values: Vec<Value> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        headers.insert(canonical(name.as_str()), Value::Array(values));
    }
    let mut query = Map::new();
    for pair in parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode(k);
        let entry = query.entry(k).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = entry {
            values.push(Value::String(decode(v)));
        }
    }
    json_response(&json!({
        "req_uri": parts.uri.to_string(),
        "req_uri_details": {"path": parts.uri.path(), "query": parts.uri.query().unwrap_or_default()},
        "req_method": parts.method.as_str(),
        "req_querystring": query,
        "req_body": String::from_utf8_lossy(body),
        "req_headers": headers,
    }))
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// `x-forwarded-for` -> `X-Forwarded-For`, as Go prints header names.
pub(crate) fn canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper { c.to_ascii_uppercase() } else { c });
        upper = c == '-';
    }
    out
}

/// Now as RFC 3339 in UTC, without a date library.
pub(crate) fn now_rfc3339() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_nanos()
    )
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Whether `request` targets one of the gateway's own endpoints.
pub(crate) fn is_debug(path: &str) -> bool {
    path == "/__debug" || path.starts_with("/__debug/")
}

/// Whether `request` targets the echo endpoint.
pub(crate) fn is_echo(path: &str) -> bool {
    path == "/__echo" || path.starts_with("/__echo/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_781), (2026, 11, 24));
        assert_eq!(canonical("x-forwarded-for"), "X-Forwarded-For");
    }
}
