//! What a script runs with: its limits, which of its functions, and what it is told of the run.

use std::time::Duration;

/// The sandbox's limits, per interpreter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The interpreter's heap.
    pub memory_bytes: usize,
    /// The script's stack (deep recursion fails cleanly past it).
    pub stack_bytes: usize,
    /// One item's transform.
    pub item_timeout: Duration,
    /// Loading the module (its top level, run once to read its exports).
    pub load_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 * 1024 * 1024,
            stack_bytes: 512 * 1024,
            item_timeout: Duration::from_millis(250),
            load_timeout: Duration::from_secs(2),
        }
    }
}

impl Limits {
    /// The limits a module's loading runs under (its messages name the load timeout).
    pub(crate) fn for_loading(self) -> Self {
        Self { item_timeout: self.load_timeout, ..self }
    }
}

/// Which of the script's functions a transform runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// `transform`, for `up`.
    Up,
    /// `down`.
    Down,
}

impl Entry {
    pub fn name(self) -> &'static str {
        match self {
            Entry::Up => "transform",
            Entry::Down => "down",
        }
    }
}

/// What a script's functions are told about the run (their second argument, `context`).
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    pub migration: String,
    pub table: String,
    /// The run's start time (RFC 3339), the same for every item: scripts have no clock.
    pub started_at: String,
    pub dry_run: bool,
}
