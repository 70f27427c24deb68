//! A per-backend pool of long-lived instances, each serving one call at a time.

use std::sync::{Arc, Mutex};

use sluice_plugin::{ErrorKind, ExecError, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::stats::{Counter, PluginStats};

/// Idle instances plus a cap on instances in existence.
pub(crate) struct Pool<I> {
    idle: Mutex<Vec<I>>,
    permits: Arc<Semaphore>,
}

impl<I> std::fmt::Debug for Pool<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("free_permits", &self.permits.available_permits())
            .finish()
    }
}

/// The right to use one instance; the instance is `None` when a new one must be made.
pub(crate) struct Lease<I> {
    pub(crate) instance: Option<I>,
    _permit: OwnedSemaphorePermit,
}

impl<I> Pool<I> {
    pub(crate) fn new(max_instances: usize) -> Self {
        Pool {
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(max_instances)),
        }
    }

    /// Waits (until `deadline`) for a free slot; hands out a warm instance if there is one.
    pub(crate) async fn checkout(
        &self,
        deadline: Instant,
        stats: &PluginStats,
    ) -> Result<Lease<I>, ExecError> {
        let permit = match tokio::time::timeout_at(
            deadline,
            Arc::clone(&self.permits).acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_closed)) => {
                return Err(ExecError::plugin(
                    ErrorKind::Overloaded,
                    "plugin instance pool is closed",
                ));
            }
            Err(_elapsed) => {
                stats.bump(Counter::Overloaded);
                return Err(ExecError::plugin(
                    ErrorKind::Overloaded,
                    "no plugin instance became free before the deadline",
                ));
            }
        };
        let instance = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        Ok(Lease {
            instance,
            _permit: permit,
        })
    }

    /// Returns a healthy instance for reuse (and releases the lease's slot).
    pub(crate) fn checkin(&self, lease: Lease<I>, instance: I) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(instance);
        drop(lease);
    }

    /// Adds an instance made outside a call (the one `init` ran on at build time).
    pub(crate) fn put_idle(&self, instance: I) {
        self.idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(instance);
    }
}
