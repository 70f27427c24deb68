//! Buckets shared by every gateway through Redis (KrakenD Enterprise's `qos/ratelimit/*/redis`
//! with the service's `redis.connection_pools` or `redis.clusters`).
//!
//! One bucket is one Redis key holding the instant (in microseconds of Redis's own clock) at
//! which it is full again, and a Lua script takes a token atomically: N gateways taking from
//! the same key see one bucket, whatever their clocks say. The key expires when the bucket is
//! full again, so Redis holds only the buckets that are still refilling. The script touches
//! that one key only, so on a Redis Cluster it runs on the node owning the key's slot (the
//! cluster client routes EVALSHA by its key, and loads the script on every node when missing).
//!
//! Every check is bounded by the pool's check timeout (connection included); when Redis cannot
//! answer in time, the limit's `on_failure_allow` decides, and the failure is counted and
//! logged (once when Redis starts failing, once when it answers again).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::bucket::Rate;
use crate::config::{PoolConfig, Target};

/// The token bucket, atomically: KEYS[1] the bucket, ARGV[1] the interval between tokens and
/// ARGV[2] how far ahead the bucket may be full again (capacity × interval), in µs. Returns 1
/// when a token was taken. Redis's TIME is the clock, so every gateway shares it.
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local full_at = tonumber(redis.call('GET', KEYS[1]) or '0')
if full_at < now then full_at = now end
local next = full_at + interval
if next - now > burst then
  return 0
end
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.ceil((next - now) / 1000) + 1)
return 1
";

/// What the Redis limits of a gateway have seen, for logs and tests.
#[derive(Debug, Default)]
pub struct RedisStats {
    /// Checks Redis could not answer in time (or answered with an error).
    pub failures: AtomicU64,
    /// Of those, the requests let through (`on_failure_allow`).
    pub allowed_on_failure: AtomicU64,
    /// Of those, the requests refused (the default).
    pub refused_on_failure: AtomicU64,
}

impl RedisStats {
    /// A snapshot: (failures, allowed on failure, refused on failure).
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.failures.load(Ordering::Relaxed),
            self.allowed_on_failure.load(Ordering::Relaxed),
            self.refused_on_failure.load(Ordering::Relaxed),
        )
    }
}

/// How a pool reaches Redis.
enum Link {
    /// One Redis: `pool_size` self-reconnecting multiplexed connections.
    Node {
        client: Client,
        manager_config: ConnectionManagerConfig,
        slots: Vec<OnceCell<ConnectionManager>>,
    },
    /// A Redis Cluster: `pool_size` cluster connections, each routing a command to the node
    /// owning its key's slot and following the topology as it changes.
    Cluster {
        client: ClusterClient,
        slots: Vec<OnceCell<ClusterConnection>>,
    },
}

// By hand: redis-rs's cluster connection has no Debug.
impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, open, size) = match self {
            Link::Node { slots, .. } => (
                "node",
                slots.iter().filter(|s| s.initialized()).count(),
                slots.len(),
            ),
            Link::Cluster { slots, .. } => (
                "cluster",
                slots.iter().filter(|s| s.initialized()).count(),
                slots.len(),
            ),
        };
        f.debug_struct("Link")
            .field("kind", &kind)
            .field("open", &open)
            .field("size", &size)
            .finish()
    }
}

/// A connection of either kind, to invoke the script on.
enum Conn {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
}

/// One `connection_pools` or `clusters` entry: up to `pool_size` multiplexed connections,
/// opened on first use and reconnected by redis-rs when lost.
#[derive(Debug)]
pub(crate) struct Pool {
    config: PoolConfig,
    link: Link,
    next: AtomicUsize,
    failing: AtomicBool,
    stats: Arc<RedisStats>,
    script: redis::Script,
}

fn empty_slots<T>(n: usize) -> Vec<OnceCell<T>> {
    (0..n.max(1)).map(|_| OnceCell::new()).collect()
}

