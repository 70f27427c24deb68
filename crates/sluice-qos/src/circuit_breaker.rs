//! `qos/circuit-breaker` on backends, as krakend-circuitbreaker builds sony/gobreaker:
//!
//! - closed: every call goes through; a success resets the count of consecutive errors; once
//!   there are **more than** `max_errors` consecutive errors the breaker opens. With `interval`
//!   (seconds, not 0) the counts are cleared every `interval` from the start of the closed
//!   period (gobreaker's fixed window, not a sliding one); with 0 they never are.
//! - open: no call reaches the backend; each fails at once with `circuit breaker is open`, which
//!   the endpoint renders as any backend error (500 for a lone backend, the text as body with
//!   `router.return_error_msg`; partial data beside other backends). After `timeout` seconds
//!   (0: gobreaker's 60) it goes half-open.
//! - half-open: one call is let through (the others fail with `too many requests`); its success
//!   closes the breaker, its error opens it again.
//!
//! What counts as an error is what KrakenD's backend proxy returns as one: a transport error or a
//! timeout (a call still running at the endpoint's deadline), and, unless the backend's encoding is
//! `no-op` (no status check) or it has `backend/http.return_error_details` (which turns the error
//! into data), any status but 200 and 201. A call abandoned before its deadline (the client went
//! away, another `concurrent_calls` call won) counts as nothing, as gobreaker excludes
//! `context.Canceled`. The breaker judges the answer's head: a body that later fails to read or
//! to decode is not counted (in KrakenD it is, the decoding being inside the breaker).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::StatusCode;
use sluice_config::read::{Reader, key_path};
use sluice_config::{
    Backend, Component, Config, Diagnostic, Encoding, Endpoint, Level, LoadOptions,
};
use sluice_plugin::{
    BackendRequest, BackendResponse, BoxFuture, CallContext, ErrorKind, ErrorSource, ExecError,
    Executor, Instant, SharedExecutor,
};
use sluice_stage::StageFactory;

/// The namespace (alias `github.com/devopsfaith/krakend-circuitbreaker/gobreaker`).
pub const NAMESPACE: &str = "qos/circuit-breaker";

/// gobreaker's `ErrOpenState`.
pub const OPEN_ERROR: &str = "circuit breaker is open";
/// gobreaker's `ErrTooManyRequests` (half-open, its one trial call already out).
pub const HALF_OPEN_BUSY_ERROR: &str = "too many requests";

/// gobreaker's timeout when the config's is 0.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The `qos/circuit-breaker` component.
#[derive(Debug, Default, Clone, Copy)]
pub struct CircuitBreaker;

/// A breaker's settings, as read from its block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `name`, for the logs.
    pub name: String,
    /// `interval`: how often the closed state's counts are cleared (`ZERO`: never).
    pub interval: Duration,
    /// `timeout`: how long it stays open.
    pub timeout: Duration,
    /// `max_errors`: it opens after more consecutive errors than this.
    pub max_errors: u32,
    /// `log_status_change`: state changes at WARN (else DEBUG).
    pub log_status_change: bool,
}

impl StageFactory for CircuitBreaker {
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
        let Some(settings) = read(config, value, path)? else {
            return Ok(inner);
        };
        let judge = Judge {
            status_errors: backend.encoding != Encoding::NoOp
                && backend.http.return_error_details.is_none(),
        };
        Ok(Arc::new(BreakerExecutor {
            inner,
            breaker: Breaker::new(settings),
            judge,
        }))
    }
}

