//! Header lists between host and guest: the Sluice world's encoding, and the one bound on
//! what a plugin hands the host, in both worlds.
//!
//! `sluice:plugin@0.2` carries header fields as one byte list, each field `name:value\n`
//! ([`encode`], [`from_guest`]); 0.1 carried pairs, which its adapter encodes ([`encode_pairs`]).
//!
//! A guest can build any list (30,000 headers, megabytes of values); unchecked, that is host
//! memory and CPU spent on its behalf, and `http::HeaderMap` panics past its capacity. The
//! Sluice world checks here when its lists become a `HeaderMap`; the wasi:http world has the
//! host build `fields` as `HeaderMap`s directly, bounded in size by wasmtime with
//! [`MAX_HEADER_BYTES`] (per-entry overhead included, so stricter) and in count by [`check`].

use sluice_plugin::{ErrorKind, ExecError};

/// Most headers in one request or response from a plugin (hyper itself parses 100 by default).
pub(crate) const MAX_HEADERS: usize = 1000;

/// Most bytes of names and values in one request's or response's headers from a plugin.
pub(crate) const MAX_HEADER_BYTES: usize = 128 * 1024;

fn too_many(what: String, count: usize) -> ExecError {
    ExecError::plugin(
        ErrorKind::Other,
        format!("{what} has {count} headers, more than the {MAX_HEADERS} allowed"),
    )
}

fn too_big(what: String, bytes: usize) -> ExecError {
    ExecError::plugin(
        ErrorKind::Other,
        format!("{what} has {bytes} bytes of headers, more than the {MAX_HEADER_BYTES} allowed"),
    )
}

fn bad_name(name: &[u8]) -> ExecError {
    ExecError::plugin(
        ErrorKind::Other,
        format!(
            "invalid header name {:?}",
            String::from_utf8_lossy(name).as_ref()
        ),
    )
}

fn bad_value(name: &str) -> ExecError {
    ExecError::plugin(ErrorKind::Other, format!("invalid value for header {name}"))
}

/// The encoded length of `headers`: names, values and two separator bytes per field.
fn encoded_len(headers: &http::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 2)
        .sum()
}

/// Encodes a header map as a Sluice-world (0.2) header list: `name:value\n` per field, in the
/// map's order. A `HeaderName` holds no `:` and neither it nor a `HeaderValue` holds `\n`, so
/// the list decodes back to the same fields. The host keeps what it encoded beside the map: a
/// guest that hands the list back unchanged (compared byte for byte) keeps the parsed map.
pub(crate) fn encode(headers: &http::HeaderMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(headers));
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.push(b':');
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out
}

/// The fields of an encoded list as `(name, value)` slices of it, for a list the host encoded
/// (a 0.1 guest is handed pairs). A field without `:` is skipped: [`encode`] writes none.
pub(crate) fn fields(encoded: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    encoded
        .split(|&b| b == b'\n')
        .filter_map(|field| memchr::memchr(b':', field).map(|at| (&field[..at], &field[at + 1..])))
}

/// Parses a guest's encoded header list (0.2), refusing one over the bounds before allocating
/// for it, and one that breaks the encoding. `what` names the list in the error (built only
/// then: this is on every request's path). The values share the guest's bytes (one buffer,
/// no copy per value).
pub(crate) fn from_guest(
    what: impl FnOnce() -> String,
    encoded: Vec<u8>,
) -> Result<http::HeaderMap, ExecError> {
    let count = memchr::memchr_iter(b'\n', &encoded).count();
    if count > MAX_HEADERS {
        return Err(too_many(what(), count));
    }
    // Names and values, as 0.1 counted them (the separators are not the guest's data).
    let bytes = encoded.len().saturating_sub(2 * count);
    if bytes > MAX_HEADER_BYTES {
        return Err(too_big(what(), bytes));
    }
    if encoded.last().is_some_and(|&b| b != b'\n') {
        return Err(ExecError::plugin(
            ErrorKind::Other,
            format!(
                "{} is not a valid header list: its last field does not end with a newline",
                what()
            ),
        ));
    }
    let shared = bytes::Bytes::from(encoded);
    let mut map = http::HeaderMap::with_capacity(count);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', &shared) {
        let field = &shared[start..end];
        let Some(colon) = memchr::memchr(b':', field) else {
            return Err(ExecError::plugin(
                ErrorKind::Other,
                format!(
                    "{} is not a valid header list: field {:?} has no ':'",
                    what(),
                    String::from_utf8_lossy(field).as_ref()
                ),
            ));
        };
        let name =
            http::HeaderName::from_bytes(&field[..colon]).map_err(|_| bad_name(&field[..colon]))?;
        let value = http::HeaderValue::from_maybe_shared(shared.slice(start + colon + 1..end))
            .map_err(|_| bad_value(name.as_str()))?;
        map.append(name, value);
        start = end + 1;
    }
    Ok(map)
}

