//! The pooling allocator's capacity, and each backend's reservation of it.

use std::sync::{Arc, Mutex};

use wasmtime::component::Component;

/// Pool resources one instance of a component takes, or a sum of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Slots {
    pub(crate) instances: u64,
    pub(crate) memories: u64,
    pub(crate) tables: u64,
}

impl Slots {
    /// What one instance of `component` takes from the pool (the per-component maxima when
    /// wasmtime cannot tell statically).
    pub(crate) fn of(component: &Component) -> Slots {
        match component.resources_required() {
            Some(r) => Slots {
                instances: 1,
                memories: u64::from(r.num_memories),
                tables: u64::from(r.num_tables),
            },
            None => Slots {
                instances: 1,
                memories: u64::from(MAX_MEMORIES_PER_COMPONENT),
                tables: u64::from(MAX_TABLES_PER_COMPONENT),
            },
        }
    }

    fn times(self, n: u64) -> Slots {
        Slots {
            instances: self.instances.saturating_mul(n),
            memories: self.memories.saturating_mul(n),
            tables: self.tables.saturating_mul(n),
        }
    }

    fn plus(self, o: Slots) -> Slots {
        Slots {
            instances: self.instances.saturating_add(o.instances),
            memories: self.memories.saturating_add(o.memories),
            tables: self.tables.saturating_add(o.tables),
        }
    }

    fn fits(self, capacity: Slots) -> bool {
        self.instances <= capacity.instances
            && self.memories <= capacity.memories
            && self.tables <= capacity.tables
    }
}

impl std::fmt::Display for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} instances ({} memories, {} tables)",
            self.instances, self.memories, self.tables
        )
    }
}

/// The pooling allocator's capacity and what backends have reserved of it: each backend
/// reserves room for its `max_instances` up front, so one backend can never take the slots
/// another one counts on.
#[derive(Debug)]
pub(crate) struct Ledger {
    capacity: Slots,
    reserved: Mutex<Slots>,
}

/// A backend's share of the pool, given back when its last instance is gone.
#[derive(Debug)]
pub(crate) struct Reservation {
    ledger: Arc<Ledger>,
    slots: Slots,
}

impl Ledger {
    /// A ledger of `capacity`, nothing reserved yet.
    pub(crate) fn new(capacity: Slots) -> Ledger {
        Ledger {
            capacity,
            reserved: Mutex::new(Slots::default()),
        }
    }

    pub(crate) fn reserve(
        self: &Arc<Self>,
        plugin: &str,
        max_instances: usize,
        per_instance: Slots,
    ) -> Result<Reservation, String> {
        let wanted = per_instance.times(max_instances as u64);
        let mut reserved = self.reserved.lock().unwrap_or_else(|p| p.into_inner());
        if !reserved.plus(wanted).fits(self.capacity) {
            return Err(format!(
                "max_instances: {max_instances} instances of plugin {plugin:?} need {wanted}, \
                 but the WebAssembly instance pool holds {} and other backends reserved {} \
                 of it; the sum of max_instances over all backends must fit the pool: lower \
                 max_instances here or elsewhere",
                self.capacity, *reserved
            ));
        }
        *reserved = reserved.plus(wanted);
        Ok(Reservation {
            ledger: Arc::clone(self),
            slots: wanted,
        })
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut reserved = self
            .ledger
            .reserved
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        reserved.instances = reserved.instances.saturating_sub(self.slots.instances);
        reserved.memories = reserved.memories.saturating_sub(self.slots.memories);
        reserved.tables = reserved.tables.saturating_sub(self.slots.tables);
    }
}

/// Per-component maxima of the pooling allocator.
pub(crate) const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 32;
pub(crate) const MAX_MEMORIES_PER_COMPONENT: u32 = 4;
pub(crate) const MAX_TABLES_PER_COMPONENT: u32 = 16;
