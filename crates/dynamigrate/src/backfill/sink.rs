//! Where scanned pages go. The [pipeline](super::pipeline) reads pages and hands each one to a
//! [`PageSink`]: the guarded writer and the batch writer are sinks, and so is a read-only pass
//! such as [`CountingSink`], which runs through the same segments, read-ahead, rate limits,
//! progress and checkpoints without writing anything.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Serialize;

use super::meter::Meter;
use super::value::{display, Item};
use crate::ledger::Counts;

/// What became of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Modified,
    /// Left as it was (already migrated, nothing to change, only read).
    Skipped,
    Failed,
}

/// One page's items as they settle: counted into the page's own counts (for its segment's
/// checkpoint) and into the run's meter (for progress) at once. Shared by the page's tasks.
pub struct Tally {
    processed: AtomicU64,
    modified: AtomicU64,
    skipped: AtomicU64,
    failed: AtomicU64,
    meter: Arc<Meter>,
}

impl Tally {
    pub(crate) fn new(meter: Arc<Meter>) -> Arc<Self> {
        let zero = || AtomicU64::new(0);
        Arc::new(Self { processed: zero(), modified: zero(), skipped: zero(), failed: zero(), meter })
    }

    /// Counts `items` items as `verdict`; returns the verdict, for chaining.
    pub fn record(&self, verdict: Verdict, items: u64) -> Verdict {
        let (page, run) = match verdict {
            Verdict::Modified => (&self.modified, &self.meter.modified),
            Verdict::Skipped => (&self.skipped, &self.meter.skipped),
            Verdict::Failed => (&self.failed, &self.meter.failed),
        };
        self.processed.fetch_add(items, Relaxed);
        page.fetch_add(items, Relaxed);
        self.meter.processed.fetch_add(items, Relaxed);
        run.fetch_add(items, Relaxed);
        verdict
    }

    /// Items failed in the whole run so far, for the failure limit.
    pub(crate) fn failed_in_run(&self) -> u64 {
        self.meter.failed.load(Relaxed)
    }

    /// This page's counts (`scanned` is the pipeline's to fill in).
    pub(crate) fn counts(&self) -> Counts {
        Counts {
            scanned: 0,
            processed: self.processed.load(Relaxed),
            modified: self.modified.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            failed: self.failed.load(Relaxed),
        }
    }
}

/// Takes the pages of a scan. Called concurrently for pages of different segments; a page's
/// checkpoint is saved once `page` returns, so every item must be settled (and tallied) by then.
#[async_trait]
pub trait PageSink: Send + Sync {
    async fn page(&self, items: Vec<Item>, tally: &Arc<Tally>);
}

/// A read-only sink: counts the items, and how many hold each value of one attribute (a version
/// attribute, say), writing nothing.
#[derive(Debug, Default)]
pub struct CountingSink {
    attribute: Option<String>,
    seen: Mutex<Distribution>,
}

/// How many items a counting pass saw, by the value of its attribute.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Distribution {
    pub items: u64,
    /// Items by the attribute's value, rendered with its type (`2`, `"v2"`).
    pub values: BTreeMap<String, u64>,
    /// Items without the attribute.
    pub absent: u64,
}

impl CountingSink {
    /// Counts items only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts items by the value of `attribute`.
    pub fn by_attribute(attribute: impl Into<String>) -> Self {
        Self { attribute: Some(attribute.into()), ..Self::default() }
    }

    pub fn distribution(&self) -> Distribution {
        self.seen.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl PageSink for CountingSink {
    async fn page(&self, items: Vec<Item>, tally: &Arc<Tally>) {
        // Count the page apart, then merge once: one lock a page, not one an item.
        let mut page = Distribution { items: items.len() as u64, ..Distribution::default() };
        if let Some(attribute) = &self.attribute {
            for item in &items {
                match item.get(attribute) {
                    Some(value) => *page.values.entry(display(value)).or_default() += 1,
                    None => page.absent += 1,
                }
            }
        }
        if let Ok(mut seen) = self.seen.lock() {
            seen.items += page.items;
            seen.absent += page.absent;
            for (value, n) in page.values {
                *seen.values.entry(value).or_default() += n;
            }
        }
        tally.record(Verdict::Skipped, items.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    #[tokio::test]
    async fn a_counting_sink_counts_items_by_their_attribute_and_tallies_them_as_left_alone() {
        let sink = CountingSink::by_attribute("version");
        let item = |v: Option<&str>| {
            let mut item = Item::from([("pk".to_string(), AttributeValue::S("x".into()))]);
            if let Some(v) = v {
                item.insert("version".into(), AttributeValue::N(v.into()));
            }
            item
        };
        let meter = Arc::new(Meter::default());
        let tally = Tally::new(meter.clone());
        sink.page(vec![item(Some("2")), item(None), item(Some("2"))], &tally).await;
        sink.page(vec![item(Some("3"))], &Tally::new(meter.clone())).await;
        let seen = sink.distribution();
        assert_eq!(seen.items, 4);
        assert_eq!(seen.values, BTreeMap::from([("2".to_string(), 2), ("3".to_string(), 1)]));
        assert_eq!(seen.absent, 1);
        assert_eq!(tally.counts(), Counts { processed: 3, skipped: 3, ..Counts::default() });
        assert_eq!(meter.counts().processed, 4);
    }
}