/// Encodes a 0.1 guest's header pairs as a 0.2 list, with the same bounds as [`from_guest`]
/// checked first, and refusing a pair the encoding cannot carry (which HTTP refuses too: `:`
/// or a newline in a name, a newline in a value). [`from_guest`] checks the rest.
pub(crate) fn encode_pairs(
    what: impl FnOnce() -> String,
    pairs: Vec<(String, Vec<u8>)>,
) -> Result<Vec<u8>, ExecError> {
    if pairs.len() > MAX_HEADERS {
        return Err(too_many(what(), pairs.len()));
    }
    let bytes: usize = pairs.iter().map(|(n, v)| n.len() + v.len()).sum();
    if bytes > MAX_HEADER_BYTES {
        return Err(too_big(what(), bytes));
    }
    let mut out = Vec::with_capacity(bytes + 2 * pairs.len());
    for (name, value) in &pairs {
        if memchr::memchr2(b':', b'\n', name.as_bytes()).is_some() {
            return Err(bad_name(name.as_bytes()));
        }
        if memchr::memchr(b'\n', value).is_some() {
            return Err(bad_value(name));
        }
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    Ok(out)
}

/// Sets one field a guest names on `headers` (with `append`, adds it after the name's other
/// values), within [`from_guest`]'s bounds as the map would stand after it: a name or value
/// HTTP does not allow, or one field too many or too large, is the plugin's error and leaves
/// the map as it was (past its capacity, `HeaderMap` would panic).
pub(crate) fn set_from_guest(
    what: impl FnOnce() -> String,
    headers: &mut http::HeaderMap,
    name: &str,
    value: Vec<u8>,
    append: bool,
) -> Result<(), ExecError> {
    let name =
        http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad_name(name.as_bytes()))?;
    let value = http::HeaderValue::from_maybe_shared(bytes::Bytes::from(value))
        .map_err(|_| bad_value(name.as_str()))?;
    let field_bytes = |n: &http::HeaderName, v: &http::HeaderValue| n.as_str().len() + v.len();
    // What the field replaces, when it replaces: the name's current values.
    let (replaced, replaced_bytes) = if append {
        (0, 0)
    } else {
        headers
            .get_all(&name)
            .iter()
            .fold((0, 0), |(n, b), v| (n + 1, b + field_bytes(&name, v)))
    };
    let count = headers.len() - replaced + 1;
    if count > MAX_HEADERS {
        return Err(too_many(what(), count));
    }
    let bytes = headers
        .iter()
        .map(|(n, v)| field_bytes(n, v))
        .sum::<usize>()
        - replaced_bytes
        + field_bytes(&name, &value);
    if bytes > MAX_HEADER_BYTES {
        return Err(too_big(what(), bytes));
    }
    if append {
        headers.append(name, value);
    } else {
        headers.insert(name, value);
    }
    Ok(())
}

