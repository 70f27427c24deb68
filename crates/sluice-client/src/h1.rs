//! HTTP/1.1 on one connection, driven by the task that makes the call.
//!
//! hyper's client connection runs as a task of its own: a request crosses a channel to it, its
//! answer a oneshot back and its body a third channel, each a wake-up of another task and a
//! move of the message. A backend call of the gateway is one request at a time on one
//! connection, so here the caller writes the request and reads the answer itself (pingora's
//! shape): no task, no channel. The head is parsed by httparse (as hyper does) and the body
//! framed as RFC 9112 §6.3 says; the limits are hyper's.

use std::future::Future as _;
use std::io;
use std::mem::MaybeUninit;
use std::pin::pin;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Uri, Version};
use hyper::body::Frame;
use sluice_plugin::{AnswerHeaders, ForwardedFields};
use smallvec::SmallVec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most headers an answer may carry (hyper's default).
const MAX_HEADERS: usize = 100;
/// The largest answer head (hyper's default read-buffer limit).
const MAX_HEAD_BYTES: usize = 8192 + 4096 * 100;
/// A chunk-size line with its extensions, at most.
const MAX_CHUNK_LINE: usize = 4096;
/// A chunked body's trailer section, at most (its fields are the body's last frame).
const MAX_TRAILER_BYTES: usize = 16 * 1024;
/// The read buffer's least free room before a read.
const READ_ROOM: usize = 8 * 1024;
/// The most room asked for one read of a long body.
const MAX_READ_ROOM: usize = 64 * 1024;
/// A request body at most this long goes out in the head's write; a longer one on its own.
const INLINE_BODY: usize = 16 * 1024;

/// Why a request or its answer failed on the connection.
#[derive(Debug)]
pub(crate) struct H1Error {
    kind: H1ErrorKind,
    source: Option<io::Error>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum H1ErrorKind {
    /// Writing the request failed.
    Write,
    /// The connection closed (or was reset) before a byte of an answer came: on a reused
    /// connection, the backend had closed it while it was idle.
    Closed,
    /// The connection closed before the answer's head was complete.
    ClosedBeforeHead,
    /// Reading failed (a reset, ...).
    Read,
    /// The answer's head is not HTTP/1.
    Head(&'static str),
    /// The answer's head is larger than [`MAX_HEAD_BYTES`].
    HeadTooLarge,
    /// The body's framing is broken (a bad chunk size, a missing CRLF, too long a line).
    Framing(&'static str),
    /// The connection closed before the body was complete.
    Incomplete,
}

impl H1Error {
    fn new(kind: H1ErrorKind) -> Self {
        Self { kind, source: None }
    }

    fn io(kind: H1ErrorKind, source: io::Error) -> Self {
        Self {
            kind,
            source: Some(source),
        }
    }

    /// The connection closed before a byte of an answer came.
    pub(crate) fn is_closed(&self) -> bool {
        self.kind == H1ErrorKind::Closed
    }

    #[cfg(test)]
    fn kind(&self) -> H1ErrorKind {
        self.kind
    }
}

impl std::fmt::Display for H1Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            H1ErrorKind::Write => f.write_str("error writing the request"),
            H1ErrorKind::Closed | H1ErrorKind::ClosedBeforeHead => {
                f.write_str("connection closed before an answer's head was complete")
            }
            H1ErrorKind::Read => f.write_str("error reading the answer"),
            H1ErrorKind::Head(what) => write!(f, "invalid HTTP answer: {what}"),
            H1ErrorKind::HeadTooLarge => write!(
                f,
                "invalid HTTP answer: its head is larger than {MAX_HEAD_BYTES} bytes"
            ),
            H1ErrorKind::Framing(what) => write!(f, "invalid answer body: {what}"),
            H1ErrorKind::Incomplete => {
                f.write_str("connection closed before the body was complete")
            }
        }
    }
}

impl std::error::Error for H1Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

/// How the answer's body ends (RFC 9112 §6.3).
#[derive(Debug)]
pub(crate) enum Framing {
    /// This many bytes are left.
    Length(u64),
    Chunked(Chunked),
    /// Until the backend closes the connection.
    Eof,
    Done,
}

impl Framing {
    pub(crate) fn is_done(&self) -> bool {
        matches!(self, Self::Done | Self::Length(0))
    }

    pub(crate) fn exact_len(&self) -> Option<u64> {
        match self {
            Self::Length(n) => Some(*n),
            Self::Done => Some(0),
            _ => None,
        }
    }
}

/// An answer's head, and whether the connection may serve another request after its body.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: StatusCode,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    /// The fields handed on unread, for [`AnswerHeaders::Forward`].
    pub(crate) forwarded: Option<ForwardedFields>,
    pub(crate) framing: Framing,
    pub(crate) keep_alive: bool,
}

/// One HTTP/1.1 connection to a backend.
#[derive(Debug)]
pub(crate) struct Conn {
    io: TcpStream,
    /// Read and not yet taken.
    buf: BytesMut,
    /// The request being written (its allocation kept for the next).
    out: Vec<u8>,
    names: NameCache,
}

