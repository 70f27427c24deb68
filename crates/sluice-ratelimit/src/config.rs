//! Reading the rate limit blocks with the config's reader: every problem at its JSON path, every
//! field either applied or refused by name.

use std::collections::HashMap;
use std::time::Duration;

use http::HeaderName;
use serde_json::Value;
use sluice_config::read::{Obj, Reader, index_path, kind, quote};

use crate::bucket::Rate;
use crate::clients::MAX_SHARDS;

/// KrakenD's defaults (krakend-ratelimit): 2048 shards, swept every minute.
const DEFAULT_SHARDS: u64 = 2048;
const DEFAULT_CLEANUP: Duration = Duration::from_secs(60);

/// How a client is told apart (`strategy` and `key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// `ip`: the client's IP as the router resolved it, or the first IP in the `key` header
    /// when it holds one.
    Ip(Option<HeaderName>),
    /// `header`: the value of the `key` header (absent: refused, as KrakenD's empty key).
    Header(HeaderName),
    /// `param`: the endpoint's `key` param.
    Param(String),
}

/// A limit block's settings.
#[derive(Debug, Clone)]
pub(crate) struct Limit {
    /// `max_rate` (and `capacity`): one bucket for all clients; `None` when 0 or absent.
    pub(crate) global: Option<Rate>,
    /// `client_max_rate` (and `client_capacity`, `strategy`, `key`): a bucket per client.
    pub(crate) client: Option<(Strategy, Rate)>,
    /// `num_shards` (in-memory limits).
    pub(crate) shards: u64,
    /// `cleanup_period` (in-memory limits).
    pub(crate) cleanup: Duration,
    /// `connection_name` (or `connection_pool`) and `on_failure_allow` (Redis limits).
    pub(crate) redis: Option<RedisRef>,
}

/// Which Redis pool or cluster a limit uses, and what it does when Redis fails.
#[derive(Debug, Clone)]
pub(crate) struct RedisRef {
    /// The pool's or cluster's name.
    pub(crate) pool: String,
    /// The JSON path naming it, for errors.
    pub(crate) path: String,
    /// `on_failure_allow`: let requests through when Redis cannot answer (default: refuse).
    pub(crate) on_failure_allow: bool,
}

/// Where a limit block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// An endpoint (`qos/ratelimit/router`, `qos/ratelimit/router/redis`).
    Endpoint,
    /// The service (`qos/ratelimit/service`, `qos/ratelimit/service/redis`): before routing,
    /// so there are no params.
    Service,
}

const LOCAL_FIELDS: &[&str] = &[
    "max_rate",
    "capacity",
    "client_max_rate",
    "client_capacity",
    "strategy",
    "key",
    "every",
    "num_shards",
    "cleanup_period",
    "cleanup_threads",
];

const REDIS_FIELDS: &[&str] = &[
    "max_rate",
    "capacity",
    "client_max_rate",
    "client_capacity",
    "strategy",
    "key",
    "every",
    "connection_name",
    "connection_pool",
    "on_failure_allow",
];

/// A non-negative number at `key` (KrakenD reads rates as floats), `None` when absent.
fn rate_number(r: &mut Reader<'_>, o: &Obj<'_>, key: &str) -> Option<f64> {
    let value = o.get(key)?;
    match value.as_f64() {
        Some(n) if n.is_finite() && n >= 0.0 => Some(n),
        _ => {
            let found = match value {
                Value::Number(n) => n.to_string(),
                other => kind(other).to_owned(),
            };
            r.error(
                o.path_of(key),
                format!("expected a number of requests, 0 or more, found {found}"),
            );
            None
        }
    }
}

/// `every` as KrakenD's router reads it: 1 s when absent; a shorter period is raised to 1 s
/// (krakend-ratelimit's floor), said at start-up.
fn router_every(r: &mut Reader<'_>, o: &Obj<'_>) -> Duration {
    if o.get("every").is_none() {
        return Duration::from_secs(1);
    }
    let every = r.duration(o, "every");
    if every < Duration::from_secs(1) {
        tracing::warn!(
            path = %o.path_of("every"),
            "every is shorter than 1s: KrakenD's rate limit counts per 1s at the least, and so does Sluice"
        );
        return Duration::from_secs(1);
    }
    every
}

