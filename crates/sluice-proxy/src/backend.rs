//! The backend stage: build the request, run the executor within the deadline, check the
//! status, decode by the backend's encoding and reshape (spec §2.3-2.5, §2.8).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use serde_json::{Map, Value};
use sluice_config::Encoding;
use sluice_plugin::{AnswerHeaders, Body, CallContext, Instant, SharedExecutor};
use sluice_transform::format::EntityFormatter;
use tokio::time::Sleep;

use crate::error::ProxyError;
use crate::request::{Earlier, ProxyRequest, RequestBuilder};
use crate::telemetry::{BackendTelemetry, RoundTripTimer, StageTimer, end_stage, plugin_outcome};

/// A backend's contribution to the endpoint.
#[derive(Debug)]
pub enum Answer {
    /// Decoded, reshaped data.
    Data {
        /// The data.
        data: Map<String, Value>,
        /// Whether it is the whole answer (false for `return_error_details` answers).
        complete: bool,
    },
    /// Data kept as the JSON text its render writes ([`sluice_transform::decode::json_text`]):
    /// what an endpoint that changes nothing in the data reads, without building values.
    Json {
        /// An object: keys sorted, strings with Go's escapes.
        text: Bytes,
        /// The backend's `group`: the data is `{group: text}`.
        group: Option<Arc<str>>,
        /// As for [`Answer::Data`].
        complete: bool,
    },
    /// A `no-op` backend's answer, passed on as it came.
    Raw(http::Response<Body>),
}

impl Answer {
    /// Whether it is the whole answer (a no-op answer always is).
    pub fn is_complete(&self) -> bool {
        match self {
            Answer::Data { complete, .. } | Answer::Json { complete, .. } => *complete,
            Answer::Raw(_) => true,
        }
    }

    /// The answer with its data as values, for a stage that changes them.
    pub(crate) fn into_data(self) -> Answer {
        match self {
            Answer::Json {
                text,
                group,
                complete,
            } => Answer::Data {
                data: sluice_transform::decode::json_text_data(group.as_deref(), &text),
                complete,
            },
            other => other,
        }
    }
}

/// The data answers of several backends, merged in the order they arrived (shallow, the later
/// key winning): as JSON text while every one is text, as values otherwise.
pub(crate) fn merge(parts: Vec<Answer>, complete: bool) -> Option<Answer> {
    if parts.iter().all(|part| matches!(part, Answer::Json { .. })) {
        return match parts.as_slice() {
            [] => None,
            [Answer::Json { text, group, .. }] => Some(Answer::Json {
                text: text.clone(),
                group: group.clone(),
                complete,
            }),
            _ => Some(Answer::Json {
                text: Bytes::from(sluice_transform::merge::merge_json_texts(
                    parts.iter().filter_map(|part| match part {
                        Answer::Json { text, group, .. } => Some((group.as_deref(), &text[..])),
                        _ => None,
                    }),
                )),
                group: None,
                complete,
            }),
        };
    }
    let mut merged = Map::new();
    for part in parts {
        if let Answer::Data { data, .. } = part.into_data() {
            sluice_transform::merge::merge_into(&mut merged, data);
        }
    }
    Some(Answer::Data {
        data: merged,
        complete,
    })
}

/// One backend of an endpoint, compiled at start-up.
#[derive(Debug)]
pub(crate) struct BackendStage {
    pub(crate) builder: RequestBuilder,
    executor: SharedExecutor,
    encoding: Encoding,
    is_collection: bool,
    formatter: EntityFormatter,
    /// Set when nothing after this backend changes the data: a JSON answer is kept as the
    /// text its render writes (under the backend's `group`, if any) instead of values.
    json_text: Option<Option<Arc<str>>>,
    return_error_code: bool,
    return_error_details: Option<String>,
    /// Plugin answers carry no request, so status errors print an empty URL (as KrakenD's).
    answers_from_plugin: bool,
    concurrent_calls: u32,
    max_body_bytes: usize,
    send_body_on_redirect: bool,
    /// A shadow backend (`proxy.shadow`), for the failure log.
    shadow: bool,
    /// The executor reads the endpoint's `{params}` (a gRPC backend's input message).
    route_params: bool,
    /// The answer's headers this stage reads (all for `no-op`, which hands them on: those it
    /// does not read as they came, when the executor allows).
    answer_headers: AnswerHeaders,
    /// `METHOD /path` of the endpoint and the backend's url_pattern, for the failure log.
    endpoint: Arc<str>,
    url_pattern: Arc<str>,
    /// Metric handles, resolved at build time (all absent when telemetry is off).
    pub(crate) telemetry: BackendTelemetry,
}

