//! Each table's last version census, one item per table, so that `status` can show how far every
//! table's items have come and how old that knowledge is. The record's shape belongs to the
//! `versions` module; the ledger stores and reads it.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::keys::{Entity, ItemKey, CENSUS, TABLE_PREFIX};
use super::Ledger;
use crate::aws::Item;
use crate::Error;

#[derive(Serialize, Deserialize)]
struct CensusItem<T> {
    pk: String,
    sk: String,
    entity: String,
    #[serde(flatten)]
    census: T,
}

impl Ledger {
    /// Keeps `census` as `table`'s last, replacing the one before. Not fenced: a census is a
    /// measurement any process may take, and the newest wins.
    pub async fn record_census<T: Serialize>(&self, table: &str, census: &T) -> Result<(), Error> {
        let key = ItemKey::census(table);
        let item = CensusItem { pk: key.pk, sk: key.sk, entity: Entity::Census.as_str().into(), census };
        let item: Item = serde_dynamo::aws_sdk_dynamodb_1::to_item(item)
            .map_err(|e| Error::Internal(format!("cannot encode a census: {e}")))?;
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| Error::aws(format!("recording a census in {}", self.table()), e))?;
        Ok(())
    }

    /// The last census of every table, in table order. Empty when the history table does not exist.
    pub async fn censuses<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error> {
        let items = self.query(CENSUS, TABLE_PREFIX).await?;
        items.into_iter().map(|item| self.decode::<CensusItem<T>>(Entity::Census, item).map(|c| c.census)).collect()
    }

    /// The last census of one table, if any.
    pub async fn census<T: DeserializeOwned>(&self, table: &str) -> Result<Option<T>, Error> {
        let key = ItemKey::census(table);
        let read = self
            .client()
            .get_item()
            .table_name(self.table())
            .consistent_read(true)
            .key("pk", AttributeValue::S(key.pk))
            .key("sk", AttributeValue::S(key.sk))
            .send()
            .await;
        let item = match read {
            Ok(output) => output.item,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => None,
            Err(e) => return Err(Error::aws(format!("reading history table {}", self.table()), e)),
        };
        item.map(|item| self.decode::<CensusItem<T>>(Entity::Census, item).map(|c| c.census)).transpose()
    }
}
