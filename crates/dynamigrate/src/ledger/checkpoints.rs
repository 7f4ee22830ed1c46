//! Per-segment backfill checkpoints: where each scan segment stopped and what it counted. Saved
//! after every page once that page's work is done, so a killed run looks at most one page per
//! segment twice and never skips an item. Writes are fenced on holding the lease.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::keys::{checkpoint_prefix, migration_pk, Entity, ItemKey};
use super::{Fence, Ledger};
use crate::aws::Item;
use crate::clock::{now_ms, rfc3339};
use crate::id::MigrationId;
use crate::Error;

/// The most segments a scan may have (DynamoDB's limit for TotalSegments).
pub const MAX_SEGMENTS: u32 = 1_000_000;

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

/// What a segment (or a whole pass) has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub scanned: u64,
    pub processed: u64,
    pub modified: u64,
    pub skipped: u64,
    pub failed: u64,
}

impl Counts {
    /// Every processed item was modified, skipped or failed, and none was processed unscanned.
    pub fn add_up(&self) -> bool {
        self.modified.checked_add(self.skipped).and_then(|n| n.checked_add(self.failed)) == Some(self.processed)
            && self.processed <= self.scanned
    }

    pub fn add(&mut self, other: &Counts) {
        self.scanned += other.scanned;
        self.processed += other.processed;
        self.modified += other.modified;
        self.skipped += other.skipped;
        self.failed += other.failed;
    }
}

/// A checkpoint as stored. The position is kept as the map DynamoDB gave, so its types survive.
#[derive(Serialize, Deserialize)]
struct CheckpointItem {
    pk: String,
    sk: String,
    entity: String,
    segment: u32,
    total_segments: u32,
    done: bool,
    #[serde(flatten)]
    counts: Counts,
    run_id: String,
    updated_at: String,
}

impl Ledger {
    /// Every checkpoint of every backfill of a migration, validated as a resume would: run before the
    /// migration's attempt is recorded, so a bad checkpoint is refused before anything is written.
    pub async fn check_checkpoints(&self, migration: &MigrationId, fence: &Fence) -> Result<(), Error> {
        let items = self.query(&migration_pk(migration), CHECKPOINTS).await?;
        let mut by_scope: std::collections::BTreeMap<String, Vec<Item>> = Default::default();
        for item in items {
            let key = ItemKey::of(&item);
            let scope = key.sk.strip_prefix(CHECKPOINTS).and_then(|rest| rest.rsplit_once('#')).map(|(scope, _)| scope);
            let Some(scope) = scope else {
                return Err(self.corrupt(key, "its sort key names no backfill"));
            };
            by_scope.entry(scope.to_string()).or_default().push(item);
        }
        for (scope, items) in by_scope {
            CheckpointStore::new(self.clone(), migration.clone(), scope, fence.clone()).validate(items)?;
        }
        Ok(())
    }
}

/// The sort-key prefix of every checkpoint.
const CHECKPOINTS: &str = "CHECKPOINT#";

/// The checkpoints of one backfill (one migration, one direction, one backfill name).
#[derive(Clone)]
pub struct CheckpointStore {
    ledger: Ledger,
    migration: MigrationId,
    /// `<direction>#<name>`
    scope: String,
    fence: Fence,
}

impl CheckpointStore {
    pub fn new(ledger: Ledger, migration: MigrationId, scope: impl Into<String>, fence: Fence) -> Self {
        Self { ledger, migration, scope: scope.into(), fence }
    }

    /// The saved checkpoints, each validated: a position the table never gave, or segments that
    /// disagree on how the table was divided, would make a resumed scan skip or repeat items.
    pub async fn load(&self) -> Result<Vec<Checkpoint>, Error> {
        let items = self.ledger.query(&migration_pk(&self.migration), &checkpoint_prefix(&self.scope)).await?;
        self.validate(items)
    }