impl Conn {
    pub(crate) fn new(io: TcpStream) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            out: Vec::new(),
            names: NameCache::default(),
        }
    }

    /// Whether an idle connection can take a request: nothing arrived while it was idle (the
    /// backend's close, or a stray answer such as a 408). The reactor is asked first, so a
    /// quiet connection costs no system call.
    pub(crate) fn is_quiet(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        match self.io.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            // Readable: an EOF or bytes (neither leaves it usable), or readiness left over from
            // a read that filled its buffer exactly, which this read clears.
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Writes the request: the origin form of `url`, `Host` from its authority unless
    /// `headers` has one, `headers` without `Transfer-Encoding` or `Content-Length` (then
    /// `accept-encoding: gzip` when `ask_for_gzip`), and a
    /// `Content-Length` for a non-empty body, or an empty one of a POST, PUT or PATCH (Go's
    /// rule). On an error, also whether nothing of the request had gone out.
    pub(crate) async fn write_request(
        &mut self,
        method: &Method,
        url: &Uri,
        headers: &HeaderMap,
        ask_for_gzip: bool,
        body: &Bytes,
    ) -> Result<(), (H1Error, bool)> {
        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(method.as_str().as_bytes());
        out.push(b' ');
        match url.path_and_query() {
            Some(pq) if !pq.as_str().is_empty() => out.extend_from_slice(pq.as_str().as_bytes()),
            _ => out.push(b'/'),
        }
        out.extend_from_slice(b" HTTP/1.1\r\n");
        if !headers.keys().any(|name| name == header::HOST)
            && let Some(authority) = url.authority()
        {
            out.extend_from_slice(b"host: ");
            out.extend_from_slice(authority.as_str().as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        for (name, value) in headers {
            if name == header::TRANSFER_ENCODING || name == header::CONTENT_LENGTH {
                continue;
            }
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        if ask_for_gzip {
            out.extend_from_slice(b"accept-encoding: gzip\r\n");
        }
        if !body.is_empty() || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        let inline = body.len() <= INLINE_BODY;
        if inline {
            out.extend_from_slice(body);
        }
        write_all(&mut self.io, &self.out).await?;
        if !inline {
            write_all(&mut self.io, body)
                .await
                .map_err(|(e, _)| (e, false))?;
        }
        Ok(())
    }

    /// Reads the answer's head (past any 1xx but a 101).
    /// Only the headers `keep` names are kept (framing is decided by all of them).
    pub(crate) async fn read_head(
        &mut self,
        method: &Method,
        keep: AnswerHeaders,
    ) -> Result<Head, H1Error> {
        let mut received = false;
        loop {
            if !self.buf.is_empty() {
                received = true;
                if let Some(head) = parse_head(&mut self.buf, method, &mut self.names, keep)? {
                    return Ok(head);
                }
                if self.buf.len() >= MAX_HEAD_BYTES {
                    return Err(H1Error::new(H1ErrorKind::HeadTooLarge));
                }
            }
            self.buf.reserve(READ_ROOM);
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) if !received => return Err(H1Error::new(H1ErrorKind::Closed)),
                Ok(0) => return Err(H1Error::new(H1ErrorKind::ClosedBeforeHead)),
                Ok(_) => {}
                Err(e) if !received && e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(H1Error::new(H1ErrorKind::Closed));
                }
                Err(e) => return Err(H1Error::io(H1ErrorKind::Read, e)),
            }
        }
    }

    /// The body's next frame (data, or a chunked body's trailers last), `None` at its end.
    pub(crate) fn poll_frame(
        &mut self,
        framing: &mut Framing,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        loop {
            let room = match step(&mut self.buf, framing) {
                Ok(Step::Frame(frame)) => return Poll::Ready(Some(Ok(frame))),
                Ok(Step::End) => return Poll::Ready(None),
                Ok(Step::Read(room)) => room,
                Err(e) => return Poll::Ready(Some(Err(e))),
            };
            match ready!(self.poll_fill(cx, room)) {
                Ok(0) if matches!(framing, Framing::Eof) => *framing = Framing::Done,
                Ok(0) => return Poll::Ready(Some(Err(H1Error::new(H1ErrorKind::Incomplete)))),
                Ok(_) => {}
                Err(e) => return Poll::Ready(Some(Err(H1Error::io(H1ErrorKind::Read, e)))),
            }
        }
    }

    /// Whether nothing is left over past the answer: bytes after it are a broken backend (or
    /// an attempt at smuggling a second answer), and the connection is not reused.
    pub(crate) fn is_drained(&self) -> bool {
        self.buf.is_empty()
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>, room: usize) -> Poll<io::Result<usize>> {
        self.buf.reserve(room);
        // `read_buf` clears the socket's readiness on a short read, so the next read waits for
        // the reactor instead of costing a system call that finds nothing.
        pin!(self.io.read_buf(&mut self.buf)).poll(cx)
    }
}

/// What the body's framing makes of the bytes read so far.
enum Step {
    Frame(Frame<Bytes>),
    End,
    /// More must be read, with at least this much room.
    Read(usize),
}

fn step(buf: &mut BytesMut, framing: &mut Framing) -> Result<Step, H1Error> {
    match framing {
        Framing::Done => Ok(Step::End),
        Framing::Length(0) => {
            *framing = Framing::Done;
            Ok(Step::End)
        }
        Framing::Length(left) => {
            if buf.is_empty() {
                let room = usize::try_from(*left).map_or(MAX_READ_ROOM, |l| l.min(MAX_READ_ROOM));
                return Ok(Step::Read(room.max(READ_ROOM)));
            }
            let n = usize::try_from(*left).map_or(buf.len(), |l| l.min(buf.len()));
            *left -= n as u64;
            Ok(Step::Frame(Frame::data(buf.split_to(n).freeze())))
        }
        Framing::Eof if buf.is_empty() => Ok(Step::Read(READ_ROOM)),
        Framing::Eof => Ok(Step::Frame(Frame::data(buf.split().freeze()))),
        Framing::Chunked(chunked) => match chunked.decode(buf)? {
            Some(data) => Ok(Step::Frame(Frame::data(data))),
            None if chunked.is_done() => {
                let trailers = chunked.trailers.take();
                *framing = Framing::Done;
                Ok(trailers.map_or(Step::End, |t| Step::Frame(Frame::trailers(*t))))
            }
            None => Ok(Step::Read(READ_ROOM)),
        },
    }
}

