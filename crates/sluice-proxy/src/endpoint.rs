//! The endpoint pipeline: fan out to the backends (in parallel or in sequence), merge their
//! data, apply static data and the endpoint flatmap (spec §2.6-2.8, §2.10); start the shadow
//! backends beside them ([`crate::shadow`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use http::HeaderMap;
use http::HeaderValue;
use serde_json::{Map, Value};
use sluice_config::{Backend, Config, Endpoint, OutputEncoding, StaticResponse};
use sluice_plugin::{Instant, Registry, SharedExecutor};
use sluice_stage::{Components, SharedStage};
use sluice_transform::flatmap::FlatmapFilter;
use tokio::sync::Semaphore;

use crate::backend::{Answer, BackendStage, Limit, expire_at, read_raw_body};
use crate::error::ProxyError;
use crate::join::join_in_arrival_order;
use crate::request::{Earlier, ProxyRequest};
use crate::shadow::{MAX_SHADOW_CALLS_PER_ENDPOINT, Shadow};
use crate::telemetry::{BackendTelemetry, EndpointTelemetry, StageTimer};
use sluice_telemetry::Telemetry;

/// The largest backend body the pipeline buffers for decoding.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 << 20;

/// What the pipeline produced: data and/or an error (both for partial answers).
#[derive(Debug)]
pub struct Outcome {
    /// The merged answer, if any backend produced one.
    pub answer: Option<Answer>,
    /// The failure(s), if any.
    pub error: Option<ProxyError>,
}

/// One endpoint, compiled at start-up; a request only walks it.
#[derive(Debug)]
pub struct EndpointPipeline {
    /// The endpoint's config.
    pub endpoint: Arc<Endpoint>,
    /// The components' stages of this endpoint (JWT, rate limit...), in order.
    pub stages: Vec<SharedStage>,
    /// The backends that answer the client (every backend but the shadows).
    backends: Fanout,
    /// The shadow backends, called beside the others and never waited for.
    pub(crate) shadow: Option<Arc<Shadow>>,
    static_response: Option<StaticResponse>,
    flatmap: FlatmapFilter,
    /// The endpoint's metric handles (all absent when telemetry is off).
    pub telemetry: EndpointTelemetry,
}

impl EndpointPipeline {
    /// Runs the pipeline for one request.
    pub async fn call(&self, request: &ProxyRequest) -> Outcome {
        let timer = StageTimer::start(self.telemetry.proxy.as_deref());
        let span = match (
            &self.telemetry.proxy_trace,
            request.telemetry.trace.as_ref(),
        ) {
            (Some(stage), Some(parent)) => {
                let span = stage.start(parent, Some(&request.headers));
                let _ = request.telemetry.stage.set(span.as_parent());
                Some(span)
            }
            _ => None,
        };
        let outcome = self.run(request).await;
        let complete =
            outcome.error.is_none() && outcome.answer.as_ref().is_some_and(Answer::is_complete);
        timer.finish(outcome.error.is_some(), complete);
        if let Some(span) = span {
            crate::telemetry::end_stage(span, outcome.error.as_ref(), complete);
        }
        outcome
    }

    async fn run(&self, request: &ProxyRequest) -> Outcome {
        let timeout = self.endpoint.timeout;
        let started = Instant::now();
        let deadline = started + timeout;
        // Started first and detached, as KrakenD's shadow proxy: the answer is built from the
        // other backends only and never waits for the shadows.
        if let Some(shadow) = &self.shadow {
            shadow.launch(request, started);
        }
        let outcome = self
            .backends
            .call(request, started, &self.endpoint, None)
            .await;
        let mut outcome = self.finish(outcome);
        if outcome.error.is_none() && Instant::now() > deadline {
            outcome.error = Some(ProxyError::Timeout);
        }
        // A no-op answer still streams after the call returns: the endpoint deadline bounds it
        // too, or a backend that never stops sending holds the client forever.
        outcome.answer = outcome.answer.map(|answer| match answer {
            Answer::Raw(response) => {
                Answer::Raw(response.map(|body| sluice_plugin::with_deadline(body, deadline)))
            }
            data => data,
        });
        outcome
    }

    /// Shadow calls not made because a bound was reached (calls in flight on this endpoint,
    /// or the shadow body budget), since start-up.
    pub fn shadow_dropped(&self) -> u64 {
        self.shadow.as_ref().map_or(0, |shadow| shadow.dropped())
    }

