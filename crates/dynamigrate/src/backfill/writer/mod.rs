//! The writing sinks: what a backfill does with each page. [`GuardedWriter`] sends one guarded
//! conditional write per changed item (update mode); [`BatchWriter`] sends `BatchWriteItem`s
//! (batch mode). Both run the transform, file failed items, stop the run past the failure limit,
//! and keep a dry run to counting and sampling diffs.

mod batch;
mod guarded;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use tokio_util::sync::CancellationToken;

pub(crate) use batch::{BatchWriter, BATCH_LIMIT};
pub(crate) use guarded::GuardedWriter;

use super::change::{Change, Guard};
use super::failures::FailureLog;
use super::meter::Meter;
use super::rate::RateControl;
use super::scan::ScanRequest;
use super::sink::{Tally, Verdict};
use super::summary::ItemDiff;
use super::transform::Transform;
use super::value::Item;
use super::window::Window;
use crate::error::panic_message;

/// What both writers share: the table and its key, the transform, the limits, the failure file.
pub(crate) struct Writer {
    pub client: Client,
    pub table: String,
    pub key_names: Vec<String>,
    pub guard: Guard,
    pub transform: Arc<dyn Transform>,
    pub dry_run: bool,
    /// Re-reads after a conflict use the scan's projection.
    pub reads: Arc<ScanRequest>,
    pub rate: Arc<RateControl>,
    /// Bounds write requests in flight across all segments, and hears their round trips.
    pub window: Arc<Window>,
    /// Conflicts and retries are counted here; items through the page's tally.
    pub meter: Arc<Meter>,
    pub failures: FailureLog,
    pub max_failures: u64,
    pub max_conflict_retries: u32,
    /// Cancelled past the failure limit, so the pipeline stops after its current pages.
    pub stop: CancellationToken,
    /// Ctrl-C, SIGTERM or a lost lease: stop now, mid-page, leaving unsettled items to the next run.
    pub interrupt: CancellationToken,
    pub diffs: DiffSample,
}

impl Writer {
    pub fn key_of(&self, item: &Item) -> Item {
        self.key_names.iter().filter_map(|k| item.get(k).map(|v| (k.clone(), v.clone()))).collect()
    }

    /// Records a failed item: logged, filed, counted; past the limit, the run stops.
    fn fail(&self, key: &Item, error: &str, tally: &Tally) -> Verdict {
        self.failures.record(key, error);
        tally.record(Verdict::Failed, 1);
        if tally.failed_in_run() > self.max_failures && !self.stop.is_cancelled() {
            tracing::error!("more than {} items failed: stopping after the current pages", self.max_failures);
            self.stop.cancel();
        }
        Verdict::Failed
    }

    /// Runs the transform, turning errors and panics (with their message) into a message, and a
    /// no-op change into a skip.
    fn transform(&self, key: &Item, item: &Item) -> Result<Change, String> {
        let change = match std::panic::catch_unwind(AssertUnwindSafe(|| self.transform.apply(item))) {
            Ok(Ok(change)) => change.normalize(item),
            Ok(Err(error)) => return Err(format!("transform failed: {error:#}")),
            Err(panic) => return Err(format!("transform panicked: {}", panic_message(panic.as_ref()))),
        };
        if let Change::Put(new) = &change {
            if self.reads.is_projected() {
                return Err("a whole-item Put cannot be built from a projection".into());
            }
            if &self.key_of(new) != key {
                return Err("a Put must keep the item's key".into());
            }
        }
        Ok(change)
    }

    /// A dry run's verdict on a change: counted as modified, and perhaps sampled as a diff.
    fn would_write(&self, key: &Item, before: &Item, change: &Change, tally: &Tally) -> Verdict {
        self.diffs.offer(|| ItemDiff::between(key, before, change.apply(before).as_ref()));
        tally.record(Verdict::Modified, 1)
    }

    fn retried(&self, requests: u64) {
        self.meter.retries.fetch_add(requests, Relaxed);
    }
}

/// The first few diffs of a dry run.
pub(crate) struct DiffSample {
    limit: usize,
    diffs: Mutex<Vec<ItemDiff>>,
}

impl DiffSample {
    pub fn new(limit: usize) -> Self {
        Self { limit, diffs: Mutex::new(Vec::new()) }
    }

    fn offer(&self, diff: impl FnOnce() -> ItemDiff) {
        if let Ok(mut diffs) = self.diffs.lock() {
            if diffs.len() < self.limit {
                diffs.push(diff());
            }
        }
    }

    pub fn taken(&self) -> Vec<ItemDiff> {
        self.diffs.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

/// The verdict of an item task; a task that died (a bug of ours) counts its item as failed.
fn joined(result: Result<Option<Verdict>, tokio::task::JoinError>, tally: &Tally) {
    if let Err(error) = result {
        let message = match error.try_into_panic() {
            Ok(payload) => panic_message(payload.as_ref()),
            Err(error) => error.to_string(),
        };
        tracing::error!("an item task failed (a bug in dynamigrate): {message}");
        tally.record(Verdict::Failed, 1);
    }
}