/// Milliseconds, as redis-rs's cluster retry waits take them.
fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Pool {
    /// A pool (no connection is opened yet).
    ///
    /// # Errors
    /// When redis-rs refuses the address(es).
    pub(crate) fn new(config: PoolConfig, stats: Arc<RedisStats>) -> Result<Self, String> {
        // A connection attempt never outlasts the check it serves.
        let dial = config.dial_timeout.min(config.check_timeout);
        let link = match &config.target {
            Target::Node { host, port, db } => {
                let info: ConnectionInfo = ConnectionAddr::Tcp(host.clone(), *port)
                    .into_connection_info()
                    .map_err(|e| e.to_string())?;
                let mut redis_info = RedisConnectionInfo::default().set_db(*db);
                if let Some(user) = &config.username {
                    redis_info = redis_info.set_username(user);
                }
                if let Some(password) = &config.password {
                    redis_info = redis_info.set_password(password);
                }
                let client =
                    Client::open(info.set_redis_settings(redis_info)).map_err(|e| e.to_string())?;
                let manager_config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(dial))
                    .set_response_timeout(Some(config.check_timeout))
                    .set_number_of_retries(config.max_retries)
                    .set_min_delay(config.min_retry_backoff)
                    .set_max_delay(config.max_retry_backoff);
                Link::Node {
                    client,
                    manager_config,
                    slots: empty_slots(config.pool_size),
                }
            }
            Target::Cluster { nodes } => {
                let seeds = nodes
                    .iter()
                    .map(|(host, port)| ConnectionAddr::Tcp(host.clone(), *port))
                    .collect::<Vec<_>>();
                let mut builder = ClusterClientBuilder::new(seeds)
                    .connection_timeout(dial)
                    .response_timeout(config.check_timeout)
                    // Retries and redirections together stay within one check.
                    .overall_response_timeout(Some(config.check_timeout))
                    .retries(u32::try_from(config.max_retries).unwrap_or(u32::MAX))
                    .min_retry_wait(millis(config.min_retry_backoff))
                    .max_retry_wait(millis(config.max_retry_backoff));
                if let Some(user) = &config.username {
                    builder = builder.username(user);
                }
                if let Some(password) = &config.password {
                    builder = builder.password(password);
                }
                Link::Cluster {
                    client: builder.build().map_err(|e| e.to_string())?,
                    slots: empty_slots(config.pool_size),
                }
            }
        };
        Ok(Self {
            config,
            link,
            next: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
            stats,
            script: redis::Script::new(TAKE),
        })
    }

    async fn connection(&self) -> redis::RedisResult<Conn> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        match &self.link {
            Link::Node {
                client,
                manager_config,
                slots,
            } => {
                let manager = slots[i % slots.len()]
                    .get_or_try_init(|| {
                        client.get_connection_manager_with_config(manager_config.clone())
                    })
                    .await?;
                Ok(Conn::Node(manager.clone()))
            }
            Link::Cluster { client, slots } => {
                // A failed first connection leaves the slot empty: the next check tries again.
                let conn = slots[i % slots.len()]
                    .get_or_try_init(|| client.get_async_connection())
                    .await?;
                Ok(Conn::Cluster(conn.clone()))
            }
        }
    }

    /// Takes a token from the bucket at `key`: `Ok(allowed)`, or `Err` when Redis did not
    /// answer within the check timeout.
    pub(crate) async fn take(&self, key: &str, rate: &Rate) -> Result<bool, String> {
        // Microseconds, Redis's clock unit here; at least 1 µs between tokens.
        let interval = (rate.interval_ns() / 1_000).max(1);
        let burst = interval.saturating_mul(rate.capacity());
        let call = async {
            let mut invocation = self.script.key(key);
            invocation.arg(interval).arg(burst);
            match self.connection().await? {
                Conn::Node(mut conn) => invocation.invoke_async::<i64>(&mut conn).await,
                Conn::Cluster(mut conn) => invocation.invoke_async::<i64>(&mut conn).await,
            }
        };
        let result = match tokio::time::timeout(self.config.check_timeout, call).await {
            Ok(Ok(taken)) => Ok(taken == 1),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.config.check_timeout)),
        };
        match &result {
            Ok(_) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(pool = %self.config.name, "Redis answers the rate limits again");
                }
            }
            Err(e) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        pool = %self.config.name,
                        address = %self.config.target.describe(),
                        error = %e,
                        "Redis cannot answer the rate limits; each limit's on_failure_allow decides until it can"
                    );
                }
            }
        }
        result
    }

    /// Records what a failed check decided.
    pub(crate) fn record_failure_decision(&self, allowed: bool) {
        let counter = if allowed {
            &self.stats.allowed_on_failure
        } else {
            &self.stats.refused_on_failure
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A gateway's pools and clusters by name.
pub(crate) type Pools = HashMap<String, Arc<Pool>>;

/// The Redis key of a client's bucket: a hash of its identity (a token, an e-mail in a header:
/// nothing readable lands in Redis, and every key has the same length).
pub(crate) fn client_key(scope: &str, client: &[u8]) -> String {
    let digest = Sha256::digest(client);
    format!("{scope}:c:{}", hex::encode(&digest[..16]))
}