/// Reads a block; `None` for KrakenD's "zero config" (every field zero or absent), which
/// installs no breaker.
fn read(
    config: &Config,
    value: &serde_json::Value,
    path: String,
) -> Result<Option<Settings>, Vec<Diagnostic>> {
    let options = LoadOptions::default();
    let mut r = Reader::new(&config.source, &options);
    let Some(o) = r.as_object(value, path) else {
        return Err(r.into_errors());
    };
    r.known_keys(
        &o,
        &[
            "interval",
            "timeout",
            "max_errors",
            "name",
            "log_status_change",
        ],
    );
    // Required by KrakenD's schema: without them gobreaker's zero values apply silently.
    for key in ["interval", "timeout", "max_errors"] {
        if o.get(key).is_none() {
            r.error(
                o.path_of(key),
                format!("field {key:?} is required (a whole number, 0 or more)"),
            );
        }
    }
    let seconds = "a whole number of seconds, 0 or more";
    let interval = r.uint::<u64>(&o, "interval", seconds).unwrap_or(0);
    let timeout = r.uint::<u64>(&o, "timeout", seconds).unwrap_or(0);
    let max_errors = r
        .uint::<u32>(&o, "max_errors", "a whole number from 0 to 4294967295")
        .unwrap_or(0);
    let name = r.string(&o, "name").unwrap_or_default();
    let log_status_change = r.bool(&o, "log_status_change");
    let errors = r.into_errors();
    if !errors.is_empty() {
        return Err(errors);
    }
    if interval == 0 && timeout == 0 && max_errors == 0 && name.is_empty() && !log_status_change {
        tracing::warn!(
            path = %o.path,
            "qos/circuit-breaker with every field zero installs no breaker, as in KrakenD"
        );
        return Ok(None);
    }
    Ok(Some(Settings {
        name,
        interval: Duration::from_secs(interval),
        timeout: if timeout == 0 {
            DEFAULT_TIMEOUT
        } else {
            Duration::from_secs(timeout)
        },
        max_errors,
        log_status_change,
    }))
}

/// What makes an answer an error.
#[derive(Debug, Clone, Copy)]
struct Judge {
    /// Statuses other than 200 and 201 are errors (not for `no-op`, nor `return_error_details`).
    status_errors: bool,
}

impl Judge {
    fn outcome(self, result: &Result<BackendResponse, ExecError>) -> Outcome {
        match result {
            Err(_) => Outcome::Failure,
            Ok(response) => {
                let status = response.status();
                if self.status_errors && status != StatusCode::OK && status != StatusCode::CREATED {
                    Outcome::Failure
                } else {
                    Outcome::Success
                }
            }
        }
    }
}

/// How a call ended, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It counts as a success.
    Success,
    /// It counts as an error.
    Failure,
    /// It counts as nothing (abandoned before its deadline).
    Excluded,
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls go through.
    Closed,
    /// One trial call goes through.
    HalfOpen,
    /// No call goes through.
    Open,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::HalfOpen => "half-open",
            State::Open => "open",
        }
    }
}

#[derive(Debug)]
struct Machine {
    state: State,
    /// Bumped on every state change and every cleared window: a call that started in an older
    /// generation does not count.
    generation: u64,
    consecutive_failures: u32,
    /// Half-open trial calls out (gobreaker lets one through).
    trials: u32,
    /// When the closed window or the open period ends.
    expiry: Option<Instant>,
}

