//! `qos/http-cache` on backends, as krakend-httpcache does (an RFC-minded HTTP cache in the
//! backend's client): GET and HEAD answers are kept while their `Cache-Control`/`Expires` say
//! they are fresh, and served without calling the backend; a stale one with a validator
//! (`ETag`, `Last-Modified`) is revalidated (`If-None-Match`/`If-Modified-Since`; a 304 refreshes
//! it); `Vary` is honoured (one variant per URL, as KrakenD: another variant replaces it).
//!
//! The layer wraps the executor, so a cached answer goes through the status check, decoding and
//! filters exactly as a fresh one (and through a circuit breaker wrapped around it).
//!
//! It behaves as the *shared* cache it is (one gateway, many clients), where KrakenD's library is
//! a private (browser-like) cache: `private` answers are not stored, `s-maxage` wins over
//! `max-age`, and an answer to a request with `Authorization` is stored only when it says
//! `public`, `s-maxage` or `must-revalidate` (RFC 9111 §3.5). Also past KrakenD: the age follows
//! RFC 9111 §4.2.3 (`Age`, the time in flight, no `Date` = the time received), request
//! `max-age` bounds the age instead of replacing the lifetime, a successful unsafe request
//! (POST, PUT, PATCH, DELETE) invalidates the URL's entries (§4.4), and a request that carries its
//! own validators is passed through (its 304 is the client's). An answer with neither an explicit
//! lifetime nor a validator is not kept (it could never be served: there is no heuristic
//! freshness, as in KrakenD).
//!
//! Bounded: every cache is an LRU with a byte budget and an entry count (`max_size`,
//! `max_items`, KrakenD's keys; without them [`DEFAULT_MAX_SIZE`] and [`DEFAULT_MAX_ITEMS`],
//! where KrakenD's cache grows without bound). An entry costs its body, its headers and its key;
//! an answer larger than the budget is passed through, never buffered beyond it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use sluice_config::read::{Reader, key_path};
use sluice_config::{Backend, Component, Config, Diagnostic, Endpoint, Level, LoadOptions};
use sluice_plugin::{
    BackendRequest, BackendResponse, Body, BoxError, BoxFuture, CallContext, ExecError, Executor,
    Instant, SharedExecutor,
};
use sluice_stage::StageFactory;

/// The namespace (alias `github.com/devopsfaith/krakend-httpcache`).
pub const NAMESPACE: &str = "qos/http-cache";

/// A cache's byte budget when the config sets none (KrakenD's would be unbounded).
pub const DEFAULT_MAX_SIZE: u64 = 16 << 20;
/// A cache's entry count when the config sets none.
pub const DEFAULT_MAX_ITEMS: u64 = 4096;
/// The smallest `max_size` KrakenD's schema accepts.
const MIN_MAX_SIZE: u64 = 1024;
/// What an entry costs beyond its bytes (its bookkeeping), for the budget.
const ENTRY_OVERHEAD: u64 = 128;

/// The `qos/http-cache` component.
#[derive(Debug, Default)]
pub struct HttpCache {
    /// The cache of the backends with `shared`, for the config being built.
    shared: Mutex<Option<SharedSlot>>,
}

#[derive(Debug)]
struct SharedSlot {
    /// The config it belongs to: a reload builds a new one.
    digest: String,
    store: Arc<Store>,
    /// The bounds a backend declared for it, and where.
    declared: Option<(Bounds, String)>,
}

/// A cache's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// `max_size`: bytes.
    pub max_size: u64,
    /// `max_items`: entries.
    pub max_items: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_MAX_SIZE,
            max_items: DEFAULT_MAX_ITEMS,
        }
    }
}

impl StageFactory for HttpCache {
    fn components(&self) -> Vec<Component> {
        vec![Component {
            namespace: NAMESPACE.to_owned(),
            levels: vec![Level::Backend],
        }]
    }

