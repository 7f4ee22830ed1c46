//! The page pipeline: every pass over a table, writing or not, goes through here. Segment workers
//! page through their segments from their checkpoints, read the next page while the sink handles
//! this one, pace reads by the read-capacity limit, count what they scan, and save each segment's
//! checkpoint once its page is settled. What a page's items become is the [sink](super::sink)'s.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::meter::Meter;
use super::rate::RateControl;
use super::scan::{Page, ScanRequest};
use super::sink::{PageSink, Tally};
use crate::error::panic_message;
use crate::ledger::{Checkpoint, CheckpointStore};
use crate::Error;

/// What every segment worker of one pass shares.
pub(crate) struct Pipeline {
    pub client: Client,
    pub scan: Arc<ScanRequest>,
    pub rate: Arc<RateControl>,
    pub meter: Arc<Meter>,
    /// Stops the workers after their current page: Ctrl-C, a lost lease, too many failures.
    pub stop: CancellationToken,
    /// Where positions are saved; None in a dry run and for passes that need no resume.
    pub checkpoints: Option<CheckpointStore>,
    pub page_delay: Duration,
}

impl Pipeline {
    /// Scans the pending segments on at most `workers` workers into `sink`; the first error stops
    /// them all and is returned.
    pub async fn run(
        self: Arc<Self>,
        pending: VecDeque<Checkpoint>,
        workers: usize,
        sink: Arc<dyn PageSink>,
    ) -> Option<Error> {
        let workers = pending.len().min(workers.max(1));
        let queue = Arc::new(Mutex::new(pending));
        let mut tasks = JoinSet::new();
        for _ in 0..workers {
            let (pipeline, queue, sink) = (self.clone(), queue.clone(), sink.clone());
            tasks.spawn(async move {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some(checkpoint) = next else { return Ok(()) };
                    if let Err(error) = pipeline.segment(checkpoint, sink.as_ref()).await {
                        pipeline.stop.cancel();
                        return Err(error);
                    }
                }
            });
        }
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            let result = joined.map_err(|e| worker_died(e, &self.stop)).and_then(|r| r);
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
        }
        first_error
    }

    /// Scans one segment page by page from its checkpoint; saves the checkpoint after each page.
    async fn segment(self: &Arc<Self>, checkpoint: Checkpoint, sink: &dyn PageSink) -> Result<(), Error> {
        let mut saving = Saving::default();
        let result = self.pages(checkpoint, sink, &mut saving).await;
        // The last save is waited for whatever happened, so no checkpoint is left half-written.
        let saved = saving.wait().await;
        result.and(saved)
    }

    async fn pages(
        self: &Arc<Self>,
        mut checkpoint: Checkpoint,
        sink: &dyn PageSink,
        saving: &mut Saving,
    ) -> Result<(), Error> {
        let mut next = Some(self.fetch(checkpoint.clone()));
        while let Some(fetching) = next.take() {
            if self.stop.is_cancelled() {
                fetching.abort();
                return Ok(());
            }
            // None: the run is stopping; the page is read again by the next run.
            let Some(page) = fetching.await.map_err(|e| worker_died(e, &self.stop))?? else { return Ok(()) };
            // Read the following page while this one is handled: the scan's latency hides behind
            // the writes. (With a delay between pages the pause comes first, as asked.)
            if let (Some(key), true) = (&page.last_key, self.page_delay.is_zero()) {
                next = Some(self.fetch(Checkpoint { last_key: Some(key.clone()), ..checkpoint.clone() }));
            }
            self.meter.scanned.fetch_add(page.scanned, Relaxed);
            self.meter.filtered_out.fetch_add(page.scanned.saturating_sub(page.items.len() as u64), Relaxed);
            let handed = page.items.len() as u64;
            let tally = Tally::new(self.meter.clone());
            sink.page(page.items, &tally).await;
            let mut counts = tally.counts();
            if counts.processed < handed {
                // The sink was interrupted part-way (Ctrl-C, a lost lease): the checkpoint stays
                // before this page, and the next run reads it again; what was written is skipped then.
                return Ok(());
            }
            counts.scanned = page.scanned;
            checkpoint.counts.add(&counts);
            checkpoint.last_key = page.last_key;
            checkpoint.done = checkpoint.last_key.is_none();
            self.save(&checkpoint, saving).await?;
            if checkpoint.done {
                self.meter.segments_done.fetch_add(1, Relaxed);
                return Ok(());
            }
            if next.is_none() {
                tokio::select! {
                    () = self.stop.cancelled() => return Ok(()),
                    () = tokio::time::sleep(self.page_delay) => {}
                }
                next = Some(self.fetch(checkpoint.clone()));
            }
        }
        Ok(())
    }

    /// Saves a settled page's checkpoint in the background while the next page is written: a
    /// round trip per page that would otherwise stall the segment (100 ms from a laptop far from
    /// its region). Saves stay in order, one at a time: the previous one is waited for first, and
    /// its error (a lost lease, say) stops the segment a page later than an inline save would. A
    /// checkpoint still never runs ahead of its page's writes.
    async fn save(self: &Arc<Self>, checkpoint: &Checkpoint, saving: &mut Saving) -> Result<(), Error> {
        let Some(store) = self.checkpoints.clone() else { return Ok(()) };
        saving.wait().await?;
        let checkpoint = checkpoint.clone();
        saving.0 = Some(tokio::spawn(async move { store.save(&checkpoint).await }));
        Ok(())
    }

    /// Reads one page of a segment in its own task, paced by the read-capacity limiter; None when
    /// the run stops first.
    fn fetch(self: &Arc<Self>, at: Checkpoint) -> JoinHandle<Result<Option<Page>, Error>> {
        let pipeline = self.clone();
        tokio::spawn(async move {
            let Some(reserved) = pipeline.rate.read().await else { return Ok(None) };
            match pipeline.scan.page(&pipeline.client, &at, &pipeline.stop).await {
                Ok(page) => {
                    pipeline.rate.was_read(reserved, page.read_units);
                    Ok(Some(page))
                }
                // A wait for a throttled page cut short by the stop is the stop, not a failure.
                Err(_) if pipeline.stop.is_cancelled() => Ok(None),
                Err(error) => Err(error),
            }
        })
    }
}

/// The checkpoint save in flight for one segment, if any.
#[derive(Default)]
struct Saving(Option<JoinHandle<Result<(), Error>>>);

impl Saving {
    async fn wait(&mut self) -> Result<(), Error> {
        match self.0.take() {
            Some(task) => task.await.unwrap_or_else(|e| Err(Error::Internal(format!("a checkpoint save died: {e}")))),
            None => Ok(()),
        }
    }
}

/// A task of ours panicked (or was cancelled): a bug, reported with the panic's message.
fn worker_died(error: tokio::task::JoinError, stop: &CancellationToken) -> Error {
    stop.cancel();
    match error.try_into_panic() {
        Ok(payload) => Error::Internal(format!("a scan worker panicked: {}", panic_message(payload.as_ref()))),
        Err(error) => Error::Internal(format!("a scan worker was cancelled: {error}")),
    }
}
