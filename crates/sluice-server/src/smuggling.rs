//! A request-smuggling guard in front of hyper's HTTP/1 parser.
//!
//! hyper follows RFC 9112 §6.3 for a request carrying both `Content-Length` and
//! `Transfer-Encoding`: the chunked framing wins, `Content-Length` is dropped and the
//! connection is closed after the answer. That is safe, but the handler can no longer tell the
//! request was ambiguous, and a gateway should refuse it outright (front proxies may have framed
//! it the other way). This wrapper follows the HTTP/1 framing of the bytes it reads (heads,
//! `Content-Length` and chunked bodies) and, when a head carries both headers, breaks that head's
//! terminator so hyper answers `400 Bad Request` and closes the connection.
//!
//! If the bytes stop looking like HTTP/1 (an h2c preface, an upgrade, a framing it cannot follow)
//! the guard steps aside for the rest of the connection and hyper's own rules apply.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest header line the guard inspects; longer lines are only checked by their start.
const NAME_PREFIX: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a head; `line_len` bytes of the current line seen so far.
    Head {
        line_len: usize,
        first_line: bool,
    },
    /// Skipping a body of known length.
    Fixed(u64),
    /// Reading a chunk-size line (`size` so far, `in_ext` once past `;`).
    ChunkSize {
        size: u64,
        digits: usize,
        in_ext: bool,
    },
    /// Skipping chunk data, then its CRLF.
    ChunkData(u64),
    ChunkDataEnd,
    /// Reading trailer lines after the last chunk.
    Trailers {
        line_len: usize,
    },
    /// Not following any more.
    Inert,
}

/// The framing tracker, separate from the I/O so it can be tested on plain bytes.
#[derive(Debug)]
pub(crate) struct Framing {
    state: State,
    prefix: [u8; NAME_PREFIX],
    content_length: Option<u64>,
    chunked: bool,
    has_content_length: bool,
    has_transfer_encoding: bool,
}

impl Framing {
    pub(crate) fn new() -> Self {
        Self {
            state: State::Head {
                line_len: 0,
                first_line: true,
            },
            prefix: [0; NAME_PREFIX],
            content_length: None,
            chunked: false,
            has_content_length: false,
            has_transfer_encoding: false,
        }
    }

    /// Follows `bytes`; returns the index of the last byte of a head that must be refused.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut refused = None;
        let mut i = 0;
        while i < bytes.len() {
            match self.state {
                State::Inert => return refused,
                State::Fixed(n) => {
                    let take = n.min((bytes.len() - i) as u64);
                    i += take as usize;
                    self.state = if take == n {
                        self.next_head()
                    } else {
                        State::Fixed(n - take)
                    };
                    continue;
                }
                State::ChunkData(n) => {
                    let take = n.min((bytes.len() - i) as u64);
                    i += take as usize;
                    self.state = if take == n {
                        State::ChunkDataEnd
                    } else {
                        State::ChunkData(n - take)
                    };
                    continue;
                }
                _ => {}
            }
            let b = bytes[i];
            match self.state {
                State::Head {
                    line_len,
                    first_line,
                } => {
                    if b == b'\n' {
                        if line_len == 0 {
                            if self.has_content_length && self.has_transfer_encoding {
                                refused = Some(i);
                                self.state = State::Inert;
                                return refused;
                            }
                            self.state = self.body_state();
                        } else {
                            if first_line && self.prefix.starts_with(b"PRI * HTTP/2") {
                                self.state = State::Inert;
                                return refused;
                            }
                            self.end_header_line(line_len, first_line);
                            self.state = State::Head {
                                line_len: 0,
                                first_line: false,
                            };
                        }
                    } else if b != b'\r' {
                        if line_len < NAME_PREFIX {
                            self.prefix[line_len] = b.to_ascii_lowercase();
                        }
                        self.state = State::Head {
                            line_len: line_len + 1,
                            first_line,
                        };
                    }
                }
                State::ChunkSize {
                    size,
                    digits,
                    in_ext,
                } => match b {
                    b'\n' if digits > 0 => {
                        self.state = if size == 0 {
                            State::Trailers { line_len: 0 }
                        } else {
                            State::ChunkData(size)
                        };
                    }
                    b'\r' => {}
                    b';' => {
                        self.state = State::ChunkSize {
                            size,
                            digits,
                            in_ext: true,
                        }
                    }
                    _ if in_ext => {}
                    _ => match (b as char).to_digit(16) {
                        Some(d) if digits < 16 => {
                            self.state = State::ChunkSize {
                                size: size * 16 + u64::from(d),
                                digits: digits + 1,
                                in_ext,
                            };
                        }
                        _ => self.state = State::Inert,
                    },
                },
                State::ChunkDataEnd => match b {
                    b'\r' => {}
                    b'\n' => {
                        self.state = State::ChunkSize {
                            size: 0,
                            digits: 0,
                            in_ext: false,
                        }
                    }
                    _ => self.state = State::Inert,
                },
                State::Trailers { line_len } => match b {
                    b'\n' if line_len == 0 => self.state = self.next_head(),
                    b'\n' => self.state = State::Trailers { line_len: 0 },
                    b'\r' => {}
                    _ => {
                        self.state = State::Trailers {
                            line_len: line_len + 1,
                        }
                    }
                },
                State::Fixed(_) | State::ChunkData(_) | State::Inert => {}
            }
            i += 1;
        }
        refused
    }

    fn end_header_line(&mut self, line_len: usize, first_line: bool) {
        if first_line {
            return;
        }
        let seen = &self.prefix[..line_len.min(NAME_PREFIX)];
        if let Some(rest) = seen.strip_prefix(b"content-length:") {
            self.has_content_length = true;
            let digits: Vec<u8> = rest
                .iter()
                .copied()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            self.content_length = std::str::from_utf8(&digits)
                .ok()
                .and_then(|d| d.parse().ok());
            if self.content_length.is_none() || line_len > NAME_PREFIX {
                // Too long to be sure of the length: leave framing to hyper.
                self.content_length = None;
            }
        } else if let Some(rest) = seen.strip_prefix(b"transfer-encoding:") {
            self.has_transfer_encoding = true;
            let value = String::from_utf8_lossy(rest);
            // A value too long to see whole leaves the framing unknown: step aside (below).
            self.chunked = line_len <= NAME_PREFIX && value.trim().ends_with("chunked");
        }
    }

    fn body_state(&mut self) -> State {
        if self.has_transfer_encoding {
            if self.chunked {
                State::ChunkSize {
                    size: 0,
                    digits: 0,
                    in_ext: false,
                }
            } else {
                State::Inert
            }
        } else if self.has_content_length {
            match self.content_length {
                Some(0) => self.next_head(),
                Some(n) => State::Fixed(n),
                None => State::Inert,
            }
        } else {
            self.next_head()
        }
    }

    fn next_head(&mut self) -> State {
        self.content_length = None;
        self.chunked = false;
        self.has_content_length = false;
        self.has_transfer_encoding = false;
        State::Head {
            line_len: 0,
            first_line: true,
        }
    }
}

