//! gRPC over HTTP/2, the parts Sluice needs: length-prefixed messages, `grpc-timeout`,
//! `grpc-status` and `grpc-message`, and the status codes' HTTP equivalents.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, StatusCode};

/// The 5-byte prefix of a message: compressed flag and big-endian length.
const PREFIX: usize = 5;

/// `message` framed as one length-prefixed, uncompressed message.
pub(crate) fn frame(message: &[u8]) -> Result<Bytes, String> {
    let len = u32::try_from(message.len())
        .map_err(|_| format!("a message of {} bytes is too large", message.len()))?;
    let mut out = BytesMut::with_capacity(PREFIX + message.len());
    out.put_u8(0);
    out.put_u32(len);
    out.put_slice(message);
    Ok(out.freeze())
}

/// The `grpc-timeout` value for the time left: at most 8 digits, in the finest unit that fits.
pub(crate) fn timeout_header(left: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let micros = left.as_micros().max(1);
    let text = if micros <= MAX {
        format!("{micros}u")
    } else if left.as_millis() <= MAX {
        format!("{}m", left.as_millis())
    } else {
        format!("{}S", (left.as_secs() as u128).min(MAX))
    };
    HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("99999999S"))
}

/// Reads messages out of data frames as they arrive, each bounded.
#[derive(Debug)]
pub(crate) struct Deframer {
    buffer: BytesMut,
    /// The largest message accepted, and the most bytes of messages in all.
    limit: usize,
    total: usize,
}

/// One message as it came: whether it is compressed, and its bytes.
#[derive(Debug)]
pub(crate) struct Frame {
    pub(crate) compressed: bool,
    pub(crate) data: Bytes,
}

impl Deframer {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            buffer: BytesMut::new(),
            limit,
            total: 0,
        }
    }

    /// Adds a data frame; returns the messages completed by it.
    pub(crate) fn push(&mut self, data: &[u8], out: &mut Vec<Frame>) -> Result<(), String> {
        self.buffer.extend_from_slice(data);
        while self.buffer.len() >= PREFIX {
            let flag = self.buffer[0];
            let len = u32::from_be_bytes([
                self.buffer[1],
                self.buffer[2],
                self.buffer[3],
                self.buffer[4],
            ]) as usize;
            if flag > 1 {
                return Err(format!("malformed message prefix (flag {flag})"));
            }
            if len > self.limit || self.total + len > self.limit {
                return Err(format!("the answer is larger than {} bytes", self.limit));
            }
            if self.buffer.len() < PREFIX + len {
                self.buffer.reserve(PREFIX + len - self.buffer.len());
                break;
            }
            self.buffer.advance(PREFIX);
            let data = self.buffer.split_to(len).freeze();
            self.total += len;
            out.push(Frame {
                compressed: flag == 1,
                data,
            });
        }
        Ok(())
    }

    /// Whether a message was left half-read.
    pub(crate) fn has_partial(&self) -> bool {
        !self.buffer.is_empty()
    }
}

/// A call's outcome as the server wrote it in `grpc-status` and `grpc-message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Status {
    pub(crate) code: u32,
    pub(crate) message: String,
}

pub(crate) const OK: u32 = 0;
pub(crate) const UNIMPLEMENTED: u32 = 12;
pub(crate) const INTERNAL: u32 = 13;
pub(crate) const UNAVAILABLE: u32 = 14;

impl Status {
    /// The status in `headers` (trailers, or the headers of a trailers-only answer).
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Status> {
        let code = headers.get("grpc-status")?;
        let code = code
            .to_str()
            .ok()
            .and_then(|c| c.trim().parse::<u32>().ok())
            .unwrap_or(2);
        let message = headers
            .get("grpc-message")
            .map(|m| {
                percent_encoding::percent_decode(m.as_bytes())
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .unwrap_or_default();
        Some(Status { code, message })
    }

    /// The name of the code (`NOT_FOUND`).
    pub(crate) fn name(&self) -> &'static str {
        const NAMES: [&str; 17] = [
            "OK",
            "CANCELLED",
            "UNKNOWN",
            "INVALID_ARGUMENT",
            "DEADLINE_EXCEEDED",
            "NOT_FOUND",
            "ALREADY_EXISTS",
            "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED",
            "FAILED_PRECONDITION",
            "ABORTED",
            "OUT_OF_RANGE",
            "UNIMPLEMENTED",
            "INTERNAL",
            "UNAVAILABLE",
            "DATA_LOSS",
            "UNAUTHENTICATED",
        ];
        NAMES.get(self.code as usize).copied().unwrap_or("UNKNOWN")
    }

    /// The HTTP status a REST client gets for it: the table of grpc-gateway's
    /// `HTTPStatusFromCode`, the mapping Go gateways (KrakenD's among them) use.
    pub(crate) fn http_status(&self) -> StatusCode {
        let code = match self.code {
            0 => 200,
            1 => 499,
            3 | 9 | 11 => 400,
            4 => 504,
            5 => 404,
            6 | 10 => 409,
            7 => 403,
            8 => 429,
            12 => 501,
            14 => 503,
            16 => 401,
            _ => 500,
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The status of an answer that is not HTTP 200, as gRPC clients read it (the gRPC
    /// specification's "HTTP to gRPC status code mapping").
    pub(crate) fn from_http(status: StatusCode) -> Status {
        let code = match status.as_u16() {
            400 => INTERNAL,
            401 => 16,
            403 => 7,
            404 => UNIMPLEMENTED,
            429 | 502 | 503 | 504 => UNAVAILABLE,
            _ => 2,
        };
        Status {
            code,
            message: format!("the backend answered HTTP {status} instead of a gRPC answer"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn frames_round_trip_in_pieces() {
        let a = frame(b"hello").unwrap();
        let b = frame(b"").unwrap();
        let mut all = a.to_vec();
        all.extend_from_slice(&b);
        let mut d = Deframer::new(100);
        let mut out = Vec::new();
        for byte in &all {
            d.push(std::slice::from_ref(byte), &mut out).unwrap();
        }
        assert_eq!(out.len(), 2);
        assert_eq!(&out[0].data[..], b"hello");
        assert!(out[1].data.is_empty());
        assert!(!d.has_partial());
    }

    #[test]
    fn oversized_messages_are_refused_before_they_are_read() {
        let mut d = Deframer::new(4);
        let mut out = Vec::new();
        assert!(d.push(&[0, 0, 0, 0, 5], &mut out).is_err());
    }

    #[test]
    fn timeouts_and_statuses() {
        assert_eq!(timeout_header(Duration::from_millis(1500)), "1500000u");
        assert_eq!(timeout_header(Duration::from_secs(200)), "200000m");
        assert_eq!(timeout_header(Duration::ZERO), "1u");
        let mut h = HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from_static("5"));
        h.insert(
            "grpc-message",
            HeaderValue::from_static("no%20such%20flight"),
        );
        let s = Status::from_headers(&h).unwrap();
        assert_eq!(s.message, "no such flight");
        assert_eq!(s.http_status(), StatusCode::NOT_FOUND);
        assert_eq!(s.name(), "NOT_FOUND");
    }
}