/// A whole answer as the client reads it from a connection that gives `bytes` and then closes:
/// its status, its body and trailers, and whether the connection could serve again; the error
/// the client would give instead. For the fuzz target and the property tests.
#[doc(hidden)]
pub fn read_answer(
    bytes: &[u8],
    method: &Method,
) -> Result<(StatusCode, Vec<u8>, Option<HeaderMap>, bool), String> {
    let mut buf = BytesMut::from(bytes);
    let head = parse_head(
        &mut buf,
        method,
        &mut NameCache::default(),
        AnswerHeaders::All,
    )
    .map_err(|e| e.to_string())?
    .ok_or_else(|| H1Error::new(H1ErrorKind::ClosedBeforeHead).to_string())?;
    let (mut framing, mut body, mut trailers) = (head.framing, Vec::new(), None);
    loop {
        match step(&mut buf, &mut framing).map_err(|e| e.to_string())? {
            Step::Frame(frame) => match frame.into_data() {
                Ok(data) => body.extend_from_slice(&data),
                Err(frame) => trailers = frame.into_trailers().ok(),
            },
            Step::End => break,
            Step::Read(_) if matches!(framing, Framing::Eof) => framing = Framing::Done,
            Step::Read(_) => return Err(H1Error::new(H1ErrorKind::Incomplete).to_string()),
        }
    }
    Ok((
        head.status,
        body,
        trailers,
        head.keep_alive && buf.is_empty(),
    ))
}

/// Writes `bytes` in full; on an error, also whether none of them had gone out.
async fn write_all(io: &mut TcpStream, bytes: &[u8]) -> Result<(), (H1Error, bool)> {
    let mut done = 0;
    while done < bytes.len() {
        match io.write(&bytes[done..]).await {
            Ok(0) => {
                let e = io::Error::from(io::ErrorKind::WriteZero);
                return Err((H1Error::io(H1ErrorKind::Write, e), done == 0));
            }
            Ok(n) => done += n,
            Err(e) => return Err((H1Error::io(H1ErrorKind::Write, e), done == 0)),
        }
    }
    Ok(())
}

/// The names of a connection's last answer, by position: a backend sends the same names in the
/// same order answer after answer, so each is matched by its bytes instead of being parsed
/// (`HeaderName::from_bytes` looks up the standard names and lower-cases the others) again.
///
/// The gateway's server reads client request heads with it too.
#[derive(Debug, Default)]
pub struct NameCache {
    names: Vec<(Box<[u8]>, HeaderName)>,
}

/// How many of an answer's names a connection remembers.
const CACHED_NAMES: usize = 32;

impl NameCache {
    /// The name `raw`, the `at`-th its head looks up.
    pub fn name(
        &mut self,
        at: usize,
        raw: &[u8],
    ) -> Result<HeaderName, http::header::InvalidHeaderName> {
        if let Some((bytes, name)) = self.names.get(at)
            && **bytes == *raw
        {
            return Ok(name.clone());
        }
        let name = HeaderName::from_bytes(raw)?;
        if at < self.names.len() {
            self.names[at] = (raw.into(), name.clone());
        } else if at == self.names.len() && at < CACHED_NAMES {
            self.names.push((raw.into(), name.clone()));
        }
        Ok(name)
    }
}

/// What decides an answer's framing, gathered while its headers are read (RFC 9112 §6.3 and
/// §9.3).
#[derive(Debug, Default)]
struct FramingHeaders {
    content_length: Option<u64>,
    transfer_encoding: bool,
    /// The last coding of the last `Transfer-Encoding` is `chunked`.
    chunked_last: bool,
    close: bool,
    keep_alive: bool,
    /// `Connection` lists a name other than `keep-alive` (`close` included, as Go's proxy
    /// reads it): a forwarded answer's fields of that name are left out too.
    lists_names: bool,
}

impl FramingHeaders {
    fn see(&mut self, name: &HeaderName, value: &[u8]) -> Result<(), H1Error> {
        if *name == header::CONTENT_LENGTH {
            for part in value.split(|&b| b == b',') {
                let n = parse_decimal(trim(part))
                    .ok_or_else(|| H1Error::new(H1ErrorKind::Head("an invalid Content-Length")))?;
                if self.content_length.is_some_and(|l| l != n) {
                    return Err(H1Error::new(H1ErrorKind::Head(
                        "Content-Length values that differ",
                    )));
                }
                self.content_length = Some(n);
            }
        } else if *name == header::TRANSFER_ENCODING {
            self.transfer_encoding = true;
            self.chunked_last = ends_in_chunked(value);
        } else if *name == header::CONNECTION {
            for token in value.split(|&b| b == b',').map(trim) {
                let keep_alive = token.eq_ignore_ascii_case(b"keep-alive");
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive |= keep_alive;
                self.lists_names |= !keep_alive && !token.is_empty();
            }
        }
        Ok(())
    }

    /// How the body ends and whether the connection outlives it.
    fn framing(&self, status: StatusCode, version: Version, method: &Method) -> (Framing, bool) {
        let mut keep_alive = if version == Version::HTTP_11 {
            !self.close
        } else {
            self.keep_alive && !self.close
        };
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return (Framing::Done, false);
        }
        if *method == Method::HEAD
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return (Framing::Done, keep_alive);
        }
        if version == Version::HTTP_11 && self.transfer_encoding {
            // Both framings: the length is ignored, and the connection not trusted again.
            if self.content_length.is_some() {
                keep_alive = false;
            }
            return if self.chunked_last {
                (Framing::Chunked(Chunked::default()), keep_alive)
            } else {
                (Framing::Eof, false)
            };
        }
        match self.content_length {
            Some(n) => (Framing::Length(n), keep_alive),
            None => (Framing::Eof, false),
        }
    }
}

