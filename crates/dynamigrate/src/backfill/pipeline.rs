//! The page pipeline: every pass over a table, writing or not, goes through here. Segment workers
//! page through their segments from their checkpoints, read the next page while the sink handles
//! this one (and hand it over while this one's last writes settle), pace reads by the read-capacity
//! limit, count what they scan, and save each segment's checkpoint, in page order, once its page is
//! settled. What a page's items become is the [sink](super::sink)'s.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::meter::Meter;
use super::rate::RateControl;
use super::scan::{Page, ScanRequest};
use super::sink::{PageSink, Tally};
use super::value::Item;
use crate::error::panic_message;
use crate::ledger::{Checkpoint, CheckpointStore, Counts};
use crate::Error;

/// Pages a segment has handed to the sink and not yet seen settle. Two let a segment start its
/// next page while the last one's slowest writes are still out, instead of idling on that tail
/// (at a 100 ms round trip, a round trip or more a page). Checkpoints still follow the pages in
/// order, each saved once every write of its page is answered.
const PAGES_AT_ONCE: usize = 2;

/// Pages a pass holds at once across all its segments: being read, read ahead, or being written.
/// This, not the number of segments, bounds what the scan keeps in memory (a 1,000-item page of
/// small items is about 1 MB once parsed): without it a table of 16 GiB or more, scanned 16
/// segments at once with three pages each, would hold 48. Twelve is what four segments held before,
/// far more items than the widest window writes at once; a page's room is given back as soon as
/// its last write is answered.
pub const PAGES_HELD: usize = 12;

