//! What a backfill did (or, in a dry run, would do), as data: the counts, the capacity it spent,
//! whether it finished and why not, and a dry run's sample diffs.

use std::fmt;

use serde::Serialize;

use super::settings::WriteMode;
use super::value::{display, key_text, Item};
use crate::aws::RetryCounts;
use crate::ledger::Counts;

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
        Self { key: key_text(key), deleted: after.is_none(), changes }
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
    pub retry_reasons: RetryCounts,
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
    /// The mean time from sending a write request to its answer (SDK retries included).
    pub round_trip_ms: Option<f64>,
    /// Write requests allowed in flight at the end, and the most at any time.
    pub window: usize,
    pub largest_window: usize,
    /// The window was pinned (`--concurrency`) rather than adapted.
    pub window_pinned: bool,
    pub failures_file: Option<String>,
    pub sample_diffs: Vec<ItemDiff>,
}

impl fmt::Display for BackfillSummary {
    /// `backfill main: scanned 20000, processed 20000, modified 20000, skipped 0, failed 0,
    /// conflicts 0, retries 0 (1619 items/s, 16 segments)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        let verb = if self.dry_run { "would modify" } else { "modified" };
        write!(
            f,
            "backfill {}: scanned {}, processed {}, {verb} {}, skipped {}, failed {}, conflicts {}, retries {}",
            self.name, c.scanned, c.processed, c.modified, c.skipped, c.failed, self.conflicts, self.retries
        )?;
        let reasons = self.retry_reasons.by_reason();
        if !reasons.is_empty() {
            let reasons: Vec<String> = reasons.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
            write!(f, " ({})", reasons.join(", "))?;
        }
        let resumed = if self.resumed { ", resumed from checkpoints" } else { "" };
        write!(f, " ({:.0} items/s, {} segments{resumed}", self.items_per_second, self.segments)?;
        if let Some(rtt) = self.round_trip_ms {
            let how = if self.window_pinned { "pinned" } else { "adaptive" };
            write!(f, ", round trip {rtt:.1} ms, window {} {how}, largest {}", self.window, self.largest_window)?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

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