/// Checks a header map a wasi:http guest built (its size is bounded as it is built).
pub(crate) fn check(
    what: impl FnOnce() -> String,
    headers: &http::HeaderMap,
) -> Result<(), ExecError> {
    if headers.len() > MAX_HEADERS {
        return Err(too_many(what(), headers.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(n: usize, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..n {
            out.extend_from_slice(format!("x-{i}:").as_bytes());
            out.extend(std::iter::repeat_n(b'v', len));
            out.push(b'\n');
        }
        out
    }

    #[test]
    fn a_field_set_by_a_guest_stays_within_the_bounds() {
        let mut map = from_guest(|| "t".into(), list(MAX_HEADERS - 1, 1)).expect("under");
        set_from_guest(|| "t".into(), &mut map, "x-last", b"v".to_vec(), true).expect("the last");
        let err = set_from_guest(
            || "the request".into(),
            &mut map,
            "x-more",
            b"v".to_vec(),
            true,
        )
        .expect_err("one too many");
        assert!(err.message.contains("1001 headers"), "{err}");
        assert_eq!(map.len(), MAX_HEADERS);
        // Replacing a name's values counts what it drops: still within the bound.
        set_from_guest(|| "t".into(), &mut map, "x-last", b"w".to_vec(), false).expect("replace");
        assert_eq!(map.get("x-last").map(|v| v.as_bytes()), Some(&b"w"[..]));
        let big = vec![b'v'; MAX_HEADER_BYTES];
        let err = set_from_guest(|| "t".into(), &mut map, "x-last", big, false).expect_err("big");
        assert!(err.message.contains("bytes of headers"), "{err}");
        let err = set_from_guest(|| "t".into(), &mut map, "bad name", b"v".to_vec(), false)
            .expect_err("name");
        assert_eq!(err.message, "invalid header name \"bad name\"");
        assert_eq!(map.len(), MAX_HEADERS);
    }

    #[test]
    fn bounds() {
        assert_eq!(
            from_guest(|| "t".into(), list(3, 1)).expect("small").len(),
            3
        );
        // 30,000 headers: refused before `HeaderMap::with_capacity`, which would panic.
        let err = from_guest(|| "the answer".into(), list(30_000, 1)).expect_err("too many");
        assert!(err.message.contains("30000 headers"), "{err}");
        let err = from_guest(|| "t".into(), list(2, MAX_HEADER_BYTES)).expect_err("too big");
        assert!(err.message.contains("bytes of headers"), "{err}");
        // The same bounds for 0.1's pairs, before anything is encoded.
        let pairs = |n: usize| -> Vec<(String, Vec<u8>)> {
            (0..n).map(|i| (format!("x-{i}"), b"v".to_vec())).collect()
        };
        let err = encode_pairs(|| "the answer".into(), pairs(30_000)).expect_err("too many");
        assert!(err.message.contains("30000 headers"), "{err}");
    }

    #[test]
    fn a_guest_list_is_checked() {
        let map = from_guest(|| "t".into(), b"X-A:v 1\nx-b:\nx-a:2\n".to_vec()).expect("ok");
        assert_eq!(map.len(), 3);
        let a: Vec<_> = map.get_all("x-a").iter().collect();
        assert_eq!(a, ["v 1", "2"]);
        assert_eq!(map["x-b"], "");
        assert!(
            from_guest(|| "t".into(), Vec::new())
                .expect("empty")
                .is_empty()
        );
        for (list, expect) in [
            (&b"x-a:a\rb\n"[..], "invalid value for header x-a"),
            (b"x a:v\n", "invalid header name \"x a\""),
            (b"x-a\n", "field \"x-a\" has no ':'"),
            (
                b"x-a:1\nx-b:2",
                "its last field does not end with a newline",
            ),
            (b":v\n", "invalid header name \"\""),
        ] {
            let err = from_guest(|| "t".into(), list.to_vec()).expect_err("refused");
            assert!(err.message.contains(expect), "{list:?}: {err}");
        }
    }

    #[test]
    fn encoding_round_trips() {
        let mut map = http::HeaderMap::new();
        map.append("x-a", http::HeaderValue::from_static("1"));
        map.append("x-url", http::HeaderValue::from_static("http://h:1/"));
        map.append("x-a", http::HeaderValue::from_static(""));
        let encoded = encode(&map);
        assert_eq!(encoded, b"x-a:1\nx-a:\nx-url:http://h:1/\n");
        assert_eq!(from_guest(|| "t".into(), encoded.clone()).expect("ok"), map);
        let fields: Vec<_> = fields(&encoded).collect();
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[2], (&b"x-url"[..], &b"http://h:1/"[..]));
        assert!(encode(&http::HeaderMap::new()).is_empty());
    }

    /// Any bytes a guest may hand over: never a panic, and whatever is accepted encodes back
    /// to a list that parses to the same map (a deterministic walk over lists built from the
    /// bytes that matter to the encoding).
    #[test]
    fn any_guest_list_is_refused_or_round_trips() {
        const ALPHABET: &[u8] = b"ab:\n\r \t\0\x7f\xff-X:\n";
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            // xorshift64: reproducible, no dependency.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut accepted = 0;
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let list: Vec<u8> = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            if let Ok(map) = from_guest(|| "t".into(), list.clone()) {
                accepted += 1;
                let again = from_guest(|| "t".into(), encode(&map))
                    .unwrap_or_else(|e| panic!("{list:?}: {e}"));
                assert_eq!(again, map, "{list:?}");
                assert_eq!(map.len(), list.iter().filter(|&&b| b == b'\n').count());
            }
        }
        // The walk reaches both outcomes.
        assert!(accepted > 100 && accepted < 20_000, "{accepted}");
    }

    #[test]
    fn pairs_that_would_split_are_refused() {
        let ok = encode_pairs(|| "t".into(), vec![("X-A".into(), b"a:b".to_vec())]).expect("ok");
        assert_eq!(ok, b"X-A:a:b\n");
        for (name, value, expect) in [
            ("x-a:b", "v", "invalid header name"),
            ("x-a\nx-b", "v", "invalid header name"),
            ("x-a", "1\nx-evil:2", "invalid value for header x-a"),
        ] {
            let err = encode_pairs(|| "t".into(), vec![(name.into(), value.into())])
                .expect_err("refused");
            assert!(err.message.contains(expect), "{name:?}: {err}");
        }
    }
}
