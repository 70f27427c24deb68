//! The handles the gateway resolves when it is built: one per route (global and proxy layers),
//! one per backend, one per plugin. Each holds its series (or the lock-free slots of the few
//! series its dynamic labels select), so a request pays atomic adds and never a name lookup.
//!
//! Metric names and attributes are krakend-otel's (its default, pre-1.27 semantic convention).

use std::sync::Arc;
use std::time::Duration;

use crate::metrics::{Def, Group, Kind, Labels, Series, Slots, size_scale, time_scale};

/// The methods krakend-otel reports as themselves; any other is `_OTHER`.
const METHODS: [&str; 9] = [
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
];

/// The method label krakend-otel's server layer writes (bounded: a client cannot invent one).
pub(crate) fn method_index(method: &str) -> u32 {
    // Nearly every request: no scan.
    if method == METHODS[2] {
        return 2;
    }
    METHODS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(method))
        .map_or(METHODS.len() as u32, |i| i as u32)
}

fn method_label(index: u32) -> &'static str {
    METHODS.get(index as usize).copied().unwrap_or("_OTHER")
}

fn kv(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_owned(), v.into())
}

fn def(name: &str, kind: Kind) -> Def {
    Def {
        name: name.to_owned(),
        help: "",
        kind,
        unit: "",
    }
}

/// The groups of krakend-otel's metrics, created once per [`crate::Telemetry`].
#[derive(Debug)]
pub(crate) struct Groups {
    pub(crate) server: Arc<Group>,
    pub(crate) proxy: Arc<Group>,
    pub(crate) backend: Arc<Group>,
    pub(crate) round_trip: Arc<Group>,
    pub(crate) read_payload: Arc<Group>,
    pub(crate) read_errors: Arc<Group>,
    pub(crate) plugin: Arc<Group>,
    pub(crate) outbound: Arc<Group>,
}

/// Counter indices of the round-trip group.
mod rt {
    pub(super) const STARTED: usize = 0;
    pub(super) const FAILED: usize = 1;
    pub(super) const CANCELED: usize = 2;
    pub(super) const TIMED_OUT: usize = 3;
    pub(super) const REQUEST_SIZE: usize = 4;
    pub(super) const NO_CONTENT_LENGTH: usize = 5;
}

impl Groups {
    pub(crate) fn new() -> Self {
        let time = time_scale();
        let size = size_scale();
        Self {
            server: Arc::new(Group::new(
                vec![
                    def("http.server.duration", Kind::Histogram(0)),
                    def("http.server.response.size", Kind::Histogram(1)),
                ],
                0,
                vec![time, size],
            )),
            proxy: Arc::new(Group::new(
                vec![def("krakend.proxy.duration", Kind::Histogram(0))],
                0,
                vec![time],
            )),
            backend: Arc::new(Group::new(
                vec![def("krakend.backend.duration", Kind::Histogram(0))],
                0,
                vec![time],
            )),
            round_trip: Arc::new(Group::new(
                vec![
                    def(
                        "http.client.request.started.count",
                        Kind::Counter(rt::STARTED),
                    ),
                    def(
                        "http.client.request.failed.count",
                        Kind::Counter(rt::FAILED),
                    ),
                    def(
                        "http.client.request.canceled.count",
                        Kind::Counter(rt::CANCELED),
                    ),
                    def(
                        "http.client.request.timedout.count",
                        Kind::Counter(rt::TIMED_OUT),
                    ),
                    def("http.client.request.size", Kind::Counter(rt::REQUEST_SIZE)),
                    def("http.client.duration", Kind::Histogram(0)),
                    def("http.client.response.size", Kind::Histogram(1)),
                    def(
                        "http.client.response.no-content-length",
                        Kind::Counter(rt::NO_CONTENT_LENGTH),
                    ),
                ],
                6,
                vec![time, size],
            )),
            read_payload: Arc::new(Group::new(
                vec![
                    def("http.client.response.read.size", Kind::Counter(0)),
                    def("http.client.response.read.size-hist", Kind::Histogram(0)),
                    def("http.client.response.read.time", Kind::SecondsCounter(1)),
                    Def {
                        unit: "seconds",
                        ..def("http.client.response.read.time-hist", Kind::Histogram(1))
                    },
                ],
                2,
                vec![size, time],
            )),
            read_errors: Arc::new(Group::new(
                vec![def("http.client.response.read.errors", Kind::Counter(0))],
                1,
                Vec::new(),
            )),
            plugin: Arc::new(Group::new(
                vec![
                    Def {
                        help: "Calls to a client plugin (any kind), by outcome.",
                        ..def("sluice.plugin.calls", Kind::Counter(0))
                    },
                    Def {
                        help: "Time spent in a client plugin call.",
                        ..def("sluice.plugin.duration", Kind::Histogram(0))
                    },
                ],
                1,
                vec![time],
            )),
            outbound: Arc::new(Group::new(
                vec![
                    Def {
                        help: "Outbound calls made by a plugin through its allow-listed client, by origin and outcome.",
                        ..def("sluice.plugin.outbound.calls", Kind::Counter(0))
                    },
                    Def {
                        help: "Time of a plugin's outbound call.",
                        ..def("sluice.plugin.outbound.duration", Kind::Histogram(0))
                    },
                ],
                1,
                vec![time],
            )),
        }
    }

