//! What every plugin instance runs inside, whichever its world: linear memory capped, the
//! call's deadline checked at every epoch tick, the guest's stderr kept for fault messages;
//! and how a fault becomes the gateway's error (counted, logged, naming the plugin).

use sluice_plugin::{ErrorKind, ExecError, Instant};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::plugin::Backend;
use crate::stats::Counter;

/// Bytes of guest stderr kept per instance (panic messages end up there).
pub(crate) const STDERR_CAPACITY: usize = 4096;

/// Caps linear memory and remembers whether the cap was hit.
pub(crate) struct MemoryLimiter {
    pub(crate) limit: u64,
    pub(crate) hit: bool,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The epoch callback's verdict when a call runs past its deadline.
#[derive(Debug)]
pub(crate) struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the plugin ran past the deadline")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// A store for `state`: linear memory capped by the state's limiter, and the guest interrupted
/// at the first epoch tick past the deadline `deadline_of` reads (until then it yields to the
/// runtime at every tick, so a spinning guest does not hold a worker thread).
pub(crate) fn new_store<T: Send + 'static>(
    engine: &Engine,
    state: T,
    limiter: fn(&mut T) -> &mut MemoryLimiter,
    deadline_of: fn(&T) -> Instant,
) -> Store<T> {
    let mut store = Store::new(engine, state);
    store.limiter(move |s| limiter(s) as &mut dyn wasmtime::ResourceLimiter);
    store.epoch_deadline_callback(move |ctx| {
        if Instant::now() >= deadline_of(ctx.data()) {
            Err(wasmtime::Error::new(DeadlineExceeded))
        } else {
            Ok(wasmtime::UpdateDeadline::Yield(1))
        }
    });
    store.set_epoch_deadline(1);
    store
}

/// Who races a call against its deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Race {
    /// The function called arms a timer of its own.
    Here,
    /// A caller already races the same deadline: the backend stage (around a hooks-mode
    /// plugin), or the guest call a `send` runs in (cut at its deadline, `send` and all). A
    /// second timer would only fire at the same instant, and a timer costs its registration
    /// and removal per call.
    Caller,
}

impl Race {
    /// The race for a call of `ctx` that ends at `deadline`: the caller's, when it races that
    /// very deadline itself; a plugin `timeout` that ends earlier keeps its own timer.
    pub(crate) fn of(ctx: &sluice_plugin::CallContext, deadline: Instant) -> Race {
        if ctx.caller_enforces_deadline && deadline == ctx.deadline {
            Race::Caller
        } else {
            Race::Here
        }
    }
}

/// [`within`] for a guest call of `race`. With [`Race::Caller`] no timer is armed: the caller
/// drops the call at that very deadline, and a guard reports the cut as it is dropped, as
/// [`cut_at_deadline`] would (logged; a timeout and a discarded instance), and counts the
/// request's error too, which the executor counts for a call that returns but never sees for
/// one that is dropped.
pub(crate) async fn within_race<F: Future>(
    backend: &Backend,
    deadline: Instant,
    race: Race,
    call: F,
) -> Option<F::Output> {
    match race {
        Race::Here => within(deadline, call).await,
        Race::Caller => {
            let mut unfinished = CutReport {
                backend,
                deadline,
                armed: true,
            };
            let output = call.await;
            unfinished.armed = false;
            Some(output)
        }
    }
}

/// Reports a call dropped unfinished at its deadline as cut there.
struct CutReport<'a> {
    backend: &'a Backend,
    deadline: Instant,
    armed: bool,
}

impl Drop for CutReport<'_> {
    fn drop(&mut self) {
        // Dropped before its deadline, the call was given up (the client went away): no cut.
        if self.armed && Instant::now() >= self.deadline {
            drop(cut_at_deadline(self.backend));
            self.backend.stats.bump(Counter::Errors);
        }
    }
}