    fn wrap_backend(
        &self,
        config: &Config,
        _endpoint: &Endpoint,
        backend: &Backend,
        inner: SharedExecutor,
    ) -> Result<SharedExecutor, Vec<Diagnostic>> {
        let Some(value) = backend.extra_config.get(NAMESPACE) else {
            return Ok(inner);
        };
        let path = key_path(&format!("{}.extra_config", backend.json_path), NAMESPACE);
        let options = LoadOptions::default();
        let mut r = Reader::new(&config.source, &options);
        let Some(o) = r.as_object(value, path.clone()) else {
            return Err(r.into_errors());
        };
        r.known_keys(&o, &["shared", "max_size", "max_items"]);
        let shared = r.bool(&o, "shared");
        let max_size = r.uint::<u64>(&o, "max_size", "a number of bytes, 1024 or more");
        let max_items = r.uint::<u64>(&o, "max_items", "a number of entries, 1 or more");
        if max_size.is_some_and(|n| n < MIN_MAX_SIZE) {
            r.error(
                o.path_of("max_size"),
                "expected a number of bytes, 1024 or more",
            );
        }
        if max_items == Some(0) {
            r.error(
                o.path_of("max_items"),
                "expected a number of entries, 1 or more",
            );
        }
        // KrakenD's schema wants both or neither (with one alone its cache is unbounded).
        let declared = match (max_size, max_items) {
            (Some(max_size), Some(max_items)) => Some(Bounds {
                max_size,
                max_items,
            }),
            (None, None) => None,
            (Some(_), None) => {
                r.error(o.path_of("max_items"), "max_size needs max_items as well");
                None
            }
            (None, Some(_)) => {
                r.error(o.path_of("max_size"), "max_items needs max_size as well");
                None
            }
        };
        if let Some(plugin) = &backend.plugin {
            r.error(
                path.clone(),
                format!(
                    "the backend's executor is the client plugin {:?} (plugin/http-client), which \
                     KrakenD's cache does not wrap (it lives in the default HTTP client), so \
                     KrakenD would not cache it; remove one of the two",
                    plugin.name
                ),
            );
        }
        let errors = r.into_errors();
        if !errors.is_empty() {
            return Err(errors);
        }
        let store = if shared {
            self.shared_store(config, declared, &path)?
        } else {
            Arc::new(Store::new(declared.unwrap_or_default()))
        };
        Ok(Arc::new(CachingExecutor { inner, store }))
    }
}

impl HttpCache {
    fn shared_store(
        &self,
        config: &Config,
        declared: Option<Bounds>,
        path: &str,
    ) -> Result<Arc<Store>, Vec<Diagnostic>> {
        let mut slot = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = match &mut *slot {
            Some(s) if s.digest == config.digest => s,
            other => other.insert(SharedSlot {
                digest: config.digest.clone(),
                store: Arc::new(Store::new(Bounds::default())),
                declared: None,
            }),
        };
        if let Some(bounds) = declared {
            match &slot.declared {
                None => {
                    slot.store.lock().bounds = bounds;
                    slot.declared = Some((bounds, path.to_owned()));
                }
                Some((first, _)) if *first == bounds => {}
                Some((first, at)) => {
                    return Err(vec![Diagnostic::new(
                        &config.source,
                        path,
                        format!(
                            "the shared cache is already bounded to max_size {} and max_items {} \
                             at {at}; the backends that share it must agree (KrakenD keeps the \
                             first and ignores the others)",
                            first.max_size, first.max_items
                        ),
                    )]);
                }
            }
        }
        Ok(Arc::clone(&slot.store))
    }
}

// ---------------------------------------------------------------------------------------------
// Cache-Control

/// The directives Sluice acts on (names compared ignoring case; a qualified `private="x"` or
/// `no-cache="x"` counts as the unqualified one).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Directives {
    no_store: bool,
    no_cache: bool,
    private: bool,
    public: bool,
    must_revalidate: bool,
    only_if_cached: bool,
    /// `Some(None)`: present but not a valid number (stale, per RFC 9111 §4.2.1).
    max_age: Option<Option<u64>>,
    s_maxage: Option<Option<u64>>,
    min_fresh: Option<u64>,
    /// `Some(None)`: any staleness.
    max_stale: Option<Option<u64>>,
    stale_if_error: Option<u64>,
}

