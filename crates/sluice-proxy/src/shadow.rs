//! Shadow backends (`proxy.shadow`: KrakenD's traffic mirroring, Lura's `proxy/shadow.go`).
//!
//! The shadows of an endpoint are called with the same client request as the other backends,
//! started before them, on a task of their own: the client's answer is built from the other
//! backends only and never waits for a shadow, and a client that goes away does not cancel one.
//! Their answers are discarded. As in KrakenD the shadows form a pipe of their own (several are
//! merged, in sequence when the endpoint is sequential) with one deadline: the longest of their
//! `shadow_timeout`s, a shadow without one counting as the endpoint's timeout.
//!
//! What KrakenD leaves unbounded is bounded here: at most [`MAX_SHADOW_CALLS_PER_ENDPOINT`]
//! shadow calls of one endpoint are in flight, and the request bodies they hold share one
//! budget for the whole gateway (the size of `sluice/server.max_buffered_body_bytes`, apart
//! from the clients' own). A shadow call that does not fit is not made: it is counted
//! ([`crate::EndpointPipeline::shadow_dropped`]) and logged at debug.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sluice_config::Endpoint;
use sluice_plugin::Instant;
use tokio::sync::Semaphore;

use crate::backend::Answer;
use crate::endpoint::{DEFAULT_MAX_BODY_BYTES, Fanout};
use crate::request::ProxyRequest;

/// Shadow calls one endpoint may have in flight. Mirroring is a sample of the traffic by nature:
/// past the cap (a shadow slower than the traffic it receives) calls are dropped rather than
/// queued, so neither tasks nor connections nor held bodies pile up behind a slow shadow.
pub const MAX_SHADOW_CALLS_PER_ENDPOINT: usize = 64;

/// The shadow backends of one endpoint.
#[derive(Debug)]
pub(crate) struct Shadow {
    endpoint: Arc<Endpoint>,
    /// `METHOD /path`, for the logs.
    label: Arc<str>,
    backends: Fanout,
    /// How long a shadow call may run, from the start of the request.
    timeout: Duration,
    in_flight: Arc<Semaphore>,
    /// Bytes of request bodies held by shadow calls, shared by every endpoint.
    body_budget: Arc<Semaphore>,
    dropped: AtomicU64,
}

impl Shadow {
    pub(crate) fn new(
        endpoint: Arc<Endpoint>,
        backends: Fanout,
        max_in_flight: usize,
        body_budget: Arc<Semaphore>,
    ) -> Self {
        // Lura: the longest of the shadows' timeouts, each its shadow_timeout or else the
        // backend's timeout (which is always the endpoint's).
        let timeout = endpoint
            .backends
            .iter()
            .filter(|b| b.shadow)
            .map(|b| b.shadow_timeout.unwrap_or(endpoint.timeout))
            .max()
            .unwrap_or(endpoint.timeout);
        Self {
            label: endpoint.label().into(),
            endpoint,
            backends,
            timeout,
            in_flight: Arc::new(Semaphore::new(max_in_flight.min(Semaphore::MAX_PERMITS))),
            body_budget,
            dropped: AtomicU64::new(0),
        }
    }

