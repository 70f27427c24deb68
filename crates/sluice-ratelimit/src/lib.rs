//! KrakenD's rate limits for Sluice, as krakend-ratelimit (and KrakenD Enterprise, for the
//! service and Redis ones) configures them:
//!
//! | namespace | where | refuses with |
//! |---|---|---|
//! | `qos/ratelimit/router` | endpoint | 429 (a client over `client_max_rate`), 503 (all over `max_rate`) |
//! | `qos/ratelimit/service` | service, before routing | the same |
//! | `qos/ratelimit/router/redis`, `qos/ratelimit/service/redis` | endpoint, service | the same, buckets shared through Redis |
//! | `qos/ratelimit/proxy` | backend | the backend call fails ("rate limit exceded") |
//! | `redis` | service | the connection pools and Redis Clusters the Redis limits name |
//!
//! The refusals are bare (no body, no `Content-Type`), as gin's `AbortWithError` leaves them.

mod bucket;
mod clients;
mod config;
mod redis;
mod stage;

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use sluice_config::read::{Reader, quote};
use sluice_config::{Backend, Component, Config, Diagnostic, Endpoint, Level, LoadOptions};
use sluice_plugin::SharedExecutor;
use sluice_stage::{SharedStage, StageFactory};

pub use crate::bucket::{Bucket, Rate};
pub use crate::clients::{ClientBuckets, MAX_CLIENTS, MAX_SHARDS, MIN_PER_SHARD};
pub use crate::config::{
    DEFAULT_CHECK_TIMEOUT, MAX_CHECK_TIMEOUT, MAX_CLUSTER_SEEDS, MAX_POOL_SIZE,
};
pub use crate::redis::RedisStats;

use crate::config::{Limit, Scope};
use crate::redis::{Pool, Pools};
use crate::stage::{BackendLimit, Limits, Store};

/// The endpoint rate limit.
pub const ROUTER: &str = "qos/ratelimit/router";
/// The endpoint rate limit kept in Redis.
pub const ROUTER_REDIS: &str = "qos/ratelimit/router/redis";
/// The service rate limit.
pub const SERVICE: &str = "qos/ratelimit/service";
/// The service rate limit kept in Redis.
pub const SERVICE_REDIS: &str = "qos/ratelimit/service/redis";
/// The backend rate limit.
pub const PROXY: &str = "qos/ratelimit/proxy";
/// The service's Redis connection pools and clusters.
pub const REDIS: &str = "redis";

/// A config's pools, or what is wrong with its `redis` block.
type PoolsOrErrors = Result<Arc<Pools>, Vec<Diagnostic>>;

/// The component. Its Redis pools are built once per config and shared by every limit naming
/// them; [`RateLimits::redis_stats`] counts what Redis failures decided.
#[derive(Debug, Default)]
pub struct RateLimits {
    pools: Mutex<Option<(String, PoolsOrErrors)>>,
    stats: Arc<RedisStats>,
}

impl RateLimits {
    /// The component.
    pub fn new() -> Self {
        Self::default()
    }

    /// Redis failures seen by the limits of every gateway built by this component.
    pub fn redis_stats(&self) -> Arc<RedisStats> {
        Arc::clone(&self.stats)
    }

    /// The config's pools, read once per config.
    fn pools(&self, config: &Config) -> Result<Arc<Pools>, Vec<Diagnostic>> {
        let id = format!("{}\0{}", config.source.display(), config.digest);
        let mut cached = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached_id, pools)) = cached.as_ref()
            && *cached_id == id
        {
            return pools.clone();
        }
        let pools = self.read_pools(config).map(Arc::new);
        *cached = Some((id, pools.clone()));
        pools
    }

    fn read_pools(&self, config: &Config) -> Result<Pools, Vec<Diagnostic>> {
        let Some(value) = config.extra_config.get(REDIS) else {
            return Ok(Pools::new());
        };
        let options = LoadOptions::default();
        let mut r = Reader::new(&config.source, &options);
        let path = format!("extra_config[{}]", quote(REDIS));
        let Some(o) = r.as_object(value, path.clone()) else {
            return Err(r.into_errors());
        };
        let configs = config::read_redis(&mut r, &o);
        let mut pools = Pools::new();
        for (name, pool) in configs {
            let at = pool.path.clone();
            match Pool::new(pool, Arc::clone(&self.stats)) {
                Ok(pool) => {
                    pools.insert(name, Arc::new(pool));
                }
                Err(e) => r.error(at, format!("{}: {e}", quote(&name))),
            }
        }
        let errors = r.into_errors();
        if errors.is_empty() {
            Ok(pools)
        } else {
            Err(errors)
        }
    }

    /// The stage for a level's limit blocks (local and Redis), if any.
    fn limits(
        &self,
        config: &Config,
        extra: &Map<String, Value>,
        parent: &str,
        scope: Scope,
        redis_scope: String,
    ) -> Result<Vec<SharedStage>, Vec<Diagnostic>> {
        let (local_ns, redis_ns) = match scope {
            Scope::Endpoint => (ROUTER, ROUTER_REDIS),
            Scope::Service => (SERVICE, SERVICE_REDIS),
        };
        let options = LoadOptions::default();
        let mut r = Reader::new(&config.source, &options);
        let mut stages: Vec<SharedStage> = Vec::new();
        let path = |ns: &str| format!("{parent}extra_config[{}]", quote(ns));

        if let Some(value) = extra.get(local_ns)
            && let Some(o) = r.as_object(value, path(local_ns))
        {
            let limit = config::read_limit(&mut r, &o, scope, false);
            stages.push(Arc::new(local_limits(local_ns, &limit)));
        }

        if let Some(value) = extra.get(redis_ns)
            && let Some(o) = r.as_object(value, path(redis_ns))
        {
            let limit = config::read_limit(&mut r, &o, scope, true);
            if let Some(reference) = &limit.redis {
                match self.pools(config) {
                    // The service reports the broken `redis` block itself.
                    Err(_) => {}
                    Ok(pools) => match pools.get(&reference.pool) {
                        Some(pool) => stages.push(Arc::new(redis_limits(
                            redis_ns,
                            &limit,
                            pool,
                            &redis_scope,
                            reference.on_failure_allow,
                        ))),
                        None => r.error(
                            reference.path.clone(),
                            format!(
                                "no Redis connection pool or cluster named {} in the service's extra_config[\"redis\"] (connection_pools or clusters)",
                                quote(&reference.pool)
                            ),
                        ),
                    },
                }
            }
        }
        let errors = r.into_errors();
        if errors.is_empty() {
            Ok(stages)
        } else {
            Err(errors)
        }
    }
}

