//! Turning transformed items into writes: guarded single-item writes (update mode) or
//! `BatchWriteItem` (batch mode), with conflict re-reads, unprocessed-item retries and failures.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{ConsumedCapacity, DeleteRequest, PutRequest, WriteRequest};
use tokio::task::JoinSet;

use super::change::{Change, Expressions};
use super::checkpoint::Counts;
use super::engine::Engine;
use super::rate::WriteTicket;
use super::value::{key_text, Item};
use super::{ItemDiff, WriteMode};
use crate::aws::{is_throttling, is_transient, jittered_backoff, pause, PATIENCE_ROUNDS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Modified,
    Skipped,
    Failed,
}

impl Counts {
    fn tally(&mut self, verdict: Verdict, items: u64) {
        self.processed += items;
        match verdict {
            Verdict::Modified => self.modified += items,
            Verdict::Skipped => self.skipped += items,
            Verdict::Failed => self.failed += items,
        }
    }
}

impl Engine {
    fn count(&self, verdict: Verdict, items: u64) -> Verdict {
        self.meter.processed.fetch_add(items, Relaxed);
        let counter = match verdict {
            Verdict::Modified => &self.meter.modified,
            Verdict::Skipped => &self.meter.skipped,
            Verdict::Failed => &self.meter.failed,
        };
        counter.fetch_add(items, Relaxed);
        verdict
    }

    fn fail(&self, key: &Item, error: &str) -> Verdict {
        self.failures.record(key, error);
        self.count(Verdict::Failed, 1);
        if self.meter.failed.load(Relaxed) > self.max_failures && !self.stop.is_cancelled() {
            tracing::error!("more than {} items failed: stopping after the current pages", self.max_failures);
            self.stop.cancel();
        }
        Verdict::Failed
    }

    /// Runs the transform, turning errors and panics into a message, and a no-op change into a skip.
    fn transform(&self, key: &Item, item: &Item) -> Result<Change, String> {
        let change = match std::panic::catch_unwind(AssertUnwindSafe(|| (self.transform)(item))) {
            Ok(Ok(change)) => change.normalize(item),
            Ok(Err(error)) => return Err(format!("transform failed: {error:#}")),
            Err(_) => return Err("transform panicked".to_string()),
        };
        if let Change::Put(new) = &change {
            if self.scan.is_projected() {
                return Err("a whole-item Put cannot be built from a projection".into());
            }
            if &self.key_of(new) != key {
                return Err("a Put must keep the item's key".into());
            }
        }
        Ok(change)
    }

    fn sample(&self, key: &Item, before: &Item, change: &Change) {
        if let Ok(mut diffs) = self.diffs.lock() {
            if diffs.len() < self.sample_diffs {
                diffs.push(ItemDiff::between(key, before, change.apply(before).as_ref()));
            }
        }
    }
}

/// Processes one scanned page; returns what it did (for the segment's checkpoint).
pub(crate) async fn process_page(engine: &Arc<Engine>, items: Vec<Item>) -> Counts {
    match engine.mode {
        WriteMode::Update => process_each(engine, items).await,
        WriteMode::Batch => process_batch(engine, items).await,
    }
}

async fn process_each(engine: &Arc<Engine>, items: Vec<Item>) -> Counts {
    let mut counts = Counts::default();
    let mut tasks = JoinSet::new();
    for item in items {
        engine.rate.item().await;
        let Ok(permit) = engine.writes.clone().acquire_owned().await else { break };
        // Reap finished tasks as we go: a finished task's memory is held until it is joined, and a
        // page holds thousands of items. This keeps memory proportional to the concurrency.
        while let Some(joined) = tasks.try_join_next() {
            counts.tally(verdict_of(joined), 1);
        }
        let engine = engine.clone();
        tasks.spawn(async move {
            let _permit = permit;
            process_item(&engine, item).await
        });
    }
    while let Some(joined) = tasks.join_next().await {
        counts.tally(verdict_of(joined), 1);
    }
    counts
}

fn verdict_of(joined: Result<Verdict, tokio::task::JoinError>) -> Verdict {
    joined.unwrap_or_else(|error| {
        tracing::error!("an item task failed: {error}");
        Verdict::Failed
    })
}