/// KrakenD's default capacity: the rate per second, at least 1.
fn default_capacity(max_rate: f64, every: Duration) -> u64 {
    let per_second = max_rate / every.as_secs_f64();
    if per_second < 1.0 {
        1
    } else {
        per_second as u64
    }
}

fn header_name(r: &mut Reader<'_>, o: &Obj<'_>, key: &str, value: &str) -> Option<HeaderName> {
    match HeaderName::from_bytes(value.as_bytes()) {
        Ok(name) => Some(name),
        Err(_) => {
            r.error(
                o.path_of(key),
                format!("expected a header name, found {}", quote(value)),
            );
            None
        }
    }
}

/// Reads a rate limit block: `qos/ratelimit/router` or `qos/ratelimit/service` (`redis` false),
/// or their `/redis` variants.
pub(crate) fn read_limit(r: &mut Reader<'_>, o: &Obj<'_>, scope: Scope, redis: bool) -> Limit {
    r.known_keys(o, if redis { REDIS_FIELDS } else { LOCAL_FIELDS });
    let max_rate = rate_number(r, o, "max_rate");
    let client_max_rate = rate_number(r, o, "client_max_rate");
    if o.get("max_rate").is_none() && o.get("client_max_rate").is_none() {
        r.error(
            o.path.clone(),
            "a rate limit needs max_rate or client_max_rate (or both)",
        );
    }
    let capacity: Option<u64> = r.uint(o, "capacity", "a whole number of requests, 0 or more");
    let client_capacity: Option<u64> = r.uint(
        o,
        "client_capacity",
        "a whole number of requests, 0 or more",
    );
    let every = router_every(r, o);

    let global = max_rate.filter(|m| *m > 0.0).map(|m| {
        let capacity = capacity
            .filter(|c| *c > 0)
            .unwrap_or_else(|| default_capacity(m, every));
        Rate::new(m, every, capacity)
    });

    let strategy = read_strategy(r, o, scope);
    let client = match (client_max_rate.filter(|m| *m > 0.0), strategy) {
        (None, _) => None,
        (Some(m), Some(strategy)) => {
            let capacity = client_capacity
                .filter(|c| *c > 0)
                .unwrap_or_else(|| default_capacity(m, every));
            Some((strategy, Rate::new(m, every, capacity)))
        }
        (Some(_), None) => {
            if o.get("strategy").is_none() {
                // KrakenD logs "unknown strategy" and serves without the client limit: a
                // silent bypass, refused here.
                r.error(
                    o.path_of("client_max_rate"),
                    "client_max_rate needs a strategy: \"ip\", \"header\" or \"param\"",
                );
            }
            None
        }
    };

    let mut shards = DEFAULT_SHARDS;
    let mut cleanup = DEFAULT_CLEANUP;
    if !redis {
        if let Some(n) = r.uint::<u64>(
            o,
            "num_shards",
            &format!("a whole number of shards from 1 to {MAX_SHARDS}"),
        ) {
            if (1..=MAX_SHARDS).contains(&n) {
                shards = n;
            } else {
                r.error(
                    o.path_of("num_shards"),
                    format!("expected a whole number of shards from 1 to {MAX_SHARDS}, found {n}"),
                );
            }
        }
        if o.get("cleanup_period").is_some() {
            // KrakenD's floor: 1 s.
            cleanup = r.duration(o, "cleanup_period").max(Duration::from_secs(1));
        }
        // cleanup_threads: KrakenD's number of sweeping goroutines. Sluice sweeps each shard
        // when it is next touched, with no background routine, so it is checked and has
        // nothing to size.
        let _: Option<u64> = r.uint(o, "cleanup_threads", "a whole number of routines");
    }

    let redis = if redis {
        let name = match (
            r.string(o, "connection_name"),
            r.string(o, "connection_pool"),
        ) {
            (Some(name), _) => Some((name, o.path_of("connection_name"))),
            (None, Some(name)) => Some((name, o.path_of("connection_pool"))),
            (None, None) => {
                r.error(
                    o.path.clone(),
                    "a Redis rate limit needs connection_name: the name of a pool or cluster in the service's \"redis\" connection_pools or clusters",
                );
                None
            }
        };
        let on_failure_allow = r.bool(o, "on_failure_allow");
        name.map(|(pool, path)| RedisRef {
            pool,
            path,
            on_failure_allow,
        })
    } else {
        None
    };

    Limit {
        global,
        client,
        shards,
        cleanup,
        redis,
    }
}

