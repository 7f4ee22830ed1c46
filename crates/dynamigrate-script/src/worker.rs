//! One interpreter per thread that runs items, made on the thread's first item and kept for the
//! next ones.
//!
//! Why on the caller's thread: the backfill calls a transform from its own worker threads, and a
//! hop to a thread of the interpreter's own (to be able to abandon it) cost 60–75 µs per item on
//! this project's 2-core machine against 3 µs for the whole transform in place. In place, QuickJS's
//! interrupt handler still stops a script's own loops at the time limit and the memory limit stops
//! allocation; what it cannot stop is a built-in that runs long in C without allocating (see
//! docs/design.md), which holds its worker until the built-in returns.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use dynamigrate::{Change, Item};

use crate::item::{self, Call};
use crate::options::{Entry, Limits, RunInfo};
use crate::sandbox::Sandbox;

/// What every interpreter of one transform is built from.
pub(crate) struct Blueprint {
    pub code: String,
    pub file: String,
    pub limits: Limits,
    pub entry: Entry,
    pub key_names: Vec<String>,
    pub info: RunInfo,
}

/// A transform's interpreters, one per thread that ran one of its items.
pub(crate) struct Pool {
    id: u64,
    blueprint: Arc<Blueprint>,
}

/// This thread's interpreters, by pool, each with a handle telling whether its pool still exists.
type Interpreters = HashMap<u64, (Weak<Blueprint>, Result<Sandbox, String>)>;

thread_local! {
    static INTERPRETERS: RefCell<Interpreters> = RefCell::new(HashMap::new());
}

static NEXT_POOL: AtomicU64 = AtomicU64::new(1);

impl Pool {
    pub fn new(blueprint: Blueprint) -> Self {
        Self { id: NEXT_POOL.fetch_add(1, Ordering::Relaxed), blueprint: Arc::new(blueprint) }
    }

    /// Runs one item in this thread's interpreter for this transform, made on first use.
    pub fn run(&self, item: &Item) -> Result<Change, String> {
        INTERPRETERS.with(|interpreters| {
            let mut interpreters = interpreters.borrow_mut();
            if !interpreters.contains_key(&self.id) {
                // Interpreters of transforms that are gone are dropped here, by the thread that owns them.
                interpreters.retain(|_, (pool, _)| pool.strong_count() > 0);
                let b = &self.blueprint;
                interpreters.insert(self.id, (Arc::downgrade(b), Sandbox::new(&b.code, &b.file, b.limits, &b.info)));
            }
            let (_, sandbox) = &interpreters[&self.id];
            let sandbox = sandbox.as_ref().map_err(Clone::clone)?;
            let b = &self.blueprint;
            item::run(sandbox, &Call { entry: b.entry, key_names: &b.key_names }, item)
        })
    }
}