    pub(crate) fn all(&self) -> Vec<Arc<Group>> {
        vec![
            Arc::clone(&self.server),
            Arc::clone(&self.proxy),
            Arc::clone(&self.backend),
            Arc::clone(&self.round_trip),
            Arc::clone(&self.read_payload),
            Arc::clone(&self.read_errors),
            Arc::clone(&self.plugin),
            Arc::clone(&self.outbound),
        ]
    }
}

/// Global layer metrics of one route (`http.server.duration`, `http.server.response.size`).
#[derive(Debug)]
pub struct ServerMetrics {
    slots: Slots,
    /// `http.route` (the endpoint pattern, `:param` form), `None` for answers no endpoint gave
    /// (their route is the status text, as krakend-otel's).
    route: Option<String>,
    statics: Labels,
}

impl ServerMetrics {
    pub(crate) fn new(group: &Arc<Group>, route: Option<String>, statics: Labels) -> Self {
        Self {
            slots: Slots::new(Arc::clone(group)),
            route,
            statics,
        }
    }

    /// Records one request: the method (bounded to the known ones), the status, the time to
    /// the answer and its body size.
    pub fn record(&self, method: &str, status: u16, elapsed: Duration, size: u64) {
        let method = method_index(method);
        let key = u32::from(status) | (method << 16);
        self.slots.with(
            key,
            || {
                let mut labels = self.statics.clone();
                let route = self.route.clone().unwrap_or_else(|| status_route(status));
                labels.extend([
                    kv("http.request.method", method_label(method)),
                    kv("url.scheme", "http"),
                    kv("http.route", route),
                    kv("http.response.status_code", status.to_string()),
                ]);
                labels
            },
            |s| {
                s.histograms[0].observe_duration(elapsed);
                s.histograms[1].observe(size);
            },
        );
    }
}

/// krakend-otel's route for an answer no endpoint gave: `404 Not Found`.
pub(crate) fn status_route(status: u16) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    format!("{status} {reason}")
}

/// How a proxy or backend stage ended (krakend-otel's `error`, `canceled`, `complete`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageOutcome {
    /// It failed (for any reason other than cancellation).
    pub error: bool,
    /// The client went away first.
    pub canceled: bool,
    /// The answer is complete.
    pub complete: bool,
}

impl StageOutcome {
    fn key(self) -> u32 {
        u32::from(self.error) | u32::from(self.canceled) << 1 | u32::from(self.complete) << 2
    }
}

/// `krakend.proxy.duration` or `krakend.backend.duration` of one endpoint or backend.
#[derive(Debug)]
pub struct StageMetrics {
    slots: Slots,
    base: Labels,
}

impl StageMetrics {
    pub(crate) fn new(group: &Arc<Group>, base: Labels) -> Self {
        Self {
            slots: Slots::new(Arc::clone(group)),
            base,
        }
    }

    /// Records one pass through the stage.
    pub fn record(&self, elapsed: Duration, outcome: StageOutcome) {
        self.slots.with(
            outcome.key(),
            || {
                let mut labels = self.base.clone();
                labels.extend([
                    kv("error", outcome.error.to_string()),
                    kv("canceled", outcome.canceled.to_string()),
                    kv("complete", outcome.complete.to_string()),
                ]);
                labels
            },
            |s| s.histograms[0].observe_duration(elapsed),
        );
    }
}

