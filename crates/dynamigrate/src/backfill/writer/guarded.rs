//! Update mode: one guarded conditional write per changed item. On a conflict the item is read
//! again (consistently) and, if still in the selection, transformed again and written again, a
//! bounded number of times.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::ConsumedCapacity;
use tokio::task::JoinSet;

use super::{joined, Writer};
use crate::aws::{is_throttling, is_transient, patiently};
use crate::backfill::change::{Change, Expressions};
use crate::backfill::rate::WriteTicket;
use crate::backfill::reread::Reread;
use crate::backfill::sink::{PageSink, Tally, Verdict};
use crate::backfill::value::{key_text, Item};
use crate::backfill::window::Answer;

/// The update-mode sink.
pub(crate) struct GuardedWriter(pub Arc<Writer>);

#[async_trait]
impl PageSink for GuardedWriter {
    async fn page(&self, items: Vec<Item>, tally: &Arc<Tally>) {
        let writer = &self.0;
        let mut tasks = JoinSet::new();
        for item in items {
            // Interrupted: the rest of the page is left for the next run (the pipeline sees it unsettled).
            if !writer.rate.item().await {
                break;
            }
            let Some(slot) = writer.window.slot().await else { break };
            // Reap finished tasks as we go: a finished task's memory is held until it is joined, and
            // a page holds a thousand items. This keeps memory proportional to the concurrency.
            while let Some(result) = tasks.try_join_next() {
                joined(result, tally);
            }
            let (writer, tally) = (writer.clone(), tally.clone());
            tasks.spawn(async move {
                let _slot = slot;
                process_item(&writer, item, &tally).await
            });
        }
        while let Some(result) = tasks.join_next().await {
            joined(result, tally);
        }
    }
}

pub(super) enum WriteError {
    /// The guard failed: the item changed since it was read.
    Conflict,
    /// The run is stopping: the write was not sent.
    Stopped,
    /// Throttled (true) or 5xx, timed out or disconnected, even after the SDK's retries: wait and
    /// try again.
    Transient(String, bool),
    Failed(String),
}

/// Transform, guarded write; on a conflict re-read and transform again, a bounded number of times.
/// None when the run stopped before the item was settled (a write not sent, a wait cut short): the
/// item is not tallied, so its page is not checkpointed, and the next run sees it again.
pub(super) async fn process_item(writer: &Writer, item: Item, tally: &Tally) -> Option<Verdict> {
    let key = writer.key_of(&item);
    let mut current = item;
    for _ in 0..=writer.max_conflict_retries {
        let change = match writer.transform(&key, &current) {
            Ok(change) => change,
            Err(error) => return Some(writer.fail(&key, &error, tally)),
        };
        if change == Change::Skip {
            return Some(tally.record(Verdict::Skipped, 1));
        }
        if writer.dry_run {
            return Some(writer.would_write(&key, &current, &change, tally));
        }
        let write = || write_guarded(writer, &key, &current, &change);
        let transient = |e: &WriteError| matches!(e, WriteError::Transient(..));
        let waiting = |_, e: &WriteError| {
            writer.retried(1);
            if let WriteError::Transient(error, _) = e {
                tracing::debug!("write of {} still failing after the SDK's retries, waiting: {error}", key_text(&key));
            }
        };
        match patiently(write, transient, waiting, Some(&writer.interrupt)).await {
            Ok(()) => return Some(tally.record(Verdict::Modified, 1)),
            Err(WriteError::Stopped) => return None,
            Err(WriteError::Transient(..)) if writer.interrupt.is_cancelled() => return None,
            Err(WriteError::Failed(error) | WriteError::Transient(error, _)) => {
                return Some(writer.fail(&key, &error, tally))
            }
            Err(WriteError::Conflict) => {
                let landed = change.apply(&current);
                match writer.reads.reread(&writer.client, &key, &writer.interrupt).await {
                    // Our own earlier attempt landed (its answer was lost and the SDK retried):
                    // the item is exactly what we wrote. Not a conflict.
                    Ok(Reread::Selected(fresh) | Reread::Left(fresh)) if Some(&fresh) == landed.as_ref() => {
                        return Some(tally.record(Verdict::Modified, 1))
                    }
                    Ok(Reread::Gone) if landed.is_none() => return Some(tally.record(Verdict::Modified, 1)),
                    Ok(Reread::Selected(fresh)) => {
                        writer.meter.conflicts.fetch_add(1, Relaxed);
                        current = fresh;
                    }
                    // Moved out of the selection meanwhile (upgraded by the application, say): the
                    // transform is not for it any more.
                    Ok(Reread::Left(_)) => {
                        writer.meter.conflicts.fetch_add(1, Relaxed);
                        return Some(tally.record(Verdict::Skipped, 1));
                    }
                    // Deleted by the application meanwhile: nothing left to migrate.
                    Ok(Reread::Gone) => return Some(tally.record(Verdict::Skipped, 1)),
                    Err(_) if writer.interrupt.is_cancelled() => return None,
                    Err(error) => return Some(writer.fail(&key, &error, tally)),
                }
            }
        }
    }
    let message = format!("still changing after {} re-reads; run again later", writer.max_conflict_retries);
    Some(writer.fail(&key, &message, tally))
}

/// One guarded write, paced by the write-capacity limiter and charged with what it consumed.
async fn write_guarded(writer: &Writer, key: &Item, read: &Item, change: &Change) -> Result<(), WriteError> {
    let change = change.as_update(read, &writer.key_names);
    let change = change.as_ref();
    let e = Expressions::build(change, read, &writer.guard, &writer.key_names).map_err(WriteError::Failed)?;
    let names = Some(e.names.into_iter().collect());
    let values = (!e.values.is_empty()).then(|| e.values.into_iter().collect());
    let client = &writer.client;
    let Some(ticket) = writer.rate.write().await else { return Err(WriteError::Stopped) };
    let sent = Instant::now();
    let measure = ticket.return_consumed_capacity();
    let consumed = |c: Option<ConsumedCapacity>| c.and_then(|c| c.capacity_units);
    let result = match change {
        Change::Update { .. } => client
            .update_item()
            .table_name(&writer.table)
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
            .table_name(&writer.table)
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
    if matches!(change, Change::Update { .. } | Change::Delete) {
        writer.window.answered(sent, answer(&result));
    }
    settle(writer, ticket, &result);
    result.map(drop)
}

/// Charges the limiter with what a write consumed: DynamoDB's figure if the write asked for it,
/// nothing if it was throttled, the usual cost if the condition failed (a failed conditional write
/// is still charged, but its answer does not say how much) or the write did not ask.
fn settle(writer: &Writer, ticket: WriteTicket, result: &Result<Option<f64>, WriteError>) {
    let spent = match result {
        Ok(units) => *units,
        Err(WriteError::Transient(_, true)) => {
            writer.rate.throttled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Some(0.0)
        }
        Err(WriteError::Conflict) => None,
        Err(WriteError::Stopped | WriteError::Transient(_, false) | WriteError::Failed(_)) => Some(0.0),
    };
    writer.rate.wrote(ticket, spent);
}

/// How a write answered, for the window.
fn answer(result: &Result<Option<f64>, WriteError>) -> Answer {
    match result {
        Err(WriteError::Transient(_, true)) => Answer::Throttled,
        Err(WriteError::Transient(_, false)) => Answer::Error,
        _ => Answer::Ok,
    }
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
