//! Token buckets, as KrakenD's: `max_rate` tokens are added every `every`, the bucket holds at
//! most `capacity`, it starts full, and each request takes one token or is refused.
//!
//! The bucket is kept as one number, the instant it will be full again at the current rate
//! (the "theoretical arrival time" of GCRA, which is a token bucket written differently): a
//! request is allowed when, after taking its token, the bucket would be full again no later
//! than `capacity` intervals from now. One number makes the local bucket a single atomic, a
//! client's entry 8 bytes, and the Redis bucket one key.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A limit: one token every `interval`, at most `capacity` tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    interval_ns: u64,
    capacity: u64,
}

impl Rate {
    /// `max_rate` tokens every `every`, holding at most `capacity` (at least 1). `max_rate`
    /// must be positive and `every` non-zero (the config reader refuses the rest).
    pub fn new(max_rate: f64, every: Duration, capacity: u64) -> Self {
        let every_ns = every.as_nanos() as f64;
        // Faster than a token per nanosecond is no limit anyone can observe.
        let interval = (every_ns / max_rate).clamp(1.0, u64::MAX as f64) as u64;
        Self {
            interval_ns: interval.max(1),
            capacity: capacity.max(1),
        }
    }

    /// Nanoseconds between two tokens.
    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    /// The bucket's size.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// How far ahead of now the bucket may be full again: `capacity` intervals.
    pub fn burst_ns(&self) -> u64 {
        self.interval_ns.saturating_mul(self.capacity)
    }

    /// The bucket's new state if a request at `now` may take a token from the bucket whose
    /// state is `full_at`, `None` when it is empty.
    pub fn take(&self, full_at: u64, now: u64) -> Option<u64> {
        let next = full_at.max(now).saturating_add(self.interval_ns);
        (next - now <= self.burst_ns()).then_some(next)
    }
}

/// Nanoseconds since the first call in this process (a monotonic clock every bucket shares);
/// a state of zero is a full bucket.
pub(crate) fn now_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// One bucket shared by every request it limits (an endpoint's `max_rate`, a backend's).
#[derive(Debug)]
pub struct Bucket {
    rate: Rate,
    full_at: AtomicU64,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            full_at: AtomicU64::new(0),
        }
    }

    /// Takes a token if there is one.
    pub fn allow(&self) -> bool {
        self.allow_at(now_ns())
    }

    fn allow_at(&self, now: u64) -> bool {
        self.full_at
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |full_at| {
                self.rate.take(full_at, now)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn starts_full_refills_at_the_rate_and_holds_capacity() {
        // 2 every second, capacity 3: a burst of 3, then one token per 500 ms.
        let b = Bucket::new(Rate::new(2.0, Duration::from_secs(1), 3));
        let t0 = 10 * S;
        assert!((0..3).all(|_| b.allow_at(t0)));
        assert!(!b.allow_at(t0));
        assert!(!b.allow_at(t0 + S / 2 - 1));
        assert!(b.allow_at(t0 + S / 2));
        assert!(!b.allow_at(t0 + S / 2));
        // Idle for a long time: full again, never more than the capacity.
        let later = t0 + 100 * S;
        assert_eq!((0..10).filter(|_| b.allow_at(later)).count(), 3);
    }

    #[test]
    fn every_stretches_the_period() {
        // KrakenD's example: 5 every 10 minutes, capacity 5.
        let rate = Rate::new(5.0, Duration::from_secs(600), 5);
        assert_eq!(rate.interval_ns(), 120 * S);
        let b = Bucket::new(rate);
        let t0 = S;
        assert_eq!((0..10).filter(|_| b.allow_at(t0)).count(), 5);
        assert!(!b.allow_at(t0 + 119 * S));
        assert!(b.allow_at(t0 + 120 * S));
        // Fractional rates: 0.5 a second is one token every 2 s.
        assert_eq!(
            Rate::new(0.5, Duration::from_secs(1), 1).interval_ns(),
            2 * S
        );
    }

    #[test]
    fn accepted_over_a_window_is_capacity_plus_rate_times_time() {
        let b = Bucket::new(Rate::new(100.0, Duration::from_secs(1), 10));
        let mut accepted = 0;
        // A request every millisecond for 2 s.
        for ms in 0..2000u64 {
            if b.allow_at(S + ms * 1_000_000) {
                accepted += 1;
            }
        }
        assert!((209..=211).contains(&accepted), "{accepted}");
    }
}