/// How a backend round trip ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundTripEnd {
    /// An answer with this status; `content_length` as the response declared it.
    Answered {
        /// The status.
        status: u16,
        /// `Content-Length`, if the answer had one.
        content_length: Option<u64>,
    },
    /// It failed.
    Failed,
    /// The deadline cut it (counted as failed too, as krakend-otel).
    TimedOut,
    /// The client went away first.
    Canceled,
}

/// What a round trip is recorded under, read from its request when it starts (so the timer
/// keeps three numbers, not a copy of the URL and the method).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundTripTarget {
    /// Index of the host among the backend's (its count for another host).
    host: u32,
    /// [`method_index`] of the method.
    method: u32,
    /// A `HEAD` request (its answer has no body to measure).
    head: bool,
}

/// The `http.client.*` metrics of one backend's requests (krakend-otel's round trip).
#[derive(Debug)]
pub struct RoundTripMetrics {
    slots: Slots,
    base: Labels,
    /// The backend's hosts, from the config.
    hosts: Vec<RoundTripHost>,
}

/// One of a backend's hosts, as round trips are labelled.
#[derive(Debug)]
pub(crate) struct RoundTripHost {
    /// `server.address`, lower case.
    pub(crate) address: String,
    /// `server.port` (the scheme's when the host names none).
    pub(crate) port: u16,
    /// The URL authority as written in the config.
    pub(crate) authority: String,
}

impl RoundTripMetrics {
    pub(crate) fn new(group: &Arc<Group>, base: Labels, hosts: Vec<RoundTripHost>) -> Self {
        Self {
            slots: Slots::new(Arc::clone(group)),
            base,
            hosts,
        }
    }

    /// Records one round trip to `uri` (its host is one of the backend's), with `method`.
    pub fn record(
        &self,
        uri: &http::Uri,
        method: &http::Method,
        request_size: u64,
        elapsed: Duration,
        end: RoundTripEnd,
    ) {
        self.record_target(self.target(uri, method), request_size, elapsed, end);
    }

    /// What a request to `uri` with `method` is recorded under.
    pub fn target(&self, uri: &http::Uri, method: &http::Method) -> RoundTripTarget {
        // The URL the gateway built has one of the config's hosts' authority as written:
        // compared as text first, parsed only when that fails.
        let authority = uri.authority().map_or("", |a| a.as_str());
        let host_index = match self.hosts.iter().position(|h| h.authority == authority) {
            Some(i) => i,
            None => {
                let host = uri.host().unwrap_or("");
                let port = uri
                    .port_u16()
                    .unwrap_or(if uri.scheme_str() == Some("https") {
                        443
                    } else {
                        80
                    });
                // A host outside the config's list cannot occur (the builder picks from it);
                // it is labelled `other` rather than with a value the request chose.
                self.hosts
                    .iter()
                    .position(|h| h.port == port && h.address.eq_ignore_ascii_case(host))
                    .unwrap_or(self.hosts.len())
            }
        };
        RoundTripTarget {
            host: host_index.min(255) as u32,
            method: method_index(method.as_str()),
            head: *method == http::Method::HEAD,
        }
    }

    /// Records one round trip to `target` (see [`RoundTripMetrics::target`]).
    pub fn record_target(
        &self,
        target: RoundTripTarget,
        request_size: u64,
        elapsed: Duration,
        end: RoundTripEnd,
    ) {
        let status = match end {
            RoundTripEnd::Answered { status, .. } => status,
            _ => 0,
        };
        let host_index = target.host as usize;
        let method_index = target.method;
        let key = u32::from(status) | target.host << 16 | method_index << 24;
        self.slots.with(
            key,
            || {
                let mut labels = self.base.clone();
                let (address, port) = self
                    .hosts
                    .get(host_index)
                    .map_or(("other".to_owned(), 0), |h| (h.address.clone(), h.port));
                labels.extend([
                    kv("http.request.method", method_label(method_index)),
                    kv("server.address", address),
                    kv("server.port", port.to_string()),
                    kv("http.response.status_code", status.to_string()),
                ]);
                labels
            },
            |s| {
                s.add(rt::STARTED, 1);
                s.add(rt::REQUEST_SIZE, request_size);
                match end {
                    RoundTripEnd::Answered { content_length, .. } => {
                        if !target.head {
                            match content_length {
                                Some(n) => s.histograms[1].observe(n),
                                None => s.add(rt::NO_CONTENT_LENGTH, 1),
                            }
                        }
                    }
                    RoundTripEnd::Failed => s.add(rt::FAILED, 1),
                    RoundTripEnd::TimedOut => {
                        s.add(rt::TIMED_OUT, 1);
                        s.add(rt::FAILED, 1);
                    }
                    RoundTripEnd::Canceled => s.add(rt::CANCELED, 1),
                }
                s.histograms[0].observe_duration(elapsed);
            },
        );
    }
}

