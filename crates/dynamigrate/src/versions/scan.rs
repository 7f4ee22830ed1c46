//! The read-only scans of versions: a census of a table (all of it, or a sample of its segments)
//! and the verification a contract step runs first. Both go through the backfill engine's page
//! pipeline (segments, read-ahead, read-rate limit, progress) with a counting sink, and write
//! nothing to the table.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;

use super::{Census, Estimate, Requirement, Versioning};
use crate::attempt::Verification;
use crate::backfill::{self, key_json, BackfillSettings, BackfillSpec, CountingSink, Item, PageSink, Scope, Tally};
use crate::clock::{now_ms, rfc3339};
use crate::events::millis;
use crate::Error;

/// How much of the table a census reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    Full,
    /// A random share of the scan segments, in percent (0 < p ≤ 100): an estimate.
    Percent(f64),
}

/// Keys of failing items a verification keeps, to show.
const SAMPLE_KEYS: usize = 10;

/// Counts items by version and, for a verification, notes the items that fail it.
struct CheckSink {
    counting: CountingSink,
    versioning: Versioning,
    /// For a version requirement: the version every item must have. None: every item fails
    /// (the scan's filter selected only failing items).
    at_least: Option<u64>,
    failing: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl CheckSink {
    fn new(versioning: &Versioning, at_least: Option<u64>) -> Self {
        Self {
            counting: CountingSink::by_attribute(&versioning.attribute),
            versioning: versioning.clone(),
            at_least,
            failing: AtomicU64::new(0),
            samples: Mutex::default(),
        }
    }

    fn fails(&self, item: &Item) -> bool {
        self.at_least.is_none_or(|version| Requirement::fails(version, &self.versioning, item))
    }

    fn note(&self, item: &Item) {
        self.failing.fetch_add(1, Relaxed);
        if let Ok(mut samples) = self.samples.lock() {
            if samples.len() < SAMPLE_KEYS {
                let mut key = item.clone();
                key.remove(&self.versioning.attribute);
                samples.push(key_json(&key).to_string());
            }
        }
    }
}

#[async_trait]
impl PageSink for CheckSink {
    async fn page(&self, items: Vec<Item>, tally: &Arc<Tally>) {
        items.iter().filter(|item| self.fails(item)).for_each(|item| self.note(item));
        self.counting.page(items, tally).await;
    }
}

/// A read-only pass keeps nothing per item but a counter, so unless told otherwise it asks for full
/// pages (DynamoDB's 1 MB): the fewest requests. A backfill's smaller default page bounds the
/// writes a page starts and the work a checkpoint covers, neither of which a count has.
fn spec(table: &str, selection: backfill::Selection, settings: &BackfillSettings, name: &str) -> BackfillSpec {
    let mut settings = settings.clone();
    settings.page_size = settings.page_size.or(Some(FULL_PAGES));
    BackfillSpec { name: name.into(), table: table.into(), selection, guard: Default::default(), settings }
}

/// No Limit in effect: each page is as much as DynamoDB returns at once.
const FULL_PAGES: u32 = i32::MAX as u32;

/// Counts `table`'s items by version: a parallel scan projected to the keys and the version
/// attribute. `settings` gives the segments, concurrency and read-rate limit.
pub async fn census(
    scope: &Scope,
    table: &str,
    versioning: &Versioning,
    sampling: Sampling,
    settings: &BackfillSettings,
) -> Result<Census, Error> {
    let started = Instant::now();
    let selection = backfill::Selection { projection: Some(vec![versioning.attribute.clone()]), ..Default::default() };
    let spec = spec(table, selection, settings, "versions");
    let sink = Arc::new(CheckSink::new(versioning, None));
    let (report, sample) = match sampling {
        Sampling::Full => (backfill::pass(&spec, sink.clone(), scope, None).await?, None),
        Sampling::Percent(percent) => {
            let (report, scanned) = backfill::sample(&spec, sink.clone(), scope, percent).await?;
            let estimate = Estimate { segments: scanned, total_segments: report.segments };
            (report, Some(estimate))
        }
    };
    if !report.completed {
        return Err(Error::Interrupted { while_: format!("counting the versions of {table}") });
    }
    let mut census = Census::from_distribution(table, versioning, &sink.counting.distribution());
    census.sample = sample;
    census.measured_at = rfc3339(now_ms());
    census.duration_ms = millis(started.elapsed());
    Ok(census)
}

/// Checks `requirement` on `table` with a read-only scan. A version requirement reads every item's
/// version, so it also returns the table's census.
pub async fn verify(
    scope: &Scope,
    table: &str,
    versioning: &Versioning,
    requirement: &Requirement,
    settings: &BackfillSettings,
) -> Result<(Verification, Option<Census>), Error> {
    let started = Instant::now();
    let spec = spec(table, requirement.selection(versioning), settings, "verification");
    let sink = Arc::new(CheckSink::new(versioning, requirement.version()));
    let report = backfill::pass(&spec, sink.clone(), scope, None).await?;
    if !report.completed {
        return Err(Error::Interrupted { while_: format!("verifying {requirement}") });
    }
    let failing = sink.failing.load(Relaxed);
    let checked_at = rfc3339(now_ms());
    let census = requirement.version().map(|_| {
        let mut census = Census::from_distribution(table, versioning, &sink.counting.distribution());
        census.measured_at = checked_at.clone();
        census.duration_ms = millis(started.elapsed());
        census
    });
    let verification = Verification {
        requirement: requirement.to_string(),
        table: table.into(),
        passed: failing == 0,
        failing,
        scanned: report.counts.scanned,
        sample_keys: sink.samples.lock().map(|s| s.clone()).unwrap_or_default(),
        checked_at,
    };
    Ok((verification, census))
}