impl BackendStage {
    pub(crate) fn new(
        endpoint: &sluice_config::Endpoint,
        backend: &sluice_config::Backend,
        executor: SharedExecutor,
        user_agent: HeaderValue,
        max_body_bytes: usize,
    ) -> Self {
        Self {
            builder: RequestBuilder::new(endpoint, backend, user_agent),
            route_params: executor.needs_route_params(),
            // A `no-op` answer's other fields are handed on to the client unread.
            answer_headers: match (
                backend.encoding == Encoding::NoOp,
                executor.reads_only_content_headers(),
            ) {
                (false, true) => AnswerHeaders::Content,
                (true, true) => AnswerHeaders::Forward,
                (_, false) => AnswerHeaders::All,
            },
            executor,
            encoding: backend.encoding,
            is_collection: backend.is_collection,
            formatter: EntityFormatter::for_backend(backend),
            json_text: None,
            return_error_code: backend.http.return_error_code,
            return_error_details: backend.http.return_error_details.clone(),
            answers_from_plugin: backend.plugin.is_some(),
            concurrent_calls: endpoint.concurrent_calls.max(1),
            max_body_bytes,
            send_body_on_redirect: backend.send_body_on_redirect,
            shadow: backend.shadow,
            endpoint: endpoint.label().into(),
            url_pattern: backend.url_pattern.as_str().into(),
            telemetry: BackendTelemetry::default(),
        }
    }

    /// Keeps this backend's JSON answers as text ([`Answer::Json`]) when its own manipulations
    /// allow it (none but `group`): for an endpoint where nothing after the backends changes
    /// the data.
    pub(crate) fn keep_json_text(&mut self) {
        if self.encoding == Encoding::Json && !self.is_collection {
            self.json_text = self
                .formatter
                .grouping_only()
                .map(|group| group.map(Arc::from));
        }
    }

    /// Calls the backend (`concurrent_calls` times at once when configured). `shared_headers`:
    /// see [`RequestBuilder::build`].
    pub(crate) async fn call(
        &self,
        request: &ProxyRequest,
        responses: &[Earlier],
        shared_headers: Option<&HeaderMap>,
        limit: Limit<'_>,
    ) -> Result<Answer, ProxyError> {
        let timer = StageTimer::start(self.telemetry.stage.as_deref());
        let parent = request.telemetry.parent();
        let span = match (&self.telemetry.stage_trace, parent) {
            (Some(stage), Some(parent)) => Some(stage.start(parent, None)),
            _ => None,
        };
        let trace = span.as_ref().map(|s| s.as_parent());
        let result = self
            .call_all(
                request,
                responses,
                shared_headers,
                limit,
                trace.as_ref().or(parent),
            )
            .await;
        let complete = result.as_ref().is_ok_and(Answer::is_complete);
        timer.finish(result.is_err(), complete);
        if let Some(span) = span {
            end_stage(span, result.as_ref().err(), complete);
        }
        if let Err(error) = &result {
            // One line per failed backend call: an operator sees which backend failed and why
            // (a shadow's failures too: finding them is what mirroring traffic is for).
            let what = if self.shadow {
                "shadow backend call failed"
            } else {
                "backend call failed"
            };
            tracing::warn!(
                endpoint = %self.endpoint,
                url_pattern = %self.url_pattern,
                error = %error,
                "{what}"
            );
        }
        result
    }

