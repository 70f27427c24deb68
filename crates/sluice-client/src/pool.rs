//! The pool of plain-http HTTP/1.1 connections: per backend authority, a stack of idle
//! connections, each driven by the call that takes it ([`crate::h1`]).
//!
//! hyper-util's pool (still used for https, where ALPN may pick HTTP/2) hashes its key with
//! SipHash twice per request, formats the `Host` header, and spawns a task to hand a connection
//! back. Here a connection goes back on its host's stack when the answer's body ends, and is
//! checked for quiet (asking the reactor, no system call) when it is next taken, so a request
//! costs one lock, one fast hash and no task. The most recently used connection is taken first
//! (it is the warmest, and the others age out).
//!
//! The same rules as Go's transport, so KrakenD's: at most `max_idle_connections_per_host` idle
//! connections per host, an idle one closed after `idle_connection_timeout`, none kept with
//! `disable_keep_alives`.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Response, Uri};
use hyper::body::{Body, Frame, SizeHint};
use sluice_plugin::{AnswerHeaders, BackendRequest};
use tower_service::Service;

use crate::Connector;
use crate::h1::{Conn, Framing, H1Error, Head};

/// A request is tried on at most this many pooled connections that turn out closed before a
/// fresh one is dialled (the last attempt).
const REUSED_ATTEMPTS: usize = 3;

type Hosts = HashMap<Arc<str>, Vec<Idle>, foldhash::fast::RandomState>;

#[derive(Debug)]
struct Idle {
    /// Boxed once, when dialled: a connection is moved as a pointer from the pool to the call,
    /// its answer's body and back.
    conn: Box<Conn>,
    since: Instant,
    /// Its host's key, made once per connection (not per request).
    key: Arc<str>,
}

/// What a call adds to its request, and keeps of its answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SendOptions {
    /// Send `accept-encoding: gzip` (the request has no `Accept-Encoding`): written with the
    /// head rather than inserted in the request's map first.
    pub(crate) ask_for_gzip: bool,
    /// The answer's headers built ([`Head::headers`]).
    pub(crate) answer_headers: AnswerHeaders,
}

/// Why a request failed: before anything was sent (the dial) or after.
#[derive(Debug)]
pub(crate) enum PoolError {
    Connect(Box<dyn std::error::Error + Send + Sync>),
    Send(H1Error),
}

/// A request that failed on a connection.
struct Failed {
    error: H1Error,
    /// No byte of an answer came and the connection turned out closed (or reset): on a reused
    /// connection, the backend had closed it while it was idle.
    closed: bool,
    /// Nothing of the request had gone out.
    nothing_written: bool,
}

#[derive(Debug)]
struct Inner {
    hosts: Mutex<Hosts>,
    max_idle_per_host: usize,
    idle_timeout: Option<Duration>,
    connector: Connector,
    reaper: std::sync::Once,
}

/// Plain-http HTTP/1.1 connections, pooled per authority.
#[derive(Debug, Clone)]
pub(crate) struct Http1Pool {
    inner: Arc<Inner>,
}

impl Http1Pool {
    pub(crate) fn new(
        connector: Connector,
        max_idle_per_host: usize,
        idle_timeout: Option<Duration>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                hosts: Mutex::new(Hosts::default()),
                max_idle_per_host,
                idle_timeout,
                connector,
                reaper: std::sync::Once::new(),
            }),
        }
    }

    /// Sends `request` (an absolute `http` URL) on a pooled connection to its authority, or a
    /// new one.
    ///
    /// A reused connection that turns out closed before any answer came costs no request: it
    /// is sent again on another when nothing of it had gone out, or when it may be replayed
    /// (Go's transport's rule, so KrakenD's: an idempotent method, or an idempotency key).
    pub(crate) async fn send(
        &self,
        request: &BackendRequest,
        options: SendOptions,
    ) -> Result<Response<PooledBody>, PoolError> {
        let key = request.url.authority().map_or("", |a| a.as_str());
        for _ in 0..REUSED_ATTEMPTS {
            let Some(mut idle) = self.checkout(key) else {
                break;
            };
            match exchange(&mut idle.conn, request, options).await {
                Ok(head) => return Ok(self.track(head, idle.conn, idle.key)),
                Err(failed) if failed.closed && (failed.nothing_written || replayable(request)) => {
                }
                Err(failed) => return Err(PoolError::Send(failed.error)),
            }
        }
        // Boxed: the dial is the cold path, and kept inline it would make every call's future
        // (moved several times on the way) larger.
        let mut conn = Box::pin(self.dial(&request.url)).await?;
        match exchange(&mut conn, request, options).await {
            Ok(head) => Ok(self.track(head, conn, key.into())),
            Err(failed) => Err(PoolError::Send(failed.error)),
        }
    }

    /// The most recently returned idle connection to `key` that is still quiet and in time.
    fn checkout(&self, key: &str) -> Option<Idle> {
        loop {
            let mut idle = {
                let mut hosts = self.inner.hosts.lock().unwrap_or_else(|p| p.into_inner());
                hosts.get_mut(key)?.pop()?
            };
            if !self.inner.expired(&idle, Instant::now()) && idle.conn.is_quiet() {
                return Some(idle);
            }
        }
    }

    async fn dial(&self, url: &Uri) -> Result<Box<Conn>, PoolError> {
        // HttpConnector is always ready: no `poll_ready` to wait on.
        let stream = self
            .inner
            .connector
            .clone()
            .call(url.clone())
            .await
            .map_err(PoolError::Connect)?;
        match stream {
            hyper_rustls::MaybeHttpsStream::Http(io) => Ok(Box::new(Conn::new(io.into_inner()))),
            hyper_rustls::MaybeHttpsStream::Https(_) => Err(PoolError::Connect(
                "a TLS connection for a plain-http URL".into(),
            )),
        }
    }

    /// The answer, its body handing the connection back when it ends.
    fn track(&self, head: Head, conn: Box<Conn>, key: Arc<str>) -> Response<PooledBody> {
        let keep = head.keep_alive && self.inner.max_idle_per_host > 0;
        let mut body = PooledBody {
            conn: Some(conn),
            framing: head.framing,
            back: keep.then(|| Back {
                pool: Arc::downgrade(&self.inner),
                key,
            }),
        };
        // An answer without a body (HEAD, 204, 304, an empty one) may never be read.
        if body.framing.is_done() {
            body.finish();
        }
        let mut response = Response::new(body);
        *response.status_mut() = head.status;
        *response.version_mut() = head.version;
        *response.headers_mut() = head.headers;
        if let Some(fields) = head.forwarded {
            response.extensions_mut().insert(fields);
        }
        response
    }
}

