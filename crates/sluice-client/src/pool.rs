//! The pool of plain-http HTTP/1.1 connections: per backend authority, a stack of idle
//! connections, on hyper's connection API directly.
//!
//! hyper-util's pool (still used for https, where ALPN may pick HTTP/2) hashes its key with
//! SipHash twice per request, formats the `Host` header, and spawns a task to hand a connection
//! back. Here a connection goes back on its host's stack when the answer's body ends, and is
//! checked for readiness when it is next taken, so a request costs one lock, one fast hash and
//! no task. The most recently used connection is taken first (it is the warmest, and the others
//! age out).
//!
//! The same rules as Go's transport, so KrakenD's: at most `max_idle_connections_per_host` idle
//! connections per host, an idle one closed after `idle_connection_timeout`, none kept with
//! `disable_keep_alives`. A request that a reused connection could not take (the backend closed
//! it while it was idle) is sent again on another: it never reached the backend.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use tower_service::Service;

use crate::Connector;

/// A request is tried on at most this many pooled connections that turn out closed before a
/// fresh one is dialled (the last attempt).
const REUSED_ATTEMPTS: usize = 3;

type Sender = SendRequest<Full<Bytes>>;
type Hosts = HashMap<Arc<str>, Vec<Idle>, foldhash::fast::RandomState>;

#[derive(Debug)]
struct Idle {
    sender: Sender,
    since: Instant,
    /// Its host's key, made once per connection (not per request).
    key: Arc<str>,
}

/// Why a request failed: before anything was sent (the dial) or after.
#[derive(Debug)]
pub(crate) enum PoolError {
    Connect(Box<dyn std::error::Error + Send + Sync>),
    Send(hyper::Error),
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

    /// Sends `request` (an absolute `http` URL, with its `Host` header) on a pooled connection
    /// to its authority, or a new one.
    pub(crate) async fn send(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Response<PooledBody>, PoolError> {
        let url = request.uri().clone();
        let key = url.authority().map_or("", |a| a.as_str());
        // HTTP/1 sends the origin form: the path and the query.
        *request.uri_mut() = url
            .path_and_query()
            .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()));
        for _ in 0..REUSED_ATTEMPTS {
            let Some((mut sender, key)) = self.checkout(key).await else {
                break;
            };
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.track(response, sender, key)),
                Err(mut e) => match e.take_message() {
                    // Refused before a byte was written: the connection had been closed.
                    Some(back) => request = back,
                    None => return Err(PoolError::Send(e.into_error())),
                },
            }
        }
        // Boxed: the dial and handshake are the cold path, and kept inline they would make
        // every call's future (moved several times on the way) a few KiB larger.
        let mut sender = Box::pin(self.dial(&url)).await?;
        match sender.try_send_request(request).await {
            Ok(response) => Ok(self.track(response, sender, key.into())),
            Err(e) => Err(PoolError::Send(e.into_error())),
        }
    }

    /// The most recently returned idle connection to `key` that is still open and in time.
    async fn checkout(&self, key: &str) -> Option<(Sender, Arc<str>)> {
        loop {
            let idle = {
                let mut hosts = self.inner.hosts.lock().unwrap_or_else(|p| p.into_inner());
                hosts.get_mut(key)?.pop()?
            };
            if idle.sender.is_closed() || self.inner.expired(&idle, Instant::now()) {
                continue;
            }
            let mut sender = idle.sender;
            // Handed back when its last answer's body ended: the connection task may not have
            // seen that end yet, which it does at once (or finds the connection closed).
            if std::future::poll_fn(|cx| sender.poll_ready(cx))
                .await
                .is_ok()
            {
                return Some((sender, idle.key));
            }
        }
    }

    async fn dial(&self, url: &Uri) -> Result<Sender, PoolError> {
        // HttpConnector is always ready: no `poll_ready` to wait on.
        let stream = self
            .inner
            .connector
            .clone()
            .call(url.clone())
            .await
            .map_err(PoolError::Connect)?;
        let (sender, connection) = http1::handshake(stream).await.map_err(PoolError::Send)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "backend connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// The answer, its body handing the connection back when it ends.
    fn track(
        &self,
        response: Response<Incoming>,
        sender: Sender,
        key: Arc<str>,
    ) -> Response<PooledBody> {
        let keep = self.inner.max_idle_per_host > 0;
        response.map(|body| {
            let mut pooled = PooledBody {
                body,
                back: keep.then(|| Back {
                    sender,
                    pool: Arc::downgrade(&self.inner),
                    key,
                }),
            };
            // An answer without a body (HEAD, 204, 304, an empty one) may never be read.
            if pooled.body.is_end_stream() {
                pooled.give_back();
            }
            pooled
        })
    }
}

impl Inner {
    fn expired(&self, idle: &Idle, now: Instant) -> bool {
        self.idle_timeout
            .is_some_and(|limit| now.saturating_duration_since(idle.since) >= limit)
    }

    fn checkin(self: &Arc<Self>, key: Arc<str>, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        {
            let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
            let idle = hosts.entry(Arc::clone(&key)).or_default();
            if idle.len() >= self.max_idle_per_host {
                // The oldest goes: it is the one most likely to be closed by the backend.
                idle.remove(0);
            }
            idle.push(Idle {
                sender,
                since: Instant::now(),
                key,
            });
        }
        if let Some(limit) = self.idle_timeout {
            self.reaper
                .call_once(|| spawn_reaper(Arc::downgrade(self), limit));
        }
    }

    /// Closes the connections idle past the limit; forgets hosts left without any.
    fn evict_expired(&self) {
        let now = Instant::now();
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts.retain(|_, idle| {
            idle.retain(|i| !i.sender.is_closed() && !self.expired(i, now));
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
    sender: Sender,
    pool: Weak<Inner>,
    key: Arc<str>,
}

/// An answer's body from a pooled connection: when it ends, the connection goes back to the
/// pool; dropped before its end, the connection is closed with it (its rest is unread).
#[derive(Debug)]
pub(crate) struct PooledBody {
    body: Incoming,
    back: Option<Back>,
}

impl PooledBody {
    fn give_back(&mut self) {
        if let Some(back) = self.back.take()
            && let Some(pool) = back.pool.upgrade()
        {
            pool.checkin(back.key, back.sender);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let poll = Pin::new(&mut self.body).poll_frame(cx);
        match &poll {
            Poll::Ready(None) => self.give_back(),
            Poll::Ready(Some(Ok(_))) if self.body.is_end_stream() => self.give_back(),
            // An error: the connection is not reused.
            Poll::Ready(Some(Err(_))) => self.back = None,
            _ => {}
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
