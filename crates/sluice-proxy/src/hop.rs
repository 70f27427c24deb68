//! Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, so a gateway drops them
//! both ways, from requests sent to backends and from answers sent to clients.

use http::header::{self, HeaderMap, HeaderName};

/// [`sluice_plugin::HOP_BY_HOP`] as names to remove. A `static`: a `const` array of names is
/// built and dropped again wherever it is used.
static HOP_BY_HOP: [HeaderName; 9] = {
    let names = sluice_plugin::HOP_BY_HOP;
    [
        HeaderName::from_static(names[0]),
        HeaderName::from_static(names[1]),
        HeaderName::from_static(names[2]),
        HeaderName::from_static(names[3]),
        HeaderName::from_static(names[4]),
        HeaderName::from_static(names[5]),
        HeaderName::from_static(names[6]),
        HeaderName::from_static(names[7]),
        HeaderName::from_static(names[8]),
    ]
};

/// Removes the hop-by-hop headers and every header `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the (few) names present, then removes only for those found: a remove
    // hashes its name, and nine of them cost more than the whole scan.
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = sluice_plugin::hop_by_hop_index(name.as_str().as_bytes()) {
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
            // A token that is no header name names nothing to remove.
            let names = sluice_plugin::connection_listed(value.as_bytes())
                .filter_map(|token| HeaderName::from_bytes(token).ok());
            named.extend(names);
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
    fn the_names_are_the_list() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(name.as_str(), sluice_plugin::HOP_BY_HOP[i]);
        }
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