pin_project_lite::pin_project! {
    /// A connection whose incoming bytes pass through [`Framing`].
    #[derive(Debug)]
    pub(crate) struct Guarded<S> {
        #[pin]
        inner: S,
        framing: Framing,
    }
}

impl<S> Guarded<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            framing: Framing::new(),
        }
    }
}

impl<S: AsyncRead> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let poll = this.inner.poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &poll {
            let fresh = &mut buf.filled_mut()[before..];
            if let Some(at) = this.framing.feed(fresh) {
                // A NUL where the head's final LF was: hyper's parser rejects the head (400).
                fresh[at] = 0;
            }
        }
        poll
    }
}

impl<S: AsyncWrite> AsyncWrite for Guarded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().inner.poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused_at(input: &[u8], split: usize) -> Option<usize> {
        let mut framing = Framing::new();
        let (a, b) = input.split_at(split.min(input.len()));
        framing
            .feed(a)
            .or_else(|| framing.feed(b).map(|i| i + a.len()))
    }

    #[test]
    fn plain_requests_pass() {
        let input = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /y HTTP/1.1\r\n\r\n";
        for split in 0..input.len() {
            assert_eq!(refused_at(input, split), None, "split at {split}");
        }
    }

    #[test]
    fn chunked_bodies_are_followed() {
        let input = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET / HTTP/1.1\r\nContent-Length: 1\r\ntransfer-encoding: chunked\r\n\r\n";
        let end = input.len() - 1;
        for split in 0..input.len() {
            assert_eq!(refused_at(input, split), Some(end), "split at {split}");
        }
    }

    #[test]
    fn both_framings_are_refused_in_any_order_and_case() {
        for head in [
            &b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            &b"POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\nCONTENT-LENGTH: 4\r\n\r\n"[..],
        ] {
            assert_eq!(refused_at(head, head.len()), Some(head.len() - 1));
        }
    }

    #[test]
    fn a_body_that_looks_like_a_head_is_not_inspected() {
        let input = b"POST / HTTP/1.1\r\nContent-Length: 59\r\n\r\nGET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: x\r\n\r\n";
        assert_eq!(
            input.len() - input.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) - 4,
            59
        );
        assert_eq!(refused_at(input, 20), None);
    }

    #[test]
    fn h2c_preface_turns_the_guard_off() {
        let input = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n";
        assert_eq!(refused_at(input, 5), None);
    }
}