impl Directives {
    fn of(headers: &HeaderMap) -> Self {
        let mut d = Directives::default();
        for value in headers.get_all(header::CACHE_CONTROL) {
            let Ok(value) = value.to_str() else { continue };
            for part in value.split(',') {
                let (name, arg) = match part.split_once('=') {
                    Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                    None => (part.trim(), None),
                };
                let seconds = || arg.and_then(|a| a.parse::<u64>().ok());
                match name.to_ascii_lowercase().as_str() {
                    "no-store" => d.no_store = true,
                    "no-cache" => d.no_cache = true,
                    "private" => d.private = true,
                    "public" => d.public = true,
                    "must-revalidate" | "proxy-revalidate" => d.must_revalidate = true,
                    "only-if-cached" => d.only_if_cached = true,
                    "max-age" => d.max_age = d.max_age.or(Some(seconds())),
                    "s-maxage" => d.s_maxage = d.s_maxage.or(Some(seconds())),
                    "min-fresh" => d.min_fresh = d.min_fresh.or(seconds()),
                    "max-stale" => d.max_stale = d.max_stale.or(Some(seconds())),
                    "stale-if-error" => d.stale_if_error = d.stale_if_error.or(seconds()),
                    _ => {}
                }
            }
        }
        d
    }
}

fn http_date(headers: &HeaderMap, name: &HeaderName) -> Option<SystemTime> {
    let value = headers.get(name)?.to_str().ok()?;
    httpdate::parse_http_date(value).ok()
}

/// The freshness lifetime: `s-maxage`, else `max-age`, else `Expires` − `Date` (RFC 9111
/// §4.2.1); zero when none says (or says nonsense).
fn lifetime(headers: &HeaderMap, cc: &Directives, received: SystemTime) -> Duration {
    if let Some(s) = cc.s_maxage.or(cc.max_age) {
        return Duration::from_secs(s.unwrap_or(0));
    }
    if headers.contains_key(header::EXPIRES) {
        let date = http_date(headers, &header::DATE).unwrap_or(received);
        return http_date(headers, &header::EXPIRES)
            .and_then(|expires| expires.duration_since(date).ok())
            .unwrap_or(Duration::ZERO);
    }
    Duration::ZERO
}

// ---------------------------------------------------------------------------------------------
// Entries and the LRU

/// A stored answer.
#[derive(Debug)]
struct Entry {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    /// The request's values of the headers its `Vary` names.
    vary: Vec<(HeaderName, Option<HeaderValue>)>,
    /// When it was received (RFC 9111's `response_time`).
    received: Instant,
    /// Its age when received (`corrected_initial_age`).
    initial_age: Duration,
    lifetime: Duration,
    cc: Directives,
}

