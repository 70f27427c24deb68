//! Per-client buckets in memory: a sharded map from a client's key to its bucket, bounded.
//!
//! An entry whose bucket is full again carries no information (a new entry starts full), so
//! dropping it is lossless: each shard drops its full buckets every `cleanup_period` (when
//! next touched) and whenever it reaches its bound. Only when a shard is at its bound with every
//! bucket still refilling is one evicted: the one nearest to full, which forgives that client at
//! most the tokens it had left to wait for. Such evictions are counted.
//!
//! Keys are stored as a 64-bit keyed hash (SipHash with a random key per store), so an entry is
//! 16 bytes whatever the size of the header or param it came from, and a client cannot choose
//! values that collide.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::bucket::{Rate, now_ns};

/// Entries kept per store at most (across its shards), unless the shards ask for more (each
/// shard holds at least [`MIN_PER_SHARD`]). About 30 bytes each with the map's overhead, so the
/// default bound is some 4 MiB per client-limited endpoint.
pub const MAX_CLIENTS: usize = 131_072;
/// Each shard holds at least this many entries.
pub const MIN_PER_SHARD: usize = 64;
/// The most shards a store accepts (`num_shards`).
pub const MAX_SHARDS: u64 = 65_536;

#[derive(Debug, Default)]
struct Shard {
    full_at: HashMap<u64, u64>,
    swept_at: u64,
}

/// Every client's bucket for one limit.
#[derive(Debug)]
pub struct ClientBuckets {
    rate: Rate,
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
    cleanup_ns: u64,
    hasher: RandomState,
    evicted: AtomicU64,
}

impl ClientBuckets {
    /// Buckets of `rate`, in `shards` shards, swept every `cleanup_period`.
    pub fn new(rate: Rate, shards: u64, cleanup_period: Duration) -> Self {
        let shards = shards.clamp(1, MAX_SHARDS) as usize;
        Self {
            rate,
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: (MAX_CLIENTS / shards).max(MIN_PER_SHARD),
            cleanup_ns: u64::try_from(cleanup_period.as_nanos()).unwrap_or(u64::MAX),
            hasher: RandomState::new(),
            evicted: AtomicU64::new(0),
        }
    }

    /// The most clients tracked at once.
    pub fn bound(&self) -> usize {
        self.per_shard * self.shards.len()
    }

    /// Clients forgiven so far because their shard was full.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Clients tracked now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).full_at.len())
            .sum()
    }

    /// Whether no client is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes a token from `client`'s bucket if it has one.
    pub fn allow(&self, client: &[u8]) -> bool {
        self.allow_at(client, now_ns())
    }

    fn allow_at(&self, client: &[u8], now: u64) -> bool {
        let hash = self.hasher.hash_one(client);
        // The high bits pick the shard, so the map (which uses the low bits) stays spread.
        let index = ((hash >> 32) as usize) % self.shards.len();
        let mut shard = self.shards[index].lock().unwrap_or_else(|e| e.into_inner());
        if now.saturating_sub(shard.swept_at) >= self.cleanup_ns {
            shard.full_at.retain(|_, full_at| *full_at > now);
            shard.swept_at = now;
        }
        if let Some(full_at) = shard.full_at.get_mut(&hash) {
            return match self.rate.take(*full_at, now) {
                Some(next) => {
                    *full_at = next;
                    true
                }
                None => false,
            };
        }
        if shard.full_at.len() >= self.per_shard {
            shard.full_at.retain(|_, full_at| *full_at > now);
            shard.swept_at = now;
            if shard.full_at.len() >= self.per_shard
                && let Some((&nearest, _)) = shard.full_at.iter().min_by_key(|(_, v)| **v)
            {
                shard.full_at.remove(&nearest);
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        match self.rate.take(0, now) {
            Some(next) => {
                shard.full_at.insert(hash, next);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn each_client_has_its_own_bucket() {
        let c = ClientBuckets::new(
            Rate::new(1.0, Duration::from_secs(1), 2),
            4,
            Duration::from_secs(60),
        );
        let t = 5 * S;
        assert!(c.allow_at(b"a", t) && c.allow_at(b"a", t));
        assert!(!c.allow_at(b"a", t));
        assert!(c.allow_at(b"b", t));
        assert!(c.allow_at(b"a", t + S));
    }

    #[test]
    fn full_buckets_are_dropped_and_the_bound_holds() {
        let c = ClientBuckets::new(
            Rate::new(1.0, Duration::from_secs(1), 1),
            1,
            Duration::from_secs(1),
        );
        assert_eq!(c.bound(), MAX_CLIENTS);
        let t = 5 * S;
        for i in 0..1000u32 {
            assert!(c.allow_at(&i.to_be_bytes(), t));
        }
        assert_eq!(c.len(), 1000);
        // A second later every bucket is full again: the next touch sweeps them all.
        assert!(c.allow_at(b"new", t + 2 * S));
        assert_eq!(c.len(), 1);

        // More active clients than a shard holds: the nearest to full is forgiven, counted.
        let c = ClientBuckets::new(
            Rate::new(1.0, Duration::from_secs(60), 1),
            MAX_SHARDS,
            Duration::from_secs(60),
        );
        assert_eq!(c.bound(), MIN_PER_SHARD * MAX_SHARDS as usize);
        let small = ClientBuckets {
            shards: (0..1).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: 8,
            ..c
        };
        for i in 0..20u32 {
            assert!(small.allow_at(&i.to_be_bytes(), t + u64::from(i)));
        }
        assert_eq!(small.len(), 8);
        assert_eq!(small.evicted(), 12);
        // The most recent clients are still limited.
        assert!(!small.allow_at(&19u32.to_be_bytes(), t + 20));
    }
}
