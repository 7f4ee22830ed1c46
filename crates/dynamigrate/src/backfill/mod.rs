//! The backfill engine: rewrite existing items while the application keeps reading and writing them.
//!
//! ```no_run
//! # use dynamigrate::{MigrationContext, Outcome};
//! # use dynamigrate::backfill::Change;
//! # use dynamigrate::aws_sdk_dynamodb::types::AttributeValue;
//! # async fn up(ctx: &MigrationContext) -> anyhow::Result<Outcome> {
//! let summary = ctx
//!     .backfill()
//!     .sk_prefix("METADATA")
//!     .run(|item| {
//!         if item.contains_key("version") {
//!             return Ok(Change::Skip); // already migrated: a second run changes nothing
//!         }
//!         Ok(Change::update().set("version", AttributeValue::N("2".into())))
//!     })
//!     .await?;
//! Ok(summary.outcome())
//! # }
//! ```
//!
//! A parallel scan (one task per segment, each paging with its own `ExclusiveStartKey`) hands every
//! item to the transform; changed items are written with guarded conditional writes (or in batches
//! in a maintenance window); each segment's position is checkpointed in the history table after
//! every page, so a killed run resumes where it stopped.

mod change;
pub(crate) mod checkpoint;
mod engine;
mod failures;
mod meter;
pub mod rate;
mod settings;
mod value;
mod write;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

pub use change::{Change, Expressions, Guard};
pub use checkpoint::Counts;
pub use rate::{RateLimits, RateMode};
pub use settings::{choose_segments, BackfillSettings, WriteMode, DEFAULT_PAGE_SIZE};
pub use value::{display, key_json, Item};

use crate::context::MigrationContext;
use crate::migration::Outcome;

/// A typed view of an item through `serde_dynamo`, for transforms that prefer structs.
pub fn typed<T: serde::de::DeserializeOwned>(item: &Item) -> anyhow::Result<T> {
    Ok(serde_dynamo::aws_sdk_dynamodb_1::from_item(item.clone())?)
}

/// The transform: an item in, a change out. Must be a pure function of the item, since after a
/// conflict it runs again on the fresh item.
pub type Transform = dyn Fn(&Item) -> anyhow::Result<Change> + Send + Sync;

/// Which items, how to scan them and how to write: built from [`MigrationContext::backfill`].
#[must_use = "a backfill does nothing until .run(transform) is awaited"]
pub struct Backfill<'a> {
    pub(crate) ctx: &'a MigrationContext,
    pub(crate) name: String,
    pub(crate) table: String,
    pub(crate) filter: Option<String>,
    pub(crate) names: BTreeMap<String, String>,
    pub(crate) values: BTreeMap<String, AttributeValue>,
    pub(crate) pk_prefix: Option<String>,
    pub(crate) sk_prefix: Option<String>,
    pub(crate) projection: Option<Vec<String>>,
    pub(crate) guard: Guard,
    pub(crate) settings: BackfillSettings,
    pub(crate) max_conflict_retries: u32,
}

impl<'a> Backfill<'a> {
    pub(crate) fn new(ctx: &'a MigrationContext) -> Self {
        Self {
            ctx,
            name: "main".into(),
            table: ctx.table_name.clone(),
            filter: None,
            names: BTreeMap::new(),
            values: BTreeMap::new(),
            pk_prefix: None,
            sk_prefix: None,
            projection: None,
            guard: Guard::default(),
            settings: BackfillSettings::default(),
            max_conflict_retries: 5,
        }
    }

    /// Names this backfill, when a migration runs more than one (checkpoints are kept per name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Works on another table than the stage's main one.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// Only items whose partition key begins with `prefix` (a server-side filter: a scan still reads
    /// the whole table, but the transform sees only these).
    pub fn pk_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.pk_prefix = Some(prefix.into());
        self
    }

    /// Only items whose sort key begins with `prefix` (server-side filter).
    pub fn sk_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.sk_prefix = Some(prefix.into());
        self
    }

    /// A server-side filter expression; give its placeholders with [`Self::name_placeholder`] and
    /// [`Self::value_placeholder`].
    pub fn filter(mut self, expression: impl Into<String>) -> Self {
        self.filter = Some(expression.into());
        self
    }

    pub fn name_placeholder(mut self, placeholder: impl Into<String>, attribute: impl Into<String>) -> Self {
        self.names.insert(placeholder.into(), attribute.into());
        self
    }

    pub fn value_placeholder(mut self, placeholder: impl Into<String>, value: AttributeValue) -> Self {
        self.values.insert(placeholder.into(), value);
        self
    }

    /// Reads only these attributes (the key is always added). Whole-item puts and batch mode need
    /// the whole item and are refused with a projection.
    pub fn projection<I, S>(mut self, attributes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.projection = Some(attributes.into_iter().map(Into::into).collect());
        self
    }

    /// What a conditional write checks; default [`Guard::Item`].
    pub fn guard(mut self, guard: Guard) -> Self {
        self.guard = guard;
        self
    }

    pub fn segments(mut self, segments: u32) -> Self {
        self.settings.segments = Some(segments);
        self
    }

    pub fn concurrency(mut self, writes_in_flight: usize) -> Self {
        self.settings.concurrency = Some(writes_in_flight);
        self
    }

    pub fn page_size(mut self, items: i32) -> Self {
        self.settings.batch_size = Some(items);
        self
    }

    pub fn batch_delay(mut self, delay: Duration) -> Self {
        self.settings.batch_delay = Some(delay);
        self
    }

    pub fn max_failures(mut self, failures: u64) -> Self {
        self.settings.max_failures = Some(failures);
        self
    }

    pub fn write_mode(mut self, mode: WriteMode) -> Self {
        self.settings.write_mode = Some(mode);
        self
    }

    /// How often an item is re-read and transformed again after a conflict before it counts as failed.
    /// At most this many items per second.
    pub fn rate(mut self, items_per_second: f64) -> Self {
        self.settings.rate = Some(items_per_second);
        self
    }

    /// At most this many write capacity units per second.
    pub fn max_wcu(mut self, units_per_second: f64) -> Self {
        self.settings.max_wcu = Some(units_per_second);
        self
    }

    /// At most this many read capacity units per second.
    pub fn max_rcu(mut self, units_per_second: f64) -> Self {
        self.settings.max_rcu = Some(units_per_second);
        self
    }

    pub fn rate_mode(mut self, mode: RateMode) -> Self {
        self.settings.rate_mode = Some(mode);
        self
    }

    pub fn max_conflict_retries(mut self, retries: u32) -> Self {
        self.max_conflict_retries = retries;
        self
    }

    /// Scans, transforms and writes; returns when every segment is done, or the run was stopped.
    pub async fn run<F>(self, transform: F) -> anyhow::Result<BackfillSummary>
    where
        F: Fn(&Item) -> anyhow::Result<Change> + Send + Sync + 'static,
    {
        engine::run(self, std::sync::Arc::new(transform)).await
    }
}

