//! The instance reaper: idle instances past their `instance_idle_timeout` are dropped on a
//! thread of their own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::pool::Sweep;

/// How often the reaper looks for idle instances past their `instance_idle_timeout`.
const REAP_INTERVAL: Duration = Duration::from_millis(100);

/// Drops expired idle instances of every live pool, on its own thread (dropping a store
/// unmaps memory: not something to do on a request's path or on the epoch ticker).
pub(crate) struct Reaper {
    pools: Arc<Mutex<Vec<Weak<dyn Sweep>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Reaper {
    pub(crate) fn start() -> Result<Reaper, String> {
        let pools: Arc<Mutex<Vec<Weak<dyn Sweep>>>> = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let pools = Arc::clone(&pools);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("sluice-wasm-reaper".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::park_timeout(REAP_INTERVAL);
                        let live: Vec<Arc<dyn Sweep>> = {
                            let mut pools = pools.lock().unwrap_or_else(|p| p.into_inner());
                            pools.retain(|p| p.strong_count() > 0);
                            pools.iter().filter_map(Weak::upgrade).collect()
                        };
                        let now = std::time::Instant::now();
                        for pool in live {
                            pool.sweep(now);
                        }
                    }
                })
                .map_err(|e| format!("cannot start the instance reaper: {e}"))?
        };
        Ok(Reaper {
            pools,
            stop,
            thread: Some(thread),
        })
    }
}

impl Reaper {
    /// Adds a pool to sweep (held weakly: a pool that is gone drops out).
    pub(crate) fn register(&self, pool: Weak<dyn Sweep>) {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        pools.push(pool);
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