/// The head at the start of `buf` if it is complete (taken out of `buf`), `None` if more is
/// needed. A 1xx answer other than 101 is dropped and the next head parsed. Every header is
/// checked and decides the framing; only those `keep` names are put in the head's map.
fn parse_head(
    buf: &mut BytesMut,
    method: &Method,
    cache: &mut NameCache,
    keep: AnswerHeaders,
) -> Result<Option<Head>, H1Error> {
    loop {
        // Not initialised first: httparse writes the ones it uses (a hundred empty headers
        // cost more than the parse of a short head's names).
        let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut response,
            buf,
            &mut slots,
        );
        let len = match parsed {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(H1Error::new(H1ErrorKind::Head("more than 100 headers")));
            }
            Err(e) => return Err(H1Error::new(H1ErrorKind::Head(parse_error(e)))),
        };
        let code = response.code.unwrap_or_default();
        let status = StatusCode::from_u16(code)
            .map_err(|_| H1Error::new(H1ErrorKind::Head("a status code out of range")))?;
        let version = if response.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            let _ = buf.split_to(len);
            continue;
        }
        let base = buf.as_ptr() as usize;
        let mut found = FramingHeaders::default();
        // A map of a few headers is cheap; one of every header a backend sends is not (an
        // insert, a value and a drop each), and a decoded answer's are never read.
        let room = if keep == AnswerHeaders::All {
            response.headers.len()
        } else {
            0
        };
        // On the stack for a decoded or forwarded answer's few kept fields.
        let mut spans: SmallVec<[(HeaderName, usize, usize); 6]> = SmallVec::with_capacity(room);
        // A field handed on unread stays where it is in the head; a hop-by-hop one is left out
        // (`Connection` and `Transfer-Encoding` are read for the framing below).
        let mut forwarded =
            (keep == AnswerHeaders::Forward).then(|| ForwardedFields::new(response.headers.len()));
        // The cache is indexed by the names looked up, not the fields read: a decoded answer
        // skips most fields, and its few names keep their places from one answer to the next.
        let mut named = 0;
        for h in response.headers.iter() {
            let raw = h.name.as_bytes();
            if !needs_name(keep, raw) {
                if let Some(fields) = &mut forwarded
                    && sluice_plugin::hop_by_hop_index(raw).is_none()
                {
                    let name = raw.as_ptr() as usize - base;
                    let value = h.value.as_ptr() as usize - base;
                    let (name, value) = (name..name + raw.len(), value..value + h.value.len());
                    fields.push(&buf[..len], name, value);
                }
                continue;
            }
            let name = cache
                .name(named, raw)
                .map_err(|_| H1Error::new(H1ErrorKind::Head("an invalid header name")))?;
            named += 1;
            found.see(&name, h.value)?;
            if keep.keeps(&name) {
                spans.push((name, h.value.as_ptr() as usize - base, h.value.len()));
            }
        }
        // The names `Connection` lists (rare: most say `keep-alive` or nothing), while the
        // head is at hand: their fields are left out too.
        let listed: Vec<Vec<u8>> = if forwarded.is_some() && found.lists_names {
            response
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("connection"))
                .flat_map(|h| sluice_plugin::connection_listed(h.value).map(<[u8]>::to_vec))
                .collect()
        } else {
            Vec::new()
        };
        let head = buf.split_to(len).freeze();
        // A forwarded answer's map gets the render's own two fields (`X-KrakenD-Completed`,
        // `X-Sluice`) without growing.
        let room = spans.len() + if forwarded.is_some() { 2 } else { 0 };
        let mut headers = HeaderMap::with_capacity(room);
        for (name, start, len) in spans.drain(..) {
            headers.append(name, parsed_value(head.slice(start..start + len)));
        }
        let (framing, keep_alive) = found.framing(status, version, method);
        return Ok(Some(Head {
            status,
            version,
            headers,
            forwarded: forwarded.map(|fields| {
                let mut fields = fields.with_head(head);
                if !listed.is_empty() {
                    let listed: Vec<&[u8]> = listed.iter().map(Vec::as_slice).collect();
                    fields.remove_named(&listed);
                }
                fields
            }),
            framing,
            keep_alive,
        }));
    }
}

/// Whether a field named `raw` needs its `HeaderName` in a head read for `keep`: every field
/// for `All`; for `Content` and `Forward`, those [`AnswerHeaders::keeps`] and those that
/// decide the framing ([`FramingHeaders::see`]). Told by the name's length and bytes, so a
/// decoded or forwarded answer's other fields cost no name (httparse has already checked that
/// every name is a token, as `HeaderName` would).
fn needs_name(keep: AnswerHeaders, raw: &[u8]) -> bool {
    if keep == AnswerHeaders::All {
        return true;
    }
    let name: &[u8] = match raw.len() {
        8 => b"location",
        10 => b"connection",
        12 => b"content-type",
        14 => b"content-length",
        16 => b"content-encoding",
        17 => b"transfer-encoding",
        _ => return false,
    };
    is_lower_name(raw, name)
}

/// Whether the field name `raw` (a token: httparse checked it) is the lower-case `name` of the
/// same length, 8 to 24 bytes, in any case. Compared eight bytes at a time (the first, the last
/// and the middle eight), each of `raw`'s with its 0x20 bit set: that lower-cases a letter and
/// leaves `-`, and turns no other token byte into a letter or `-` (`eq_ignore_ascii_case`,
/// a byte at a time, cost ~25 instructions a byte here).
fn is_lower_name(raw: &[u8], name: &[u8]) -> bool {
    const CASE: u64 = 0x2020_2020_2020_2020;
    let word = |bytes: &[u8], at: usize| {
        bytes
            .get(at..)
            .and_then(<[u8]>::first_chunk::<8>)
            .map(|w| u64::from_le_bytes(*w))
    };
    raw.len() == name.len()
        && name.len() >= 8
        && [0, 8, name.len() - 8]
            .into_iter()
            .all(|at| word(raw, at).map(|w| w | CASE) == word(name, at))
}

