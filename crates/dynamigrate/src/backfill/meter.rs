//! Live counts of a backfill or a scan. The hot path only does atomic adds; the progress reporter
//! and the summary read them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::ledger::Counts;

#[derive(Default)]
pub(crate) struct Meter {
    pub scanned: AtomicU64,
    pub processed: AtomicU64,
    pub modified: AtomicU64,
    pub skipped: AtomicU64,
    pub failed: AtomicU64,
    /// Conditional writes that found the item changed since it was read.
    pub conflicts: AtomicU64,
    /// Requests sent again (unprocessed batch items, transient errors).
    pub retries: AtomicU64,
    pub segments_done: AtomicU64,
    /// Scanned items the server-side filter left out: done as soon as their page arrives.
    pub filtered_out: AtomicU64,
}

impl Meter {
    /// Starts from what earlier (interrupted) runs already did, so totals cover the whole backfill.
    pub fn resuming(counts: &Counts, segments_done: u64) -> Self {
        let meter = Self::default();
        meter.add(counts);
        meter.segments_done.store(segments_done, Relaxed);
        meter.filtered_out.store(counts.scanned.saturating_sub(counts.processed), Relaxed);
        meter
    }

    /// Items finished: transformed and written (or skipped, or failed), or filtered out. Progress and
    /// rate use this rather than items scanned, which runs a whole page ahead of the writes.
    pub fn settled(&self) -> u64 {
        self.processed.load(Relaxed) + self.filtered_out.load(Relaxed)
    }

    pub fn add(&self, c: &Counts) {
        self.scanned.fetch_add(c.scanned, Relaxed);
        self.processed.fetch_add(c.processed, Relaxed);
        self.modified.fetch_add(c.modified, Relaxed);
        self.skipped.fetch_add(c.skipped, Relaxed);
        self.failed.fetch_add(c.failed, Relaxed);
    }

    pub fn counts(&self) -> Counts {
        Counts {
            scanned: self.scanned.load(Relaxed),
            processed: self.processed.load(Relaxed),
            modified: self.modified.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            failed: self.failed.load(Relaxed),
        }
    }
}
