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
        deadline,
        sleep: None,
    }
    .boxed_unsync()
}

struct Deadline {
    inner: Body,
    deadline: tokio::time::Instant,
    /// Armed the first time the body has to wait: a body whose frames are ready (most answers,
    /// read with their head) is checked against the clock and never costs a timer.
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        use std::task::Poll;
        let passed = || Poll::Ready(Some(Err(Box::new(DeadlinePassed) as BoxError)));
        match std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
            // The end of a body that is all there: no clock read for it.
            Poll::Ready(None) => Poll::Ready(None),
            // A body that is always ready must not outrun the deadline either.
            Poll::Ready(frame) if tokio::time::Instant::now() < self.deadline => Poll::Ready(frame),
            Poll::Ready(_) => passed(),
            Poll::Pending => {
                let deadline = self.deadline;
                let sleep = self
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.as_mut().poll(cx).is_ready() {
                    return passed();
                }
                Poll::Pending
            }
        }
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
    let mut whole = BodyBuffer::default();
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let frame = frame.map_err(CollectError::Transport)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let total = whole.len() + data.len();
        if total > limit {
            return Err(CollectError::TooLarge(limit));
        }
        whole.push_hinted(data, body.size_hint(), limit);
    }
    Ok(whole.finish())
}

/// A body being read whole. One that comes in one frame (most) is kept as it came, without a
/// copy; from the second frame on, the frames go into one buffer sized for what the body is
/// expected to total, so a large body is not copied into ever larger buffers (each growth
/// holding the old and the new at once).
#[derive(Debug, Default)]
pub struct BodyBuffer {
    first: Option<Bytes>,
    rest: bytes::BytesMut,
}

impl BodyBuffer {
    /// Bytes received so far.
    pub fn len(&self) -> usize {
        self.first.as_ref().map_or(0, Bytes::len) + self.rest.len()
    }

    /// Whether nothing was received.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a frame's data; `expected` is what the whole body should total (its declared
    /// length; a hint for the buffer's size, never a bound).
    pub fn push(&mut self, data: Bytes, expected: usize) {
        match self.first.take() {
            None if self.rest.is_empty() => self.first = Some(data),
            previous => {
                if let Some(previous) = previous {
                    self.rest.reserve(expected.max(previous.len() + data.len()));
                    self.rest.extend_from_slice(&previous);
                }
                self.rest.extend_from_slice(&data);
            }
        }
    }

    /// Adds a frame's data of a body that announces `left` more bytes after it (its size
    /// hint), read up to `limit`: the buffer is sized for that total, within the limit.
    pub fn push_hinted(&mut self, data: Bytes, left: http_body::SizeHint, limit: usize) {
        let left = usize::try_from(left.lower()).unwrap_or(usize::MAX);
        let expected = (self.len() + data.len()).saturating_add(left).min(limit);
        self.push(data, expected);
    }

    /// The whole body.
    pub fn finish(self) -> Bytes {
        self.first.unwrap_or_else(|| self.rest.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ready frames are checked against the clock, a body that waits against a timer: both
    /// end with `DeadlinePassed` once the deadline has passed, and not before.
    #[tokio::test]
    async fn a_deadline_cuts_ready_and_waiting_bodies_alike() {
        use std::time::Duration;
        use tokio::time::Instant;
        let later = Instant::now() + Duration::from_secs(60);
        let mut body = with_deadline(full("whole"), later);
        let frame = body.frame().await.expect("a frame").expect("in time");
        assert_eq!(frame.into_data().expect("data"), "whole");

        let passed = Instant::now()
            .checked_sub(Duration::from_millis(1))
            .expect("an instant before now");
        let mut body = with_deadline(full("late"), passed);
        let error = body.frame().await.expect("a frame").expect_err("too late");
        assert!(error.is::<DeadlinePassed>(), "{error}");
        // Its end is no frame to cut: a body that is all there ends as it is.
        let mut body = with_deadline(empty(), passed);
        assert!(body.frame().await.is_none());

        /// A body that never has a frame.
        struct Never;
        impl http_body::Body for Never {
            type Data = Bytes;
            type Error = BoxError;
            fn poll_frame(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
                std::task::Poll::Pending
            }
        }
        let never = Never;
        let started = Instant::now();
        let mut body = with_deadline(never.boxed_unsync(), started + Duration::from_millis(50));
        let error = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("cut by its deadline")
            .expect("a frame")
            .expect_err("too late");
        assert!(error.is::<DeadlinePassed>(), "{error}");
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn one_frame_is_kept_and_several_share_one_buffer() {
        let single = Bytes::from_static(b"one frame");
        let mut whole = BodyBuffer::default();
        whole.push(single.clone(), 9);
        let kept = whole.finish();
        assert_eq!(kept.as_ptr(), single.as_ptr(), "one frame is not copied");

        let mut whole = BodyBuffer::default();
        assert!(whole.is_empty());
        whole.push(Bytes::from_static(b"ab"), 1000);
        whole.push(Bytes::from_static(b"cd"), 1000);
        // Room for the whole declared body once the second frame came: no growth after it.
        assert!(whole.rest.capacity() >= 1000);
        let capacity = whole.rest.capacity();
        whole.push(Bytes::from_static(b"ef"), 1000);
        assert_eq!(whole.rest.capacity(), capacity);
        assert_eq!(whole.len(), 6);
        assert_eq!(&whole.finish()[..], b"abcdef");
    }

    #[test]
    fn a_hinted_body_is_sized_for_what_it_announces_within_the_limit() {
        let mut whole = BodyBuffer::default();
        whole.push_hinted(
            Bytes::from_static(b"ab"),
            http_body::SizeHint::with_exact(798),
            10_000,
        );
        whole.push_hinted(
            Bytes::from_static(b"cd"),
            http_body::SizeHint::with_exact(796),
            10_000,
        );
        assert!(whole.rest.capacity() >= 800);
        let mut capped = BodyBuffer::default();
        capped.push_hinted(
            Bytes::from_static(b"ab"),
            http_body::SizeHint::with_exact(1 << 40),
            64,
        );
        capped.push_hinted(
            Bytes::from_static(b"cd"),
            http_body::SizeHint::with_exact(1 << 40),
            64,
        );
        assert!(
            capped.rest.capacity() < 1 << 20,
            "the limit bounds the reservation"
        );
        assert_eq!(&capped.finish()[..], b"abcd");
    }
}