fn read_strategy(r: &mut Reader<'_>, o: &Obj<'_>, scope: Scope) -> Option<Strategy> {
    #[derive(Clone, Copy)]
    enum S {
        Ip,
        Header,
        Param,
    }
    let choice = r.choice(
        o,
        "strategy",
        &[("ip", S::Ip), ("header", S::Header), ("param", S::Param)],
    )?;
    let key = r.string(o, "key").filter(|k| !k.is_empty());
    match choice {
        S::Ip => Some(Strategy::Ip(match key {
            Some(k) => Some(header_name(r, o, "key", &k)?),
            None => None,
        })),
        S::Header => match key {
            Some(k) => Some(Strategy::Header(header_name(r, o, "key", &k)?)),
            None => {
                // KrakenD would key every client on an empty header and refuse them all.
                r.error(
                    o.path_of("key"),
                    "strategy \"header\" needs key: the header that identifies the client",
                );
                None
            }
        },
        S::Param if scope == Scope::Service => {
            r.error(
                o.path_of("strategy"),
                "strategy \"param\" cannot apply to the service limit: it runs before routing, where there are no params",
            );
            None
        }
        S::Param => match key {
            Some(k) => Some(Strategy::Param(k)),
            None => {
                r.error(
                    o.path_of("key"),
                    "strategy \"param\" needs key: the endpoint param that identifies the client",
                );
                None
            }
        },
    }
}

/// `qos/ratelimit/proxy`: `max_rate` per `every` (any period, as KrakenD's backend limit) and
/// `capacity`.
pub(crate) fn read_proxy(r: &mut Reader<'_>, o: &Obj<'_>) -> Option<Rate> {
    r.known_keys(o, &["max_rate", "capacity", "every"]);
    let max_rate = rate_number(r, o, "max_rate");
    if o.get("max_rate").is_none() {
        r.error(o.path.clone(), "a backend rate limit needs max_rate");
    }
    let capacity: Option<u64> = r.uint(o, "capacity", "a whole number of requests, 0 or more");
    let every = if o.get("every").is_some() {
        let every = r.duration(o, "every");
        if every.is_zero() {
            r.error(o.path_of("every"), "expected a period longer than zero");
            return None;
        }
        every
    } else {
        Duration::from_secs(1)
    };
    let max_rate = max_rate.filter(|m| *m > 0.0)?;
    let capacity = capacity
        .filter(|c| *c > 0)
        .unwrap_or_else(|| default_capacity(max_rate, every));
    Some(Rate::new(max_rate, every, capacity))
}

/// Where a connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A `connection_pools` entry: one Redis (`address`, `db`).
    Node {
        /// The host.
        host: String,
        /// The port (6379 when absent).
        port: u16,
        /// `db`.
        db: i64,
    },
    /// A `clusters` entry: the seed nodes of a Redis Cluster (`addresses`); the client learns
    /// the rest of the topology from them.
    Cluster {
        /// The seeds, `(host, port)`.
        nodes: Vec<(String, u16)>,
    },
}

