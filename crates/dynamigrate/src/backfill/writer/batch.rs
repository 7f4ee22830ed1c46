//! Batch mode: `BatchWriteItem`, 25 whole items a call, sent as soon as 25 items are transformed.
//! Unprocessed items are resent with backoff; a batch that still fails after the SDK's retries, or
//! that DynamoDB rejects, is finished item by item through the guarded path.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput;
use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};
use tokio::task::JoinSet;

use super::guarded::process_item;
use super::Writer;
use crate::aws::{is_throttling, is_transient, jittered_backoff};
use crate::backfill::change::Change;
use crate::backfill::reread::Reread;
use crate::backfill::sink::{PageSink, Tally, Verdict};
use crate::backfill::value::Item;
use crate::backfill::window::Answer;

/// At most this many items per BatchWriteItem call (DynamoDB's limit).
pub(crate) const BATCH_LIMIT: usize = 25;
/// Rounds of resending unprocessed items before they count as failed. Unprocessed items are
/// DynamoDB's way of saying "slower": they must wait (backoff up to 5 s a round), not fail.
const MAX_UNPROCESSED_ROUNDS: u32 = 30;

/// The batch-mode sink.
pub(crate) struct BatchWriter(pub Arc<Writer>);

/// One BatchWriteItem's worth of items: the requests, and their keys (the requests go to the SDK,
/// and the keys are what is left to finish the items if the batch fails).
#[derive(Default)]
struct Batch {
    keys: Vec<Item>,
    requests: Vec<WriteRequest>,
}

#[async_trait]
impl PageSink for BatchWriter {
    /// Transforms a page's items and sends each batch of 25 as soon as it is full, so the writes
    /// start with the first items of the page and at most one partial batch is held back.
    async fn page(&self, items: Vec<Item>, tally: &Arc<Tally>) {
        let writer = &self.0;
        let mut tasks = JoinSet::new();
        let mut batch = Batch::default();
        for item in items {
            // Interrupted: what is left of the page, the partial batch included, stays unsettled
            // and the pipeline does not checkpoint the page.
            if !writer.rate.item().await {
                return join_all(tasks).await;
            }
            if let Some((key, request)) = batch_request(writer, item, tally) {
                batch.keys.push(key);
                batch.requests.push(request);
            }
            if batch.requests.len() == BATCH_LIMIT && !send(writer, &mut tasks, std::mem::take(&mut batch), tally).await
            {
                break;
            }
        }
        if !batch.requests.is_empty() {
            send(writer, &mut tasks, batch, tally).await;
        }
        join_all(tasks).await;
    }
}

async fn join_all(mut tasks: JoinSet<()>) {
    while let Some(result) = tasks.join_next().await {
        reaped(result);
    }
}

/// The write for one item in batch mode, with its key; None when the item is skipped, failed or
/// only counted (dry run).
fn batch_request(writer: &Writer, item: Item, tally: &Tally) -> Option<(Item, WriteRequest)> {
    let key = writer.key_of(&item);
    let change = match writer.transform(&key, &item) {
        Ok(change) => change,
        Err(error) => {
            writer.fail(&key, &error, tally);
            return None;
        }
    };
    if change == Change::Skip {
        tally.record(Verdict::Skipped, 1);
        return None;
    }
    if writer.dry_run {
        writer.would_write(&key, &item, &change, tally);
        return None;
    }
    match to_write_request(&key, change.apply_to(item)) {
        Ok(request) => Some((key, request)),
        Err(error) => {
            writer.fail(&key, &error, tally);
            None
        }
    }
}

/// Sends a batch in its own task once a write slot is free; false when the run is stopping.
async fn send(writer: &Arc<Writer>, tasks: &mut JoinSet<()>, batch: Batch, tally: &Arc<Tally>) -> bool {
    let Some(slot) = writer.window.slot().await else { return false };
    while let Some(result) = tasks.try_join_next() {
        reaped(result);
    }
    let (writer, tally) = (writer.clone(), tally.clone());
    tasks.spawn(async move {
        let _slot = slot;
        write_batch(&writer, batch, &tally).await;
    });
    true
}