    /// Shadow calls not made since start-up.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Starts the shadow call for `request` on a task of its own, if it fits the bounds, and
    /// returns at once. `started` is when the request began; the deadline runs from it.
    pub(crate) fn launch(self: &Arc<Self>, request: &ProxyRequest, started: Instant) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.drop_call("no runtime to run it on");
            return;
        };
        let Ok(slot) = Arc::clone(&self.in_flight).try_acquire_owned() else {
            self.drop_call("the endpoint's shadow calls in flight are at their cap");
            return;
        };
        // The body is shared, not copied (each backend call gets its own handle on the same
        // immutable bytes), but a shadow keeps it alive after the client's request is done:
        // that is what the budget counts.
        let body = if request.body.is_empty() {
            None
        } else {
            let reserved = u32::try_from(request.body.len())
                .ok()
                .and_then(|n| Arc::clone(&self.body_budget).try_acquire_many_owned(n).ok());
            match reserved {
                Some(reserved) => Some(reserved),
                None => {
                    self.drop_call("the budget for shadow request bodies is spent");
                    return;
                }
            }
        };
        let request = request.clone();
        let shadow = Arc::clone(self);
        let deadline = started + self.timeout;
        runtime.spawn(async move {
            let _held = (slot, body);
            shadow.run(&request, started, deadline).await;
        });
    }

    async fn run(&self, request: &ProxyRequest, started: Instant, deadline: Instant) {
        let call = async {
            let outcome = self
                .backends
                .call(request, started, &self.endpoint, Some(deadline))
                .await;
            // A no-op shadow's answer is read to its end and discarded, so the backend sees a
            // whole exchange rather than a connection dropped mid-answer.
            if let Some(Answer::Raw(response)) = outcome.answer {
                let _ = sluice_plugin::collect(response.into_body(), DEFAULT_MAX_BODY_BYTES).await;
            }
            outcome.error
        };
        // Each backend call is already bound by the deadline; this bounds the task as a whole.
        match tokio::time::timeout_at(deadline, call).await {
            Ok(None) => tracing::debug!(endpoint = %self.label, "shadow call done"),
            Ok(Some(error)) => {
                tracing::debug!(endpoint = %self.label, error = %error, "shadow call failed");
            }
            Err(_) => tracing::debug!(endpoint = %self.label, "shadow call cut at its deadline"),
        }
    }

    fn drop_call(&self, reason: &str) {
        let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::debug!(endpoint = %self.label, reason, dropped, "shadow call dropped");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;
    use std::sync::atomic::AtomicUsize;

    use bytes::Bytes;
    use http::{HeaderMap, Method, Response};
    use sluice_plugin::{
        BackendRequest, BackendResponse, BoxFuture, CallContext, ExecError, Executor, Registry,
        SharedExecutor,
    };
    use tokio::sync::Notify;

    use super::*;
    use crate::{EndpointPipeline, build_pipelines};

    /// Answers `{}` at once, except on `/shadow`, where each call waits for the gate; counts
    /// the shadow calls started and the ones dropped unfinished (cancelled).
    #[derive(Debug)]
    struct Gated {
        gate: Semaphore,
        started: AtomicUsize,
        cancelled: AtomicUsize,
        changed: Notify,
    }

    struct OnDrop<'a>(&'a Gated, bool);

    impl Drop for OnDrop<'_> {
        fn drop(&mut self) {
            if !self.1 {
                self.0.cancelled.fetch_add(1, Ordering::SeqCst);
                self.0.changed.notify_waiters();
            }
        }
    }

    impl Executor for Gated {
        fn execute<'a>(
            &'a self,
            request: BackendRequest,
            _ctx: &'a CallContext,
        ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
            Box::pin(async move {
                if request.url.path() == "/shadow" {
                    let mut guard = OnDrop(self, false);
                    self.started.fetch_add(1, Ordering::SeqCst);
                    self.changed.notify_waiters();
                    let _pass = self.gate.acquire().await;
                    guard.1 = true;
                }
                Ok(Response::new(sluice_plugin::full(Bytes::from_static(
                    b"{}",
                ))))
            })
        }
    }

    impl Gated {
        fn new() -> Self {
            Self {
                gate: Semaphore::new(0),
                started: AtomicUsize::new(0),
                cancelled: AtomicUsize::new(0),
                changed: Notify::new(),
            }
        }

        /// Waits (at most 5s) until `f` holds.
        async fn until(&self, f: impl Fn(&Self) -> bool) {
            tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    let changed = self.changed.notified();
                    if f(self) {
                        return;
                    }
                    changed.await;
                }
            })
            .await
            .unwrap();
        }
    }

    async fn pipeline(executor: &Arc<Gated>, proxy: &str, budget: usize) -> EndpointPipeline {
        let config = format!(
            r#"{{"version": 3, "host": ["http://127.0.0.1:9999"], "timeout": "10s",
              "extra_config": {{"sluice/server": {{"max_buffered_body_bytes": {budget}}}}},
              "endpoints": [{{"endpoint": "/a", "method": "POST", "backend": [
                {{"url_pattern": "/regular"}},
                {{"url_pattern": "/shadow", "extra_config": {{"proxy": {proxy}}}}}
              ]}}]}}"#
        );
        let config = sluice_config::parse_str(&config, Path::new("t.json")).unwrap();
        let executor: SharedExecutor = executor.clone();
        build_pipelines(&config, &Registry::new(), &executor)
            .await
            .unwrap()
            .pop()
            .unwrap()
    }

    fn request(body: &'static [u8]) -> ProxyRequest {
        ProxyRequest {
            method: Method::POST,
            params: Vec::new(),
            query: None,
            headers: HeaderMap::new(),
            body: Bytes::from_static(body),
            client_ip: "127.0.0.1".parse().unwrap(),
            telemetry: Default::default(),
        }
    }

    fn is_complete(outcome: &crate::Outcome) -> bool {
        outcome.answer.as_ref().is_some_and(Answer::is_complete) && outcome.error.is_none()
    }

    #[tokio::test]
    async fn calls_past_the_cap_are_dropped_and_counted() {
        let executor = Arc::new(Gated::new());
        let pipeline = pipeline(&executor, r#"{"shadow": true}"#, 1 << 20).await;
        let extra = 5;
        for _ in 0..MAX_SHADOW_CALLS_PER_ENDPOINT + extra {
            // Every client answer is complete and none waits for its (blocked) shadow.
            assert!(is_complete(&pipeline.call(&request(b"")).await));
        }
        executor
            .until(|e| e.started.load(Ordering::SeqCst) == MAX_SHADOW_CALLS_PER_ENDPOINT)
            .await;
        assert_eq!(pipeline.shadow_dropped(), extra as u64);

        // Once they finish, their slots are free again.
        executor.gate.add_permits(Semaphore::MAX_PERMITS / 2);
        let slots = &pipeline.shadow.as_ref().unwrap().in_flight;
        tokio::time::timeout(Duration::from_secs(5), async {
            while slots.available_permits() < MAX_SHADOW_CALLS_PER_ENDPOINT {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        assert!(is_complete(&pipeline.call(&request(b"")).await));
        executor
            .until(|e| e.started.load(Ordering::SeqCst) == MAX_SHADOW_CALLS_PER_ENDPOINT + 1)
            .await;
        assert_eq!(pipeline.shadow_dropped(), extra as u64);
        assert_eq!(executor.cancelled.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn bodies_held_by_shadows_share_a_budget() {
        let executor = Arc::new(Gated::new());
        // Room for one 6-byte body, not two.
        let pipeline = pipeline(&executor, r#"{"shadow": true}"#, 10).await;
        assert!(is_complete(&pipeline.call(&request(b"123456")).await));
        executor
            .until(|e| e.started.load(Ordering::SeqCst) == 1)
            .await;
        assert!(is_complete(&pipeline.call(&request(b"abcdef")).await));
        assert_eq!(pipeline.shadow_dropped(), 1);
        // A call without a body needs no room.
        assert!(is_complete(&pipeline.call(&request(b"")).await));
        executor
            .until(|e| e.started.load(Ordering::SeqCst) == 2)
            .await;
        assert_eq!(pipeline.shadow_dropped(), 1);
    }

    #[tokio::test]
    async fn a_shadow_is_cut_at_its_deadline() {
        let executor = Arc::new(Gated::new());
        let pipeline = pipeline(
            &executor,
            r#"{"shadow": true, "shadow_timeout": "100ms"}"#,
            1 << 20,
        )
        .await;
        let started = Instant::now();
        assert!(is_complete(&pipeline.call(&request(b"x")).await));
        executor
            .until(|e| e.cancelled.load(Ordering::SeqCst) == 1)
            .await;
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(100) && elapsed < Duration::from_secs(5),
            "{elapsed:?}"
        );
        // Its slot and its body's reservation are given back.
        let shadow = pipeline.shadow.as_ref().unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            while shadow.in_flight.available_permits() < MAX_SHADOW_CALLS_PER_ENDPOINT
                || shadow.body_budget.available_permits() < 1 << 20
            {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn the_deadline_is_the_longest_of_the_shadows() {
        let config = r#"{"version": 3, "host": ["http://127.0.0.1:9999"], "timeout": "2s",
          "endpoints": [{"endpoint": "/a", "backend": [
            {"url_pattern": "/r"},
            {"url_pattern": "/s1", "extra_config": {"proxy": {"shadow": true, "shadow_timeout": "50ms"}}},
            {"url_pattern": "/s2", "extra_config": {"proxy": {"shadow": true}}},
            {"url_pattern": "/s3", "extra_config": {"proxy": {"shadow": true, "shadow_timeout": "1s"}}}
          ]}, {"endpoint": "/b", "backend": [
            {"url_pattern": "/r"},
            {"url_pattern": "/s1", "extra_config": {"proxy": {"shadow": true, "shadow_timeout": "50ms"}}},
            {"url_pattern": "/s3", "extra_config": {"proxy": {"shadow": true, "shadow_timeout": "5s"}}}
          ]}]}"#;
        let config = sluice_config::parse_str(config, Path::new("t.json")).unwrap();
        let executor: SharedExecutor = Arc::new(Gated::new());
        let pipelines = build_pipelines(&config, &Registry::new(), &executor)
            .await
            .unwrap();
        let timeouts: Vec<Duration> = pipelines
            .iter()
            .map(|p| p.shadow.as_ref().unwrap().timeout)
            .collect();
        // A shadow without shadow_timeout counts as the endpoint's timeout (2s).
        assert_eq!(timeouts, [Duration::from_secs(2), Duration::from_secs(5)]);
    }
}
