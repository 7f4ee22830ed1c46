//! Attempts in the ledger: each one in its migration's partition, and the latest of each migration
//! in the catalog, written together in one fenced transaction so the two never disagree.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::keys::{migration_pk, Entity, ItemKey, ATTEMPT_PREFIX, CATALOG};
use super::{Fence, Ledger};
use crate::attempt::Attempt;
use crate::aws::Item;
use crate::id::MigrationId;
use crate::Error;

/// The most attempts one migration can have: attempt keys hold six digits (`ATTEMPT#000001`), so
/// that they sort in order as text.
pub const MAX_ATTEMPT: u32 = 999_999;

/// An attempt as stored: its key and kind beside the record.
#[derive(Serialize, Deserialize)]
struct AttemptItem {
    pk: String,
    sk: String,
    entity: String,
    #[serde(flatten)]
    attempt: Attempt,
}

impl Ledger {
    /// Writes an attempt (new or updated) and makes it its migration's latest in the catalog, fenced
    /// on `fence` still holding the lock.
    pub async fn write_attempt(&self, attempt: &Attempt, fence: &Fence) -> Result<(), Error> {
        let id = &attempt.migration_id;
        let writes =
            [(ItemKey::attempt(id, attempt.attempt), Entity::Attempt), (ItemKey::catalog(id), Entity::Catalog)]
                .into_iter()
                .map(|(key, entity)| self.put(key, entity, attempt))
                .collect::<Result<Vec<_>, _>>()?;
        self.fenced_write(writes, fence, "writing history").await
    }

    fn put(&self, key: ItemKey, entity: Entity, attempt: &Attempt) -> Result<TransactWriteItem, Error> {
        let item = AttemptItem { pk: key.pk, sk: key.sk, entity: entity.as_str().into(), attempt: attempt.clone() };
        let item: Item = serde_dynamo::aws_sdk_dynamodb_1::to_item(item)
            .map_err(|e| Error::Internal(format!("cannot encode history record: {e}")))?;
        let put = Put::builder().table_name(self.table()).set_item(Some(item)).build().map_err(Error::request)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The latest attempt of every migration the history knows, in id order: one Query of the
    /// catalog, however long the history. Empty when the table does not exist.
    pub async fn latest_attempts(&self) -> Result<Vec<Attempt>, Error> {
        let items = self.query(CATALOG, "MIGRATION#").await?;
        let mut latest = items.into_iter().map(|item| self.decode_attempt(item)).collect::<Result<Vec<_>, _>>()?;
        latest.sort_by(|a, b| a.migration_id.cmp(&b.migration_id));
        Ok(latest)
    }

    /// Every attempt of one migration, oldest first: one Query of its partition.
    pub async fn attempts(&self, id: &MigrationId) -> Result<Vec<Attempt>, Error> {
        let items = self.query(&migration_pk(id), ATTEMPT_PREFIX).await?;
        items.into_iter().map(|item| self.decode_attempt(item)).collect()
    }

    /// Every attempt of every migration, by migration then attempt: a Query per migration.
    pub async fn all_attempts(&self) -> Result<Vec<Attempt>, Error> {
        let mut all = Vec::new();
        for latest in self.latest_attempts().await? {
            all.extend(self.attempts(&latest.migration_id).await?);
        }
        Ok(all)
    }

    fn decode_attempt(&self, item: Item) -> Result<Attempt, Error> {
        let key = ItemKey::of(&item);
        let entity = if key.pk == CATALOG { Entity::Catalog } else { Entity::Attempt };
        let record: AttemptItem = self.decode(entity, item)?;
        let expected = match key.pk.as_str() {
            CATALOG => ItemKey::catalog(&record.attempt.migration_id),
            _ => ItemKey::attempt(&record.attempt.migration_id, record.attempt.attempt),
        };
        let number = record.attempt.attempt;
        if !(1..=MAX_ATTEMPT).contains(&number) {
            return Err(self.corrupt(key, format!("attempt number {number} is not between 1 and {MAX_ATTEMPT}")));
        }
        if expected != key {
            let problem = format!("it records attempt {number} of {}", record.attempt.migration_id);
            return Err(self.corrupt(key, problem));
        }
        Ok(record.attempt)
    }
}
