//! Per-connection time limits hyper has no setting for: `idle_timeout` (a keep-alive connection
//! waiting for its next request) and `write_timeout` (writing one response).
//!
//! The service and the socket wrapper share a [`ConnState`]: the service counts the requests in
//! flight and sets the response's write deadline; the wrapper turns a read that waits while no
//! request is in flight into end-of-stream after the idle timeout (hyper then closes the
//! connection quietly), and a write or flush still pending at the write deadline into an error
//! (hyper then drops the connection). A client that stops reading cannot hold a response open:
//! hyper stops polling the body once its write buffer is full, so the body alone cannot enforce
//! the deadline.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What the service tells the socket wrapper about one connection.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    in_flight: AtomicUsize,
    write_deadline: Mutex<Option<Instant>>,
}

impl ConnState {
    /// A request arrived: it is in flight until the guard (moved into its response body) drops.
    pub(crate) fn start_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        // The previous response's deadline must not bound this request's writes (a 100-continue).
        *self
            .write_deadline
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
        InFlight(Arc::clone(self))
    }

    /// The response is ready: writing it must be done by `deadline`.
    pub(crate) fn set_write_deadline(&self, deadline: Instant) {
        *self
            .write_deadline
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(deadline);
    }

    fn write_deadline(&self) -> Option<Instant> {
        *self
            .write_deadline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }
}

/// One request in flight on its connection.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project_lite::pin_project! {
    /// A connection with the idle and write limits of its [`ConnState`].
    #[derive(Debug)]
    pub(crate) struct Timed<S> {
        #[pin]
        inner: S,
        state: Arc<ConnState>,
        idle_timeout: Option<Duration>,
        // Armed while an idle read waits; `None` otherwise.
        idle: Option<Pin<Box<Sleep>>>,
        // Armed while a write waits, at the deadline it was armed for.
        write: Option<(Instant, Pin<Box<Sleep>>)>,
    }
}

impl<S> Timed<S> {
    pub(crate) fn new(inner: S, state: Arc<ConnState>, idle_timeout: Option<Duration>) -> Self {
        Self {
            inner,
            state,
            idle_timeout,
            idle: None,
            write: None,
        }
    }
}

impl<S> Timed<S> {
    /// The connection without its limits (they go with the state, which stays shared).
    pub(crate) fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead> AsyncRead for Timed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let poll = this.inner.poll_read(cx, buf);
        if poll.is_ready() {
            *this.idle = None;
            return poll;
        }
        let Some(timeout) = *this.idle_timeout else {
            return poll;
        };
        if !this.state.idle() {
            *this.idle = None;
            return poll;
        }
        let sleep = this
            .idle
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if sleep.as_mut().poll(cx).is_ready() {
            // End of stream while idle: hyper closes the connection without an error.
            *this.idle = None;
            return Poll::Ready(Ok(()));
        }
        poll
    }
}

/// `poll` unless it is pending past the response's write deadline.
fn bounded<T>(
    poll: Poll<io::Result<T>>,
    state: &ConnState,
    write: &mut Option<(Instant, Pin<Box<Sleep>>)>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<T>> {
    if poll.is_ready() {
        return poll;
    }
    let Some(deadline) = state.write_deadline() else {
        return poll;
    };
    match write {
        Some((armed, sleep)) if *armed != deadline => {
            sleep.as_mut().reset(deadline);
            *armed = deadline;
        }
        Some(_) => {}
        None => *write = Some((deadline, Box::pin(tokio::time::sleep_until(deadline)))),
    }
    if let Some((_, sleep)) = write
        && sleep.as_mut().poll(cx).is_ready()
    {
        return Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the response was not written by write_timeout",
        )));
    }
    poll
}

impl<S: AsyncWrite> AsyncWrite for Timed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let poll = this.inner.poll_write(cx, buf);
        bounded(poll, this.state, this.write, cx)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let poll = this.inner.poll_flush(cx);
        bounded(poll, this.state, this.write, cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let poll = this.inner.poll_shutdown(cx);
        bounded(poll, this.state, this.write, cx)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let poll = this.inner.poll_write_vectored(cx, bufs);
        bounded(poll, this.state, this.write, cx)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

pin_project_lite::pin_project! {
    /// A connection whose first bytes were read already: they are read again first (h1.rs
    /// hands a connection to hyper with the head it did not serve).
    #[derive(Debug)]
    pub(crate) struct Prefixed<S> {
        read: bytes::Bytes,
        #[pin]
        inner: S,
    }
}

impl<S> Prefixed<S> {
    pub(crate) fn new(read: bytes::Bytes, inner: S) -> Self {
        Self { read, inner }
    }
}

impl<S: AsyncRead> AsyncRead for Prefixed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        if this.read.is_empty() {
            return this.inner.poll_read(cx, buf);
        }
        let n = this.read.len().min(buf.remaining());
        buf.put_slice(&this.read.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite> AsyncWrite for Prefixed<S> {
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