fn reaped(result: Result<(), tokio::task::JoinError>) {
    if let Err(error) = result {
        tracing::error!("a batch task failed (a bug in dynamigrate): {error}");
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

/// The key a batch write request is for.
fn key_of_request(writer: &Writer, request: &WriteRequest) -> Item {
    match (&request.put_request, &request.delete_request) {
        (Some(put), _) => writer.key_of(&put.item),
        (None, Some(delete)) => delete.key.clone(),
        (None, None) => Item::new(),
    }
}

/// Writes up to 25 items, resending unprocessed ones with backoff. A batch still failing after the
/// SDK's retries, or rejected by DynamoDB (a validation error in one item), is finished item by item.
async fn write_batch(writer: &Writer, batch: Batch, tally: &Tally) {
    let Batch { mut keys, requests: mut pending } = batch;
    for round in 0..=MAX_UNPROCESSED_ROUNDS {
        // Stopping: the batch's items stay unsettled, for the next run.
        let Some(ticket) = writer.rate.write().await else { return };
        let sent = pending.len();
        let request = writer.client.batch_write_item().request_items(&writer.table, pending);
        let sent_at = Instant::now();
        let result = request.set_return_consumed_capacity(ticket.return_consumed_capacity()).send().await;
        writer.window.answered(sent_at, batch_answer(&result));
        let spent = match &result {
            Ok(output) if output.consumed_capacity.is_some() => {
                Some(output.consumed_capacity().iter().filter_map(|c| c.capacity_units).sum())
            }
            Ok(_) => None,
            Err(_) => Some(0.0),
        };
        writer.rate.wrote(ticket, spent);
        let unprocessed = match result {
            Ok(output) => output.unprocessed_items.and_then(|mut u| u.remove(&writer.table)).unwrap_or_default(),
            Err(error) => {
                if is_throttling(&error) {
                    writer.rate.throttled.fetch_add(1, Relaxed);
                }
                tracing::debug!("batch failed, finishing its items one by one: {}", DisplayErrorContext(&error));
                // Boxed: the single-item path is a large future, and inlining it in every batch's
                // task made each spawn copy it (a tenth of batch mode's client CPU).
                Box::pin(finish_one_by_one(writer, keys, tally)).await;
                return;
            }
        };
        tally.record(Verdict::Modified, (sent - unprocessed.len()) as u64);
        if unprocessed.is_empty() {
            return;
        }
        // Unprocessed items are DynamoDB saying "too fast": the same signal as throttling. They
        // come back whole, so they are what is left to send.
        writer.rate.throttled.fetch_add(1, Relaxed);
        keys = unprocessed.iter().map(|request| key_of_request(writer, request)).collect();
        pending = unprocessed;
        if round < MAX_UNPROCESSED_ROUNDS {
            writer.retried(pending.len() as u64);
            // Unprocessed items: up to 50 ms × 2^round, at most 5 s.
            let backoff = jittered_backoff(Duration::from_millis(50), round, Duration::from_secs(5));
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = writer.interrupt.cancelled() => return,
            }
        }
    }
    for key in keys {
        let message = format!("still unprocessed after {MAX_UNPROCESSED_ROUNDS} rounds of BatchWriteItem");
        writer.fail(&key, &message, tally);
    }
}

/// Finishes the items of a failed batch one at a time: each is read again (consistently) and goes
/// through the guarded single-item path, with its own patience, conflict handling and failure
/// records. Whether or not part of the batch landed, every item ends migrated, or recorded as
/// failed; an item already migrated is skipped, one deleted meanwhile has nothing left to do.
/// Keeping only the keys spares every batch a copy of its items for this rare path.
async fn finish_one_by_one(writer: &Writer, keys: Vec<Item>, tally: &Tally) {
    for key in keys {
        match writer.reads.reread(&writer.client, &key, &writer.interrupt).await {
            Ok(Reread::Selected(item)) => _ = process_item(writer, item, tally).await,
            // Out of the selection (our batch landed and moved it, or the application did) or gone.
            Ok(Reread::Left(_) | Reread::Gone) => _ = tally.record(Verdict::Skipped, 1),
            Err(_) if writer.interrupt.is_cancelled() => return,
            Err(error) => _ = writer.fail(&key, &error, tally),
        };
    }
}

/// How a BatchWriteItem answered, for the window: unprocessed items are the table asking for less.
fn batch_answer<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(
    result: &Result<BatchWriteItemOutput, SdkError<E, HttpResponse>>,
) -> Answer {
    match result {
        Ok(output) if output.unprocessed_items.as_ref().is_some_and(|u| u.values().any(|v| !v.is_empty())) => {
            Answer::Throttled
        }
        Ok(_) => Answer::Ok,
        Err(error) if is_throttling(error) => Answer::Throttled,
        Err(error) if is_transient(error) => Answer::Error,
        Err(_) => Answer::Ok,
    }
}
