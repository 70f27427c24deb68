//! The one bound on header lists a plugin hands to the host, in both worlds.
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

/// Converts a guest's header list, refusing one over the bounds before allocating for it.
/// `what` names the list in the error (built only then: this is on every request's path).
pub(crate) fn from_guest(
    what: impl FnOnce() -> String,
    headers: Vec<(String, Vec<u8>)>,
) -> Result<http::HeaderMap, ExecError> {
    if headers.len() > MAX_HEADERS {
        return Err(too_many(what(), headers.len()));
    }
    let bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if bytes > MAX_HEADER_BYTES {
        return Err(ExecError::plugin(
            ErrorKind::Other,
            format!(
                "{} has {bytes} bytes of headers, more than the {MAX_HEADER_BYTES} allowed",
                what()
            ),
        ));
    }
    let mut map = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            ExecError::plugin(ErrorKind::Other, format!("invalid header name {name:?}"))
        })?;
        // The guest's bytes become the value as they are (no second copy).
        let value =
            http::HeaderValue::from_maybe_shared(bytes::Bytes::from(value)).map_err(|_| {
                ExecError::plugin(ErrorKind::Other, format!("invalid value for header {name}"))
            })?;
        map.append(name, value);
    }
    Ok(map)
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

    #[test]
    fn bounds() {
        let list = |n: usize, len: usize| -> Vec<(String, Vec<u8>)> {
            (0..n)
                .map(|i| (format!("x-{i}"), vec![b'v'; len]))
                .collect()
        };
        assert_eq!(
            from_guest(|| "t".into(), list(3, 1)).expect("small").len(),
            3
        );
        // 30,000 headers: refused before `HeaderMap::with_capacity`, which would panic.
        let err = from_guest(|| "the answer".into(), list(30_000, 1)).expect_err("too many");
        assert!(err.message.contains("30000 headers"), "{err}");
        let err = from_guest(|| "t".into(), list(2, MAX_HEADER_BYTES)).expect_err("too big");
        assert!(err.message.contains("bytes of headers"), "{err}");
        // Values are taken over as they are, but still checked.
        let map = from_guest(|| "t".into(), vec![("X-A".into(), b"v 1".to_vec())]).expect("ok");
        assert_eq!(map["x-a"], "v 1");
        let err = from_guest(|| "t".into(), vec![("x-a".into(), b"a\nb".to_vec())])
            .expect_err("newline in a value");
        assert!(
            err.message.contains("invalid value for header x-a"),
            "{err}"
        );
        let err = from_guest(|| "t".into(), vec![("x a".into(), b"v".to_vec())])
            .expect_err("space in a name");
        assert!(err.message.contains("invalid header name"), "{err}");
    }
}
