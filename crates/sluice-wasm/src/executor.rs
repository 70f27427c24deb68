//! The executor shape every kind of component shares: a backend's pool of instances (a reuse
//! cap, idle expiry by the host's reaper), each call made on one instance within the call's
//! deadline, an instance that faults or is cut dropped (a new one is made on demand), and the
//! plugin's counters. What differs per world (how an instance is made, how its faults read, how
//! a call enters the guest and what it leaves behind) is the [`World`] trait and the world's
//! `run`, which makes each call between [`PluginExecutor::checkout`] and
//! [`PluginExecutor::settle`].
use std::future::Future;
use std::sync::Arc;

use sluice_plugin::{
    BackendRequest, BackendResponse, BoxFuture, CallContext, ExecError, Executor, Hooks, Instant,
};
use wasmtime::Store;

use crate::plugin::Backend;
use crate::pool::{Lease, Pool, Sweep};
use crate::sandbox;
use crate::stats::{Counter, LiveInstance};

/// A live instance of a component: its store and the guest's exports.
pub(crate) struct Instance<W: World> {
    pub(crate) store: Store<W::State>,
    pub(crate) guest: W::Guest,
    _live: LiveInstance,
}

impl<W: World> Instance<W> {
    /// A freshly made (and, where the world has one, initialised) instance, counted.
    pub(crate) fn new(backend: &Backend, store: Store<W::State>, guest: W::Guest) -> Self {
        backend.stats.bump(Counter::InstancesCreated);
        Instance {
            store,
            guest,
            _live: LiveInstance::new(&backend.stats),
        }
    }
}

/// What one world of components does its own way.
pub(crate) trait World: Send + Sync + Sized + 'static {
    /// The host state of one instance.
    type State: Send + 'static;
    /// The guest's exports, as bindgen made them.
    type Guest: Send + 'static;

    /// Makes (and initialises) a fresh instance, within `deadline`.
    fn instantiate(
        &self,
        backend: &Arc<Backend>,
        deadline: Instant,
    ) -> impl Future<Output = Result<Instance<Self>, ExecError>> + Send;

    /// Turns a wasmtime error (a trap, a limit, an interruption) into the gateway's error,
    /// logged and counted.
    fn classify(
        backend: &Backend,
        store: &Store<Self::State>,
        error: &wasmtime::Error,
    ) -> ExecError;

    /// Serves one backend call.
    fn run<'a>(
        executor: &'a PluginExecutor<Self>,
        request: BackendRequest,
        ctx: &'a CallContext,
    ) -> impl Future<Output = Result<BackendResponse, ExecError>> + Send + 'a;

    /// The hooks a chain calls one by one, when the component serves in hooks mode.
    fn hooks(_executor: &PluginExecutor<Self>) -> Option<&dyn Hooks> {
        None
    }

    /// Whether nothing of the answer but its content headers is read on the way through
    /// ([`Executor::reads_only_content_headers`]); `false`, the safe answer, by default.
    fn reads_only_content_headers(_executor: &PluginExecutor<Self>) -> bool {
        false
    }
}

/// The executor of one backend whose plugin is a component of world `W`.
pub(crate) struct PluginExecutor<W: World> {
    pub(crate) backend: Arc<Backend>,
    pub(crate) world: W,
    /// Instances are boxed: one is moved in and out of the pool on every call, and a box
    /// moves as a pointer where the store and the guest's exports are a few hundred bytes.
    pool: Arc<Pool<Box<Instance<W>>>>,
}

impl<W: World> std::fmt::Debug for PluginExecutor<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginExecutor")
            .field("plugin", &self.backend.plugin)
            .field("backend", &self.backend.label)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

impl<W: World> PluginExecutor<W> {
    /// The executor, its pool holding `first` (the instance made at build time, which proved
    /// the component instantiates and accepts its settings).
    pub(crate) fn new(world: W, backend: Arc<Backend>, first: Instance<W>) -> Self {
        let limits = &backend.limits;
        let pool = Arc::new(Pool::new(
            limits.max_instances,
            limits.max_requests_per_instance,
            limits.instance_idle_timeout,
            Arc::clone(&backend.stats),
        ));
        pool.put_idle(Box::new(first));
        let sweep: std::sync::Weak<dyn Sweep> = Arc::downgrade(&pool) as _;
        backend.engine.register_pool(sweep);
        PluginExecutor {
            backend,
            world,
            pool,
        }
    }

    /// A pooled instance (or a fresh one) for one call, and the lease that returns it; its
    /// epoch deadline armed. The call is made within `deadline` and ends in
    /// [`PluginExecutor::settle`].
    pub(crate) async fn checkout(&self, deadline: Instant) -> Result<Leased<W>, ExecError> {
        let mut lease = self.pool.checkout(deadline).await?;
        let mut instance = match lease.instance.take() {
            Some(instance) => instance,
            // Boxed: making an instance (instantiation and `init`) is a large future and a rare
            // one; inline, every call's future would carry its size.
            None => Box::new(Box::pin(self.world.instantiate(&self.backend, deadline)).await?),
        };
        instance.store.set_epoch_deadline(1);
        Ok(Leased { lease, instance })
    }

    /// Ends a call made on `leased`: after a return, `finish` clears the call's state (moving
    /// what the answer needs into it) and says whether the instance may serve again; an
    /// instance that faulted, or whose call was cut at the deadline (typically while the host
    /// awaited a `send`), is dropped.
    pub(crate) fn settle<T>(
        &self,
        leased: Leased<W>,
        outcome: Option<wasmtime::Result<T>>,
        finish: impl FnOnce(&mut Store<W::State>, &mut T) -> bool,
    ) -> Result<T, ExecError> {
        let backend = &self.backend;
        let Leased {
            lease,
            mut instance,
        } = leased;
        match outcome {
            Some(Ok(mut answer)) => {
                if finish(&mut instance.store, &mut answer) {
                    self.pool.checkin(lease, instance);
                } else {
                    backend.stats.bump(Counter::InstancesRecycled);
                }
                Ok(answer)
            }
            Some(Err(e)) => {
                let err = W::classify(backend, &instance.store, &e);
                backend.stats.bump(Counter::InstancesDiscarded);
                Err(err)
            }
            None => Err(sandbox::cut_at_deadline(backend)),
        }
    }

    /// Drops an instance that could not be handed its call (it may hold half of it).
    pub(crate) fn discard(&self, leased: Leased<W>) {
        self.backend.stats.bump(Counter::InstancesDiscarded);
        drop(leased);
    }
}

/// An instance checked out for one call.
pub(crate) struct Leased<W: World> {
    lease: Lease<Box<Instance<W>>>,
    pub(crate) instance: Box<Instance<W>>,
}

impl<W: World> Executor for PluginExecutor<W> {
    fn execute<'a>(
        &'a self,
        request: BackendRequest,
        ctx: &'a CallContext,
    ) -> BoxFuture<'a, Result<BackendResponse, ExecError>> {
        // The world's future is made inside the boxed one, not beside it and then moved in: a
        // call's future is kilobytes (wasmtime's own call future is nested in it), and every
        // move of it is a copy.
        let stats = &self.backend.stats;
        Box::pin(async move {
            stats.bump(Counter::Requests);
            stats.count_error(W::run(self, request, ctx).await)
        })
    }

    fn hooks(&self) -> Option<&dyn Hooks> {
        W::hooks(self)
    }

    fn reads_only_content_headers(&self) -> bool {
        W::reads_only_content_headers(self)
    }
}