/// The `http.client.response.read.*` metrics of one backend (krakend-otel's read payload).
#[derive(Debug)]
pub struct ReadMetrics {
    series: Arc<Series>,
    errors: Arc<Series>,
}

impl ReadMetrics {
    pub(crate) fn new(groups: &Groups, base: Labels) -> Self {
        let mut with_error = base.clone();
        with_error.push(kv("error", "true"));
        Self {
            series: groups.read_payload.series(base),
            errors: groups.read_errors.series(with_error),
        }
    }

    /// Records one body read: its size and time, and whether it failed.
    pub fn record(&self, bytes: u64, elapsed: Duration, failed: bool) {
        let s = &self.series;
        s.add(0, bytes);
        s.histograms[0].observe(bytes);
        s.add(1, u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        s.histograms[1].observe_duration(elapsed);
        if failed {
            self.errors.add(0, 1);
        }
    }
}

/// The outcome classes of a plugin call (`outcome` label of `sluice.plugin.calls`).
pub const PLUGIN_OUTCOMES: [&str; 9] = [
    "ok",
    "connect",
    "timeout",
    "protocol",
    "body_too_large",
    "plugin_fault",
    "host_not_allowed",
    "overloaded",
    "other",
];

/// `sluice.plugin.calls` and `sluice.plugin.duration` of one backend's plugin.
#[derive(Debug)]
pub struct PluginMetrics {
    slots: Slots,
    base: Labels,
}

impl PluginMetrics {
    pub(crate) fn new(group: &Arc<Group>, base: Labels) -> Self {
        Self {
            slots: Slots::new(Arc::clone(group)),
            base,
        }
    }

    /// Records one call; `outcome` indexes [`PLUGIN_OUTCOMES`].
    pub fn record(&self, outcome: usize, elapsed: Duration) {
        let outcome = outcome.min(PLUGIN_OUTCOMES.len() - 1);
        self.slots.with(
            outcome as u32,
            || {
                let mut labels = self.base.clone();
                labels.push(kv("outcome", PLUGIN_OUTCOMES[outcome]));
                labels
            },
            |s| {
                s.add(0, 1);
                s.histograms[0].observe_duration(elapsed);
            },
        );
    }
}

/// `sluice.plugin.outbound.*` of one backend's plugin: by allowed origin (the config's list,
/// or `*` for a plugin allowed anywhere: never a host the plugin chose) and outcome.
#[derive(Debug)]
pub struct OutboundMetrics {
    slots: Slots,
    base: Labels,
    origins: Vec<String>,
}

impl OutboundMetrics {
    pub(crate) fn new(group: &Arc<Group>, base: Labels, origins: Vec<String>) -> Self {
        Self {
            slots: Slots::new(Arc::clone(group)),
            base,
            origins,
        }
    }

    /// Records one outbound call to the origin at `origin` in the list given at build time
    /// (`None`: a plugin allowed anywhere, or a refused call), with its outcome.
    pub fn record(&self, origin: Option<usize>, outcome: usize, elapsed: Duration) {
        let origin = origin.filter(|i| *i < self.origins.len());
        let outcome = outcome.min(PLUGIN_OUTCOMES.len() - 1);
        let key = outcome as u32 | (origin.map_or(0, |i| i + 1).min(0xffff) as u32) << 8;
        self.slots.with(
            key,
            || {
                let mut labels = self.base.clone();
                let host = origin.map_or("*", |i| self.origins[i].as_str());
                labels.push(kv("server.origin", host));
                labels.push(kv("outcome", PLUGIN_OUTCOMES[outcome]));
                labels
            },
            |s| {
                s.add(0, 1);
                s.histograms[0].observe_duration(elapsed);
            },
        );
    }
}