    async fn call_all(
        &self,
        request: &ProxyRequest,
        responses: &[Earlier],
        shared_headers: Option<&HeaderMap>,
        limit: Limit<'_>,
        trace: Option<&sluice_telemetry::TraceParent>,
    ) -> Result<Answer, ProxyError> {
        if self.concurrent_calls <= 1 {
            return self
                .call_once(request, responses, shared_headers, limit, trace)
                .await;
        }
        // The first complete answer wins; the others are dropped (cancelled).
        let mut calls: FuturesUnordered<_> = (0..self.concurrent_calls)
            .map(|_| self.call_once(request, responses, shared_headers, limit, trace))
            .collect();
        let mut last = Err(ProxyError::Timeout);
        while let Some(result) = calls.next().await {
            match result {
                Ok(answer) if answer.is_complete() => return Ok(answer),
                other => last = other,
            }
        }
        last
    }

    async fn call_once(
        &self,
        request: &ProxyRequest,
        responses: &[Earlier],
        shared_headers: Option<&HeaderMap>,
        limit: Limit<'_>,
        trace: Option<&sluice_telemetry::TraceParent>,
    ) -> Result<Answer, ProxyError> {
        let (deadline, expired) = match limit {
            Limit::Own(deadline) => (deadline, None),
            Limit::Shared { deadline, expired } => (deadline, Some(expired)),
        };
        // One timer bounds the call and the body read: registered once in tokio's wheel, on the
        // first poll that waits. None where the caller keeps the deadline for several calls.
        let mut timer = std::pin::pin!(
            expired
                .is_none()
                .then(|| tokio::time::sleep_until(deadline))
        );
        // The call, up to the answer's head, in a block of its own: what only it needs (the
        // request, the context, the span) is then not kept in this future's state while the
        // body is read, and the whole future, moved on its way into the fan-out, is smaller.
        let (mut response, url, round_trip_ended) = {
            let mut built = self
                .builder
                .build(request, responses, shared_headers)
                .map_err(ProxyError::Request)?;
            // The call's own span: the plugin's, or the round trip's (krakend-otel's client span).
            let mut call_span = trace.and_then(|parent| {
                let stage = self
                    .telemetry
                    .plugin_trace
                    .as_ref()
                    .or(self.telemetry.round_trip_trace.as_ref())?;
                let mut span = stage.start(parent, Some(&built.headers));
                if span.is_recording() && self.telemetry.plugin_trace.is_none() {
                    span.set_uri("url.full", &built.url);
                    if let Some(host) = built.url.authority() {
                        span.set("server.address", host.as_str());
                    }
                    span.set("http.request.body.size", built.body.len() as i64);
                }
                Some(span)
            });
            let call_trace = call_span.as_ref().map(|s| s.as_parent());
            if self.telemetry.propagate
                && let Some(context) = call_trace.as_ref().or(trace)
            {
                context.inject(&mut built.headers);
            }
            // Kept for status errors only; formatting it on every call costs an allocation.
            let url = built.url.clone();
            let ctx = CallContext {
                send_body_on_redirect: self.send_body_on_redirect,
                trace: if self.telemetry.plugin_trace.is_some() {
                    call_trace
                } else {
                    None
                },
                params: if self.route_params {
                    request.params.clone()
                } else {
                    Vec::new()
                },
                caller_enforces_deadline: true,
                answer_headers: self.answer_headers,
                ..CallContext::new(deadline, self.max_body_bytes)
            };
            let round_trip = RoundTripTimer::start(
                self.telemetry.round_trip.as_deref(),
                &built,
                self.telemetry.plugin.is_some(),
            );
            // The built-in client's call is awaited in place: through the trait it is boxed,
            // its ~900 bytes built on the stack and copied into a new allocation every call.
            let default_client = self
                .executor
                .as_any()
                .and_then(|any| any.downcast_ref::<sluice_client::DefaultClient>());
            let result = match default_client {
                Some(client) => {
                    before(
                        timer.as_mut().as_pin_mut(),
                        expired,
                        client.send_following_redirects(&built, &ctx),
                    )
                    .await
                }
                None => {
                    before(
                        timer.as_mut().as_pin_mut(),
                        expired,
                        self.executor.execute(built, &ctx),
                    )
                    .await
                }
            };
            if let Some(plugin) = &self.telemetry.plugin {
                plugin.record(plugin_outcome(&result), round_trip.elapsed());
            }
            let round_trip_ended = round_trip.finish(&result);
            if let Some(span) = &mut call_span {
                match &result {
                    Ok(Ok(response)) => {
                        span.set(
                            "http.response.status_code",
                            i64::from(response.status().as_u16()),
                        );
                        span.set_status(sluice_telemetry::Status::Ok);
                    }
                    Ok(Err(e)) => {
                        span.set_status(sluice_telemetry::Status::Error(e.message.clone()))
                    }
                    Err(_) => {
                        span.set_status(sluice_telemetry::Status::Error("timeout".to_owned()))
                    }
                }
            }
            drop(call_span);
            (
                result.map_err(|_| ProxyError::Timeout)??,
                url,
                round_trip_ended,
            )
        };

        // An answer the executor decoded itself (a gRPC backend's messages): the data as is
        // for the JSON encodings, its JSON text for the others.
        let decoded = response.extensions_mut().remove::<sluice_plugin::Decoded>();
        let decoded = match decoded {
            Some(sluice_plugin::Decoded(value))
                if !matches!(self.encoding, Encoding::Json | Encoding::SafeJson) =>
            {
                let text = serde_json::to_vec(&value)
                    .map_err(|e| ProxyError::Decode(format!("cannot write the answer: {e}")))?;
                *response.body_mut() = sluice_plugin::full(text);
                None
            }
            other => other.map(|sluice_plugin::Decoded(value)| value),
        };

        if self.encoding == Encoding::NoOp {
            return Ok(Answer::Raw(response));
        }
        let (mut parts, body) = response.into_parts();
        let status = parts.status;
        let ok = status == StatusCode::OK || status == StatusCode::CREATED;
        if !ok && self.return_error_details.is_none() && !self.return_error_code {
            return Err(ProxyError::Status {
                status,
                what: format!("{} {}", self.builder.method, self.builder.template.display),
                url: if self.answers_from_plugin {
                    String::new()
                } else {
                    url.to_string()
                },
            });
        }
        let read_started = self
            .telemetry
            .read
            .as_ref()
            .map(|_| round_trip_ended.unwrap_or_else(Instant::now));
        let body = match before(
            timer.as_pin_mut(),
            expired,
            sluice_plugin::collect(body, self.max_body_bytes),
        )
        .await
        {
            Err(TimedOut) => Err(ProxyError::Timeout),
            Ok(result) => result.map_err(|e| ProxyError::Exec(e.into())),
        };
        if let (Some(read), Some(started)) = (&self.telemetry.read, read_started) {
            let bytes = body.as_ref().map_or(0, |b| b.len() as u64);
            read.record(bytes, started.elapsed(), body.is_err());
        }
        let body = body?;
        // Lura's response parser gunzips whatever says gzip: an answer to a client's forwarded
        // Accept-Encoding, or a plugin's (the default client already decoded what it asked for).
        // The decompressed bytes count against the same limit. Error bodies are decoded too, so
        // `return_error_*` never hands on compressed bytes without their Content-Encoding.
        let body = sluice_plugin::decode_content(&mut parts.headers, body, self.max_body_bytes)
            .map_err(|e| ProxyError::Exec(e.into()))?;
        if !ok {
            let content_type = parts.headers.get(header::CONTENT_TYPE).cloned();
            if let Some(alias) = &self.return_error_details {
                return Ok(Answer::Data {
                    data: error_details(alias, status, &body, content_type),
                    complete: false,
                });
            }
            return Err(ProxyError::StatusPassThrough {
                status,
                body,
                content_type,
            });
        }
        if decoded.is_none()
            && let Some(group) = &self.json_text
            && let Some(text) = sluice_transform::decode::json_text(&body)
        {
            return Ok(Answer::Json {
                text: Bytes::from(text),
                group: group.clone(),
                complete: true,
            });
        }
        let data = match decoded {
            Some(value) => {
                sluice_transform::decode::decode_value(self.encoding, self.is_collection, value)
            }
            None => sluice_transform::decode::decode(self.encoding, self.is_collection, &body),
        }
        .map_err(|e| ProxyError::Decode(e.to_string()))?;
        Ok(Answer::Data {
            data: self.formatter.format(data),
            complete: true,
        })
    }
}

