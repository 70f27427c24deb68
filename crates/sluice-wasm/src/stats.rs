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
    instances_idle: AtomicU64,
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
    /// Instances alive and idle now, across the plugin's backends.
    pub instances_idle: u64,
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

    /// Counts a failed call (`result` is handed back as it is).
    pub(crate) fn count_error<T, E>(&self, result: Result<T, E>) -> Result<T, E> {
        if result.is_err() {
            self.bump(Counter::Errors);
        }
        result
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
            instances_idle: g(&self.instances_idle),
        }
    }

    /// `n` more instances idle (negative: fewer).
    pub(crate) fn idle(&self, n: i64) {
        if n >= 0 {
            self.instances_idle
                .fetch_add(n.unsigned_abs(), Ordering::Relaxed);
        } else {
            self.instances_idle
                .fetch_sub(n.unsigned_abs(), Ordering::Relaxed);
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

/// The plugin host's counters as telemetry families (`sluice.plugin.*`), read at each export.
#[derive(Debug)]
pub(crate) struct StatsCollector {
    pub(crate) stats: Arc<std::sync::Mutex<std::collections::BTreeMap<String, Arc<PluginStats>>>>,
}

impl sluice_telemetry::Collector for StatsCollector {
    fn collect(&self) -> Vec<sluice_telemetry::Family> {
        let stats: Vec<(String, StatsSnapshot)> = self
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.snapshot()))
            .collect();
        let plugin = |name: &str| vec![("sluice.plugin".to_owned(), name.to_owned())];
        let with = |name: &str, key: &str, value: &str| {
            let mut l = plugin(name);
            l.push((key.to_owned(), value.to_owned()));
            l
        };
        let family =
            |name: &str, help: &str, counter: bool, samples: Vec<(Vec<(String, String)>, f64)>| {
                sluice_telemetry::Family {
                    name: name.to_owned(),
                    help: help.to_owned(),
                    counter,
                    samples,
                }
            };
        let mut requests = Vec::new();
        let mut errors = Vec::new();
        let mut faults = Vec::new();
        let mut instances = Vec::new();
        let mut events = Vec::new();
        for (name, s) in &stats {
            requests.push((plugin(name), s.requests as f64));
            errors.push((plugin(name), s.errors as f64));
            for (kind, n) in [
                ("trap", s.traps),
                ("deadline", s.timeouts),
                ("out_of_memory", s.out_of_memory),
                ("host_not_allowed", s.hosts_refused),
                ("overloaded", s.overloaded),
            ] {
                faults.push((with(name, "kind", kind), n as f64));
            }
            instances.push((with(name, "state", "live"), s.instances_live as f64));
            instances.push((with(name, "state", "idle"), s.instances_idle as f64));
            for (event, n) in [
                ("created", s.instances_created),
                ("discarded", s.instances_discarded),
                ("recycled", s.instances_recycled),
                ("expired", s.instances_expired),
            ] {
                events.push((with(name, "event", event), n as f64));
            }
        }
        vec![
            family(
                "sluice.plugin.wasm.requests",
                "Requests given to a WebAssembly plugin.",
                true,
                requests,
            ),
            family(
                "sluice.plugin.wasm.errors",
                "Requests a WebAssembly plugin ended in an error (any kind).",
                true,
                errors,
            ),
            family(
                "sluice.plugin.wasm.faults",
                "WebAssembly plugin calls that failed, by kind: trap, deadline (cut at the deadline), out_of_memory, host_not_allowed (outbound call refused), overloaded (no instance free in time).",
                true,
                faults,
            ),
            family(
                "sluice.plugin.wasm.instances",
                "WebAssembly plugin instances alive now, by state (live: all, idle: waiting for a request).",
                false,
                instances,
            ),
            family(
                "sluice.plugin.wasm.instance.events",
                "WebAssembly plugin instance lifecycle events.",
                true,
                events,
            ),
        ]
    }
}