impl Target {
    /// The address(es), for logs.
    pub(crate) fn describe(&self) -> String {
        let one = |host: &str, port: u16| {
            if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        };
        match self {
            Target::Node { host, port, .. } => one(host, *port),
            Target::Cluster { nodes } => nodes
                .iter()
                .map(|(h, p)| one(h, *p))
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// One `redis.connection_pools` or `redis.clusters` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PoolConfig {
    /// `name`.
    pub(crate) name: String,
    /// The entry's JSON path, for errors.
    pub(crate) path: String,
    /// `address` and `db` (pools) or `addresses` (clusters).
    pub(crate) target: Target,
    /// `user_name` (`username` accepted too).
    pub(crate) username: Option<String>,
    /// `password`.
    pub(crate) password: Option<String>,
    /// `pool_size`: connections opened (lazily), each multiplexing commands; default 10. For a
    /// cluster, each is a cluster connection (one multiplexed connection per node).
    pub(crate) pool_size: usize,
    /// `dial_timeout`: each connection attempt; default 5 s.
    pub(crate) dial_timeout: Duration,
    /// `pool_timeout`: how long a request waits for Redis's answer in all (connection
    /// included) before the limit counts Redis as failed; default [`DEFAULT_CHECK_TIMEOUT`].
    pub(crate) check_timeout: Duration,
    /// `max_retries`: reconnection attempts after a connection is lost (pools), or retries of a
    /// command, redirections included (clusters); default 3, -1 none.
    pub(crate) max_retries: usize,
    /// `min_retry_backoff`, default 8 ms.
    pub(crate) min_retry_backoff: Duration,
    /// `max_retry_backoff`, default 512 ms.
    pub(crate) max_retry_backoff: Duration,
}

/// How long a request waits for a Redis limit when `pool_timeout` is not set: short, so a dead
/// or slow Redis costs each request at most this (Redis answers in well under a millisecond
/// when healthy).
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_millis(250);
/// The most `pool_timeout` may be: a limit check must never hold a request for long.
pub const MAX_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// The most `pool_size` may be.
pub const MAX_POOL_SIZE: usize = 256;
/// The most `addresses` a cluster may list (seeds: a few are enough to find the rest).
pub const MAX_CLUSTER_SEEDS: usize = 64;

/// Fields both kinds of entry share and Sluice applies.
const SHARED_FIELDS: &[&str] = &[
    "name",
    "user_name",
    "username",
    "password",
    "pool_size",
    "dial_timeout",
    "pool_timeout",
    "max_retries",
    "min_retry_backoff",
    "max_retry_backoff",
];

/// Fields of KrakenD's schema that Sluice does not apply, with why; refused by name.
const REFUSED_FIELDS: &[(&str, &str)] = &[
    (
        "tls",
        "TLS to Redis is not supported by Sluice (it would connect in clear text)",
    ),
    ("client_name", "Sluice does not name its Redis connections"),
    (
        "opentelemetry",
        "Redis pool telemetry is not supported by Sluice",
    ),
    (
        "conn_max_idle_time",
        "Sluice keeps its Redis connections open (one per pool_size slot), with no idle limit",
    ),
    (
        "conn_max_life_time",
        "Sluice keeps its Redis connections open, with no life limit",
    ),
    (
        "max_active_conns",
        "Sluice opens at most pool_size connections; use pool_size",
    ),
    (
        "max_idle_conns",
        "Sluice keeps its pool_size connections open; use pool_size",
    ),
    (
        "min_idle_conns",
        "Sluice opens its connections on first use; use pool_size",
    ),
];

/// Refused for clusters only: redis-rs follows MOVED and ASK within the command's retries.
const MAX_REDIRECTS_WHY: &str = "Sluice's Redis Cluster client follows MOVED and ASK redirections within max_retries (one budget for retries and redirections, each bounded by pool_timeout); use max_retries";

/// The service's `redis` block: its connection pools and clusters by name (one namespace).
pub(crate) fn read_redis(r: &mut Reader<'_>, o: &Obj<'_>) -> HashMap<String, PoolConfig> {
    r.known_keys(o, &["connection_pools", "clusters"]);
    let mut pools: HashMap<String, PoolConfig> = HashMap::new();
    for (key, cluster) in [("connection_pools", false), ("clusters", true)] {
        let Some(items) = r.array(o, key) else {
            continue;
        };
        let path = o.path_of(key);
        for (i, item) in items.iter().enumerate() {
            let Some(p) = r.as_object(item, index_path(&path, i)) else {
                continue;
            };
            let Some(pool) = read_pool(r, &p, cluster) else {
                continue;
            };
            if let Some(first) = pools.get(&pool.name) {
                r.error(
                    p.path_of("name"),
                    format!(
                        "a second connection named {} (the first is {}): names must be unique across connection_pools and clusters",
                        quote(&pool.name),
                        first.path
                    ),
                );
                continue;
            }
            pools.insert(pool.name.clone(), pool);
        }
    }
    pools
}

fn read_pool(r: &mut Reader<'_>, p: &Obj<'_>, cluster: bool) -> Option<PoolConfig> {
    let what = if cluster {
        "a cluster"
    } else {
        "a connection pool"
    };
    // Name the fields Sluice does not apply before listing what it does.
    for (field, why) in REFUSED_FIELDS {
        if p.map.contains_key(*field) {
            r.error(p.path_of(field), format!("{}: {why}", quote(field)));
        }
    }
    if cluster && p.map.contains_key("max_redirects") {
        r.error(
            p.path_of("max_redirects"),
            format!("{}: {MAX_REDIRECTS_WHY}", quote("max_redirects")),
        );
    }
    let own: &[&str] = if cluster {
        &["addresses", "max_redirects"]
    } else {
        &["address", "db"]
    };
    let known: Vec<&str> = SHARED_FIELDS
        .iter()
        .chain(own)
        .copied()
        .chain(REFUSED_FIELDS.iter().map(|(f, _)| *f))
        .collect();
    r.known_keys(p, &known);
    let name = r.string(p, "name").filter(|n| !n.is_empty());
    if name.is_none() && p.get("name").is_none() {
        r.error(p.path.clone(), format!("{what} needs a name"));
    }
    let target = if cluster {
        read_cluster_nodes(r, p)
    } else {
        read_node(r, p)
    };
    let username = r.string(p, "user_name").or_else(|| r.string(p, "username"));
    let password = r.string(p, "password");
    let pool_size: usize = match r.uint::<usize>(
        p,
        "pool_size",
        &format!("a number of connections from 0 to {MAX_POOL_SIZE}"),
    ) {
        // KrakenD: 0 is the default, 10.
        None | Some(0) => 10,
        Some(n) if n <= MAX_POOL_SIZE => n,
        Some(n) => {
            r.error(
                p.path_of("pool_size"),
                format!("expected a number of connections from 0 to {MAX_POOL_SIZE}, found {n}"),
            );
            10
        }
    };
    let dial_timeout = if p.get("dial_timeout").is_some() {
        r.duration(p, "dial_timeout")
    } else {
        Duration::from_secs(5)
    };
    let check_timeout = if p.get("pool_timeout").is_some() {
        let t = r.duration(p, "pool_timeout");
        if t.is_zero() || t > MAX_CHECK_TIMEOUT {
            r.error(
                p.path_of("pool_timeout"),
                format!(
                    "expected a period longer than zero and at most {}s: it bounds how long a request waits for Redis",
                    MAX_CHECK_TIMEOUT.as_secs()
                ),
            );
        }
        t
    } else {
        DEFAULT_CHECK_TIMEOUT
    };
    let max_retries = match p.get("max_retries") {
        None => 3,
        Some(v) if v.as_i64() == Some(-1) => 0,
        Some(_) => r
            .uint::<usize>(p, "max_retries", "a number of retries, or -1 for none")
            .unwrap_or(3),
    };
    let min_retry_backoff = if p.get("min_retry_backoff").is_some() {
        r.duration(p, "min_retry_backoff")
    } else {
        Duration::from_millis(8)
    };
    let max_retry_backoff = if p.get("max_retry_backoff").is_some() {
        r.duration(p, "max_retry_backoff")
    } else {
        Duration::from_millis(512)
    };
    Some(PoolConfig {
        name: name?,
        path: p.path.clone(),
        target: target?,
        username,
        password,
        pool_size,
        dial_timeout,
        check_timeout,
        max_retries,
        min_retry_backoff,
        max_retry_backoff,
    })
}

/// A pool's `address` and `db`.
fn read_node(r: &mut Reader<'_>, p: &Obj<'_>) -> Option<Target> {
    let db: Option<u32> = r.uint(p, "db", "a database number, 0 or more");
    let (host, port) = match r.string(p, "address") {
        None => {
            if p.get("address").is_none() {
                r.error(
                    p.path.clone(),
                    "a connection pool needs an address (host:port)",
                );
            }
            return None;
        }
        Some(a) => match split_address(&a) {
            Some(hp) => hp,
            None => {
                r.error(
                    p.path_of("address"),
                    format!("expected host:port, found {}", quote(&a)),
                );
                return None;
            }
        },
    };
    Some(Target::Node {
        host,
        port,
        db: i64::from(db.unwrap_or(0)),
    })
}

/// A cluster's `addresses`: one `host:port` or more (a Redis Cluster has no databases, so no
/// `db`).
fn read_cluster_nodes(r: &mut Reader<'_>, p: &Obj<'_>) -> Option<Target> {
    let Some(items) = r.array(p, "addresses") else {
        if p.get("addresses").is_none() {
            r.error(
                p.path.clone(),
                "a cluster needs addresses: a list of its members' host:port",
            );
        }
        return None;
    };
    let path = p.path_of("addresses");
    if items.is_empty() || items.len() > MAX_CLUSTER_SEEDS {
        r.error(
            path.clone(),
            format!(
                "expected from 1 to {MAX_CLUSTER_SEEDS} host:port addresses, found {}",
                items.len()
            ),
        );
        return None;
    }
    let mut nodes = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(a) => match split_address(a) {
                Some(hp) => nodes.push(hp),
                None => r.error(
                    index_path(&path, i),
                    format!("expected host:port, found {}", quote(a)),
                ),
            },
            other => r.type_error(index_path(&path, i), "a host:port string", other),
        }
    }
    (nodes.len() == items.len()).then_some(Target::Cluster { nodes })
}