fn local_limits(name: &'static str, limit: &Limit) -> Limits {
    Limits {
        name,
        client: limit.client.as_ref().map(|(strategy, rate)| {
            (
                strategy.clone(),
                Store::Local(ClientBuckets::new(*rate, limit.shards, limit.cleanup)),
            )
        }),
        global: limit.global.map(|rate| Store::Local(Bucket::new(rate))),
    }
}

fn redis_limits(
    name: &'static str,
    limit: &Limit,
    pool: &Arc<Pool>,
    scope: &str,
    on_failure_allow: bool,
) -> Limits {
    Limits {
        name,
        client: limit.client.as_ref().map(|(strategy, rate)| {
            (
                strategy.clone(),
                Store::Redis {
                    pool: Arc::clone(pool),
                    key: scope.to_owned(),
                    rate: *rate,
                    on_failure_allow,
                },
            )
        }),
        global: limit.global.map(|rate| Store::Redis {
            pool: Arc::clone(pool),
            key: format!("{scope}:g"),
            rate,
            on_failure_allow,
        }),
    }
}

impl StageFactory for RateLimits {
    fn components(&self) -> Vec<Component> {
        let at = |namespace: &str, level: Level| Component {
            namespace: namespace.to_owned(),
            levels: vec![level],
        };
        vec![
            at(ROUTER, Level::Endpoint),
            at(ROUTER_REDIS, Level::Endpoint),
            at(SERVICE, Level::Service),
            at(SERVICE_REDIS, Level::Service),
            at(PROXY, Level::Backend),
            at(REDIS, Level::Service),
        ]
    }

    fn service_stages(&self, config: &Config) -> Result<Vec<SharedStage>, Vec<Diagnostic>> {
        let pools = self.pools(config).err().unwrap_or_default();
        match self.limits(
            config,
            &config.extra_config,
            "",
            Scope::Service,
            "sluice:ratelimit:service".to_owned(),
        ) {
            Ok(stages) if pools.is_empty() => Ok(stages),
            Ok(_) => Err(pools),
            Err(mut errors) => {
                errors.extend(pools);
                Err(errors)
            }
        }
    }

    fn endpoint_stages(
        &self,
        config: &Config,
        endpoint: &Endpoint,
    ) -> Result<Vec<SharedStage>, Vec<Diagnostic>> {
        self.limits(
            config,
            &endpoint.extra_config,
            &format!("{}.", endpoint.json_path),
            Scope::Endpoint,
            format!(
                "sluice:ratelimit:router:{} {}",
                endpoint.method, endpoint.endpoint
            ),
        )
    }

    fn wrap_backend(
        &self,
        config: &Config,
        _endpoint: &Endpoint,
        backend: &Backend,
        inner: SharedExecutor,
    ) -> Result<SharedExecutor, Vec<Diagnostic>> {
        let Some(value) = backend.extra_config.get(PROXY) else {
            return Ok(inner);
        };
        let options = LoadOptions::default();
        let mut r = Reader::new(&config.source, &options);
        let path = format!("{}.extra_config[{}]", backend.json_path, quote(PROXY));
        let Some(o) = r.as_object(value, path) else {
            return Err(r.into_errors());
        };
        let rate = config::read_proxy(&mut r, &o);
        let errors = r.into_errors();
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(match rate {
            Some(rate) => Arc::new(BackendLimit {
                inner,
                bucket: Bucket::new(rate),
            }),
            // max_rate 0: no limit, as KrakenD.
            None => inner,
        })
    }
}