    /// Static data and the endpoint flatmap, on whatever the backends produced.
    fn finish(&self, mut outcome: Outcome) -> Outcome {
        if self.flatmap.is_empty() && self.static_response.is_none() {
            return outcome;
        }
        outcome.answer = outcome.answer.map(Answer::into_data);
        if let Some(Answer::Data { data, .. }) = outcome.answer.as_mut() {
            self.flatmap.apply(data);
        }
        if let Some(stat) = &self.static_response {
            let (has_response, complete) = match &outcome.answer {
                Some(answer) => (true, answer.is_complete()),
                None => (false, false),
            };
            if sluice_transform::merge::static_applies(
                stat.strategy,
                outcome.error.is_some(),
                has_response,
                complete,
            ) {
                match outcome.answer.as_mut() {
                    Some(Answer::Data { data, .. }) => {
                        sluice_transform::merge::apply_static(data, &stat.data)
                    }
                    Some(Answer::Json { .. } | Answer::Raw(_)) => {}
                    None => {
                        outcome.answer = Some(Answer::Data {
                            data: stat.data.clone(),
                            complete: false,
                        })
                    }
                }
            }
        }
        outcome
    }

    /// The endpoint's output encoding.
    pub fn output_encoding(&self) -> OutputEncoding {
        self.endpoint.output_encoding
    }
}

/// Backends called together for one request: one, several in parallel, or several in sequence
/// (spec §2.6, §2.8), with their deadlines as shares of the endpoint's timeout.
#[derive(Debug)]
pub(crate) struct Fanout {
    stages: Vec<BackendStage>,
    sequential: bool,
    /// Backends whose raw (no-op) body a later backend uses as `{Resp<N>}`.
    raw_bodies_used: Vec<usize>,
    max_body_bytes: usize,
}

