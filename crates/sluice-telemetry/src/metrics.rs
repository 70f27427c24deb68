//! The metric store: series of atomic counters and histograms, grouped by label set, resolved
//! once and then updated with an atomic add. Written out in Prometheus' text format
//! ([`crate::exposition`]) and as OTLP ([`crate::otlp`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Histogram bucket bounds, in the raw unit a histogram counts (nanoseconds or bytes).
#[derive(Debug)]
pub(crate) struct Scale {
    /// Upper bounds in raw units, ascending.
    pub(crate) raw: Vec<u64>,
    /// The same bounds in the exported unit (seconds or bytes).
    pub(crate) bounds: Vec<f64>,
    /// Raw units per exported unit (1e9 nanoseconds to the second).
    pub(crate) divisor: f64,
}

/// krakend-otel's time buckets (seconds), counted in nanoseconds.
pub(crate) fn time_scale() -> &'static Scale {
    static SCALE: OnceLock<Scale> = OnceLock::new();
    SCALE.get_or_init(|| {
        let bounds: Vec<f64> = vec![
            0.010, 0.020, 0.050, 0.075, 0.100, 0.125, 0.150, 0.175, 0.200, 0.250, 0.300, 0.350,
            0.500, 0.750, 1.000, 1.500, 2.000, 3.500, 5.000, 10.000,
        ];
        Scale {
            raw: bounds.iter().map(|s| (s * 1e9).round() as u64).collect(),
            bounds,
            divisor: 1e9,
        }
    })
}

/// krakend-otel's size buckets (bytes).
pub(crate) fn size_scale() -> &'static Scale {
    static SCALE: OnceLock<Scale> = OnceLock::new();
    SCALE.get_or_init(|| {
        let raw: Vec<u64> = vec![
            128,
            256,
            512,
            1024,
            4 << 10,
            8 << 10,
            16 << 10,
            32 << 10,
            64 << 10,
            256 << 10,
            512 << 10,
            1 << 20,
            4 << 20,
            16 << 20,
            64 << 20,
        ];
        Scale {
            bounds: raw.iter().map(|b| *b as f64).collect(),
            raw,
            divisor: 1.0,
        }
    })
}

/// A histogram: one counter per bucket (the last is `+Inf`) and the sum, in raw units.
#[derive(Debug)]
pub(crate) struct Histogram {
    pub(crate) scale: &'static Scale,
    pub(crate) buckets: Box<[AtomicU64]>,
    pub(crate) sum: AtomicU64,
}