/// A backend call's deadline passed before it finished.
#[derive(Debug)]
pub(crate) struct TimedOut;

/// What bounds a backend call: a deadline the call keeps with a timer of its own, or one its
/// caller keeps for several calls at once ([`expire_at`]: one timer, not one a call).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Limit<'a> {
    Own(Instant),
    /// `expired` is set when `deadline` passes; the calls still waiting then end, timed out.
    Shared {
        deadline: Instant,
        expired: &'a AtomicBool,
    },
}

pin_project_lite::pin_project! {
    /// What [`before`] makes: the future held once, where it was built (an `async fn` would
    /// keep its argument and then move it into a local, a copy of the whole call's state).
    struct Before<'t, F> {
        timer: Option<Pin<&'t mut Sleep>>,
        expired: Option<&'t AtomicBool>,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Before<'_, F> {
    type Output = Result<F::Output, TimedOut>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        if this
            .expired
            .is_some_and(|expired| expired.load(Ordering::Relaxed))
        {
            return Poll::Ready(Err(TimedOut));
        }
        match this.timer {
            Some(timer) => timer.as_mut().poll(cx).map(|()| Err(TimedOut)),
            None => Poll::Pending,
        }
    }
}

/// `future`'s output, unless the deadline passes first: `timer` fires, or `expired` is set by
/// the caller that keeps the deadline (and polls this again then). Polled in that order, as
/// tokio's `Timeout`: an answer that is ready wins over a deadline that has just passed.
fn before<'t, F: Future>(
    timer: Option<Pin<&'t mut Sleep>>,
    expired: Option<&'t AtomicBool>,
    future: F,
) -> Before<'t, F> {
    Before {
        timer,
        expired,
        future,
    }
}