    fn validate(&self, items: Vec<Item>) -> Result<Vec<Checkpoint>, Error> {
        let checkpoints: Vec<Checkpoint> = items.into_iter().map(|item| self.decode(item)).collect::<Result<_, _>>()?;
        if let Some(first) = checkpoints.first() {
            if let Some(odd) = checkpoints.iter().find(|c| c.total_segments != first.total_segments) {
                let key = ItemKey::checkpoint(&self.migration, &self.scope, odd.segment);
                let problem = format!(
                    "it divides the table into {} segments, another checkpoint into {}",
                    odd.total_segments, first.total_segments
                );
                return Err(self.ledger.corrupt(key, problem));
            }
        }
        Ok(checkpoints)
    }

    /// Refuses checkpoints whose position does not fit the table being scanned: a saved position
    /// holds exactly the table's key attributes, or a resumed scan would start where DynamoDB never
    /// stopped (and skip or repeat items).
    pub fn check_positions(&self, checkpoints: &[Checkpoint], key_names: &[String]) -> Result<(), Error> {
        let mut expected: Vec<&str> = key_names.iter().map(String::as_str).collect();
        expected.sort_unstable();
        for checkpoint in checkpoints {
            let Some(position) = &checkpoint.last_key else { continue };
            let mut names: Vec<&str> = position.keys().map(String::as_str).collect();
            names.sort_unstable();
            if names != expected {
                let key = ItemKey::checkpoint(&self.migration, &self.scope, checkpoint.segment);
                let problem = format!("its position holds {names:?}, but the table's key is {expected:?}");
                return Err(self.ledger.corrupt(key, problem));
            }
        }
        Ok(())
    }

    fn decode(&self, mut item: Item) -> Result<Checkpoint, Error> {
        let key = ItemKey::of(&item);
        let last_key = match item.remove("last_key") {
            Some(AttributeValue::M(position)) => Some(position),
            None => None,
            Some(_) => return Err(self.ledger.corrupt(key, "last_key is not a map")),
        };
        let stored: CheckpointItem = self.ledger.decode(Entity::Checkpoint, item)?;
        let problem = if !(1..=MAX_SEGMENTS).contains(&stored.total_segments) {
            Some(format!("total_segments is {}, not between 1 and {MAX_SEGMENTS}", stored.total_segments))
        } else if stored.segment >= stored.total_segments {
            Some(format!("segment {} is not below total_segments {}", stored.segment, stored.total_segments))
        } else if key != ItemKey::checkpoint(&self.migration, &self.scope, stored.segment) {
            Some(format!("it holds segment {}", stored.segment))
        } else if !stored.counts.add_up() {
            Some(format!("its counts do not add up ({:?})", stored.counts))
        } else if stored.done && last_key.is_some() {
            Some("it is done yet holds a position".to_string())
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(self.ledger.corrupt(key, problem));
        }
        Ok(Checkpoint {
            segment: stored.segment,
            total_segments: stored.total_segments,
            last_key,
            done: stored.done,
            counts: stored.counts,
        })
    }

    pub async fn save(&self, checkpoint: &Checkpoint) -> Result<(), Error> {
        let item = self.encode(checkpoint)?;
        let put =
            Put::builder().table_name(self.ledger.table()).set_item(Some(item)).build().map_err(Error::request)?;
        self.ledger
            .fenced_write(vec![TransactWriteItem::builder().put(put).build()], &self.fence, "saving a checkpoint")
            .await
    }

    fn encode(&self, c: &Checkpoint) -> Result<Item, Error> {
        let key = ItemKey::checkpoint(&self.migration, &self.scope, c.segment);
        let stored = CheckpointItem {
            pk: key.pk,
            sk: key.sk,
            entity: Entity::Checkpoint.as_str().into(),
            segment: c.segment,
            total_segments: c.total_segments,
            done: c.done,
            counts: c.counts,
            run_id: self.fence.token().to_string(),
            updated_at: rfc3339(now_ms()),
        };
        let mut item: HashMap<String, AttributeValue> =
            serde_dynamo::aws_sdk_dynamodb_1::to_item(stored).map_err(Error::request)?;
        if let Some(position) = &c.last_key {
            item.insert("last_key".to_string(), AttributeValue::M(position.clone()));
        }
        Ok(item)
    }