/// A header value httparse accepted, taken as it is: httparse allows in a value exactly the
/// bytes `HeaderValue` does (tab, 0x20 to 0x7e, 0x80 to 0xff, in its scalar and its SIMD
/// paths), so checking them again costs a pass over every value of every head for nothing.
///
/// The gateway's server builds client request heads' values with it too.
#[allow(unsafe_code, reason = "the value's bytes were checked by httparse")]
pub fn parsed_value(bytes: Bytes) -> HeaderValue {
    // SAFETY: `bytes` is a header value as httparse returned it, whose bytes are all in the set
    // `HeaderValue` requires (above). The contract is the value's validity, not memory
    // safety, and builds with debug assertions (the tests) check it again in `http`.
    unsafe { HeaderValue::from_maybe_shared_unchecked(bytes) }
}

fn parse_error(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "an invalid header name",
        httparse::Error::HeaderValue => "an invalid header value",
        httparse::Error::NewLine => "an invalid line ending",
        httparse::Error::Status => "an invalid status",
        httparse::Error::Version => "not HTTP/1.x",
        _ => "an invalid head",
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// Whether the last coding of a `Transfer-Encoding` value is `chunked` (the gateway's server
/// writes its answers' by it too).
pub fn ends_in_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|&b| b == b',')
        .next()
        .is_some_and(|last| trim(last).eq_ignore_ascii_case(b"chunked"))
}

/// Digits only (no sign, no blank), at most 19 of them: a `Content-Length` value (the
/// gateway's server reads its answers' with it too).
pub fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0')),
    )
}

/// The chunked coding's decoder: chunk-size lines (extensions ignored), data, the CRLF after
/// it, and the trailer section (handed on as the body's last frame, as hyper does).
#[derive(Debug, Default)]
pub(crate) struct Chunked {
    state: ChunkState,
    trailer_bytes: usize,
    /// Boxed: rare, and inline it would make every answer's framing (moved with its head and
    /// body on the way up) a map larger.
    trailers: Option<Box<HeaderMap>>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

impl Chunked {
    fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// The next piece of data from `buf`, `None` when `buf` holds no more of it (the end, or
    /// more must be read first).
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, H1Error> {
        loop {
            match self.state {
                ChunkState::Done => return Ok(None),
                ChunkState::Size => {
                    let Some(line) =
                        take_line(buf, MAX_CHUNK_LINE, "a chunk-size line is too long")?
                    else {
                        return Ok(None);
                    };
                    let size = chunk_size(&line)?;
                    self.state = if size == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                    return Ok(Some(buf.split_to(n).freeze()));
                }
                ChunkState::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(None);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(H1Error::new(H1ErrorKind::Framing(
                            "a chunk's data is not followed by CRLF",
                        )));
                    }
                    let _ = buf.split_to(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let limit = MAX_TRAILER_BYTES.saturating_sub(self.trailer_bytes);
                    let Some(line) = take_line(buf, limit, "the trailer section is too long")?
                    else {
                        return Ok(None);
                    };
                    self.trailer_bytes += line.len() + 2;
                    if line.is_empty() {
                        self.state = ChunkState::Done;
                    } else {
                        let (name, value) = trailer_field(&line)?;
                        self.trailers
                            .get_or_insert_with(Box::default)
                            .append(name, value);
                    }
                }
            }
        }
    }
}

/// The line at the start of `buf` without its CRLF (taken out of `buf`), `None` if it is not
/// complete yet. A bare LF is an error, and a line longer than `limit` the error `too_long`.
fn take_line(
    buf: &mut BytesMut,
    limit: usize,
    too_long: &'static str,
) -> Result<Option<BytesMut>, H1Error> {
    match buf.iter().position(|&b| b == b'\n') {
        Some(end) if end > limit => Err(H1Error::new(H1ErrorKind::Framing(too_long))),
        Some(end) => {
            if end == 0 || buf[end - 1] != b'\r' {
                return Err(H1Error::new(H1ErrorKind::Framing(
                    "a line ending without CR",
                )));
            }
            let mut line = buf.split_to(end + 1);
            line.truncate(end - 1);
            Ok(Some(line))
        }
        None if buf.len() > limit => Err(H1Error::new(H1ErrorKind::Framing(too_long))),
        None => Ok(None),
    }
}

/// A trailer line's `name: value`.
fn trailer_field(line: &[u8]) -> Result<(HeaderName, HeaderValue), H1Error> {
    let bad = || H1Error::new(H1ErrorKind::Framing("an invalid trailer field"));
    let colon = line.iter().position(|&b| b == b':').ok_or_else(bad)?;
    let name = HeaderName::from_bytes(&line[..colon]).map_err(|_| bad())?;
    let value = HeaderValue::from_bytes(trim(&line[colon + 1..])).map_err(|_| bad())?;
    Ok((name, value))
}

