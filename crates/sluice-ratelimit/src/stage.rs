//! The limits on the request path: a stage per limited endpoint (or the service), and a layer
//! around a limited backend's executor.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::StatusCode;
use sluice_plugin::{
    BackendRequest, BackendResponse, BoxFuture, CallContext, ErrorKind, ErrorSource, ExecError,
    Executor, SharedExecutor,
};
use sluice_stage::{EarlyAnswer, Phases, RequestHead, Stage, StageFuture};

use crate::bucket::{Bucket, Rate};
use crate::clients::ClientBuckets;
use crate::config::Strategy;
use crate::redis::{Pool, client_key};

/// Where a limit keeps its buckets.
#[derive(Debug)]
pub(crate) enum Store<Local> {
    /// In this gateway's memory.
    Local(Local),
    /// In Redis, shared by every gateway using the same pool.
    Redis {
        pool: Arc<Pool>,
        /// The key (global) or key prefix (clients).
        key: String,
        rate: Rate,
        on_failure_allow: bool,
    },
}

/// The limits of an endpoint or of the service.
#[derive(Debug)]
pub(crate) struct Limits {
    pub(crate) name: &'static str,
    pub(crate) client: Option<(Strategy, Store<ClientBuckets>)>,
    pub(crate) global: Option<Store<Bucket>>,
}

/// A client's identity by `strategy`; `None` when the request has none (KrakenD's empty key,
/// which it refuses).
fn identity<'h>(strategy: &Strategy, head: &'h RequestHead<'_>) -> Option<Cow<'h, [u8]>> {
    match strategy {
        Strategy::Ip(header) => {
            let from_header = header
                .as_ref()
                .and_then(|h| head.headers.get(h))
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_ip(v.split(',').next().unwrap_or("").trim()));
            let ip = from_header.unwrap_or(head.client_ip);
            Some(Cow::Owned(ip.to_string().into_bytes()))
        }
        Strategy::Header(name) => head
            .headers
            .get(name)
            .map(|v| Cow::Borrowed(v.as_bytes()))
            .filter(|v| !v.is_empty()),
        Strategy::Param(name) => head
            .params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| Cow::Borrowed(v.as_bytes()))
            .filter(|v| !v.is_empty()),
    }
}

/// An IP, or an `ip:port` (KrakenD drops the port), or nothing.
fn parse_ip(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// KrakenD's answers: 429 when a client is over its limit, 503 when all are over the endpoint's.
fn refused(status: StatusCode) -> Result<(), StatusCode> {
    Err(status)
}

async fn take_redis(pool: &Pool, key: &str, rate: &Rate, on_failure_allow: bool) -> bool {
    match pool.take(key, rate).await {
        Ok(allowed) => allowed,
        Err(_) => {
            pool.record_failure_decision(on_failure_allow);
            on_failure_allow
        }
    }
}

impl Limits {
    async fn check(&self, head: &RequestHead<'_>) -> Result<(), StatusCode> {
        // KrakenD's order: the client's bucket first (a refused client takes nothing from the
        // endpoint's), then the endpoint's.
        if let Some((strategy, store)) = &self.client {
            let Some(id) = identity(strategy, head) else {
                return refused(StatusCode::TOO_MANY_REQUESTS);
            };
            let allowed = match store {
                Store::Local(buckets) => buckets.allow(&id),
                Store::Redis {
                    pool,
                    key,
                    rate,
                    on_failure_allow,
                } => take_redis(pool, &client_key(key, &id), rate, *on_failure_allow).await,
            };
            if !allowed {
                return refused(StatusCode::TOO_MANY_REQUESTS);
            }
        }
        if let Some(store) = &self.global {
            let allowed = match store {
                Store::Local(bucket) => bucket.allow(),
                Store::Redis {
                    pool,
                    key,
                    rate,
                    on_failure_allow,
                } => take_redis(pool, key, rate, *on_failure_allow).await,
            };
            if !allowed {
                return refused(StatusCode::SERVICE_UNAVAILABLE);
            }
        }
        Ok(())
    }

    fn is_local(&self) -> bool {
        !matches!(self.client, Some((_, Store::Redis { .. })))
            && !matches!(self.global, Some(Store::Redis { .. }))
    }

    fn check_local(&self, head: &RequestHead<'_>) -> Result<(), StatusCode> {
        if let Some((strategy, Store::Local(buckets))) = &self.client {
            let allowed = identity(strategy, head).is_some_and(|id| buckets.allow(&id));
            if !allowed {
                return refused(StatusCode::TOO_MANY_REQUESTS);
            }
        }
        if let Some(Store::Local(bucket)) = &self.global
            && !bucket.allow()
        {
            return refused(StatusCode::SERVICE_UNAVAILABLE);
        }
        Ok(())
    }
}

impl Stage for Limits {
    fn name(&self) -> &'static str {
        self.name
    }

    fn phases(&self) -> Phases {
        Phases::REQUEST
    }

    fn on_request<'a>(&'a self, head: &'a mut RequestHead<'_>) -> StageFuture<'a> {
        if self.is_local() {
            return sluice_stage::decided(self.check_local(head).map_err(EarlyAnswer::empty));
        }
        Box::pin(async move { self.check(head).await.map_err(EarlyAnswer::empty) })
    }
}

/// `qos/ratelimit/proxy`: a backend's bucket, taken before each call. An empty bucket fails the
/// call as krakend-ratelimit's proxy does (its `ErrLimited`, "rate limit exceded"), so the
/// endpoint answers as for any failed backend.
#[derive(Debug)]
pub(crate) struct BackendLimit {
    pub(crate) inner: SharedExecutor,
    pub(crate) bucket: Bucket,
}

impl Executor for BackendLimit {
    fn execute<'a>(
        &'a self,
        request: BackendRequest,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        if !self.bucket.allow() {
            return Box::pin(std::future::ready(Err(ExecError::new(
                ErrorSource::Internal,
                ErrorKind::Overloaded,
                // KrakenD's message, spelling included: clients may match it with
                // return_error_msg.
                "rate limit exceded",
            ))));
        }
        self.inner.execute(request, ctx)
    }

    /// It reads nothing of the answer.
    fn reads_only_content_headers(&self) -> bool {
        self.inner.reads_only_content_headers()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_from_a_header() {
        assert_eq!(
            parse_ip("10.0.0.1"),
            Some("10.0.0.1".parse().unwrap_or(IpAddr::from([0; 4])))
        );
        assert_eq!(parse_ip("10.0.0.1:8080"), Some(IpAddr::from([10, 0, 0, 1])));
        assert_eq!(
            parse_ip("[::1]:80"),
            Some("::1".parse().unwrap_or(IpAddr::from([0; 4])))
        );
        assert_eq!(parse_ip("nope"), None);
    }
}