impl Fanout {
    pub(crate) fn new(stages: Vec<BackendStage>, sequential: bool) -> Self {
        let mut raw_bodies_used: Vec<usize> = stages
            .iter()
            .flat_map(|stage| stage.builder.template.raw_indices())
            .collect();
        raw_bodies_used.sort_unstable();
        raw_bodies_used.dedup();
        Self {
            stages,
            sequential,
            raw_bodies_used,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Calls the backends. `limit` is the call's own deadline (KrakenD's context): the
    /// endpoint's timeout from `started` for the client's backends, the shadow deadline for
    /// the shadows. Within it, shares of the endpoint's timeout from `started` apply: 75% for
    /// a single backend with `concurrent_calls`, 85% for several.
    pub(crate) async fn call(
        &self,
        request: &ProxyRequest,
        started: Instant,
        endpoint: &Endpoint,
        limit: Option<Instant>,
    ) -> Outcome {
        let timeout = endpoint.timeout;
        let limit = limit.unwrap_or(started + timeout);
        let within = |deadline: Instant| deadline.min(limit);
        match self.stages.as_slice() {
            // The config refuses an endpoint whose every backend is a shadow.
            [] => Outcome {
                answer: None,
                error: Some(ProxyError::Request(
                    "no backend answers this endpoint".to_owned(),
                )),
            },
            [single] => {
                let stage_deadline = if endpoint.concurrent_calls > 1 {
                    within(started + share(timeout, 0.75))
                } else {
                    limit
                };
                match single
                    .call(request, &[], None, Limit::Own(stage_deadline))
                    .await
                {
                    Ok(answer) => Outcome {
                        answer: Some(answer),
                        error: None,
                    },
                    Err(error) => Outcome {
                        answer: None,
                        error: Some(error),
                    },
                }
            }
            _ if self.sequential => {
                self.sequential(request, within(started + share(timeout, 0.85)))
                    .await
            }
            _ => {
                self.parallel(request, within(started + share(timeout, 0.85)))
                    .await
            }
        }
    }

    /// The headers every backend without header lists of its own sends, built once for the
    /// request when two or more backends share them.
    fn shared_headers(&self, request: &ProxyRequest) -> Option<HeaderMap> {
        self.stages
            .iter()
            .filter(|stage| stage.builder.shares_headers())
            .nth(1)
            .map(|stage| stage.builder.headers(request))
    }

    async fn parallel(&self, request: &ProxyRequest, deadline: Instant) -> Outcome {
        let shared = self.shared_headers(request);
        // One timer for all the calls (they share the deadline), not one each.
        let expired = AtomicBool::new(false);
        let limit = Limit::Shared {
            deadline,
            expired: &expired,
        };
        let calls = self
            .stages
            .iter()
            .map(|stage| stage.call(request, &[], shared.as_ref(), limit));
        // Joined in place (one allocation for all the calls, one waker), not as a set of
        // tasks, each its own box, allocation and waker; the answers in the order they came,
        // as KrakenD's merge is last-arrival-wins.
        let results = expire_at(deadline, &expired, join_in_arrival_order(calls)).await;
        let mut parts = Vec::with_capacity(self.stages.len());
        let mut complete = true;
        let mut errors = Vec::new();
        for result in results {
            match result {
                // Config validation forbids no-op in multi-backend parallel endpoints.
                Ok(Answer::Raw(_)) => complete = false,
                Ok(answer) => {
                    complete &= answer.is_complete();
                    parts.push(answer);
                }
                Err(e) => {
                    complete = false;
                    errors.push(e);
                }
            }
        }
        Outcome {
            answer: crate::backend::merge(parts, complete),
            error: combine(errors),
        }
    }

    async fn sequential(&self, request: &ProxyRequest, deadline: Instant) -> Outcome {
        let mut responses: Vec<Earlier> = Vec::with_capacity(self.stages.len());
        let mut merged: Option<Map<String, Value>> = None;
        let shared = self.shared_headers(request);
        for (index, stage) in self.stages.iter().enumerate() {
            match stage
                .call(request, &responses, shared.as_ref(), Limit::Own(deadline))
                .await
                .map(Answer::into_data)
            {
                // Made values above.
                Ok(Answer::Json { .. }) => {}
                Ok(Answer::Data { data, complete }) => {
                    responses.push(Earlier::Data(data.clone()));
                    match merged.as_mut() {
                        Some(base) => sluice_transform::merge::merge_into(base, data),
                        None => merged = Some(data),
                    }
                    if !complete {
                        return Outcome {
                            answer: merged.map(|data| Answer::Data {
                                data,
                                complete: false,
                            }),
                            error: None,
                        };
                    }
                }
                // A no-op backend adds nothing to the data; its raw body is read only when a
                // later backend uses it as `{Resp<N>}` (KrakenD skips the param when the
                // body cannot be read).
                Ok(Answer::Raw(response)) => {
                    let raw = if self.raw_bodies_used.contains(&index) {
                        read_raw_body(response, self.max_body_bytes, deadline)
                            .await
                            .map_or(Earlier::Nothing, Earlier::Raw)
                    } else {
                        Earlier::Nothing
                    };
                    responses.push(raw);
                }
                Err(error) if index == 0 => {
                    return Outcome {
                        answer: None,
                        error: Some(error),
                    };
                }
                Err(error) => {
                    return Outcome {
                        answer: merged.map(|data| Answer::Data {
                            data,
                            complete: false,
                        }),
                        error: Some(error),
                    };
                }
            }
        }
        Outcome {
            answer: merged.map(|data| Answer::Data {
                data,
                complete: true,
            }),
            error: None,
        }
    }
}

fn share(timeout: Duration, fraction: f64) -> Duration {
    timeout.mul_f64(fraction)
}

fn combine(mut errors: Vec<ProxyError>) -> Option<ProxyError> {
    match errors.len() {
        0 => None,
        1 => errors.pop(),
        _ => Some(ProxyError::Multiple(errors)),
    }
}

/// The `User-Agent` (or `X-Forwarded-Via`) Sluice sends to backends.
pub fn user_agent() -> HeaderValue {
    HeaderValue::from_static(concat!("Sluice Version ", env!("CARGO_PKG_VERSION")))
}

/// The clients backends call through: the gateway's default one, and a client of their own
/// (built once, with its own connection pool) for backends that have their own settings
/// (`backend/http/client.client_tls`). A backend's plugin makes its outbound calls through the
/// backend's client, so with the same TLS settings.
#[derive(Debug, Clone)]
pub struct Clients {
    default: SharedExecutor,
    /// By the backend's JSON path.
    own: HashMap<String, SharedExecutor>,
}

impl Clients {
    /// Every backend on `default`.
    pub fn new(default: SharedExecutor) -> Self {
        Self {
            default,
            own: HashMap::new(),
        }
    }

    /// The backend at `json_path` calls through `client`.
    pub fn insert(&mut self, json_path: impl Into<String>, client: SharedExecutor) {
        self.own.insert(json_path.into(), client);
    }

