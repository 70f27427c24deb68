use std::future::Future as _;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};

/// A boxed error, the error type of response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A response body that may stream (hyper's `Incoming`) or be fully buffered.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A body holding the given bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// The error a [`with_deadline`] body ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadlinePassed;

impl std::fmt::Display for DeadlinePassed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the body was not complete by its deadline")
    }
}

impl std::error::Error for DeadlinePassed {}

/// `body`, ending with [`DeadlinePassed`] once `deadline` passes. A streaming body that never
/// ends (or ends too slowly) is cut: hyper then aborts the response instead of finishing it, so
/// the client cannot take a truncated answer for a whole one.
pub fn with_deadline(body: Body, deadline: tokio::time::Instant) -> Body {
    Deadline {
        inner: body,
        sleep: Box::pin(tokio::time::sleep_until(deadline)),
    }
    .boxed_unsync()
}

struct Deadline {
    inner: Body,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        // The deadline first: a body that is always ready must not outrun it either.
        if self.sleep.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(Some(Err(Box::new(DeadlinePassed))));
        }
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Why a body could not be read in full.
#[derive(Debug)]
pub enum CollectError {
    /// It is longer than the limit.
    TooLarge(usize),
    /// The transport failed while reading it.
    Transport(BoxError),
    /// It says `Content-Encoding: gzip` and is not valid gzip.
    InvalidGzip(String),
    /// It is gzip and decompresses to more than the limit.
    DecompressedTooLarge(usize),
    /// Its `Content-Encoding` is one Sluice does not decode (the value, as sent).
    UnsupportedCoding(String),
}

impl std::fmt::Display for CollectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CollectError::TooLarge(limit) => write!(f, "body larger than {limit} bytes"),
            CollectError::Transport(e) => write!(f, "error reading the body: {e}"),
            CollectError::InvalidGzip(e) => write!(f, "body is not valid gzip: {e}"),
            CollectError::DecompressedTooLarge(limit) => {
                write!(f, "body larger than {limit} bytes once decompressed")
            }
            CollectError::UnsupportedCoding(coding) => write!(
                f,
                "body has Content-Encoding {coding:?}, which cannot be decoded (only gzip can)"
            ),
        }
    }
}

impl std::error::Error for CollectError {}

impl From<CollectError> for crate::ExecError {
    fn from(error: CollectError) -> Self {
        let kind = match error {
            CollectError::TooLarge(_) | CollectError::DecompressedTooLarge(_) => {
                crate::ErrorKind::BodyTooLarge
            }
            CollectError::Transport(_)
            | CollectError::InvalidGzip(_)
            | CollectError::UnsupportedCoding(_) => crate::ErrorKind::Protocol,
        };
        crate::ExecError::upstream(kind, format!("backend {error}"))
    }
}

/// Reads a whole body, refusing to buffer more than `limit` bytes (checked per frame, so a
/// huge body is abandoned as soon as it passes the limit).
pub async fn collect(mut body: Body, limit: usize) -> Result<Bytes, CollectError> {
    use http_body::Body as _;
    let mut buffer = bytes::BytesMut::new();
    let mut first: Option<Bytes> = None;
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let frame = frame.map_err(CollectError::Transport)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let total = first.as_ref().map_or(0, Bytes::len) + buffer.len() + data.len();
        if total > limit {
            return Err(CollectError::TooLarge(limit));
        }
        // Most bodies are one frame: keep it without copying.
        match first.take() {
            None if buffer.is_empty() => first = Some(data),
            previous => {
                if let Some(previous) = previous {
                    // From the second frame on, room for what the body says is left (within
                    // the limit), so a large body is not copied into ever larger buffers.
                    let rest = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
                    buffer.reserve(total.saturating_add(rest).min(limit));
                    buffer.extend_from_slice(&previous);
                }
                buffer.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| buffer.freeze()))
}
