//! Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, so a gateway drops them
//! both ways, from requests sent to backends and from answers sent to clients.

use http::header::{self, HeaderMap, HeaderName};
use sluice_plugin::ForwardedFields;

/// Always hop-by-hop, whatever `Connection` says (Go's `httputil.ReverseProxy` list). A
/// `static`: a `const` array of names is built and dropped again wherever it is used.
static HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
];

/// Where `name` is in [`HOP_BY_HOP`]: a match on the name's text (a length switch, then one
/// compare), cheaper than comparing it with nine `HeaderName`s.
fn hop_by_hop_index(name: &HeaderName) -> Option<usize> {
    Some(match name.as_str() {
        "connection" => 0,
        "keep-alive" => 1,
        "proxy-connection" => 2,
        "te" => 3,
        "trailer" => 4,
        "transfer-encoding" => 5,
        "upgrade" => 6,
        "proxy-authenticate" => 7,
        "proxy-authorization" => 8,
        _ => return None,
    })
}

/// Whether a name as a backend wrote it (in any case) is in [`HOP_BY_HOP`].
fn is_hop_by_hop_raw(name: &[u8]) -> bool {
    // Most names have no hop-by-hop name's length, and are not compared at all.
    matches!(name.len(), 2 | 7 | 10 | 16..=19)
        && HOP_BY_HOP
            .iter()
            .any(|hop| name.eq_ignore_ascii_case(hop.as_str().as_bytes()))
}

/// The names a `Connection` value lists (but `keep-alive`, in the list already).
fn connection_names(value: &[u8], named: &mut Vec<HeaderName>) {
    for token in value.split(|&b| b == b',') {
        let token = token.trim_ascii();
        if token.is_empty() || token.eq_ignore_ascii_case(b"keep-alive") {
            continue;
        }
        // A token that is no header name names nothing to remove.
        if let Ok(name) = HeaderName::from_bytes(token) {
            named.push(name);
        }
    }
}

/// [`strip_hop_by_hop`] for the fields an answer hands on as the backend wrote them; those
/// named `also` (the ones the gateway sets itself) are removed too.
pub(crate) fn strip_forwarded(fields: &mut ForwardedFields, also: &[&HeaderName]) {
    let mut named: Vec<HeaderName> = Vec::new();
    for (name, value) in fields.iter() {
        if name.eq_ignore_ascii_case(b"connection") {
            connection_names(value, &mut named);
        }
    }
    fields.retain(|name, _| {
        let is = |other: &&HeaderName| name.eq_ignore_ascii_case(other.as_str().as_bytes());
        !(is_hop_by_hop_raw(name) || also.iter().any(is) || named.iter().any(|n| is(&n)))
    });
}

/// Removes the hop-by-hop headers and every header `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the (few) names present, then removes only for those found: a remove
    // hashes its name, and nine of them cost more than the whole scan.
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = hop_by_hop_index(name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    // The names listed in `Connection` first: they are only known while it is there. The
    // usual `keep-alive` is in the list already.
    if present & 1 != 0 {
        let mut named: Vec<HeaderName> = Vec::new();
        for value in headers.get_all(header::CONNECTION) {
            connection_names(value.as_bytes(), &mut named);
        }
        for name in named {
            headers.remove(name);
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn the_index_table_matches_the_list() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(name), Some(i), "{name}");
        }
        assert_eq!(hop_by_hop_index(&header::CONTENT_TYPE), None);
    }

    #[test]
    fn strips_hop_by_hop_and_connection_named_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret"),
        );
        headers.append(header::CONNECTION, HeaderValue::from_static(" x-other2 "));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert("proxy-connection", HeaderValue::from_static("close"));
        headers.insert("x-secret", HeaderValue::from_static("1"));
        headers.insert("x-other2", HeaderValue::from_static("1"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.append(header::TRAILER, HeaderValue::from_static("a"));
        headers.append(header::TRAILER, HeaderValue::from_static("b"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        let mut names: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["content-type", "x-kept"]);
    }

    /// `lines` (`Name: value`, each ended by CRLF) as forwarded fields.
    fn forwarded(lines: &'static str) -> ForwardedFields {
        let mut fields = ForwardedFields::new(8);
        let mut at = 0;
        for line in lines.split_terminator("\r\n") {
            let colon = line.find(": ").expect("a field line");
            fields.push(
                lines.as_bytes(),
                at..at + colon,
                at + colon + 2..at + line.len(),
            );
            at += line.len() + 2;
        }
        fields.with_head(bytes::Bytes::from_static(lines.as_bytes()))
    }

    #[test]
    fn strips_forwarded_hop_by_hop_connection_named_and_the_gateways_own_fields() {
        let mut fields = forwarded(
            "Connection: keep-alive, X-Secret\r\nX-SECRET: 1\r\nKeep-Alive: t\r\n\
             proxy-connection: x\r\nTE: trailers\r\nTrailer: a\r\nUpgrade: h2c\r\n\
             Transfer-Encoding: chunked\r\nProxy-Authenticate: Basic\r\n\
             Proxy-Authorization: Basic\r\nX-Sluice: forged\r\nX-Kept: 1\r\n\
             Server: s\r\nTe-Not: 1\r\n",
        );
        strip_forwarded(&mut fields, &[&HeaderName::from_static("x-sluice")]);
        let names: Vec<_> = fields.iter().map(|(name, _)| name).collect();
        assert_eq!(names, [&b"X-Kept"[..], b"Server", b"Te-Not"]);
    }

    #[test]
    fn a_token_that_is_no_name_leaves_the_others_named() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_bytes(b"close,, \xffbad, x-a").expect("a valid value"),
        );
        headers.insert("x-a", HeaderValue::from_static("1"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        let names: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-kept"]);
    }
}