impl Entry {
    /// Builds an entry from an answer received at `received` (`sent` is when the request left).
    fn new(
        request: &HeaderMap,
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        sent: Instant,
        received: Instant,
    ) -> Option<Self> {
        let now_wall = SystemTime::now();
        let cc = Directives::of(&headers);
        let vary = vary_values(&headers, request)?;
        let apparent = http_date(&headers, &header::DATE)
            .and_then(|date| now_wall.duration_since(date).ok())
            .unwrap_or(Duration::ZERO);
        let age_value = headers
            .get(header::AGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(Duration::ZERO, Duration::from_secs);
        let corrected = age_value + received.saturating_duration_since(sent);
        Some(Entry {
            status,
            lifetime: lifetime(&headers, &cc, now_wall),
            headers,
            body,
            vary,
            received,
            initial_age: apparent.max(corrected),
            cc,
        })
    }

    fn age(&self, now: Instant) -> Duration {
        self.initial_age + now.saturating_duration_since(self.received)
    }

    fn matches(&self, request: &HeaderMap) -> bool {
        self.vary
            .iter()
            .all(|(name, value)| joined(request, name).as_ref() == value.as_ref())
    }

    fn validators(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::new();
        if let Some(etag) = self.headers.get(header::ETAG) {
            out.push((header::IF_NONE_MATCH, etag.clone()));
        }
        if let Some(modified) = self.headers.get(header::LAST_MODIFIED) {
            out.push((header::IF_MODIFIED_SINCE, modified.clone()));
        }
        out
    }

    /// Whether it may answer a request with directives `req` at `now` without the backend.
    fn usable(&self, req: &Directives, now: Instant) -> bool {
        if self.cc.no_cache {
            return false;
        }
        let age = self.age(now);
        if req
            .max_age
            .is_some_and(|max| age > Duration::from_secs(max.unwrap_or(0)))
        {
            return false;
        }
        let needed = age + Duration::from_secs(req.min_fresh.unwrap_or(0));
        if self.lifetime > needed {
            return true;
        }
        // Stale: only within the request's max-stale, and never against must-revalidate.
        match req.max_stale {
            Some(limit) if !self.cc.must_revalidate => limit.is_none_or(|limit| {
                needed.saturating_sub(self.lifetime) <= Duration::from_secs(limit)
            }),
            _ => false,
        }
    }

    /// Whether it may stand in for a failed revalidation (`stale-if-error`, RFC 5861).
    fn usable_on_error(&self, now: Instant) -> bool {
        match self.cc.stale_if_error {
            Some(limit) if !self.cc.must_revalidate => {
                self.age(now).saturating_sub(self.lifetime) <= Duration::from_secs(limit)
            }
            _ => false,
        }
    }

    fn response(&self, now: Instant, head: bool) -> BackendResponse {
        let mut response = http::Response::new(if head {
            sluice_plugin::empty()
        } else {
            sluice_plugin::full(self.body.clone())
        });
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
            .headers_mut()
            .insert(header::AGE, HeaderValue::from(self.age(now).as_secs()));
        response
    }

    fn cost(&self, key: &str) -> u64 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len())
            .sum();
        (key.len() + self.body.len() + headers) as u64 + ENTRY_OVERHEAD
    }
}

/// A header's values joined as one (`a, b`), for `Vary` comparisons.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let mut out = first.as_bytes().to_vec();
    for v in values {
        out.extend_from_slice(b", ");
        out.extend_from_slice(v.as_bytes());
    }
    HeaderValue::from_bytes(&out).ok()
}

/// The request's values of the headers `Vary` names; `None` for `Vary: *` (never reusable).
fn vary_values(
    response: &HeaderMap,
    request: &HeaderMap,
) -> Option<Vec<(HeaderName, Option<HeaderValue>)>> {
    let mut out = Vec::new();
    for value in response.get_all(header::VARY) {
        for name in value.to_str().unwrap_or("*").split(',') {
            let name = name.trim();
            if name == "*" {
                return None;
            }
            if name.is_empty() {
                continue;
            }
            let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
            let value = joined(request, &name);
            out.push((name, value));
        }
    }
    Some(out)
}

/// Whether an answer may be stored (RFC 9111 §3, for a shared cache).
fn storable(
    request: &HeaderMap,
    req: &Directives,
    status: StatusCode,
    headers: &HeaderMap,
) -> bool {
    let cc = Directives::of(headers);
    if req.no_store || cc.no_store || cc.private {
        return false;
    }
    if status.is_informational()
        || status == StatusCode::PARTIAL_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return false;
    }
    if request.contains_key(header::AUTHORIZATION)
        && !(cc.public || cc.s_maxage.is_some() || cc.must_revalidate)
    {
        return false;
    }
    let explicit =
        cc.max_age.is_some() || cc.s_maxage.is_some() || headers.contains_key(header::EXPIRES);
    let validator =
        headers.contains_key(header::ETAG) || headers.contains_key(header::LAST_MODIFIED);
    explicit || validator
}