impl Histogram {
    fn new(scale: &'static Scale) -> Self {
        Self {
            scale,
            buckets: (0..=scale.raw.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Counts one value (nanoseconds or bytes): two atomic adds.
    pub(crate) fn observe(&self, raw: u64) {
        let i = self.scale.raw.partition_point(|bound| *bound < raw);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(raw, Ordering::Relaxed);
    }

    pub(crate) fn observe_duration(&self, d: Duration) {
        self.observe(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Per-bucket counts (not cumulative), the count and the sum in the exported unit.
    pub(crate) fn snapshot(&self) -> (Vec<u64>, u64, f64) {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let count = counts.iter().sum();
        let sum = self.sum.load(Ordering::Relaxed) as f64 / self.scale.divisor;
        (counts, count, sum)
    }
}

/// What one metric of a [`Group`] is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    /// A counter (`<name>_total`), index into [`Series::counters`].
    Counter(usize),
    /// A counter of nanoseconds exported in seconds (`<name>_seconds_total`).
    SecondsCounter(usize),
    /// A histogram, index into [`Series::histograms`].
    Histogram(usize),
}

/// One metric of a group: its OpenTelemetry name (`http.server.duration`) and kind.
#[derive(Debug, Clone)]
pub(crate) struct Def {
    pub(crate) name: String,
    pub(crate) help: &'static str,
    pub(crate) kind: Kind,
    /// The unit as OpenTelemetry's Prometheus exporter suffixes it (`seconds`), or empty.
    pub(crate) unit: &'static str,
}

/// The cells of one label set.
#[derive(Debug)]
pub(crate) struct Series {
    pub(crate) counters: Box<[AtomicU64]>,
    pub(crate) histograms: Box<[Histogram]>,
}

impl Series {
    pub(crate) fn add(&self, counter: usize, n: u64) {
        self.counters[counter].fetch_add(n, Ordering::Relaxed);
    }
}

/// Metrics that always share their label sets (krakend-otel records them with one attribute
/// set), and every label set seen so far.
#[derive(Debug)]
pub(crate) struct Group {
    pub(crate) defs: Vec<Def>,
    counters: usize,
    scales: Vec<&'static Scale>,
    /// Label sets in creation order, sorted by name, and their cells.
    series: Mutex<Vec<(Labels, Arc<Series>)>>,
    index: Mutex<HashMap<Labels, Arc<Series>>>,
}

/// A label set: `(name, value)` pairs sorted by name, names as OpenTelemetry writes them.
pub(crate) type Labels = Vec<(String, String)>;

impl Group {
    pub(crate) fn new(defs: Vec<Def>, counters: usize, scales: Vec<&'static Scale>) -> Self {
        Self {
            defs,
            counters,
            scales,
            series: Mutex::new(Vec::new()),
            index: Mutex::new(HashMap::new()),
        }
    }

    /// The cells of `labels` (created on first use; later calls return the same cells).
    pub(crate) fn series(&self, mut labels: Labels) -> Arc<Series> {
        normalise(&mut labels);
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = index.get(&labels) {
            return Arc::clone(found);
        }
        let series = Arc::new(Series {
            counters: (0..self.counters).map(|_| AtomicU64::new(0)).collect(),
            histograms: self.scales.iter().map(|s| Histogram::new(s)).collect(),
        });
        index.insert(labels.clone(), Arc::clone(&series));
        self.series
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((labels, Arc::clone(&series)));
        series
    }

    /// Every label set and its cells, in creation order.
    pub(crate) fn all(&self) -> Vec<(Labels, Arc<Series>)> {
        self.series
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// Sorted by name; a name given twice keeps its last value (as an OpenTelemetry attribute set).
fn normalise(labels: &mut Labels) {
    let mut seen: Labels = Vec::with_capacity(labels.len());
    for (k, v) in labels.drain(..).rev() {
        if !seen.iter().any(|(name, _)| *name == k) {
            seen.push((k, v));
        }
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    *labels = seen;
}

/// How many distinct dynamic keys a [`Slots`] resolves without a lock.
const SLOTS: usize = 8;

/// The series of one handle whose labels vary by a small key (status code, outcome): the
/// first [`SLOTS`] keys seen are cached lock-free, so a request pays an atomic load and the
/// adds; further keys are looked up in the group (still bounded: keys come from small sets).
#[derive(Debug)]
pub(crate) struct Slots {
    group: Arc<Group>,
    keys: [AtomicU32; SLOTS],
    cells: [OnceLock<Arc<Series>>; SLOTS],
}

impl Slots {
    pub(crate) fn new(group: Arc<Group>) -> Self {
        Self {
            group,
            keys: Default::default(),
            cells: Default::default(),
        }
    }

    /// Runs `f` on the series of `key`, whose labels `labels` builds (only the first time).
    pub(crate) fn with(&self, key: u32, labels: impl FnOnce() -> Labels, f: impl FnOnce(&Series)) {
        let tag = key.saturating_add(1);
        for i in 0..SLOTS {
            let current = self.keys[i].load(Ordering::Acquire);
            let mine = current == tag
                || (current == 0
                    && match self.keys[i].compare_exchange(
                        0,
                        tag,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => true,
                        Err(actual) => actual == tag,
                    });
            if mine {
                return f(self.cells[i].get_or_init(|| self.group.series(labels())));
            }
        }
        f(&self.group.series(labels()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_slots() {
        let group = Arc::new(Group::new(
            vec![Def {
                name: "x".into(),
                help: "",
                kind: Kind::Histogram(0),
                unit: "",
            }],
            1,
            vec![time_scale()],
        ));
        let slots = Slots::new(Arc::clone(&group));
        for status in [200u32, 200, 404, 500, 201, 202, 203, 204, 205, 206, 207] {
            slots.with(
                status,
                || vec![("code".into(), status.to_string())],
                |s| {
                    s.histograms[0].observe_duration(Duration::from_millis(10));
                    s.add(0, 1);
                },
            );
        }
        let all = group.all();
        assert_eq!(all.len(), 10);
        let (counts, count, sum) = all[0].1.histograms[0].snapshot();
        assert_eq!(count, 2);
        assert_eq!(counts[0], 2, "10ms is in le=0.01");
        assert!((sum - 0.02).abs() < 1e-9);
        assert_eq!(all[0].1.counters[0].load(Ordering::Relaxed), 2);
    }
}