pin_project_lite::pin_project! {
    /// What [`expire_at`] makes.
    pub(crate) struct ExpireAt<'a, F> {
        #[pin]
        future: F,
        #[pin]
        timer: Sleep,
        expired: &'a AtomicBool,
    }
}

impl<F: Future> Future for ExpireAt<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(output) = this.future.as_mut().poll(cx) {
            return Poll::Ready(output);
        }
        if this.timer.poll(cx).is_ready() && !this.expired.swap(true, Ordering::Relaxed) {
            // The calls still waiting see `expired` and end, timed out; those that ended keep
            // their answers. `Relaxed`: this task sets it and polls them all.
            return this.future.poll(cx);
        }
        Poll::Pending
    }
}

/// Runs `future`, calls made with [`Limit::Shared`] on `expired`, under one timer for all of
/// them: when `deadline` passes, `expired` is set and `future` polled once more.
pub(crate) fn expire_at<F: Future>(
    deadline: Instant,
    expired: &AtomicBool,
    future: F,
) -> ExpireAt<'_, F> {
    ExpireAt {
        future,
        timer: tokio::time::sleep_until(deadline),
        expired,
    }
}

/// Reads a no-op answer's body whole (for `{Resp<N>}`), bounded like any backend body.
pub(crate) async fn read_raw_body(
    response: http::Response<Body>,
    limit: usize,
    deadline: Instant,
) -> Result<Bytes, ProxyError> {
    let body = sluice_plugin::collect(response.into_body(), limit);
    match tokio::time::timeout_at(deadline, body).await {
        Err(_) => Err(ProxyError::Timeout),
        Ok(result) => result.map_err(|e| ProxyError::Exec(e.into())),
    }
}

/// `{"error_<alias>": {"http_status_code", "http_body", "http_body_encoding"}}`.
fn error_details(
    alias: &str,
    status: StatusCode,
    body: &[u8],
    content_type: Option<HeaderValue>,
) -> Map<String, Value> {
    let mut details = Map::new();
    details.insert("http_status_code".into(), status.as_u16().into());
    details.insert(
        "http_body".into(),
        String::from_utf8_lossy(body).into_owned().into(),
    );
    details.insert(
        "http_body_encoding".into(),
        content_type
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .unwrap_or_default()
            .into(),
    );
    let mut data = Map::new();
    data.insert(format!("error_{alias}"), Value::Object(details));
    data
}