enum WriteError {
    /// The guard failed: the item changed since it was read.
    Conflict,
    /// Throttled (true) or 5xx, timed out or disconnected, even after the SDK's retries: wait and
    /// try again.
    Transient(String, bool),
    Failed(String),
}

/// Transform, guarded write; on a conflict re-read and transform again, a bounded number of times.
async fn process_item(engine: &Engine, item: Item) -> Verdict {
    let key = engine.key_of(&item);
    let mut current = item;
    let mut patience = 0;
    let mut conflicts = 0;
    while conflicts <= engine.max_conflict_retries {
        let change = match engine.transform(&key, &current) {
            Ok(change) => change,
            Err(error) => return engine.fail(&key, &error),
        };
        if change == Change::Skip {
            return engine.count(Verdict::Skipped, 1);
        }
        if engine.dry_run {
            engine.sample(&key, &current, &change);
            return engine.count(Verdict::Modified, 1);
        }
        match write_guarded(engine, &key, &current, &change).await {
            Ok(()) => return engine.count(Verdict::Modified, 1),
            Err(WriteError::Failed(error)) => return engine.fail(&key, &error),
            Err(WriteError::Transient(error, _)) if patience < PATIENCE_ROUNDS => {
                patience += 1;
                engine.meter.retries.fetch_add(1, Relaxed);
                tracing::debug!("write of {} still failing after the SDK's retries, waiting: {error}", key_text(&key));
                pause(patience).await;
            }
            Err(WriteError::Transient(error, _)) => return engine.fail(&key, &error),
            Err(WriteError::Conflict) => {
                conflicts += 1;
                let landed = change.apply(&current);
                match engine.scan.reread(&engine.client, &key).await {
                    // Our own earlier attempt landed (its answer was lost and the SDK retried):
                    // the item is exactly what we wrote. Not a conflict.
                    Ok(Some(fresh)) if Some(&fresh) == landed.as_ref() => return engine.count(Verdict::Modified, 1),
                    Ok(None) if landed.is_none() => return engine.count(Verdict::Modified, 1),
                    Ok(Some(fresh)) => {
                        engine.meter.conflicts.fetch_add(1, Relaxed);
                        current = fresh;
                    }
                    // Deleted by the application meanwhile: nothing left to migrate.
                    Ok(None) => return engine.count(Verdict::Skipped, 1),
                    Err(error) => return engine.fail(&key, &error),
                }
            }
        }
    }
    let message = format!("still changing after {} re-reads; run again later", engine.max_conflict_retries);
    engine.fail(&key, &message)
}