/// `call`'s output, or `None` when `deadline` passes first. Polled in tokio's `Timeout` order
/// (an answer that is ready wins), but the timer is armed only when the call has to wait: a
/// guest call that runs through without awaiting the host (every hook that does not `send`)
/// costs no timer. Time spent inside the guest is bounded by the epoch callback instead.
pub(crate) async fn within<F: Future>(deadline: Instant, call: F) -> Option<F::Output> {
    let mut call = std::pin::pin!(call);
    let mut timer = std::pin::pin!(None::<tokio::time::Sleep>);
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(output) = call.as_mut().poll(cx) {
            return std::task::Poll::Ready(Some(output));
        }
        if timer.is_none() {
            timer.set(Some(tokio::time::sleep_until(deadline)));
        }
        match timer.as_mut().as_pin_mut() {
            Some(timer) => timer.poll(cx).map(|()| None),
            // Armed just above; were it not, the call counts as cut (fail closed).
            None => std::task::Poll::Ready(None),
        }
    })
    .await
}

/// A guest's fault, before it is reported.
pub(crate) struct Fault {
    kind: ErrorKind,
    counter: Option<Counter>,
    message: String,
}

impl Fault {
    /// A fault of the plugin's own (a trap, a failed call), counted as a trap.
    pub(crate) fn trap(message: String) -> Fault {
        Fault {
            kind: ErrorKind::PluginFault,
            counter: Some(Counter::Traps),
            message,
        }
    }

    /// A fault of another kind, counted under `counter` if any.
    pub(crate) fn new(kind: ErrorKind, counter: Option<Counter>, message: String) -> Fault {
        Fault {
            kind,
            counter,
            message,
        }
    }

    /// A call cut at its deadline (by the epoch callback inside the guest, or from outside).
    pub(crate) fn deadline() -> Fault {
        Fault::new(
            ErrorKind::Timeout,
            Some(Counter::Timeouts),
            "was cut at the deadline".to_owned(),
        )
    }

    /// The faults every world has: cut at the deadline, or out of memory.
    pub(crate) fn common(error: &wasmtime::Error, limiter: &MemoryLimiter) -> Option<Fault> {
        if error.downcast_ref::<DeadlineExceeded>().is_some() {
            Some(Fault::deadline())
        } else if limiter.hit {
            Some(Fault::new(
                ErrorKind::PluginFault,
                Some(Counter::OutOfMemory),
                format!("ran out of memory (memory_limit {} bytes)", limiter.limit),
            ))
        } else {
            None
        }
    }

    /// Counts and logs the fault, and makes it the gateway's error, naming the plugin.
    pub(crate) fn report(self, backend: &Backend) -> ExecError {
        if let Some(counter) = self.counter {
            backend.stats.bump(counter);
        }
        let (kind, message) = (self.kind, self.message);
        tracing::warn!(plugin = %backend.plugin, backend = %backend.label, kind = ?kind, "plugin {message}");
        ExecError::plugin(kind, format!("plugin {} {message}", backend.plugin))
    }
}

/// A call cut at its deadline from outside (the guest was suspended, typically in a host call):
/// the instance may be in any state, so the caller drops it; counted as a timeout and a
/// discarded instance.
pub(crate) fn cut_at_deadline(backend: &Backend) -> ExecError {
    backend.stats.bump(Counter::InstancesDiscarded);
    Fault::deadline().report(backend)
}

/// What the guest wrote to stderr, as `: <text>` to append to a fault's message (empty when
/// it wrote nothing).
pub(crate) fn stderr_detail(stderr: &MemoryOutputPipe) -> String {
    let text = String::from_utf8_lossy(&stderr.contents())
        .trim()
        .to_owned();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::within;
    use sluice_plugin::Instant;

    #[tokio::test]
    async fn a_ready_call_wins_even_past_its_deadline() {
        // As tokio's `Timeout`: the answer is polled first.
        let past = Instant::now() - Duration::from_millis(10);
        assert_eq!(within(past, async { 7 }).await, Some(7));
    }

    #[tokio::test]
    async fn a_call_that_waits_finishes_before_its_deadline() {
        let deadline = Instant::now() + Duration::from_secs(5);
        let call = async {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
            "answered"
        };
        assert_eq!(within(deadline, call).await, Some("answered"));
    }

    #[tokio::test]
    async fn a_call_that_never_answers_is_cut_at_its_deadline() {
        let started = Instant::now();
        let deadline = started + Duration::from_millis(50);
        let cut = within(deadline, std::future::pending::<()>()).await;
        assert_eq!(cut, None);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }
}
