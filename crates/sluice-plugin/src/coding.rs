//! A backend body's `Content-Encoding`, and gzip decoding bounded by the body limit.
//!
//! Two places decode gzip, as in KrakenD: the default client, transparently, when it asked for
//! gzip itself (Go's transport), and the backend stage, before decoding an answer by its
//! `encoding`, whenever the answer says gzip (Lura's response parser) — so an answer to a
//! client's forwarded `Accept-Encoding`, or a plugin's gzip answer, decodes too. Both count
//! the decompressed bytes against the same limit as the body itself: a gzip bomb is cut there.

use std::io::Read as _;

use bytes::Bytes;
use http::HeaderMap;
use http::header;

use crate::CollectError;

/// What a body's `Content-Encoding` asks of whoever reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentCoding {
    /// No `Content-Encoding`, an empty one, or only `identity`: the bytes are the content.
    Identity,
    /// `gzip` (or its alias `x-gzip`, RFC 9110 §8.4.1.3).
    Gzip,
    /// Anything else (`br`, `deflate`, `zstd`, several codings): the value, as sent.
    Unsupported(String),
}

impl ContentCoding {
    /// Reads the `Content-Encoding` of an answer (every line of it, comma-separated codings
    /// and `identity` entries allowed).
    pub fn of(headers: &HeaderMap) -> Self {
        let mut gzip = 0;
        let mut other = false;
        // A walk over a decoded answer's few fields costs less than hashing the name (it
        // yields what `get_all` does, in the same order).
        let values = headers
            .iter()
            .filter(|(name, _)| **name == header::CONTENT_ENCODING)
            .map(|(_, value)| value);
        for value in values {
            let Ok(text) = value.to_str() else {
                other = true;
                continue;
            };
            for coding in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                    gzip += 1;
                } else if !coding.eq_ignore_ascii_case("identity") {
                    other = true;
                }
            }
        }
        match (gzip, other) {
            (0, false) => ContentCoding::Identity,
            (1, false) => ContentCoding::Gzip,
            _ => ContentCoding::Unsupported(
                headers
                    .get_all(header::CONTENT_ENCODING)
                    .iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        }
    }
}

/// Gunzips a whole body, refusing to produce more than `limit` bytes: decompression stops at
/// `limit + 1` bytes, so a gzip bomb costs at most the limit. Concatenated gzip members are
/// read as one body (as Go's `gzip.Reader` does); an empty body stays empty.
pub fn gunzip(compressed: &[u8], limit: usize) -> Result<Bytes, CollectError> {
    if compressed.is_empty() {
        return Ok(Bytes::new());
    }
    let mut decoded = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    flate2::read::MultiGzDecoder::new(compressed)
        .take(limit as u64 + 1)
        .read_to_end(&mut decoded)
        .map_err(|e| CollectError::InvalidGzip(e.to_string()))?;
    if decoded.len() > limit {
        return Err(CollectError::DecompressedTooLarge(limit));
    }
    Ok(Bytes::from(decoded))
}

/// Decodes a body its headers say is gzip (removing `Content-Encoding` and the now wrong
/// `Content-Length`, as Go's transport does); an identity body is returned as it is. Other codings are refused with a
/// clear error rather than handed on as if they were the content.
pub fn decode_content(
    headers: &mut HeaderMap,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, CollectError> {
    match ContentCoding::of(headers) {
        ContentCoding::Identity => Ok(body),
        ContentCoding::Gzip => {
            let decoded = gunzip(&body, limit)?;
            headers.remove(header::CONTENT_ENCODING);
            headers.remove(header::CONTENT_LENGTH);
            Ok(decoded)
        }
        ContentCoding::Unsupported(coding) => Err(CollectError::UnsupportedCoding(coding)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write as _;

    use http::HeaderValue;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(header::CONTENT_ENCODING, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn codings() {
        assert_eq!(ContentCoding::of(&headers(&[])), ContentCoding::Identity);
        assert_eq!(ContentCoding::of(&headers(&[""])), ContentCoding::Identity);
        assert_eq!(
            ContentCoding::of(&headers(&["identity"])),
            ContentCoding::Identity
        );
        for gzip in ["gzip", "GZIP", "x-gzip", " gzip ", "identity, gzip"] {
            assert_eq!(
                ContentCoding::of(&headers(&[gzip])),
                ContentCoding::Gzip,
                "{gzip}"
            );
        }
        assert_eq!(
            ContentCoding::of(&headers(&["br"])),
            ContentCoding::Unsupported("br".into())
        );
        assert_eq!(
            ContentCoding::of(&headers(&["gzip", "gzip"])),
            ContentCoding::Unsupported("gzip, gzip".into())
        );
        assert_eq!(
            ContentCoding::of(&headers(&["deflate, gzip"])),
            ContentCoding::Unsupported("deflate, gzip".into())
        );
    }

    #[test]
    fn gunzips_within_the_limit() {
        let body = gzip(b"{\"a\":1}");
        assert_eq!(&gunzip(&body, 7).unwrap()[..], b"{\"a\":1}");
        assert!(matches!(
            gunzip(&body, 6),
            Err(CollectError::DecompressedTooLarge(6))
        ));
        assert!(gunzip(b"", 0).unwrap().is_empty());
        // Two members are one body.
        let mut two = gzip(b"ab");
        two.extend(gzip(b"cd"));
        assert_eq!(&gunzip(&two, 10).unwrap()[..], b"abcd");
    }

    #[test]
    fn refuses_what_is_not_gzip() {
        assert!(matches!(
            gunzip(b"{\"a\":1}", 100),
            Err(CollectError::InvalidGzip(_))
        ));
        let mut truncated = gzip(b"some longer text to compress");
        truncated.truncate(truncated.len() - 6);
        assert!(matches!(
            gunzip(&truncated, 100),
            Err(CollectError::InvalidGzip(_))
        ));
        let mut corrupt = gzip(b"checksummed");
        let crc = corrupt.len() - 8;
        corrupt[crc] ^= 0xff;
        assert!(matches!(
            gunzip(&corrupt, 100),
            Err(CollectError::InvalidGzip(_))
        ));
    }

    #[test]
    fn decodes_by_the_headers() {
        let mut h = headers(&["gzip"]);
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(99));
        let out = decode_content(&mut h, Bytes::from(gzip(b"hello")), 100).unwrap();
        assert_eq!(&out[..], b"hello");
        assert!(!h.contains_key(header::CONTENT_ENCODING));
        assert!(!h.contains_key(header::CONTENT_LENGTH));

        let mut plain = HeaderMap::new();
        let out = decode_content(&mut plain, Bytes::from_static(b"as is"), 100).unwrap();
        assert_eq!(&out[..], b"as is");

        let mut br = headers(&["br"]);
        assert!(matches!(
            decode_content(&mut br, Bytes::from_static(b"x"), 100),
            Err(CollectError::UnsupportedCoding(c)) if c == "br"
        ));
    }
}
