//! Per-segment checkpoints in the history table: where each scan segment stopped and what it
//! counted. Saved after every page once that page's writes are done, so a killed run looks at most
//! one page per segment twice and never skips an item. Writes are fenced on holding the lease.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};

use super::value::Item;
use crate::clock::{now_ms, rfc3339};
use crate::history::{build_error, migration_pk, HistoryStore};
use crate::id::MigrationId;
use crate::Error;

/// One segment's position and counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoint {
    pub segment: u32,
    pub total_segments: u32,
    /// Where the next page starts (Scan `ExclusiveStartKey`); None at the start or when done.
    pub last_key: Option<Item>,
    pub done: bool,
    pub counts: Counts,
}

/// What a segment has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub scanned: u64,
    pub processed: u64,
    pub modified: u64,
    pub skipped: u64,
    pub failed: u64,
}

impl Counts {
    pub fn add(&mut self, other: &Counts) {
        self.scanned += other.scanned;
        self.processed += other.processed;
        self.modified += other.modified;
        self.skipped += other.skipped;
        self.failed += other.failed;
    }
}

/// The checkpoints of one backfill (one migration, one direction, one backfill name).
#[derive(Clone)]
pub struct CheckpointStore {
    history: HistoryStore,
    pk: String,
    /// `CHECKPOINT#<direction>#<name>#`
    prefix: String,
    run_id: String,
}

impl CheckpointStore {
    pub fn new(history: HistoryStore, migration: &MigrationId, scope: &str, run_id: String) -> Self {
        Self { history, pk: migration_pk(migration), prefix: format!("CHECKPOINT#{scope}#"), run_id }
    }

    pub async fn load(&self) -> Result<Vec<Checkpoint>, Error> {
        let mut pages = self
            .history
            .client()
            .query()
            .table_name(self.history.table())
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", AttributeValue::S(self.pk.clone()))
            .expression_attribute_values(":prefix", AttributeValue::S(self.prefix.clone()))
            .into_paginator()
            .items()
            .send();
        let mut checkpoints = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| Error::aws("reading backfill checkpoints", e))?;
            checkpoints.push(decode(&item).ok_or_else(|| {
                Error::Config(format!("unreadable checkpoint in {}: {item:?}", self.history.table()))
            })?);
        }
        Ok(checkpoints)
    }

    pub async fn save(&self, checkpoint: &Checkpoint) -> Result<(), Error> {
        let item = encode(&self.pk, &self.sort_key(checkpoint.segment), checkpoint, &self.run_id);
        let put = Put::builder()
            .table_name(self.history.table())
            .set_item(Some(item))
            .build()
            .map_err(|e| build_error(&e))?;
        self.history
            .fenced_write(TransactWriteItem::builder().put(put).build(), &self.run_id, "saving a checkpoint")
            .await
    }

    /// Deletes the checkpoints once the backfill has finished, so a later run starts afresh.
    pub async fn clear(&self, segments: impl IntoIterator<Item = u32>) -> Result<(), Error> {
        for segment in segments {
            let delete = Delete::builder()
                .table_name(self.history.table())
                .key("pk", AttributeValue::S(self.pk.clone()))
                .key("sk", AttributeValue::S(self.sort_key(segment)))
                .build()
                .map_err(|e| build_error(&e))?;
            self.history
                .fenced_write(
                    TransactWriteItem::builder().delete(delete).build(),
                    &self.run_id,
                    "clearing a checkpoint",
                )
                .await?;
        }
        Ok(())
    }

    fn sort_key(&self, segment: u32) -> String {
        format!("{}{segment:05}", self.prefix)
    }
}

fn encode(pk: &str, sk: &str, c: &Checkpoint, run_id: &str) -> Item {
    let n = |v: u64| AttributeValue::N(v.to_string());
    let mut item = HashMap::from([
        ("pk".to_string(), AttributeValue::S(pk.to_string())),
        ("sk".to_string(), AttributeValue::S(sk.to_string())),
        ("entity".to_string(), AttributeValue::S("checkpoint".into())),
        ("segment".to_string(), n(c.segment.into())),
        ("total_segments".to_string(), n(c.total_segments.into())),
        ("done".to_string(), AttributeValue::Bool(c.done)),
        ("scanned".to_string(), n(c.counts.scanned)),
        ("processed".to_string(), n(c.counts.processed)),
        ("modified".to_string(), n(c.counts.modified)),
        ("skipped".to_string(), n(c.counts.skipped)),
        ("failed".to_string(), n(c.counts.failed)),
        ("run_id".to_string(), AttributeValue::S(run_id.to_string())),
        ("updated_at".to_string(), AttributeValue::S(rfc3339(now_ms()))),
    ]);
    // The key is stored as the map DynamoDB gave us, so its types survive exactly.
    if let Some(key) = &c.last_key {
        item.insert("last_key".to_string(), AttributeValue::M(key.clone()));
    }
    item
}

fn decode(item: &Item) -> Option<Checkpoint> {
    let n = |name: &str| match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse::<u64>().ok(),
        _ => None,
    };
    Some(Checkpoint {
        segment: u32::try_from(n("segment")?).ok()?,
        total_segments: u32::try_from(n("total_segments")?).ok()?,
        last_key: match item.get("last_key") {
            Some(AttributeValue::M(key)) => Some(key.clone()),
            _ => None,
        },
        done: matches!(item.get("done"), Some(AttributeValue::Bool(true))),
        counts: Counts {
            scanned: n("scanned")?,
            processed: n("processed")?,
            modified: n("modified")?,
            skipped: n("skipped")?,
            failed: n("failed")?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_round_trips_with_its_typed_key() {
        let checkpoint = Checkpoint {
            segment: 3,
            total_segments: 8,
            last_key: Some(Item::from([
                ("pk".to_string(), AttributeValue::S("ITEM#9".into())),
                ("n".to_string(), AttributeValue::N("12345678901234567890123456789012345678".into())),
            ])),
            done: false,
            counts: Counts { scanned: 10, processed: 9, modified: 5, skipped: 3, failed: 1 },
        };
        let item = encode("MIGRATION#x", "CHECKPOINT#up#main#00003", &checkpoint, "run");
        assert_eq!(decode(&item), Some(checkpoint));
    }
}