/// One guarded write, paced by the write-capacity limiter and charged with what it consumed.
async fn write_guarded(engine: &Engine, key: &Item, read: &Item, change: &Change) -> Result<(), WriteError> {
    let change = change.as_update(read, &engine.key_names);
    let change = change.as_ref();
    let e = Expressions::build(change, read, &engine.guard, &engine.key_names).map_err(WriteError::Failed)?;
    let names = Some(e.names.into_iter().collect());
    let values = (!e.values.is_empty()).then(|| e.values.into_iter().collect());
    let client = &engine.client;
    let ticket = engine.rate.write().await;
    let measure = ticket.return_consumed_capacity();
    let consumed = |c: Option<ConsumedCapacity>| c.and_then(|c| c.capacity_units);
    let result = match change {
        Change::Update { .. } => client
            .update_item()
            .table_name(&engine.table)
            .set_key(Some(key.clone()))
            .set_update_expression(e.update)
            .condition_expression(e.condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .set_return_consumed_capacity(measure)
            .send()
            .await
            .map(|output| consumed(output.consumed_capacity))
            .map_err(classify),
        Change::Delete => client
            .delete_item()
            .table_name(&engine.table)
            .set_key(Some(key.clone()))
            .condition_expression(e.condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .set_return_consumed_capacity(measure)
            .send()
            .await
            .map(|output| consumed(output.consumed_capacity))
            .map_err(classify),
        // `as_update` has turned a Put into an Update.
        Change::Put(_) => Err(WriteError::Failed("internal error: a Put reached the guarded writer".into())),
        Change::Skip => Ok(Some(0.0)),
    };
    settle(engine, ticket, &result);
    result.map(drop)
}

/// Charges the limiter with what a write consumed: DynamoDB's figure if the write asked for it,
/// nothing if it was throttled, the usual cost if the condition failed (a failed conditional write
/// is still charged, but its answer does not say how much) or the write did not ask.
fn settle(engine: &Engine, ticket: WriteTicket, result: &Result<Option<f64>, WriteError>) {
    let spent = match result {
        Ok(units) => *units,
        Err(WriteError::Transient(_, true)) => {
            engine.rate.throttled.fetch_add(1, Relaxed);
            Some(0.0)
        }
        Err(WriteError::Conflict) => None,
        Err(_) => Some(0.0),
    };
    engine.rate.wrote(ticket, spent);
}

fn classify<E>(error: SdkError<E, HttpResponse>) -> WriteError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if error.code() == Some("ConditionalCheckFailedException") {
        WriteError::Conflict
    } else if is_transient(&error) {
        let throttled = is_throttling(&error);
        WriteError::Transient(DisplayErrorContext(error).to_string(), throttled)
    } else {
        WriteError::Failed(DisplayErrorContext(error).to_string())
    }
}

/// At most this many items per BatchWriteItem call (DynamoDB's limit).
const BATCH_LIMIT: usize = 25;
/// Rounds of resending unprocessed items before they count as failed. Unprocessed items are
/// DynamoDB's way of saying "slower": they must wait (backoff up to 5 s a round), not fail.
const MAX_UNPROCESSED_ROUNDS: u32 = 30;

/// Transforms a page's items and sends each batch of 25 as soon as it is full, so the writes start
/// with the first items of the page and at most one partial batch is held back.
async fn process_batch(engine: &Arc<Engine>, items: Vec<Item>) -> Counts {
    let mut counts = Counts::default();
    let mut tasks = JoinSet::new();
    let mut batch = Batch::default();
    for item in items {
        engine.rate.item().await;
        if let Some((key, request)) = batch_request(engine, item, &mut counts) {
            batch.keys.push(key);
            batch.requests.push(request);
        }
        if batch.requests.len() == BATCH_LIMIT
            && !send_batch(engine, &mut tasks, std::mem::take(&mut batch), &mut counts).await
        {
            break;
        }
    }
    if !batch.requests.is_empty() {
        send_batch(engine, &mut tasks, batch, &mut counts).await;
    }
    while let Some(joined) = tasks.join_next().await {
        add_batch(&mut counts, joined);
    }
    counts
}

/// The write for one item in batch mode, with its key; None when the item is skipped, failed or
/// only counted (dry run).
fn batch_request(engine: &Engine, item: Item, counts: &mut Counts) -> Option<(Item, WriteRequest)> {
    let key = engine.key_of(&item);
    let change = match engine.transform(&key, &item) {
        Ok(change) => change,
        Err(error) => {
            counts.tally(engine.fail(&key, &error), 1);
            return None;
        }
    };
    if change == Change::Skip {
        counts.tally(engine.count(Verdict::Skipped, 1), 1);
        return None;
    }
    if engine.dry_run {
        engine.sample(&key, &item, &change);
        counts.tally(engine.count(Verdict::Modified, 1), 1);
        return None;
    }
    match to_write_request(&key, change.apply_to(item)) {
        Ok(request) => Some((key, request)),
        Err(error) => {
            counts.tally(engine.fail(&key, &error), 1);
            None
        }
    }
}

/// Sends a batch in its own task once a write slot is free; false when the run is stopping.
async fn send_batch(engine: &Arc<Engine>, tasks: &mut JoinSet<Counts>, batch: Batch, counts: &mut Counts) -> bool {
    let Ok(permit) = engine.writes.clone().acquire_owned().await else { return false };
    while let Some(joined) = tasks.try_join_next() {
        add_batch(counts, joined);
    }
    let engine = engine.clone();
    tasks.spawn(async move {
        let _permit = permit;
        write_batch(&engine, batch).await
    });
    true
}

fn add_batch(counts: &mut Counts, joined: Result<Counts, tokio::task::JoinError>) {
    match joined {
        Ok(batch) => counts.add(&batch),
        Err(error) => tracing::error!("a batch task failed: {error}"),
    }
}

fn to_write_request(key: &Item, after: Option<Item>) -> Result<WriteRequest, String> {
    let request = match after {
        Some(item) => {
            PutRequest::builder().set_item(Some(item)).build().map(|p| WriteRequest::builder().put_request(p))
        }
        None => DeleteRequest::builder()
            .set_key(Some(key.clone()))
            .build()
            .map(|d| WriteRequest::builder().delete_request(d)),
    };
    request.map(|r| r.build()).map_err(|e| format!("cannot build the write: {e}"))
}

impl Engine {
    /// The key a batch write request is for.
    fn key_of_request(&self, request: &WriteRequest) -> Item {
        match (&request.put_request, &request.delete_request) {
            (Some(put), _) => self.key_of(&put.item),
            (None, Some(delete)) => delete.key.clone(),
            (None, None) => Item::new(),
        }
    }
}

/// One BatchWriteItem's worth of items: the requests, and their keys (the requests go to the SDK,
/// and the keys are what is left to finish the items if the batch fails).
#[derive(Default)]
struct Batch {
    keys: Vec<Item>,
    requests: Vec<WriteRequest>,
}

/// Writes up to 25 items, resending unprocessed ones with backoff. A batch still failing after the
/// SDK's retries, or rejected by DynamoDB (a validation error in one item), is finished item by item.
async fn write_batch(engine: &Engine, batch: Batch) -> Counts {
    let mut counts = Counts::default();
    let Batch { mut keys, requests: mut pending } = batch;
    for round in 0..=MAX_UNPROCESSED_ROUNDS {
        let ticket = engine.rate.write().await;
        let sent = pending.len();
        let request = engine.client.batch_write_item().request_items(&engine.table, pending);
        let result = request.set_return_consumed_capacity(ticket.return_consumed_capacity()).send().await;
        let spent = match &result {
            Ok(output) if output.consumed_capacity.is_some() => {
                Some(output.consumed_capacity().iter().filter_map(|c| c.capacity_units).sum())
            }
            Ok(_) => None,
            Err(_) => Some(0.0),
        };
        engine.rate.wrote(ticket, spent);
        let unprocessed = match result {
            Ok(output) => output.unprocessed_items.and_then(|mut u| u.remove(&engine.table)).unwrap_or_default(),
            Err(error) => {
                if is_throttling(&error) {
                    engine.rate.throttled.fetch_add(1, Relaxed);
                }
                tracing::debug!("batch failed, finishing its items one by one: {}", DisplayErrorContext(&error));
                // Boxed: the single-item path is a large future, and inlining it in every batch's
                // task made each spawn copy it (a tenth of batch mode's client CPU).
                counts.add(&Box::pin(finish_one_by_one(engine, keys)).await);
                return counts;
            }
        };
        let written = (sent - unprocessed.len()) as u64;
        counts.tally(engine.count(Verdict::Modified, written), written);
        if unprocessed.is_empty() {
            return counts;
        }
        // Unprocessed items are DynamoDB saying "too fast": the same signal as throttling. They
        // come back whole, so they are what is left to send.
        engine.rate.throttled.fetch_add(1, Relaxed);
        keys = unprocessed.iter().map(|request| engine.key_of_request(request)).collect();
        pending = unprocessed;
        if round < MAX_UNPROCESSED_ROUNDS {
            engine.meter.retries.fetch_add(pending.len() as u64, Relaxed);
            // Unprocessed items: up to 50 ms × 2^round, at most 5 s.
            tokio::time::sleep(jittered_backoff(Duration::from_millis(50), round, Duration::from_secs(5))).await;
        }
    }
    for key in keys {
        let message = format!("still unprocessed after {MAX_UNPROCESSED_ROUNDS} rounds of BatchWriteItem");
        counts.tally(engine.fail(&key, &message), 1);
    }
    counts
}

/// Finishes the items of a failed batch one at a time: each is read again (consistently) and goes
/// through the guarded single-item path, with its own patience, conflict handling and failure
/// records. Whether or not part of the batch landed, every item ends migrated, or recorded as
/// failed; an item already migrated is skipped, one deleted meanwhile has nothing left to do.
/// Keeping only the keys spares every batch a copy of its items for this rare path.
async fn finish_one_by_one(engine: &Engine, keys: Vec<Item>) -> Counts {
    let mut counts = Counts::default();
    for key in keys {
        let verdict = match engine.scan.reread(&engine.client, &key).await {
            Ok(Some(item)) => process_item(engine, item).await,
            Ok(None) => engine.count(Verdict::Skipped, 1),
            Err(error) => engine.fail(&key, &error),
        };
        counts.tally(verdict, 1);
    }
    counts
}