/// A chunk-size line's size: hex digits, then optional blanks and `;extensions`.
fn chunk_size(line: &[u8]) -> Result<u64, H1Error> {
    let bad = || H1Error::new(H1ErrorKind::Framing("an invalid chunk size"));
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(bad());
    }
    let rest = trim(&line[digits..]);
    if !rest.is_empty() && rest[0] != b';' {
        return Err(bad());
    }
    let mut size = 0u64;
    for &d in &line[..digits] {
        let v = (d as char).to_digit(16).ok_or_else(bad)?;
        size = (size << 4) | u64::from(v);
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// What `parsed_value` relies on: httparse accepts a byte in a header value exactly when
    /// `HeaderValue` does, at every position of a value long enough for its SIMD paths.
    #[test]
    fn httparse_accepts_exactly_the_bytes_a_header_value_allows() {
        for byte in 0..=255u8 {
            if matches!(byte, b'\r' | b'\n') {
                continue;
            }
            for at in [0, 1, 15, 31, 32, 47, 63] {
                let mut value = vec![b'v'; 64];
                value[at] = byte;
                let mut head = b"HTTP/1.1 200 OK\r\nx-test: ".to_vec();
                head.extend_from_slice(&value);
                head.extend_from_slice(b"\r\n\r\n");
                let mut buf = BytesMut::from(&head[..]);
                let parsed = parse_head(
                    &mut buf,
                    &Method::GET,
                    &mut NameCache::default(),
                    AnswerHeaders::All,
                );
                // httparse trims a value's leading and trailing blanks, so those positions
                // hold only bytes both accept.
                let allowed = HeaderValue::from_bytes(&value).is_ok();
                assert_eq!(parsed.is_ok(), allowed, "byte {byte:#04x} at {at}");
                if let Ok(Some(parsed)) = parsed {
                    let got = parsed.headers.get("x-test").unwrap().as_bytes();
                    assert_eq!(got, value.trim_ascii(), "byte {byte:#04x} at {at}");
                }
            }
        }
    }

    fn chunks(input: &[u8]) -> Result<(Vec<u8>, bool), H1Error> {
        decode_all(input).map(|(data, done, _)| (data, done))
    }

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, bool, Option<HeaderMap>), H1Error> {
        let mut buf = BytesMut::from(input);
        let mut decoder = Chunked::default();
        let mut out = Vec::new();
        while let Some(data) = decoder.decode(&mut buf)? {
            out.extend_from_slice(&data);
        }
        Ok((out, decoder.is_done(), decoder.trailers.map(|t| *t)))
    }

    #[test]
    fn decodes_chunks_with_extensions_and_trailers() {
        let (data, done) =
            chunks(b"5;name=x\r\nhello\r\n1 \r\n \r\nA\r\n0123456789\r\n0\r\nx-t: 1\r\n\r\n")
                .unwrap();
        assert_eq!(data, b"hello 0123456789");
        assert!(done);
        let (_, _, trailers) =
            decode_all(b"1\r\nx\r\n0\r\nX-Checksum: abc \r\nx-more:1\r\n\r\n").unwrap();
        let trailers = trailers.unwrap();
        assert_eq!(trailers.get("x-checksum").unwrap(), "abc");
        assert_eq!(trailers.get("x-more").unwrap(), "1");
        assert!(decode_all(b"0\r\n\r\n").unwrap().2.is_none());
        assert_eq!(
            chunks(b"0\r\nno colon\r\n\r\n").unwrap_err().kind(),
            H1ErrorKind::Framing("an invalid trailer field")
        );
    }

    #[test]
    fn chunks_split_anywhere_decode_the_same() {
        let input = b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
        for cut in 0..input.len() {
            let mut buf = BytesMut::from(&input[..cut]);
            let mut decoder = Chunked::default();
            let mut out = Vec::new();
            while let Some(d) = decoder.decode(&mut buf).unwrap() {
                out.extend_from_slice(&d);
            }
            buf.extend_from_slice(&input[cut..]);
            while let Some(d) = decoder.decode(&mut buf).unwrap() {
                out.extend_from_slice(&d);
            }
            assert_eq!(out, b"abc0123456789abcdef", "cut at {cut}");
            assert!(decoder.is_done(), "cut at {cut}");
        }
    }

    #[test]
    fn rejects_broken_chunks() {
        for (input, what) in [
            (&b"x\r\n"[..], "an invalid chunk size"),
            (b"-1\r\n", "an invalid chunk size"),
            (b"11111111111111111\r\n", "an invalid chunk size"),
            (b"3 x\r\n", "an invalid chunk size"),
            (b"3\nabc", "a line ending without CR"),
            (b"3\r\nabcX\r\n", "a chunk's data is not followed by CRLF"),
        ] {
            let e = chunks(input).unwrap_err();
            assert_eq!(e.kind(), H1ErrorKind::Framing(what), "{input:?}");
        }
        let long = [b'1'; MAX_CHUNK_LINE + 10];
        assert!(chunks(&long).is_err());
        let mut trailers = b"0\r\n".to_vec();
        trailers.extend(std::iter::repeat_n(b"x: y\r\n", 4000).flatten());
        assert!(chunks(&trailers).is_err());
    }

    fn head(input: &[u8], method: &Method) -> Result<Option<Head>, H1Error> {
        parse_head(
            &mut BytesMut::from(input),
            method,
            &mut NameCache::default(),
            AnswerHeaders::All,
        )
    }

    #[test]
    fn frames_answers_as_rfc_9112_says() {
        let get = Method::GET;
        let h = head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", &get)
            .unwrap()
            .unwrap();
        assert!(matches!(h.framing, Framing::Length(5)) && h.keep_alive);
        let h = head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nConnection: close\r\n\r\n",
            &get,
        )
        .unwrap()
        .unwrap();
        assert!(matches!(h.framing, Framing::Length(5)) && !h.keep_alive);
        let h = head(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", &get)
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive && h.version == Version::HTTP_10);
        let h = head(
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 5\r\n\r\n",
            &get,
        )
        .unwrap()
        .unwrap();
        assert!(h.keep_alive);
        let h = head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n",
            &get,
        )
        .unwrap()
        .unwrap();
        assert!(matches!(h.framing, Framing::Chunked(_)) && !h.keep_alive);
        let h = head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", &get)
            .unwrap()
            .unwrap();
        assert!(matches!(h.framing, Framing::Eof) && !h.keep_alive);
        let h = head(b"HTTP/1.1 200 OK\r\n\r\n", &get).unwrap().unwrap();
        assert!(matches!(h.framing, Framing::Eof) && !h.keep_alive);
        let h = head(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            &Method::HEAD,
        )
        .unwrap()
        .unwrap();
        assert!(h.framing.is_done() && h.keep_alive);
        for status in [204, 304] {
            let input = format!("HTTP/1.1 {status} X\r\nContent-Length: 5\r\n\r\n");
            let h = head(input.as_bytes(), &get).unwrap().unwrap();
            assert!(h.framing.is_done(), "{status}");
        }
        // 1xx answers are passed over; the final one is the answer.
        let h = head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", &get)
            .unwrap()
            .unwrap();
        assert_eq!(h.status, StatusCode::CREATED);
        assert!(h.headers.get("link").is_none());
        assert!(
            head(b"HTTP/1.1 200 OK\r\nContent-Le", &get)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_decoded_answers_head_keeps_its_content_headers_and_is_framed_by_all() {
        let input = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\n\
            Set-Cookie: a=1\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\
            Connection: close\r\nLocation: /next\r\nContent-Length: 3\r\nX-Custom: y\r\n\r\n";
        let mut cache = NameCache::default();
        let h = parse_head(
            &mut BytesMut::from(&input[..]),
            &Method::GET,
            &mut cache,
            AnswerHeaders::Content,
        )
        .unwrap()
        .unwrap();
        // The names it looked up, in their places for the next answer of the same shape.
        let cached: Vec<_> = cache.names.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(
            cached,
            [
                "content-type",
                "content-encoding",
                "transfer-encoding",
                "connection",
                "location",
                "content-length"
            ]
        );
        let names: Vec<_> = h.headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "content-encoding",
                "location",
                "content-length"
            ]
        );
        assert_eq!(h.headers["content-type"], "application/json");
        // Transfer-Encoding and Connection, left out of the map, still decide the framing.
        assert!(matches!(h.framing, Framing::Chunked(_)) && !h.keep_alive);
        // The same head in full.
        let all = head(input, &Method::GET).unwrap().unwrap();
        assert_eq!(all.headers.len(), 9);
        assert_eq!(all.headers["x-custom"], "y");
    }

    /// A forwarded answer's head: what `Content` keeps in the map, every other field as the
    /// backend wrote it, but the hop-by-hop ones and those `Connection` lists (which still
    /// frame it).
    #[test]
    fn a_forwarded_answers_head_keeps_its_other_fields_as_written() {
        let input = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\n\
            Set-Cookie: a=1\r\nTransfer-Encoding: chunked\r\nConnection: close, X-Hop\r\n\
            x-custom:y\r\nx-hop: 1\r\nKEEP-ALIVE: 5\r\nTE: x\r\nX-Kept: 2\r\n\r\nbody";
        let mut buf = BytesMut::from(&input[..]);
        let h = parse_head(
            &mut buf,
            &Method::GET,
            &mut NameCache::default(),
            AnswerHeaders::Forward,
        )
        .unwrap()
        .unwrap();
        assert_eq!(&buf[..], b"body");
        let names: Vec<_> = h.headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["content-type"]);
        let forwarded = h.forwarded.expect("the other fields");
        let fields: Vec<_> = forwarded.iter().collect();
        assert_eq!(
            fields,
            [
                (&b"Server"[..], &b"nginx"[..]),
                (b"Set-Cookie", b"a=1"),
                (b"x-custom", b"y"),
                (b"X-Kept", b"2"),
            ]
        );
        let mut out = Vec::new();
        forwarded.write(&mut out);
        assert_eq!(
            out,
            b"Server: nginx\r\nSet-Cookie: a=1\r\nx-custom: y\r\nX-Kept: 2\r\n"
        );
        assert!(matches!(h.framing, Framing::Chunked(_)) && !h.keep_alive);
        // Without a name listed, `Connection` and the rest are simply left out.
        let input = b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nX-A: 1\r\n\
            Content-Length: 0\r\nProxy-Authenticate: b\r\nX-B: 2\r\n\r\n";
        let h = parse_head(
            &mut BytesMut::from(&input[..]),
            &Method::GET,
            &mut NameCache::default(),
            AnswerHeaders::Forward,
        )
        .unwrap()
        .unwrap();
        let mut out = Vec::new();
        h.forwarded.expect("the other fields").write(&mut out);
        assert_eq!(out, b"X-A: 1\r\nX-B: 2\r\n");
        assert!(h.keep_alive);
        // Nothing forwarded unless asked for.
        let all = head(input, &Method::GET).unwrap().unwrap();
        assert!(all.forwarded.is_none());
    }

    /// A decoded answer's head builds a name only for the fields it keeps or is framed by,
    /// told by the name's bytes in any case.
    #[test]
    fn a_decoded_answer_names_only_the_fields_it_keeps_or_is_framed_by() {
        let framing = [
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::CONNECTION,
        ];
        for name in [
            "Content-Type",
            "content-length",
            "CONTENT-ENCODING",
            "Location",
            "Transfer-Encoding",
            "connection",
            "Server",
            "Date",
            "Set-Cookie",
            "Content-Language",
            "Content-Location",
            "Last-Modified",
            "Accept-Ranges",
            "X-Content-Type-Options",
            "Locations",
            "Connections",
            "Keep-Alive",
            "LOCATION",
            "cOnNeCtIoN",
            "Content_Type",
            "Content-Lengtg",
            "Content~Encoding",
            "Transfer-Encodin^",
            "Transfer-encoding",
            "Location",
            "Locatio_",
        ] {
            let parsed = HeaderName::from_bytes(name.as_bytes()).unwrap();
            assert_eq!(
                needs_name(AnswerHeaders::Content, name.as_bytes()),
                AnswerHeaders::Content.keeps(&parsed) || framing.contains(&parsed),
                "{name}"
            );
            assert!(needs_name(AnswerHeaders::All, name.as_bytes()));
        }
    }

    /// The premise of leaving names unbuilt: httparse accepts a field name exactly when
    /// `HeaderName` does, for every byte value at its start, middle and end.
    #[test]
    fn httparse_and_header_name_agree_on_names() {
        for byte in 0..=255u8 {
            for at in 0..3 {
                let mut name = b"ab".to_vec();
                name.insert(at, byte);
                let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
                input.extend_from_slice(&name);
                input.extend_from_slice(b": v\r\nContent-Length: 0\r\n\r\n");
                let mut slots = [httparse::EMPTY_HEADER; 4];
                let mut response = httparse::Response::new(&mut slots);
                let accepted = matches!(response.parse(&input), Ok(httparse::Status::Complete(_)))
                    && response.headers.first().map(|h| h.name.as_bytes()) == Some(&name[..]);
                assert_eq!(
                    accepted,
                    HeaderName::from_bytes(&name).is_ok(),
                    "{byte:#04x} at {at}"
                );
            }
        }
    }

    #[test]
    fn rejects_broken_heads() {
        let get = Method::GET;
        for (input, what) in [
            (
                &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..],
                "Content-Length values that differ",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
                "an invalid Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n",
                "an invalid Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
                "an invalid Content-Length",
            ),
            (b"HTTP/1.1 099 Low\r\n\r\n", "a status code out of range"),
            (b"HTTP/2.0 200 OK\r\n\r\n", "not HTTP/1.x"),
            (
                b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
                "an invalid header name",
            ),
        ] {
            let e = head(input, &get).unwrap_err();
            assert_eq!(
                e.kind(),
                H1ErrorKind::Head(what),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..101 {
            many.extend_from_slice(format!("x-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            head(&many, &get).unwrap_err().kind(),
            H1ErrorKind::Head("more than 100 headers")
        );
    }

    #[test]
    fn a_connections_names_are_matched_by_position_and_bytes() {
        let mut cache = NameCache::default();
        let mut parse = |input: &[u8]| {
            parse_head(
                &mut BytesMut::from(input),
                &Method::GET,
                &mut cache,
                AnswerHeaders::All,
            )
            .unwrap()
            .unwrap()
            .headers
        };
        let first =
            parse(b"HTTP/1.1 200 OK\r\nContent-Type: a\r\nX-One: 1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(first.get("content-type").unwrap(), "a");
        assert_eq!(first.get("x-one").unwrap(), "1");
        // Other names, and the same names elsewhere or written otherwise.
        let second = parse(b"HTTP/1.1 200 OK\r\nX-One: 2\r\ncontent-TYPE: b\r\nX-Two: 3\r\nContent-Length: 0\r\n\r\n");
        let names: Vec<_> = second.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-one", "content-type", "x-two", "content-length"]);
        assert_eq!(second.get("content-type").unwrap(), "b");
        assert_eq!(second.get("x-two").unwrap(), "3");
        let third = parse(b"HTTP/1.1 200 OK\r\nX-One: 4\r\ncontent-TYPE: c\r\nX-Two: 5\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(third, {
            let mut expected = HeaderMap::new();
            expected.insert("x-one", HeaderValue::from_static("4"));
            expected.insert("content-type", HeaderValue::from_static("c"));
            expected.insert("x-two", HeaderValue::from_static("5"));
            expected.insert("content-length", HeaderValue::from_static("0"));
            expected
        });
    }

    /// A seeded generator: the same cases on every run.
    struct Cases(rand::rngs::StdRng);

    impl Cases {
        fn new(seed: u64) -> Self {
            Self(rand::SeedableRng::seed_from_u64(seed))
        }

        fn next(&mut self) -> u64 {
            rand::Rng::random(&mut self.0)
        }

        fn below(&mut self, n: usize) -> usize {
            rand::Rng::random_range(&mut self.0, 0..n)
        }
    }

    #[test]
    fn any_body_cut_into_any_chunks_reads_back_whole() {
        let mut rng = Cases::new(0x5eed_1234_abcd_ef01);
        for case in 0..3000 {
            let body: Vec<u8> = (0..rng.below(400)).map(|_| rng.next() as u8).collect();
            let mut answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            let mut rest = &body[..];
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len());
                let size = if rng.below(2) == 0 {
                    format!("{n:x}")
                } else {
                    format!("{n:X}")
                };
                answer.extend_from_slice(size.as_bytes());
                if rng.below(4) == 0 {
                    answer.extend_from_slice(b" ;ext=\"v\"");
                }
                answer.extend_from_slice(b"\r\n");
                answer.extend_from_slice(&rest[..n]);
                answer.extend_from_slice(b"\r\n");
                rest = &rest[n..];
            }
            answer.extend_from_slice(b"0\r\n");
            let trailer = rng.below(3) == 0;
            if trailer {
                answer.extend_from_slice(b"X-Sum: 1\r\n");
            }
            answer.extend_from_slice(b"\r\n");
            let (status, read, trailers, reusable) =
                read_answer(&answer, &Method::GET).unwrap_or_else(|e| panic!("case {case}: {e}"));
            assert_eq!(status, StatusCode::OK);
            assert_eq!(read, body, "case {case}");
            assert_eq!(trailers.is_some(), trailer, "case {case}");
            assert!(reusable, "case {case}");
        }
    }

    #[test]
    fn broken_answers_are_errors_never_panics() {
        let valid: [&[u8]; 3] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nT: 1\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 404 Not Found\r\n\r\ngone",
        ];
        let mut rng = Cases::new(0x0ddb_a11c_0ffe_e000);
        for case in 0..20_000 {
            let mut answer = valid[case % valid.len()].to_vec();
            for _ in 0..1 + rng.below(4) {
                const BYTES: &[u8] = b"\r\n:;0aF, \t";
                match rng.below(3) {
                    0 if !answer.is_empty() => {
                        let at = rng.below(answer.len());
                        answer[at] = rng.next() as u8;
                    }
                    1 => answer.truncate(rng.below(answer.len() + 1)),
                    _ => {
                        let at = rng.below(answer.len() + 1);
                        answer.insert(at, BYTES[rng.below(BYTES.len())]);
                    }
                }
            }
            // Whatever it returns, it returns: a body never longer than what came.
            if let Ok((_, body, _, _)) = read_answer(&answer, &Method::GET) {
                assert!(body.len() <= answer.len(), "case {case}");
            }
        }
    }
}
