//! A per-backend pool of long-lived instances, each serving one call at a time.
//!
//! As in wasmtime's own `ProxyHandler`, an instance is not kept for ever: it serves at most
//! `max_requests_per_instance` requests, and an idle one is dropped after
//! `instance_idle_timeout` (by the host's reaper thread, so pools shrink without traffic).
//! Dropping an instance drops its store, which returns its pool slot and linear memory.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as StdInstant};

use sluice_plugin::{ErrorKind, ExecError, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::stats::{Counter, PluginStats};

/// An idle instance, with the requests it served and since when it waits.
struct Idle<I> {
    instance: I,
    served: u64,
    since: StdInstant,
}

/// Idle instances plus a cap on instances in existence.
pub(crate) struct Pool<I> {
    /// Most recently used last: checkout takes the warmest, expiry trims the front.
    idle: Mutex<Vec<Idle<I>>>,
    permits: Arc<Semaphore>,
    max_requests: u64,
    idle_timeout: Duration,
    stats: Arc<PluginStats>,
}

impl<I> std::fmt::Debug for Pool<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("free_permits", &self.permits.available_permits())
            .field("max_requests", &self.max_requests)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

/// The right to use one instance; the instance is `None` when a new one must be made.
pub(crate) struct Lease<I> {
    pub(crate) instance: Option<I>,
    served: u64,
    _permit: OwnedSemaphorePermit,
}

impl<I> Pool<I> {
    pub(crate) fn new(
        max_instances: usize,
        max_requests: u64,
        idle_timeout: Duration,
        stats: Arc<PluginStats>,
    ) -> Self {
        Pool {
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(max_instances)),
            max_requests: max_requests.max(1),
            idle_timeout,
            stats,
        }
    }

    /// Waits (until `deadline`) for a free slot; hands out a warm instance if there is one.
    pub(crate) async fn checkout(&self, deadline: Instant) -> Result<Lease<I>, ExecError> {
        // A free slot is the common case: taken without arming a timer.
        let waited = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(permit) => Ok(Ok(permit)),
            Err(_) => {
                tokio::time::timeout_at(deadline, Arc::clone(&self.permits).acquire_owned()).await
            }
        };
        let permit = match waited {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => {
                return Err(ExecError::plugin(
                    ErrorKind::Overloaded,
                    "plugin instance pool is closed",
                ));
            }
            Err(_elapsed) => {
                self.stats.bump(Counter::Overloaded);
                return Err(ExecError::plugin(
                    ErrorKind::Overloaded,
                    "no plugin instance became free before the deadline",
                ));
            }
        };
        let (instance, served) = match self.lock().pop() {
            Some(idle) => {
                self.stats.idle(-1);
                (Some(idle.instance), idle.served)
            }
            None => (None, 0),
        };
        Ok(Lease {
            instance,
            served,
            _permit: permit,
        })
    }

    /// Returns an instance after a clean call (and releases the lease's slot). It is dropped
    /// instead when it has served its quota.
    pub(crate) fn checkin(&self, lease: Lease<I>, instance: I) {
        let served = lease.served + 1;
        if served >= self.max_requests {
            self.stats.bump(Counter::InstancesRecycled);
            drop(instance);
        } else {
            self.lock().push(Idle {
                instance,
                served,
                since: StdInstant::now(),
            });
            self.stats.idle(1);
        }
        drop(lease);
    }

    /// Adds an instance made outside a call (the one `init` ran on at build time).
    pub(crate) fn put_idle(&self, instance: I) {
        self.lock().push(Idle {
            instance,
            served: 0,
            since: StdInstant::now(),
        });
        self.stats.idle(1);
    }

    /// Drops the instances idle for longer than the idle timeout; returns how many.
    pub(crate) fn expire(&self, now: StdInstant) -> usize {
        let expired: Vec<Idle<I>> = {
            let mut idle = self.lock();
            let keep_from = idle
                .iter()
                .position(|i| now.saturating_duration_since(i.since) < self.idle_timeout)
                .unwrap_or(idle.len());
            idle.drain(..keep_from).collect()
        };
        // Dropped outside the lock: dropping a store unmaps memory, which takes a while.
        let n = expired.len();
        self.stats.idle(-(n as i64));
        for _ in 0..n {
            self.stats.bump(Counter::InstancesExpired);
        }
        drop(expired);
        n
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Idle<I>>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<I> Drop for Pool<I> {
    fn drop(&mut self) {
        let n = self.lock().len();
        self.stats.idle(-(n as i64));
    }
}

/// What the host's reaper thread calls on every live pool.
pub(crate) trait Sweep: Send + Sync {
    fn sweep(&self, now: StdInstant);
}

impl<I: Send> Sweep for Pool<I> {
    fn sweep(&self, now: StdInstant) {
        self.expire(now);
    }
}