/// One breaker (per backend).
#[derive(Debug)]
pub struct Breaker {
    settings: Settings,
    machine: Mutex<Machine>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(settings: Settings) -> Self {
        let expiry = (!settings.interval.is_zero()).then(|| Instant::now() + settings.interval);
        Self {
            settings,
            machine: Mutex::new(Machine {
                state: State::Closed,
                generation: 0,
                consecutive_failures: 0,
                trials: 0,
                expiry,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Machine> {
        // A poisoned lock only means another call panicked mid-update; the counts stay usable.
        self.machine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The state now.
    pub fn state(&self) -> State {
        let mut m = self.lock();
        self.current(&mut m, Instant::now());
        m.state
    }

    /// Lets a call through (its generation) or refuses it (gobreaker's error text).
    pub fn before(&self, now: Instant) -> Result<u64, &'static str> {
        let mut m = self.lock();
        self.current(&mut m, now);
        match m.state {
            State::Open => Err(OPEN_ERROR),
            State::HalfOpen if m.trials >= 1 => Err(HALF_OPEN_BUSY_ERROR),
            State::HalfOpen => {
                m.trials += 1;
                Ok(m.generation)
            }
            State::Closed => Ok(m.generation),
        }
    }

    /// Records how the call let through in `generation` ended.
    pub fn after(&self, generation: u64, outcome: Outcome, now: Instant) {
        let mut m = self.lock();
        self.current(&mut m, now);
        if m.generation != generation {
            return;
        }
        match (outcome, m.state) {
            (Outcome::Excluded, State::HalfOpen) => m.trials = m.trials.saturating_sub(1),
            (Outcome::Excluded, _) => {}
            (Outcome::Success, State::Closed) => m.consecutive_failures = 0,
            (Outcome::Success, State::HalfOpen) => self.set_state(&mut m, State::Closed, now),
            (Outcome::Failure, State::Closed) => {
                m.consecutive_failures = m.consecutive_failures.saturating_add(1);
                if m.consecutive_failures > self.settings.max_errors {
                    self.set_state(&mut m, State::Open, now);
                }
            }
            (Outcome::Failure, State::HalfOpen) => self.set_state(&mut m, State::Open, now),
            (_, State::Open) => {}
        }
    }

    /// Applies the clock: a closed window that ended is cleared, an open period that ended turns
    /// half-open.
    fn current(&self, m: &mut Machine, now: Instant) {
        match m.state {
            State::Closed => {
                if m.expiry.is_some_and(|e| e < now) {
                    self.new_generation(m, now);
                }
            }
            State::Open => {
                if m.expiry.is_none_or(|e| e < now) {
                    self.set_state(m, State::HalfOpen, now);
                }
            }
            State::HalfOpen => {}
        }
    }

    fn set_state(&self, m: &mut Machine, to: State, now: Instant) {
        if m.state == to {
            return;
        }
        let from = m.state;
        m.state = to;
        self.new_generation(m, now);
        let (name, from, to) = (&self.settings.name, from.as_str(), to.as_str());
        if self.settings.log_status_change {
            tracing::warn!("[CB] Circuit breaker named '{name}' went from '{from}' to '{to}'");
        } else {
            tracing::debug!("[CB] Circuit breaker named '{name}' went from '{from}' to '{to}'");
        }
    }

    fn new_generation(&self, m: &mut Machine, now: Instant) {
        m.generation += 1;
        m.consecutive_failures = 0;
        m.trials = 0;
        m.expiry = match m.state {
            State::Closed => {
                (!self.settings.interval.is_zero()).then(|| now + self.settings.interval)
            }
            State::Open => Some(now + self.settings.timeout),
            State::HalfOpen => None,
        };
    }
}

/// The executor behind a breaker.
#[derive(Debug)]
struct BreakerExecutor {
    inner: SharedExecutor,
    breaker: Breaker,
    judge: Judge,
}

/// A call let through: if it is dropped before it ends, it counts as an error past its deadline
/// (the pipeline cut it: KrakenD's `context deadline exceeded`) and as nothing before it.
struct Pending<'a> {
    breaker: &'a Breaker,
    generation: u64,
    deadline: Instant,
    recorded: bool,
}

impl Pending<'_> {
    fn record(mut self, outcome: Outcome) {
        self.recorded = true;
        self.breaker.after(self.generation, outcome, Instant::now());
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            let now = Instant::now();
            let outcome = if now >= self.deadline {
                Outcome::Failure
            } else {
                Outcome::Excluded
            };
            self.breaker.after(self.generation, outcome, now);
        }
    }
}

impl Executor for BreakerExecutor {
    fn execute<'a>(
        &'a self,
        request: BackendRequest,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        Box::pin(async move {
            let generation = self
                .breaker
                .before(Instant::now())
                .map_err(|e| ExecError::new(ErrorSource::Internal, ErrorKind::Other, e))?;
            let pending = Pending {
                breaker: &self.breaker,
                generation,
                deadline: ctx.deadline,
                recorded: false,
            };
            let result = self.inner.execute(request, ctx).await;
            pending.record(self.judge.outcome(&result));
            result
        })
    }