/// An LRU of entries within a byte budget and an entry count.
struct Store {
    lru: Mutex<Lru>,
}

struct Lru {
    bounds: Bounds,
    bytes: u64,
    tick: u64,
    map: HashMap<String, Slot>,
    /// Recency: the oldest first.
    order: BTreeMap<u64, String>,
}

struct Slot {
    entry: Arc<Entry>,
    tick: u64,
    cost: u64,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lru = self.lock();
        f.debug_struct("Store")
            .field("bounds", &lru.bounds)
            .field("bytes", &lru.bytes)
            .field("items", &lru.map.len())
            .finish()
    }
}

impl Store {
    fn new(bounds: Bounds) -> Self {
        Self {
            lru: Mutex::new(Lru {
                bounds,
                bytes: 0,
                tick: 0,
                map: HashMap::new(),
                order: BTreeMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lru> {
        self.lru
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The largest body worth buffering to store.
    fn max_body(&self) -> u64 {
        self.lock().bounds.max_size
    }

    fn get(&self, key: &str) -> Option<Arc<Entry>> {
        let mut lru = self.lock();
        lru.tick += 1;
        let tick = lru.tick;
        let slot = lru.map.get_mut(key)?;
        let old = std::mem::replace(&mut slot.tick, tick);
        let entry = Arc::clone(&slot.entry);
        lru.order.remove(&old);
        lru.order.insert(tick, key.to_owned());
        Some(entry)
    }

    fn insert(&self, key: &str, entry: Entry) {
        let cost = entry.cost(key);
        let mut lru = self.lock();
        lru.remove(key);
        // As KrakenD's LRU: an entry as large as the whole budget is not kept.
        if cost >= lru.bounds.max_size {
            return;
        }
        lru.tick += 1;
        let tick = lru.tick;
        lru.order.insert(tick, key.to_owned());
        lru.map.insert(
            key.to_owned(),
            Slot {
                entry: Arc::new(entry),
                tick,
                cost,
            },
        );
        lru.bytes += cost;
        while lru.bytes > lru.bounds.max_size || lru.map.len() as u64 > lru.bounds.max_items {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            if let Some(slot) = lru.map.remove(&oldest) {
                lru.bytes -= slot.cost;
            }
        }
    }

    fn remove(&self, key: &str) {
        self.lock().remove(key);
    }
}

impl Lru {
    fn remove(&mut self, key: &str) {
        if let Some(slot) = self.map.remove(key) {
            self.order.remove(&slot.tick);
            self.bytes -= slot.cost;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The executor

#[derive(Debug)]
struct CachingExecutor {
    inner: SharedExecutor,
    store: Arc<Store>,
}

fn key(method: &Method, url: &http::Uri) -> String {
    format!("{method} {url}")
}

/// KrakenD's library's answer to `only-if-cached` with nothing usable.
fn gateway_timeout() -> BackendResponse {
    let mut response = http::Response::new(sluice_plugin::empty());
    *response.status_mut() = StatusCode::GATEWAY_TIMEOUT;
    response
}

impl Executor for CachingExecutor {
    fn execute<'a>(
        &'a self,
        request: BackendRequest,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        Box::pin(async move {
            let cacheable = (request.method == Method::GET || request.method == Method::HEAD)
                && !request.headers.contains_key(header::RANGE);
            if !cacheable {
                return self.unsafe_or_other(request, ctx).await;
            }
            let key = key(&request.method, &request.url);
            let head = request.method == Method::HEAD;
            let req = Directives::of(&request.headers);
            // The client's own conditional request: its 304 is for it, not for the cache.
            let own_validators = request.headers.contains_key(header::IF_NONE_MATCH)
                || request.headers.contains_key(header::IF_MODIFIED_SINCE);
            let cached = if req.no_cache || own_validators {
                None
            } else {
                self.store
                    .get(&key)
                    .filter(|entry| entry.matches(&request.headers))
            };
            let now = Instant::now();
            if let Some(entry) = &cached
                && entry.usable(&req, now)
            {
                return Ok(entry.response(now, head));
            }
            if req.only_if_cached {
                return Ok(gateway_timeout());
            }
            let request_headers = request.headers.clone();
            let mut request = request;
            if let Some(entry) = &cached {
                for (name, value) in entry.validators() {
                    request.headers.insert(name, value);
                }
            }
            let sent = Instant::now();
            let result = self.inner.execute(request, ctx).await;
            let received = Instant::now();
            let response = match result {
                Err(error) => {
                    return match cached {
                        Some(entry) if entry.usable_on_error(received) => {
                            Ok(entry.response(received, head))
                        }
                        _ => Err(error),
                    };
                }
                Ok(response) => response,
            };
            let status = response.status();
            if let Some(entry) = &cached {
                if status == StatusCode::NOT_MODIFIED && !entry.validators().is_empty() {
                    return Ok(self.refresh(
                        &key,
                        entry,
                        &request_headers,
                        response,
                        sent,
                        received,
                        head,
                    ));
                }
                if status.is_server_error() && entry.usable_on_error(received) {
                    return Ok(entry.response(received, head));
                }
            }
            if !storable(&request_headers, &req, status, response.headers()) {
                self.store.remove(&key);
                return Ok(response);
            }
            Ok(self.store_answer(key, request_headers, response, sent, received, head))
        })
    }
}

impl CachingExecutor {
    /// A request the cache does not answer: passed on; a successful unsafe one invalidates the
    /// URL's entries (RFC 9111 §4.4).
    async fn unsafe_or_other(
        &self,
        request: BackendRequest,
        ctx: &CallContext,
    ) -> Result<BackendResponse, ExecError> {
        let unsafe_method = !request.method.is_safe();
        let url = request.url.clone();
        let response = self.inner.execute(request, ctx).await?;
        let status = response.status();
        if unsafe_method && (status.is_success() || status.is_redirection()) {
            self.store.remove(&key(&Method::GET, &url));
            self.store.remove(&key(&Method::HEAD, &url));
        }
        Ok(response)
    }

    /// A 304 to a revalidation: the stored answer with the 304's headers, stored again.
    #[allow(clippy::too_many_arguments)]
    fn refresh(
        &self,
        key: &str,
        entry: &Entry,
        request_headers: &HeaderMap,
        not_modified: BackendResponse,
        sent: Instant,
        received: Instant,
        head: bool,
    ) -> BackendResponse {
        let mut headers = entry.headers.clone();
        for (name, value) in not_modified.headers() {
            if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
                headers.insert(name.clone(), value.clone());
            }
        }
        let req = Directives::of(request_headers);
        let keep = storable(request_headers, &req, entry.status, &headers);
        match Entry::new(
            request_headers,
            entry.status,
            headers,
            entry.body.clone(),
            sent,
            received,
        ) {
            Some(fresh) => {
                let response = fresh.response(received, head);
                if keep {
                    self.store.insert(key, fresh);
                } else {
                    self.store.remove(key);
                }
                response
            }
            None => {
                self.store.remove(key);
                entry.response(received, head)
            }
        }
    }

    /// A storable answer: a HEAD's at once, a GET's once its body has been read to the end
    /// (within the budget), as it passes to the pipeline.
    fn store_answer(
        &self,
        key: String,
        request_headers: HeaderMap,
        response: BackendResponse,
        sent: Instant,
        received: Instant,
        head: bool,
    ) -> BackendResponse {
        let (parts, body) = response.into_parts();
        if head {
            if let Some(entry) = Entry::new(
                &request_headers,
                parts.status,
                parts.headers.clone(),
                Bytes::new(),
                sent,
                received,
            ) {
                self.store.insert(&key, entry);
            }
            return BackendResponse::from_parts(parts, body);
        }
        let limit = self.store.max_body();
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n >= limit) {
            self.store.remove(&key);
            return BackendResponse::from_parts(parts, body);
        }
        let tee = Tee {
            inner: body,
            buffer: Some(BytesMut::new()),
            limit,
            pending: Some(PendingEntry {
                store: Arc::clone(&self.store),
                key,
                request_headers,
                status: parts.status,
                headers: parts.headers.clone(),
                sent,
                received,
            }),
        };
        BackendResponse::from_parts(parts, tee.boxed_unsync())
    }
}

/// What is stored once the body is complete.
struct PendingEntry {
    store: Arc<Store>,
    key: String,
    request_headers: HeaderMap,
    status: StatusCode,
    headers: HeaderMap,
    sent: Instant,
    received: Instant,
}

/// A body that keeps a copy of what passes (up to `limit` bytes) and stores the entry when it
/// ends; one that fails, or outgrows the limit, or is dropped before its end, is not stored.
struct Tee {
    inner: Body,
    buffer: Option<BytesMut>,
    limit: u64,
    pending: Option<PendingEntry>,
}

impl http_body::Body for Tee {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(buffer)) = (frame.data_ref(), this.buffer.as_mut()) {
                    if (buffer.len() + data.len()) as u64 >= this.limit {
                        this.buffer = None;
                        this.pending = None;
                    } else {
                        buffer.extend_from_slice(data);
                    }
                }
            }
            Poll::Ready(Some(Err(_))) => {
                this.buffer = None;
                this.pending = None;
            }
            Poll::Ready(None) => {
                if let (Some(buffer), Some(p)) = (this.buffer.take(), this.pending.take())
                    && let Some(entry) = Entry::new(
                        &p.request_headers,
                        p.status,
                        p.headers,
                        buffer.freeze(),
                        p.sent,
                        p.received,
                    )
                {
                    p.store.insert(&p.key, entry);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        // Never claim the end before `poll_frame` has seen it: the entry is stored there.
        false
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn entry(response: &[(&str, &str)]) -> Entry {
        let now = Instant::now();
        Entry::new(
            &HeaderMap::new(),
            StatusCode::OK,
            headers(response),
            Bytes::new(),
            now,
            now,
        )
        .unwrap()
    }

    #[test]
    fn directives() {
        let d = Directives::of(&headers(&[
            ("cache-control", "Public, max-age=60, s-maxage=\"30\""),
            ("cache-control", "no-cache=\"set-cookie\", max-stale"),
        ]));
        assert!(d.public && d.no_cache);
        assert_eq!(d.max_age, Some(Some(60)));
        assert_eq!(d.s_maxage, Some(Some(30)));
        assert_eq!(d.max_stale, Some(None));
        let bad = Directives::of(&headers(&[("cache-control", "max-age=soon")]));
        assert_eq!(bad.max_age, Some(None));
    }

    #[test]
    fn lifetimes() {
        assert_eq!(
            entry(&[("cache-control", "max-age=60")]).lifetime,
            Duration::from_secs(60)
        );
        assert_eq!(
            entry(&[("cache-control", "max-age=60, s-maxage=5")]).lifetime,
            Duration::from_secs(5)
        );
        let now = SystemTime::now();
        let e = entry(&[
            ("date", &httpdate::fmt_http_date(now)),
            (
                "expires",
                &httpdate::fmt_http_date(now + Duration::from_secs(120)),
            ),
        ]);
        assert_eq!(e.lifetime, Duration::from_secs(120));
        assert_eq!(entry(&[("expires", "0")]).lifetime, Duration::ZERO);
        // Age counts: 50 of 60 seconds already spent.
        let e = entry(&[("cache-control", "max-age=60"), ("age", "50")]);
        assert!(e.usable(&Directives::default(), Instant::now()));
        assert!(!e.usable(
            &Directives::of(&headers(&[("cache-control", "min-fresh=20")])),
            Instant::now()
        ));
        assert!(!e.usable(
            &Directives::of(&headers(&[("cache-control", "max-age=10")])),
            Instant::now()
        ));
        let stale = entry(&[("cache-control", "max-age=60"), ("age", "70")]);
        assert!(!stale.usable(&Directives::default(), Instant::now()));
        let max_stale = Directives::of(&headers(&[("cache-control", "max-stale=30")]));
        assert!(stale.usable(&max_stale, Instant::now()));
        let strict = entry(&[
            ("cache-control", "max-age=60, must-revalidate"),
            ("age", "70"),
        ]);
        assert!(!strict.usable(&max_stale, Instant::now()));
    }

    #[test]
    fn what_is_stored() {
        let none = Directives::default();
        let ok = StatusCode::OK;
        let fresh = headers(&[("cache-control", "max-age=60")]);
        assert!(storable(&HeaderMap::new(), &none, ok, &fresh));
        assert!(!storable(
            &HeaderMap::new(),
            &none,
            ok,
            &headers(&[("cache-control", "no-store, max-age=60")])
        ));
        assert!(!storable(
            &HeaderMap::new(),
            &none,
            ok,
            &headers(&[("cache-control", "private, max-age=60")])
        ));
        assert!(!storable(&HeaderMap::new(), &none, ok, &HeaderMap::new()));
        assert!(storable(
            &HeaderMap::new(),
            &none,
            ok,
            &headers(&[("etag", "\"x\"")])
        ));
        assert!(!storable(
            &HeaderMap::new(),
            &none,
            StatusCode::PARTIAL_CONTENT,
            &fresh
        ));
        let auth = headers(&[("authorization", "Bearer x")]);
        assert!(!storable(&auth, &none, ok, &fresh));
        assert!(storable(
            &auth,
            &none,
            ok,
            &headers(&[("cache-control", "public, max-age=60")])
        ));
        let no_store = Directives::of(&headers(&[("cache-control", "no-store")]));
        assert!(!storable(&HeaderMap::new(), &no_store, ok, &fresh));
    }

    #[test]
    fn vary() {
        let request = headers(&[("accept-language", "en")]);
        let response = headers(&[("vary", "Accept-Language, X-Absent")]);
        let values = vary_values(&response, &request).unwrap();
        assert_eq!(values.len(), 2);
        assert!(vary_values(&headers(&[("vary", "*")]), &request).is_none());
        let now = Instant::now();
        let mut h = response.clone();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=60"),
        );
        let e = Entry::new(&request, StatusCode::OK, h, Bytes::new(), now, now).unwrap();
        assert!(e.matches(&request));
        assert!(!e.matches(&headers(&[("accept-language", "fr")])));
        assert!(!e.matches(&headers(&[("accept-language", "en"), ("x-absent", "1")])));
    }

    #[test]
    fn the_lru_keeps_within_its_budget() {
        let store = Store::new(Bounds {
            max_size: 3 * (ENTRY_OVERHEAD + 100),
            max_items: 10,
        });
        let body_entry = |n: usize| {
            let now = Instant::now();
            Entry::new(
                &HeaderMap::new(),
                StatusCode::OK,
                HeaderMap::new(),
                Bytes::from(vec![b'x'; n]),
                now,
                now,
            )
            .unwrap()
        };
        for k in ["a", "b", "c"] {
            store.insert(k, body_entry(50));
        }
        assert!(store.get("a").is_some());
        // d pushes out the least recently used (b, as a was just read).
        store.insert("d", body_entry(50));
        store.insert("e", body_entry(50));
        assert!(store.get("a").is_some());
        assert!(store.get("b").is_none());
        let lru = store.lock();
        assert!(lru.bytes <= lru.bounds.max_size);
        drop(lru);
        // As large as the budget: not kept.
        store.insert("huge", body_entry(10_000));
        assert!(store.get("huge").is_none());
        // The count bounds too.
        let small = Store::new(Bounds {
            max_size: 1 << 20,
            max_items: 2,
        });
        for k in ["a", "b", "c"] {
            small.insert(k, body_entry(1));
        }
        assert_eq!(small.lock().map.len(), 2);
        assert!(small.get("a").is_none());
    }
}