/// `host:port`, `host` (port 6379), `[v6]:port`.
fn split_address(address: &str) -> Option<(String, u16)> {
    if address.is_empty() || address.contains("://") {
        return None;
    }
    if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 6379,
            None => return None,
        };
        return Some((host.to_owned(), port));
    }
    match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && !host.is_empty() => {
            Some((host.to_owned(), port.parse().ok()?))
        }
        Some(_) => None,
        None => Some((address.to_owned(), 6379)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(split_address("redis:6380"), Some(("redis".into(), 6380)));
        assert_eq!(split_address("redis"), Some(("redis".into(), 6379)));
        assert_eq!(split_address("[::1]:7000"), Some(("::1".into(), 7000)));
        assert_eq!(split_address("redis://x:1"), None);
        assert_eq!(split_address("x:y"), None);
    }

    /// Reads `redis` as the service's block: the entries by name, and every error as
    /// `file: path: message`.
    fn redis_block(redis: Value) -> (HashMap<String, PoolConfig>, Vec<String>) {
        let file = std::path::Path::new("krakend.json");
        let options = sluice_config::LoadOptions::default();
        let mut r = Reader::new(file, &options);
        let o = r
            .as_object(&redis, "extra_config[\"redis\"]".to_owned())
            .expect("an object");
        let pools = read_redis(&mut r, &o);
        let errors = r.into_errors().iter().map(ToString::to_string).collect();
        (pools, errors)
    }

    #[test]
    fn clusters_apply_every_field_they_can() {
        let (pools, errors) = redis_block(serde_json::json!({
            "connection_pools": [{"name": "single", "address": "10.0.0.1:6379"}],
            "clusters": [{
                "name": "rl", "addresses": ["10.0.0.2:7000", "[::1]:7001", "redis-c"],
                "user_name": "u", "password": "p", "pool_size": 3, "dial_timeout": "2s",
                "pool_timeout": "300ms", "max_retries": -1, "min_retry_backoff": "1ms",
                "max_retry_backoff": "40ms"
            }]
        }));
        assert_eq!(errors, Vec::<String>::new());
        let c = &pools["rl"];
        assert_eq!(c.path, "extra_config[\"redis\"].clusters[0]");
        assert_eq!(
            c.target,
            Target::Cluster {
                nodes: vec![
                    ("10.0.0.2".into(), 7000),
                    ("::1".into(), 7001),
                    ("redis-c".into(), 6379)
                ]
            }
        );
        assert_eq!(c.target.describe(), "10.0.0.2:7000,[::1]:7001,redis-c:6379");
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref()),
            (Some("u"), Some("p"))
        );
        assert_eq!(c.pool_size, 3);
        assert_eq!(c.dial_timeout, Duration::from_secs(2));
        assert_eq!(c.check_timeout, Duration::from_millis(300));
        assert_eq!(c.max_retries, 0);
        assert_eq!(c.min_retry_backoff, Duration::from_millis(1));
        assert_eq!(c.max_retry_backoff, Duration::from_millis(40));
        assert!(matches!(pools["single"].target, Target::Node { .. }));
    }

    #[test]
    fn clusters_refuse_what_they_cannot_honour_at_its_path() {
        let (pools, errors) = redis_block(serde_json::json!({
            "connection_pools": [{"name": "dup", "address": "10.0.0.1:6379"}],
            "clusters": [
                {"name": "a", "addresses": ["10.0.0.2:7000"], "db": 1, "route_randomly": true},
                {"name": "b", "addresses": "10.0.0.2:7000"},
                {"name": "c", "addresses": ["10.0.0.2:7000", 7001, "redis://x:1"]},
                {"name": "d", "addresses": []},
                {"name": "e"},
                {"addresses": ["10.0.0.2:7000"]},
                {"name": "dup", "addresses": ["10.0.0.2:7000"]},
                {"name": "f", "addresses": ["10.0.0.2:7000"], "max_redirects": 3, "tls": {},
                 "client_name": "x", "pool_size": "ten", "max_retries": -2}
            ]
        }));
        let c = "krakend.json: extra_config[\"redis\"].clusters";
        for expected in [
            format!("{c}[0].db: field \"db\" is not supported by Sluice"),
            format!("{c}[0].route_randomly: field \"route_randomly\" is not supported by Sluice"),
            format!("{c}[1].addresses: expected an array, found a string"),
            format!("{c}[2].addresses[1]: expected a host:port string, found a number"),
            format!("{c}[2].addresses[2]: expected host:port, found \"redis://x:1\""),
            format!(
                "{c}[3].addresses: expected from 1 to {MAX_CLUSTER_SEEDS} host:port addresses, found 0"
            ),
            format!("{c}[4]: a cluster needs addresses"),
            format!("{c}[5]: a cluster needs a name"),
            format!(
                "{c}[6].name: a second connection named \"dup\" (the first is extra_config[\"redis\"].connection_pools[0]): names must be unique across connection_pools and clusters"
            ),
            format!(
                "{c}[7].max_redirects: \"max_redirects\": Sluice's Redis Cluster client follows MOVED and ASK redirections within max_retries"
            ),
            format!("{c}[7].tls: \"tls\": TLS to Redis is not supported"),
            format!(
                "{c}[7].client_name: \"client_name\": Sluice does not name its Redis connections"
            ),
            format!("{c}[7].pool_size: expected a number of connections"),
            format!("{c}[7].max_retries: expected a number of retries, or -1 for none"),
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(&expected)),
                "missing: {expected}\n{errors:#?}"
            );
        }
        // `redis` itself: only its two lists.
        let (_, errors) = redis_block(serde_json::json!({"clusters": {}, "sentinels": []}));
        assert!(
            errors.iter().any(|e| e.starts_with(
                "krakend.json: extra_config[\"redis\"].clusters: expected an array, found an object"
            )),
            "{errors:#?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("krakend.json: extra_config[\"redis\"].sentinels: field \"sentinels\" is not supported")),
            "{errors:#?}"
        );
        // The first of two same-named entries keeps the name.
        assert!(matches!(pools["dup"].target, Target::Node { .. }));
    }

    #[test]
    fn capacities_default_to_the_rate_per_second() {
        assert_eq!(default_capacity(50.0, Duration::from_secs(1)), 50);
        assert_eq!(default_capacity(50.0, Duration::from_secs(600)), 1);
        assert_eq!(default_capacity(0.5, Duration::from_secs(1)), 1);
    }
}