    /// Deletes the checkpoints once the backfill has finished, so a later run starts afresh: a few
    /// segments to a transaction, as one delete each would cost a round trip a segment at the end of
    /// every run.
    pub async fn clear(&self, segments: impl IntoIterator<Item = u32>) -> Result<(), Error> {
        let deletes = segments
            .into_iter()
            .map(|segment| {
                let key = ItemKey::checkpoint(&self.migration, &self.scope, segment);
                let delete = Delete::builder()
                    .table_name(self.ledger.table())
                    .set_key(Some(key.to_item()))
                    .build()
                    .map_err(Error::request)?;
                Ok(TransactWriteItem::builder().delete(delete).build())
            })
            .collect::<Result<Vec<_>, Error>>()?;
        for chunk in deletes.chunks(DELETES_PER_TRANSACTION) {
            self.ledger.fenced_write(chunk.to_vec(), &self.fence, "clearing checkpoints").await?;
        }
        Ok(())
    }
}

/// Deletes in one fenced transaction: with the fence's check, 25 items, which every DynamoDB and
/// DynamoDB Local accept in one transaction (newer ones accept 100).
const DELETES_PER_TRANSACTION: usize = 24;

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> CheckpointStore {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        let ledger = Ledger::new(aws_sdk_dynamodb::Client::from_conf(config), "history");
        let migration = MigrationId::parse("20250101_a").unwrap();
        CheckpointStore::new(ledger, migration, "up#main", Fence::new(ItemKey::lock(), "run"))
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            segment: 3,
            total_segments: 8,
            last_key: Some(Item::from([
                ("pk".to_string(), AttributeValue::S("ITEM#9".into())),
                ("n".to_string(), AttributeValue::N("12345678901234567890123456789012345678".into())),
            ])),
            done: false,
            counts: Counts { scanned: 10, processed: 9, modified: 5, skipped: 3, failed: 1 },
        }
    }

    #[test]
    fn a_checkpoint_round_trips_with_its_typed_key() {
        let store = store();
        let item = store.encode(&checkpoint()).unwrap();
        assert_eq!(item["sk"], AttributeValue::S("CHECKPOINT#up#main#00003".into()));
        assert_eq!(store.decode(item).unwrap(), checkpoint());
    }

    #[test]
    fn a_malformed_checkpoint_is_named_with_its_key_and_its_fault() {
        let store = store();
        let mut zero = store.encode(&checkpoint()).unwrap();
        zero.insert("total_segments".into(), AttributeValue::N("0".into()));
        let error = store.decode(zero).unwrap_err().to_string();
        assert!(error.contains(r#"(pk "MIGRATION#20250101_a", sk "CHECKPOINT#up#main#00003")"#), "{error}");
        assert!(error.contains("total_segments is 0"), "{error}");

        let mut text = store.encode(&checkpoint()).unwrap();
        text.insert("scanned".into(), AttributeValue::S("many".into()));
        assert!(matches!(store.decode(text), Err(Error::CorruptLedger { .. })));

        let mut moved = store.encode(&checkpoint()).unwrap();
        moved.insert("segment".into(), AttributeValue::N("4".into()));
        assert!(store.decode(moved).unwrap_err().to_string().contains("it holds segment 4"));

        let mut inflated = store.encode(&checkpoint()).unwrap();
        inflated.insert("modified".into(), AttributeValue::N("18446744073709551615".into()));
        assert!(store.decode(inflated).unwrap_err().to_string().contains("do not add up"));
    }

    #[test]
    fn a_position_that_is_not_the_tables_key_is_refused() {
        let store = store();
        let keys = ["pk".to_string(), "n".to_string()];
        assert!(store.check_positions(&[checkpoint()], &keys).is_ok());
        let error = store.check_positions(&[checkpoint()], &["pk".to_string(), "sk".to_string()]).unwrap_err();
        assert!(error.to_string().contains("the table's key is [\"pk\", \"sk\"]"), "{error}");
    }
}