    /// The client of `backend`.
    pub fn for_backend(&self, backend: &Backend) -> &SharedExecutor {
        self.own.get(&backend.json_path).unwrap_or(&self.default)
    }
}

/// Builds every endpoint's pipeline, resolving each backend's executor: its client plugin
/// from `registry`, or `default_client`. Every problem is reported, not just the first.
pub async fn build_pipelines(
    config: &Config,
    registry: &Registry,
    default_client: &SharedExecutor,
) -> Result<Vec<EndpointPipeline>, Vec<String>> {
    build_pipelines_with(
        config,
        registry,
        &Clients::new(Arc::clone(default_client)),
        &Components::new(),
        &Telemetry::disabled(),
    )
    .await
}

/// [`build_pipelines`] with a client per backend where [`Clients`] has one, the gateway's
/// components (each endpoint gets its stages, and each backend's executor is wrapped by the
/// components that act on it) and telemetry (each endpoint, backend and plugin gets its metric
/// handles).
///
/// # Errors
/// Every problem found, one line each (file, JSON path, what is wrong).
pub async fn build_pipelines_with(
    config: &Config,
    registry: &Registry,
    clients: &Clients,
    components: &Components,
    telemetry: &Telemetry,
) -> Result<Vec<EndpointPipeline>, Vec<String>> {
    let mut pipelines = Vec::with_capacity(config.endpoints.len());
    let mut errors = Vec::new();
    // One budget for the request bodies shadow calls hold, for the whole gateway.
    let shadow_body_budget = Arc::new(Semaphore::new(
        config
            .sluice_server
            .max_buffered_body_bytes
            .min(Semaphore::MAX_PERMITS),
    ));
    let file = config.source.display();
    for endpoint in &config.endpoints {
        let shared = Arc::new(endpoint.clone());
        let mut stages = Vec::with_capacity(endpoint.backends.len());
        let mut shadows = Vec::new();
        for backend in &endpoint.backends {
            let label = format!("{} -> {}", endpoint.label(), backend.url_pattern);
            let default_client = clients.for_backend(backend);
            let executor = match &backend.plugin {
                None => Arc::clone(default_client),
                Some(plugin) => {
                    let site = crate::plugins::Site {
                        file: &file,
                        registry,
                        telemetry,
                        endpoint,
                        backend,
                        default_client,
                        label: &label,
                    };
                    match crate::plugins::build(&site, plugin, &mut errors).await {
                        Some(executor) => executor,
                        None => continue,
                    }
                }
            };
            let executor = match components.wrap_backend(config, endpoint, backend, executor) {
                Ok(executor) => executor,
                Err(problems) => {
                    errors.extend(problems.iter().map(ToString::to_string));
                    continue;
                }
            };
            let mut stage = BackendStage::new(
                endpoint,
                backend,
                executor,
                user_agent(),
                DEFAULT_MAX_BODY_BYTES,
            );
            stage.telemetry = BackendTelemetry::new(telemetry, config, endpoint, backend);
            // KrakenD splits the shadows off before building the endpoint's pipe: the others
            // are merged (and numbered for `{resp<N>_...}`) as if the shadows were not there.
            if backend.shadow {
                shadows.push(stage);
            } else {
                stages.push(stage);
            }
        }
        let endpoint_stages = match components.endpoint_stages(config, endpoint) {
            Ok(stages) => stages,
            Err(problems) => {
                errors.extend(problems.iter().map(ToString::to_string));
                Vec::new()
            }
        };
        let sequential = endpoint.proxy.sequential;
        // Nothing after the backends changes the data, and the answer is (mostly) JSON: they
        // keep JSON answers as text. Another render would read the text back into values.
        if !sequential
            && endpoint.proxy.flatmap_filter.is_empty()
            && endpoint.proxy.static_response.is_none()
            && matches!(
                endpoint.output_encoding,
                OutputEncoding::Json | OutputEncoding::NoOp | OutputEncoding::Negotiate
            )
        {
            stages.iter_mut().for_each(BackendStage::keep_json_text);
        }
        let shadow = (!shadows.is_empty()).then(|| {
            Arc::new(Shadow::new(
                Arc::clone(&shared),
                Fanout::new(shadows, sequential),
                MAX_SHADOW_CALLS_PER_ENDPOINT,
                Arc::clone(&shadow_body_budget),
            ))
        });
        pipelines.push(EndpointPipeline {
            endpoint: shared,
            stages: endpoint_stages,
            backends: Fanout::new(stages, sequential),
            shadow,
            static_response: endpoint.proxy.static_response.clone(),
            flatmap: FlatmapFilter::new(&endpoint.proxy.flatmap_filter),
            telemetry: EndpointTelemetry::new(telemetry, config, endpoint),
        });
    }
    if errors.is_empty() {
        Ok(pipelines)
    } else {
        Err(errors)
    }
}