    /// It reads the answer's status only.
    fn reads_only_content_headers(&self) -> bool {
        self.inner.reads_only_content_headers()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn breaker(max_errors: u32, interval: u64, timeout: u64) -> Breaker {
        Breaker::new(Settings {
            name: "test".into(),
            interval: Duration::from_secs(interval),
            timeout: Duration::from_secs(timeout),
            max_errors,
            log_status_change: true,
        })
    }

    fn fail(b: &Breaker, now: Instant) {
        let g = b.before(now).unwrap();
        b.after(g, Outcome::Failure, now);
    }

    #[test]
    fn opens_after_more_than_max_errors_then_half_opens_and_closes() {
        let b = breaker(2, 0, 10);
        let t0 = Instant::now();
        fail(&b, t0);
        fail(&b, t0);
        assert_eq!(b.before(t0).map(|_| ()), Ok(()));
        fail(&b, t0);
        assert_eq!(b.before(t0), Err(OPEN_ERROR));
        // Still open at exactly `timeout`, half-open just after.
        assert_eq!(b.before(t0 + Duration::from_secs(10)), Err(OPEN_ERROR));
        let t1 = t0 + Duration::from_secs(11);
        let trial = b.before(t1).unwrap();
        assert_eq!(b.before(t1), Err(HALF_OPEN_BUSY_ERROR));
        b.after(trial, Outcome::Success, t1);
        assert!(b.before(t1).is_ok());
        assert_eq!(b.lock().state, State::Closed);
    }

    #[test]
    fn a_success_resets_the_count_and_a_failed_trial_reopens() {
        let b = breaker(1, 0, 1);
        let t0 = Instant::now();
        fail(&b, t0);
        let g = b.before(t0).unwrap();
        b.after(g, Outcome::Success, t0);
        fail(&b, t0);
        assert!(b.before(t0).is_ok());
        fail(&b, t0);
        assert_eq!(b.before(t0), Err(OPEN_ERROR));
        let t1 = t0 + Duration::from_secs(2);
        fail(&b, t1);
        assert_eq!(b.before(t1), Err(OPEN_ERROR));
    }

    #[test]
    fn an_abandoned_trial_frees_its_slot_and_stale_generations_do_not_count() {
        let b = breaker(0, 0, 1);
        let t0 = Instant::now();
        let old = b.before(t0).unwrap();
        fail(&b, t0);
        // A call from before the breaker opened does not close it.
        b.after(old, Outcome::Success, t0);
        assert_eq!(b.before(t0), Err(OPEN_ERROR));
        let t1 = t0 + Duration::from_secs(2);
        let trial = b.before(t1).unwrap();
        b.after(trial, Outcome::Excluded, t1);
        assert!(b.before(t1).is_ok());
    }

    #[test]
    fn the_interval_clears_the_counts() {
        let b = breaker(1, 5, 10);
        let t0 = Instant::now();
        fail(&b, t0);
        // The window started with the breaker; past it, the count starts again.
        let t1 = t0 + Duration::from_secs(6);
        fail(&b, t1);
        assert!(b.before(t1).is_ok());
        fail(&b, t1);
        assert_eq!(b.before(t1), Err(OPEN_ERROR));
    }

    #[test]
    fn statuses_count_unless_no_op_or_error_details() {
        let response = |status: u16| -> Result<BackendResponse, ExecError> {
            let mut r = http::Response::new(sluice_plugin::empty());
            *r.status_mut() = StatusCode::from_u16(status).unwrap();
            Ok(r)
        };
        let strict = Judge {
            status_errors: true,
        };
        assert_eq!(strict.outcome(&response(200)), Outcome::Success);
        assert_eq!(strict.outcome(&response(201)), Outcome::Success);
        assert_eq!(strict.outcome(&response(204)), Outcome::Failure);
        assert_eq!(strict.outcome(&response(404)), Outcome::Failure);
        let lax = Judge {
            status_errors: false,
        };
        assert_eq!(lax.outcome(&response(500)), Outcome::Success);
        assert_eq!(lax.outcome(&Err(ExecError::timeout())), Outcome::Failure);
    }
}
