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
//! It fails closed: a head it cannot be sure of (a `Content-Length` or `Transfer-Encoding` line
//! too long to read whole, a length that is not a number, either header twice, a
//! `Transfer-Encoding` not ending in `chunked`) is refused the same way, and a chunked body it
//! cannot follow has the offending byte broken, so hyper fails the body (400) and the connection
//! ends there. Only an h2c preface turns it off (HTTP/2 frames its own messages).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest header line the guard keeps; a framing header line longer than this is refused.
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
    /// Not following any more (after an h2c preface or a refusal).
    Inert,
}

/// What the end of a head line means for the walk.
enum LineEnd {
    /// Go on with the next byte.
    Continue,
    /// Stop following: the index of the refused byte, or `None` (an h2c preface).
    Stop(Option<usize>),
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
    /// The head has a framing header the guard cannot be sure of.
    doubtful: bool,
    /// Bytes of the current head so far, and the most a head may have (`max_header_bytes`).
    head_bytes: usize,
    max_head: usize,
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
            doubtful: false,
            head_bytes: 0,
            max_head: usize::MAX,
        }
    }

    /// A tracker that also reports how much more of the current head may be read.
    pub(crate) fn with_max_head(max_head: usize) -> Self {
        Self {
            max_head,
            ..Self::new()
        }
    }

    /// While a head is being read: how many more bytes of it fit in `max_head`.
    fn head_room(&self) -> Option<usize> {
        matches!(self.state, State::Head { .. })
            .then(|| self.max_head.saturating_sub(self.head_bytes))
    }

    /// Follows `bytes`; returns the index of the last byte of a head that must be refused.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < bytes.len() {
            match self.state {
                State::Inert => return None,
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
            // A whole line in this read, with no CR but its last byte (nearly every line): one
            // memchr and a look at its start, instead of the byte-by-byte walk below.
            if let State::Head {
                line_len: 0,
                first_line,
            } = self.state
                && let Some(nl) = memchr::memchr(b'\n', &bytes[i..])
            {
                let raw = &bytes[i..i + nl];
                let line = raw.strip_suffix(b"\r").unwrap_or(raw);
                if memchr::memchr(b'\r', line).is_none() {
                    self.head_bytes += nl + 1;
                    let seen = &line[..line.len().min(NAME_PREFIX)];
                    if let LineEnd::Stop(verdict) =
                        self.end_line(seen, line.len(), first_line, i + nl)
                    {
                        return verdict;
                    }
                    i += nl + 1;
                    continue;
                }
            }
            // The rest of a header line past the name prefix only counts: skip to its end at
            // memchr's speed (a long token or cookie is most of a request head).
            if let State::Head { line_len, .. } = self.state
                && line_len > NAME_PREFIX
            {
                let rest = &bytes[i..];
                let skip = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
                self.head_bytes += skip;
                i += skip;
                if i == bytes.len() {
                    break;
                }
            }
            let b = bytes[i];
            match self.state {
                State::Head {
                    line_len,
                    first_line,
                } => {
                    self.head_bytes += 1;
                    if b == b'\n' {
                        // The line as kept (lower-cased, CRs left out), copied out of `self`.
                        let prefix = self.prefix;
                        let seen = &prefix[..line_len.min(NAME_PREFIX)];
                        if let LineEnd::Stop(verdict) = self.end_line(seen, line_len, first_line, i)
                        {
                            return verdict;
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
                    // Whitespace after the size (hyper accepts it) ends the digits like `;`.
                    b';' | b' ' | b'\t' if digits > 0 => {
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
                        _ => return self.refuse(i),
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
                    _ => return self.refuse(i),
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
        None
    }

    /// A line of a head has ended with its LF at byte `at`: `seen` is its first `NAME_PREFIX`
    /// bytes (CRs left out), of `line_len` in all. An empty line ends the head (refused if its
    /// framing is ambiguous or doubtful); an h2c preface turns the guard off.
    fn end_line(&mut self, seen: &[u8], line_len: usize, first_line: bool, at: usize) -> LineEnd {
        if line_len == 0 {
            if self.doubtful || (self.has_content_length && self.has_transfer_encoding) {
                return LineEnd::Stop(self.refuse(at));
            }
            self.state = self.body_state();
        } else if first_line && is_h2c_preface(seen) {
            self.state = State::Inert;
            return LineEnd::Stop(None);
        } else {
            self.end_header_line(seen, line_len, first_line);
            self.state = State::Head {
                line_len: 0,
                first_line: false,
            };
        }
        LineEnd::Continue
    }

    /// Refuses at byte `at` and stops following (the connection ends there).
    fn refuse(&mut self, at: usize) -> Option<usize> {
        self.state = State::Inert;
        Some(at)
    }

    /// A header line has ended: `seen` is its first `NAME_PREFIX` bytes (CRs left out), of
    /// `line_len` in all. Names and `chunked` compare without regard to case.
    fn end_header_line(&mut self, seen: &[u8], line_len: usize, first_line: bool) {
        if first_line {
            return;
        }
        if let Some(rest) = strip_prefix_ignore_case(seen, b"content-length:") {
            // Twice (even with one value), unreadable or too long to see whole: refused.
            self.doubtful |= self.has_content_length || line_len > NAME_PREFIX;
            self.has_content_length = true;
            let digits = rest.trim_ascii();
            self.content_length = (!digits.is_empty() && digits.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(digits).ok()?.parse().ok())
                .flatten();
            self.doubtful |= self.content_length.is_none();
        } else if let Some(rest) = strip_prefix_ignore_case(seen, b"transfer-encoding:") {
            self.doubtful |= self.has_transfer_encoding || line_len > NAME_PREFIX;
            self.has_transfer_encoding = true;
            let last = rest.rsplit(|b| *b == b',').next().unwrap_or_default();
            self.chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
            // A request body must end with chunked (RFC 9112 §6.3); anything else is unframed.
            self.doubtful |= !self.chunked;
        }
    }

    fn body_state(&mut self) -> State {
        if self.has_transfer_encoding {
            State::ChunkSize {
                size: 0,
                digits: 0,
                in_ext: false,
            }
        } else {
            match self.content_length {
                Some(n) if n > 0 => State::Fixed(n),
                _ => self.next_head(),
            }
        }
    }

    fn next_head(&mut self) -> State {
        self.content_length = None;
        self.chunked = false;
        self.has_content_length = false;
        self.has_transfer_encoding = false;
        self.doubtful = false;
        self.head_bytes = 0;
        State::Head {
            line_len: 0,
            first_line: true,
        }
    }
}

/// `line` starts with `name`, whatever the case of its letters: the rest of it.
fn strip_prefix_ignore_case<'a>(line: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    (line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name))
        .then(|| &line[name.len()..])
}

/// The first line of HTTP/2's connection preface (RFC 9113 §3.4): h2c with prior knowledge.
fn is_h2c_preface(line: &[u8]) -> bool {
    // Compared without regard to case because the byte-by-byte walk keeps lines lower-cased.
    strip_prefix_ignore_case(line, b"PRI * HTTP/2").is_some()
}

/// Where the guard refuses the first message of `bytes` (the index of the byte it breaks), if it
/// does: the guard's verdict on bytes as one connection would deliver them, for fuzzing and
/// differential tests against an HTTP parser.
pub fn guard_refuses(bytes: &[u8]) -> Option<usize> {
    Framing::new().feed(bytes)
}

pin_project_lite::pin_project! {
    /// A connection whose incoming bytes pass through [`Framing`].
    #[derive(Debug)]
    pub(crate) struct Guarded<S> {
        #[pin]
        inner: S,
        framing: Framing,
        refused: bool,
    }
}

impl<S> Guarded<S> {
    /// `max_head`: the most bytes of one head handed to hyper (see `poll_read`).
    pub(crate) fn new(inner: S, max_head: usize) -> Self {
        Self {
            inner,
            framing: Framing::with_max_head(max_head),
            refused: false,
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
        if *this.refused {
            // Nothing after a refused byte reaches hyper.
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request refused by the smuggling guard",
            )));
        }
        let before = buf.filled().len();
        // hyper checks its header limit only between reads, so one read can carry a head up to
        // twice past it. Reads within a head stop at the limit instead: a longer head then
        // fills hyper's buffer unfinished, which it answers with 431.
        let poll = match this.framing.head_room() {
            Some(room) if room < buf.remaining() => {
                let mut limited = ReadBuf::new(buf.initialize_unfilled_to(room.max(1)));
                let poll = this.inner.poll_read(cx, &mut limited);
                let read = limited.filled().len();
                buf.advance(read);
                poll
            }
            _ => this.inner.poll_read(cx, buf),
        };
        if let Poll::Ready(Ok(())) = &poll {
            let fresh = &mut buf.filled_mut()[before..];
            if let Some(at) = this.framing.feed(fresh) {
                // A NUL where the head's final LF (or the bad chunk byte) was: hyper's parser
                // rejects it (400), and the bytes after it are dropped.
                fresh[at] = 0;
                *this.refused = true;
                buf.set_filled(before + at + 1);
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
    fn doubtful_framing_headers_are_refused_not_skipped() {
        let padding = " ".repeat(80);
        for head in [
            format!(
                "POST / HTTP/1.1\r\nContent-Length:{padding}4\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            format!(
                "POST / HTTP/1.1\r\nTransfer-Encoding:{padding}chunked\r\nContent-Length: 4\r\n\r\n"
            ),
            format!("POST / HTTP/1.1\r\nContent-Length: 4{padding}x\r\n\r\n"),
            "POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n".to_owned(),
            "POST / HTTP/1.1\r\nContent-Length: +4\r\n\r\n".to_owned(),
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_owned(),
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n".to_owned(),
        ] {
            let bytes = head.as_bytes();
            for split in 0..bytes.len() {
                assert_eq!(
                    refused_at(bytes, split),
                    Some(bytes.len() - 1),
                    "{head:?} split at {split}"
                );
            }
        }
    }

    #[test]
    fn a_later_head_with_a_long_framing_line_is_still_refused() {
        // The old guard stepped aside for the rest of the connection after one long line.
        let long = format!("X{}", "a".repeat(100));
        let input = format!(
            "POST / HTTP/1.1\r\nContent-Length:  {}\r\n\r\nGET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            long
        );
        assert_eq!(
            guard_refuses(input.as_bytes()),
            input.find("\r\n\r\n").map(|i| i + 3)
        );
    }

    #[test]
    fn a_chunked_body_it_cannot_follow_is_refused() {
        let input = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n";
        assert_eq!(guard_refuses(input), input.iter().position(|b| *b == b'X'));
        let input = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(guard_refuses(input), input.iter().position(|b| *b == b'z'));
        let ok = b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5 ;a=b\r\nhello\r\n0\r\n\r\n";
        assert_eq!(guard_refuses(ok), None);
    }

    /// A small deterministic generator (xorshift), so the differential test needs no crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    /// A request head built from random header lines, some of them framing headers in odd
    /// spellings, then mutated at the byte level.
    fn random_head(rng: &mut Rng) -> Vec<u8> {
        const NAMES: &[&str] = &[
            "Content-Length",
            "content-length",
            "CONTENT-LENGTH",
            "Transfer-Encoding",
            "transfer-encoding",
            "TrAnSfEr-EnCoDiNg",
            "Host",
            "X-A",
            "Content-Lengthx",
            "Transfer-Encodings",
            "Content-Length ",
            " Content-Length",
        ];
        const VALUES: &[&str] = &[
            "0",
            "5",
            "  5  ",
            "05",
            "+5",
            "-1",
            "5, 5",
            "18446744073709551616",
            "chunked",
            "gzip, chunked",
            "chunked, gzip",
            "identity",
            " chunked ",
            "x",
            "",
        ];
        let mut head =
            String::from(rng.pick(&["POST / HTTP/1.1", "GET /a HTTP/1.0", "\r\nPUT / HTTP/1.1"]));
        for _ in 0..rng.below(5) {
            let eol = rng.pick(&["\r\n", "\r\n", "\n"]);
            let pad = if rng.below(6) == 0 {
                40 + rng.below(80)
            } else {
                rng.below(2)
            };
            head.push_str(eol);
            head.push_str(rng.pick(NAMES));
            head.push(':');
            head.push_str(&" ".repeat(pad));
            head.push_str(rng.pick(VALUES));
        }
        head.push_str(rng.pick(&["\r\n\r\n", "\n\n", "\r\n\n"]));
        let mut bytes = head.into_bytes();
        const NOISE: &[u8] = b"\r\n :,\t\x00aZ9";
        for _ in 0..rng.below(3) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[at] = NOISE[rng.below(NOISE.len())],
                1 => bytes.insert(at, NOISE[rng.below(6)]),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        bytes
    }

    /// The fuzz target's property, bounded: whenever httparse reads a complete head with
    /// conflicting or repeated framing headers, the guard refuses it within that head; and the
    /// guard never panics, whatever the bytes and however they are split.
    #[test]
    fn differential_against_httparse() {
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        let mut conflicts = 0;
        for case in 0..4000 {
            let bytes = random_head(&mut rng);
            let split = rng.below(bytes.len() + 1);
            let verdict = guard_refuses(&bytes);
            assert_eq!(
                verdict,
                refused_at(&bytes, split),
                "case {case}: split changes the verdict"
            );
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut request = httparse::Request::new(&mut headers);
            let Ok(httparse::Status::Complete(head_len)) = request.parse(&bytes) else {
                continue;
            };
            let count = |name: &str| {
                request
                    .headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case(name))
                    .count()
            };
            let (cl, te) = (count("content-length"), count("transfer-encoding"));
            if (cl > 0 && te > 0) || cl > 1 || te > 1 {
                conflicts += 1;
                assert!(
                    verdict.is_some_and(|at| at < head_len),
                    "case {case}: {:?} has conflicting framing but the guard said {verdict:?}",
                    String::from_utf8_lossy(&bytes)
                );
            }
        }
        assert!(
            conflicts > 200,
            "the generator produced only {conflicts} conflicting heads"
        );
    }

    #[test]
    fn h2c_preface_turns_the_guard_off() {
        let input = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n";
        for split in 0..input.len() {
            assert_eq!(refused_at(input, split), None, "split at {split}");
        }
        // After the preface the guard follows nothing: HTTP/2 frames are never read as a head
        // (which would limit reads to what is left of `max_header_bytes`).
        for split in [5, 16, 18, 24] {
            let mut framing = Framing::with_max_head(100);
            let (a, b) = input.split_at(split);
            framing.feed(a);
            framing.feed(b);
            assert_eq!(framing.state, State::Inert, "split at {split}");
            assert_eq!(framing.head_room(), None, "split at {split}");
        }
    }

    #[test]
    fn names_and_chunked_are_matched_whatever_their_case() {
        let input = b"POST / HTTP/1.1\r\nCONTENT-Length: 1\r\nTransfer-ENCODING: Chunked\r\n\r\n";
        for split in 0..input.len() {
            assert_eq!(
                refused_at(input, split),
                Some(input.len() - 1),
                "split at {split}"
            );
        }
    }

    #[test]
    fn a_stray_cr_inside_a_line_reads_as_the_byte_walk_reads_it() {
        // A CR inside a line is left out of the name (the walk skips it): the line still reads
        // as Content-Length, whichever path reads it.
        let input = b"POST / HTTP/1.1\r\nContent-\rLength: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        for split in 0..input.len() {
            assert_eq!(
                refused_at(input, split),
                Some(input.len() - 1),
                "split at {split}"
            );
        }
    }
}
