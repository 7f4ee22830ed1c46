//! Reading one item again after its guarded write found it changed, and telling whether it is still
//! in the backfill's selection. The scan applied the selection's filter; a re-read must too, or an
//! item the application moved out of it meanwhile (upgraded to the version the backfill brings
//! items to, say) would be transformed again and overwritten by a transform meant for the items
//! left behind.
//!
//! GetItem cannot filter, so a backfill with a filter re-reads with a Query on the item's key that
//! carries the filter: as consistent as GetItem, one item at most, and DynamoDB evaluates the filter
//! exactly as the scan did. Its counts tell an item that no longer matches from one that is gone.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use tokio_util::sync::CancellationToken;

use super::scan::ScanRequest;
use super::spec::Selection;
use super::value::Item;
use crate::aws::{is_transient, patiently};

/// What a consistent re-read found.
#[derive(Debug, PartialEq)]
pub(crate) enum Reread {
    /// The item, still in the selection.
    Selected(Item),
    /// The item, no longer in the selection: the application moved it out, or our own write did.
    Left(Item),
    Gone,
}

/// The selection's own filter, for the re-read's Query: without the key prefixes (always true of a
/// key the scan selected, and a Query's filter may not name key attributes).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Recheck {
    filter: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Recheck {
    /// None when there is nothing to check again, or when the filter names a key attribute: a
    /// Query refuses that, and the re-read is then a GetItem that cannot tell (as before re-reads
    /// checked the selection), which only a filter on the key itself, never changed, can need.
    pub fn of(selection: &Selection, key_names: &[String]) -> Option<Self> {
        let filter = selection.filter.clone()?;
        let named_key = selection.names.values().any(|attribute| key_names.contains(attribute));
        let bare_key = filter
            .split(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '#' | ':')))
            .any(|token| key_names.iter().any(|key| key == token));
        if named_key || bare_key {
            return None;
        }
        Some(Self {
            filter,
            names: selection.names.clone().into_iter().collect(),
            values: selection.values.clone().into_iter().collect(),
        })
    }
}

impl ScanRequest {
    /// The item as it is now (strongly consistent, with the scan's projection), and whether the
    /// selection still takes it.
    pub async fn reread(&self, client: &Client, key: &Item, stop: &CancellationToken) -> Result<Reread, String> {
        let Some(recheck) = &self.recheck else {
            return Ok(self.get(client, key, stop).await?.map_or(Reread::Gone, Reread::Selected));
        };
        let mut names = recheck.names.clone();
        names.extend(self.projection_names());
        let mut values = recheck.values.clone();
        let mut conditions = Vec::new();
        for (i, (attribute, value)) in key.iter().enumerate() {
            names.insert(format!("#dm_k{i}"), attribute.clone());
            values.insert(format!(":dm_k{i}"), value.clone());
            conditions.push(format!("#dm_k{i} = :dm_k{i}"));
        }
        let send = || {
            client
                .query()
                .table_name(&self.table)
                .key_condition_expression(conditions.join(" AND "))
                .filter_expression(&recheck.filter)
                .consistent_read(true)
                .set_projection_expression(self.projection.clone())
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .send()
        };
        let output = patiently(send, is_transient, |_, _| {}, Some(stop))
            .await
            .map_err(|e| format!("re-reading after a conflict: {}", DisplayErrorContext(e)))?;
        if let Some(item) = output.items.and_then(|mut items| items.pop()) {
            return Ok(Reread::Selected(item));
        }
        if output.scanned_count == 0 {
            return Ok(Reread::Gone);
        }
        // There, but filtered out: read it to tell whether our own write is what moved it.
        Ok(self.get(client, key, stop).await?.map_or(Reread::Gone, Reread::Left))
    }

    /// GetItem: strongly consistent, with the scan's projection.
    async fn get(&self, client: &Client, key: &Item, stop: &CancellationToken) -> Result<Option<Item>, String> {
        let names = self.projection.as_ref().map(|_| self.projection_names());
        let send = || {
            client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .consistent_read(true)
                .set_projection_expression(self.projection.clone())
                .set_expression_attribute_names(names.clone())
                .send()
        };
        match patiently(send, is_transient, |_, _| {}, Some(stop)).await {
            Ok(output) => Ok(output.item),
            Err(error) => Err(format!("re-reading after a conflict: {}", DisplayErrorContext(error))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection(filter: &str, names: &[(&str, &str)]) -> Selection {
        Selection {
            filter: Some(filter.into()),
            names: names.iter().map(|(p, a)| (p.to_string(), a.to_string())).collect(),
            ..Selection::default()
        }
    }

    #[test]
    fn the_recheck_is_the_selections_own_filter_unless_it_names_a_key_attribute() {
        let keys = ["pk".to_string(), "sk".to_string()];
        let mut versioned = selection("attribute_not_exists(#v) OR #v < :v", &[("#v", "version")]);
        versioned.sk_prefix = Some("METADATA".into());
        let recheck = Recheck::of(&versioned, &keys).expect("a filter to check again");
        assert_eq!(recheck.filter, "attribute_not_exists(#v) OR #v < :v", "without the key prefix");
        assert_eq!(Recheck::of(&Selection { sk_prefix: Some("M".into()), ..Selection::default() }, &keys), None);
        assert_eq!(Recheck::of(&selection("begins_with(#k, :p)", &[("#k", "sk")]), &keys), None);
        assert_eq!(Recheck::of(&selection("begins_with(sk, :p) AND x = :x", &[]), &keys), None);
        assert!(Recheck::of(&selection("skipped = :no AND pk_copy = :x", &[]), &keys).is_some(), "whole words only");
    }
}
