//! The Scan request of a pass, built once from the selection and the table's key: filter,
//! projection, placeholders, page size. Reading one page waits out transient errors past the SDK's
//! own retries (as does re-reading one item, in reread.rs).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use aws_sdk_dynamodb::Client;
use tokio_util::sync::CancellationToken;

use super::reread::Recheck;
use super::spec::Selection;
use super::value::Item;
use crate::aws::{is_transient, patiently};
use crate::ledger::Checkpoint;
use crate::Error;

/// One Scan request's fixed parts.
pub(crate) struct ScanRequest {
    pub(super) table: String,
    filter: Option<String>,
    pub(super) projection: Option<String>,
    /// What a re-read after a conflict checks again (see reread.rs).
    pub(super) recheck: Option<Recheck>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    limit: i32,
}

/// One page of one segment.
pub(crate) struct Page {
    pub items: Vec<Item>,
    /// ScannedCount: items read before the filter.
    pub scanned: u64,
    pub last_key: Option<Item>,
    pub read_units: f64,
}

impl ScanRequest {
    /// Fails when the selection cannot apply to this table (a sort-key prefix without a sort key).
    pub fn build(table: &str, selection: &Selection, key_names: &[String], limit: u32) -> Result<Self, Error> {
        let mut names: HashMap<String, String> = selection.names.clone().into_iter().collect();
        let mut values: HashMap<String, AttributeValue> = selection.values.clone().into_iter().collect();
        let mut filters: Vec<String> = selection.filter.iter().map(|f| format!("({f})")).collect();
        let prefixes = [(&selection.pk_prefix, 0, "pk"), (&selection.sk_prefix, 1, "sk")];
        for (prefix, index, tag) in prefixes {
            let Some(prefix) = prefix else { continue };
            let attribute = key_names.get(index).ok_or_else(|| {
                Error::Invalid(format!("table {table} has no sort key, so a sort-key prefix cannot apply"))
            })?;
            names.insert(format!("#dm_{tag}"), attribute.clone());
            values.insert(format!(":dm_{tag}"), AttributeValue::S(prefix.clone()));
            filters.push(format!("begins_with(#dm_{tag}, :dm_{tag})"));
        }
        let projection = selection.projection.as_ref().map(|attributes| {
            let mut all: Vec<&String> = key_names.iter().chain(attributes.iter()).collect();
            all.dedup();
            let placeholders: Vec<String> = all
                .iter()
                .enumerate()
                .map(|(i, attribute)| {
                    names.insert(format!("#dm_p{i}"), (*attribute).clone());
                    format!("#dm_p{i}")
                })
                .collect();
            placeholders.join(", ")
        });
        Ok(Self {
            table: table.to_string(),
            recheck: Recheck::of(selection, key_names),
            filter: (!filters.is_empty()).then(|| filters.join(" AND ")),
            projection,
            names,
            values,
            limit: i32::try_from(limit).unwrap_or(i32::MAX),
        })
    }

    pub fn is_projected(&self) -> bool {
        self.projection.is_some()
    }

    /// One page of the segment `at` names, from where it stopped. Waiting out transient errors ends
    /// when `stop` is cancelled.
    pub async fn page(&self, client: &Client, at: &Checkpoint, stop: &CancellationToken) -> Result<Page, Error> {
        let send = || {
            client
                .scan()
                .table_name(&self.table)
                .segment(at.segment as i32)
                .total_segments(at.total_segments as i32)
                .set_exclusive_start_key(at.last_key.clone())
                .limit(self.limit)
                .set_filter_expression(self.filter.clone())
                .set_projection_expression(self.projection.clone())
                .set_expression_attribute_names((!self.names.is_empty()).then(|| self.names.clone()))
                .set_expression_attribute_values((!self.values.is_empty()).then(|| self.values.clone()))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
        };
        let output = patiently(send, is_transient, |_, _| {}, Some(stop))
            .await
            .map_err(|e| Error::aws(format!("scanning {} segment {}", self.table, at.segment), e))?;
        Ok(Page {
            read_units: output.consumed_capacity.as_ref().and_then(|c| c.capacity_units).unwrap_or(0.0),
            scanned: output.scanned_count.max(0) as u64,
            items: output.items.unwrap_or_default(),
            last_key: output.last_evaluated_key.filter(|k| !k.is_empty()),
        })
    }

    /// The projection's placeholders, for a re-read with the same projection.
    pub(super) fn projection_names(&self) -> HashMap<String, String> {
        self.names.iter().filter(|(k, _)| k.starts_with("#dm_p")).map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}