/// Writes `request` on `conn` and reads its answer's head.
async fn exchange(
    conn: &mut Conn,
    request: &BackendRequest,
    options: SendOptions,
) -> Result<Head, Failed> {
    if let Err((error, nothing_written)) = conn
        .write_request(
            &request.method,
            &request.url,
            &request.headers,
            options.ask_for_gzip,
            &request.body,
        )
        .await
    {
        return Err(Failed {
            error,
            closed: true,
            nothing_written,
        });
    }
    match conn
        .read_head(&request.method, options.answer_headers)
        .await
    {
        Ok(head) => Ok(head),
        Err(error) => Err(Failed {
            closed: error.is_closed(),
            error,
            nothing_written: false,
        }),
    }
}

/// Whether a request may be sent again after it (or part of it) went out on a connection that
/// turned out closed: Go's `isReplayable` (the body is always known in full here).
fn replayable(request: &BackendRequest) -> bool {
    matches!(
        request.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    ) || request.headers.contains_key("idempotency-key")
        || request.headers.contains_key("x-idempotency-key")
}

impl Inner {
    fn expired(&self, idle: &Idle, now: Instant) -> bool {
        self.idle_timeout
            .is_some_and(|limit| now.saturating_duration_since(idle.since) >= limit)
    }

    fn checkin(self: &Arc<Self>, key: Arc<str>, conn: Box<Conn>) {
        {
            let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
            let idle = hosts.entry(Arc::clone(&key)).or_default();
            if idle.len() >= self.max_idle_per_host {
                // The oldest goes: it is the one most likely to be closed by the backend.
                idle.remove(0);
            }
            idle.push(Idle {
                conn,
                since: Instant::now(),
                key,
            });
        }
        if let Some(limit) = self.idle_timeout {
            self.reaper
                .call_once(|| spawn_reaper(Arc::downgrade(self), limit));
        }
    }

    /// Closes the connections idle past the limit or closed by their backend; forgets hosts
    /// left without any.
    fn evict_expired(&self) {
        let now = Instant::now();
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts.retain(|_, idle| {
            idle.retain_mut(|i| !self.expired(i, now) && i.conn.is_quiet());
            !idle.is_empty()
        });
    }
}

/// Closes idle connections in time even when no request comes (each is a socket held open to a
/// backend): a sweep every half limit, so none lives past 1.5 times it. Ends with the pool.
fn spawn_reaper(pool: Weak<Inner>, limit: Duration) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let period = (limit / 2).max(Duration::from_millis(100));
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(pool) = pool.upgrade() else {
                return;
            };
            pool.evict_expired();
        }
    });
}

#[derive(Debug)]
struct Back {
    pool: Weak<Inner>,
    key: Arc<str>,
}

/// An answer's body, read from its connection by whoever polls it: when it ends, the
/// connection goes back to the pool (when the answer allowed keep-alive and nothing came after
/// it); dropped before its end, the connection is closed with it (its rest is unread).
#[derive(Debug)]
pub(crate) struct PooledBody {
    conn: Option<Box<Conn>>,
    framing: Framing,
    back: Option<Back>,
}

impl PooledBody {
    fn finish(&mut self) {
        self.framing = Framing::Done;
        let conn = self.conn.take();
        if let (Some(conn), Some(back)) = (conn, self.back.take())
            && conn.is_drained()
            && let Some(pool) = back.pool.upgrade()
        {
            pool.checkin(back.key, conn);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = H1Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        let this = &mut *self;
        let Some(conn) = this.conn.as_mut() else {
            return Poll::Ready(None);
        };
        match conn.poll_frame(&mut this.framing, cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                if this.framing.is_done() {
                    this.finish();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            // The connection is not reused.
            Poll::Ready(Some(Err(e))) => {
                this.back = None;
                this.conn = None;
                this.framing = Framing::Done;
                Poll::Ready(Some(Err(e)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.framing.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        self.framing
            .exact_len()
            .map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}
