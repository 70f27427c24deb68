//! Counters per loaded plugin (shared by every backend that uses it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters of one plugin.
#[derive(Debug, Default)]
pub struct PluginStats {
    requests: AtomicU64,
    errors: AtomicU64,
    traps: AtomicU64,
    timeouts: AtomicU64,
    out_of_memory: AtomicU64,
    hosts_refused: AtomicU64,
    overloaded: AtomicU64,
    instances_created: AtomicU64,
    instances_discarded: AtomicU64,
    instances_recycled: AtomicU64,
    instances_expired: AtomicU64,
    instances_live: AtomicU64,
}

/// A copy of [`PluginStats`] at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Requests given to the plugin.
    pub requests: u64,
    /// Requests that ended in an error (any kind, including the plugin's own answers as errors).
    pub errors: u64,
    /// Calls that trapped (panic, unreachable, bad memory access...).
    pub traps: u64,
    /// Calls cut at the deadline.
    pub timeouts: u64,
    /// Calls that failed after the instance hit its memory limit.
    pub out_of_memory: u64,
    /// Outgoing calls refused because the host is not allowed.
    pub hosts_refused: u64,
    /// Requests refused because no instance was free before the deadline.
    pub overloaded: u64,
    /// Instances created (instantiated and initialised).
    pub instances_created: u64,
    /// Instances thrown away after a fault or a cancelled call.
    pub instances_discarded: u64,
    /// Healthy instances not reused: they reached `max_requests_per_instance`, or a request
    /// left resources behind in them.
    pub instances_recycled: u64,
    /// Idle instances dropped after `instance_idle_timeout`.
    pub instances_expired: u64,
    /// Instances alive now (idle or serving), across the plugin's backends.
    pub instances_live: u64,
}

/// Which counter to bump.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    Requests,
    Errors,
    Traps,
    Timeouts,
    OutOfMemory,
    HostsRefused,
    Overloaded,
    InstancesCreated,
    InstancesDiscarded,
    InstancesRecycled,
    InstancesExpired,
}

impl PluginStats {
    pub(crate) fn bump(&self, counter: Counter) {
        let c = match counter {
            Counter::Requests => &self.requests,
            Counter::Errors => &self.errors,
            Counter::Traps => &self.traps,
            Counter::Timeouts => &self.timeouts,
            Counter::OutOfMemory => &self.out_of_memory,
            Counter::HostsRefused => &self.hosts_refused,
            Counter::Overloaded => &self.overloaded,
            Counter::InstancesCreated => &self.instances_created,
            Counter::InstancesDiscarded => &self.instances_discarded,
            Counter::InstancesRecycled => &self.instances_recycled,
            Counter::InstancesExpired => &self.instances_expired,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            requests: g(&self.requests),
            errors: g(&self.errors),
            traps: g(&self.traps),
            timeouts: g(&self.timeouts),
            out_of_memory: g(&self.out_of_memory),
            hosts_refused: g(&self.hosts_refused),
            overloaded: g(&self.overloaded),
            instances_created: g(&self.instances_created),
            instances_discarded: g(&self.instances_discarded),
            instances_recycled: g(&self.instances_recycled),
            instances_expired: g(&self.instances_expired),
            instances_live: g(&self.instances_live),
        }
    }
}

/// Counts one live instance for as long as it exists (held by the instance itself, so every
/// way an instance goes, fault, recycling, expiry or shutdown, is counted).
#[derive(Debug)]
pub(crate) struct LiveInstance(Arc<PluginStats>);

impl LiveInstance {
    pub(crate) fn new(stats: &Arc<PluginStats>) -> Self {
        stats.instances_live.fetch_add(1, Ordering::Relaxed);
        LiveInstance(Arc::clone(stats))
    }
}

impl Drop for LiveInstance {
    fn drop(&mut self) {
        self.0.instances_live.fetch_sub(1, Ordering::Relaxed);
    }
}