/// The room of a new pass: [`PAGES_HELD`] pages, for [`Pipeline::room`].
pub(crate) fn page_room() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(PAGES_HELD))
}

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
    /// Room for [`PAGES_HELD`] pages, shared by every segment of the pass.
    pub room: Arc<Semaphore>,
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
                    if let Err(error) = pipeline.segment(checkpoint, &sink).await {
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
    async fn segment(self: &Arc<Self>, checkpoint: Checkpoint, sink: &Arc<dyn PageSink>) -> Result<(), Error> {
        let mut saving = Saving::default();
        let mut settling = VecDeque::new();
        let result = self.pages(checkpoint, sink, &mut settling, &mut saving).await;
        if result.is_err() {
            // The other segments stop taking pages now, not once this one's pages have finished.
            self.stop.cancel();
        }
        // Whatever happened, no write of this segment outlives it (pages left unsettled after an
        // error or a stop are waited for, not checkpointed), and no checkpoint is left half-written.
        for page in settling {
            _ = page.task.await;
        }
        let saved = saving.wait().await;
        result.and(saved)
    }

    async fn pages(
        self: &Arc<Self>,
        mut checkpoint: Checkpoint,
        sink: &Arc<dyn PageSink>,
        settling: &mut VecDeque<Handed>,
        saving: &mut Saving,
    ) -> Result<(), Error> {
        // With a pause between pages, each page settles before the pause, as asked.
        let depth = if self.page_delay.is_zero() { PAGES_AT_ONCE } else { 1 };
        let mut next = Some(self.fetch(checkpoint.clone()));
        while let Some(fetching) = next.take() {
            if self.stop.is_cancelled() {
                fetching.abort();
                break;
            }
            // None: the run is stopping; the page is read again by the next run.
            let Some(page) = fetching.await.map_err(|e| worker_died(e, &self.stop))?? else { break };
            // Read the following page while this one is handled: the scan's latency hides behind
            // the writes.
            if let (Some(key), true) = (&page.0.last_key, self.page_delay.is_zero()) {
                next = Some(self.fetch(Checkpoint { last_key: Some(key.clone()), ..checkpoint.clone() }));
            }
            settling.push_back(self.hand(page, sink));
            // Without a next page (the last, or a pause to come), everything handed settles first.
            let keep = if next.is_some() { depth - 1 } else { 0 };
            if !self.settle_down_to(keep, settling, &mut checkpoint, saving).await? {
                return Ok(());
            }
            if checkpoint.done {
                self.meter.segments_done.fetch_add(1, Relaxed);
                return Ok(());
            }
            if next.is_none() {
                tokio::select! {
                    () = self.stop.cancelled() => break,
                    () = tokio::time::sleep(self.page_delay) => {}
                }
                next = Some(self.fetch(checkpoint.clone()));
            }
        }
        // Stopping: what was handed settles (the writers cut it short) and is saved as far as it got.
        self.settle_down_to(0, settling, &mut checkpoint, saving).await.map(|_| ())
    }

    /// Settles the oldest pages handed until `keep` remain; false if one was cut short (the
    /// checkpoint then stays before it, and the pages after it are not saved).
    async fn settle_down_to(
        &self,
        keep: usize,
        settling: &mut VecDeque<Handed>,
        checkpoint: &mut Checkpoint,
        saving: &mut Saving,
    ) -> Result<bool, Error> {
        while settling.len() > keep {
            let Some(oldest) = settling.pop_front() else { break };
            if !self.settle(oldest, checkpoint, saving).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Hands a page to the sink in a task of its own, so the segment can hand it the next page
    /// before this one's last writes are answered.
    fn hand(&self, (page, room): (Page, OwnedSemaphorePermit), sink: &Arc<dyn PageSink>) -> Handed {
        self.meter.scanned.fetch_add(page.scanned, Relaxed);
        self.meter.filtered_out.fetch_add(page.scanned.saturating_sub(page.items.len() as u64), Relaxed);
        let (sink, tally) = (sink.clone(), Tally::new(self.meter.clone()));
        let handed = page.items.len() as u64;
        let items = page.items;
        let task = tokio::spawn(async move {
            sink.page(items, &tally).await;
            // The page's items are gone: its room is free for another segment's read.
            drop(room);
            tally.counts()
        });
        Handed { task, handed, scanned: page.scanned, last_key: page.last_key }
    }

    /// Waits for the oldest page handed to settle and moves the checkpoint past it. False if the
    /// sink was interrupted part-way (Ctrl-C, a lost lease): the checkpoint stays before the page
    /// and the next run reads it again, skipping what was written.
    async fn settle(&self, page: Handed, checkpoint: &mut Checkpoint, saving: &mut Saving) -> Result<bool, Error> {
        let mut counts = page.task.await.map_err(|e| worker_died(e, &self.stop))?;
        if counts.processed < page.handed {
            return Ok(false);
        }
        counts.scanned = page.scanned;
        checkpoint.counts.add(&counts);
        checkpoint.last_key = page.last_key;
        checkpoint.done = checkpoint.last_key.is_none();
        self.save(checkpoint, saving).await?;
        Ok(true)
    }

    /// Saves a settled page's checkpoint in the background while the next page is written: a
    /// round trip per page that would otherwise stall the segment (100 ms from a laptop far from
    /// its region). Saves stay in order, one at a time: the previous one is waited for first, and
    /// its error (a lost lease, say) stops the segment a page later than an inline save would. A
    /// checkpoint still never runs ahead of its page's writes.
    async fn save(&self, checkpoint: &Checkpoint, saving: &mut Saving) -> Result<(), Error> {
        let Some(store) = self.checkpoints.clone() else { return Ok(()) };
        saving.wait().await?;
        let checkpoint = checkpoint.clone();
        saving.0 = Some(tokio::spawn(async move { store.save(&checkpoint).await }));
        Ok(())
    }

    /// Reads one page of a segment in its own task, once the pass has room for it and paced by the
    /// read-capacity limiter; None when the run stops first. The page comes with its room.
    fn fetch(self: &Arc<Self>, at: Checkpoint) -> JoinHandle<Result<Option<(Page, OwnedSemaphorePermit)>, Error>> {
        let pipeline = self.clone();
        tokio::spawn(async move {
            let room = tokio::select! {
                room = pipeline.room.clone().acquire_owned() => room,
                () = pipeline.stop.cancelled() => return Ok(None),
            };
            let Ok(room) = room else { return Ok(None) };
            let Some(reserved) = pipeline.rate.read().await else { return Ok(None) };
            match pipeline.scan.page(&pipeline.client, &at, &pipeline.stop).await {
                Ok(page) => {
                    pipeline.rate.was_read(reserved, page.read_units);
                    Ok(Some((page, room)))
                }
                // A wait for a throttled page cut short by the stop is the stop, not a failure.
                Err(_) if pipeline.stop.is_cancelled() => Ok(None),
                Err(error) => Err(error),
            }
        })
    }
}

/// A page handed to the sink, settling in its task; what its checkpoint needs once it has.
struct Handed {
    task: JoinHandle<Counts>,
    handed: u64,
    scanned: u64,
    last_key: Option<Item>,
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