/// One attribute that a change alters, for dry-run diffs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttributeDiff {
    pub attribute: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// How one item would change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemDiff {
    pub key: String,
    pub deleted: bool,
    pub changes: Vec<AttributeDiff>,
}

impl ItemDiff {
    pub fn between(key: &Item, before: &Item, after: Option<&Item>) -> Self {
        let empty = Item::new();
        let after_item = after.unwrap_or(&empty);
        let mut names: Vec<&String> = before.keys().chain(after_item.keys()).collect();
        names.sort();
        names.dedup();
        let changes = names
            .into_iter()
            .filter(|name| before.get(*name) != after_item.get(*name))
            .map(|name| AttributeDiff {
                attribute: name.clone(),
                before: before.get(name).map(display),
                after: after_item.get(name).map(display),
            })
            .collect();
        Self { key: value::key_text(key), deleted: after.is_none(), changes }
    }
}

/// What a backfill did (or, in a dry run, would do).
#[derive(Debug, Clone, Serialize)]
pub struct BackfillSummary {
    pub name: String,
    pub table: String,
    pub dry_run: bool,
    pub write_mode: WriteMode,
    pub segments: u32,
    #[serde(flatten)]
    pub counts: Counts,
    pub conflicts: u64,
    /// Requests sent again: SDK retries (throttling, 5xx, timeouts, connection errors) and
    /// unprocessed batch items resent.
    pub retries: u64,
    /// SDK retries by reason.
    pub retry_reasons: crate::aws::RetryCounts,
    /// Capacity consumed, as DynamoDB reported it: for every scan page, and for the sampled writes
    /// (the others are counted at the running average of the sampled ones; see `rate`).
    pub write_units: f64,
    pub read_units: f64,
    /// Continued from checkpoints an earlier, interrupted run left.
    pub resumed: bool,
    /// Every segment was scanned to its end.
    pub completed: bool,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    pub duration_ms: u64,
    pub items_per_second: f64,
    pub failures_file: Option<String>,
    pub sample_diffs: Vec<ItemDiff>,
}

impl BackfillSummary {
    /// Succeeded only when every segment finished and no item failed.
    pub fn outcome(&self) -> Outcome {
        let success = self.completed && self.counts.failed == 0;
        Outcome { success, items_processed: self.counts.processed, items_modified: self.counts.modified }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Record {
        pk: String,
        sk: String,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u32>,
    }

    #[test]
    fn transforms_may_work_on_typed_structs() {
        let s = |v: &str| AttributeValue::S(v.into());
        let item = Item::from([("pk".into(), s("ITEM#1")), ("sk".into(), s("METADATA")), ("name".into(), s("a"))]);
        let mut record: Record = typed(&item).unwrap();
        assert_eq!(record.version, None);
        record.version = Some(2);
        let Change::Put(new) = Change::put_typed(&record).unwrap() else { panic!("a put") };
        assert_eq!(new.get("version"), Some(&AttributeValue::N("2".into())));
        assert_eq!(new.get("name"), Some(&s("a")));
    }

    #[test]
    fn a_diff_lists_only_changed_attributes() {
        let s = |v: &str| AttributeValue::S(v.into());
        let key = Item::from([("pk".into(), s("ITEM#1"))]);
        let before = Item::from([("pk".into(), s("ITEM#1")), ("name".into(), s("a")), ("old".into(), s("x"))]);
        let after = Item::from([
            ("pk".into(), s("ITEM#1")),
            ("name".into(), s("a")),
            ("version".into(), AttributeValue::N("2".into())),
        ]);
        let diff = ItemDiff::between(&key, &before, Some(&after));
        assert_eq!(diff.key, "pk=\"ITEM#1\"");
        let text: Vec<String> =
            diff.changes.iter().map(|c| format!("{}: {:?} -> {:?}", c.attribute, c.before, c.after)).collect();
        assert_eq!(text, ["old: Some(\"\\\"x\\\"\") -> None", "version: None -> Some(\"2\")"]);
    }
}
