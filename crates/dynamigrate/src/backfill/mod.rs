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
//! A backfill is data, a [`BackfillSpec`] (table, selection, guard, knobs), plus a [`Transform`].
//! [`run`] runs one within a [`Scope`] (client, dry run, cancellation, observer), with or without
//! a migration context and checkpoints. Inside, one page pipeline scans the table (segments,
//! read-ahead, rate limits, checkpoints, progress) and hands each page to a [`PageSink`]: a writer
//! for a backfill, or a read-only sink such as [`CountingSink`] for [`pass`].
//!
//! Modules, in the order data flows: `spec`, `settings`, `transform`, `change` (what is asked);
//! `table`, `segments`, `scan`, `pipeline`, `sink` (reading); `writer` (writing); `rate`, `meter`,
//! `progress`, `summary`, `failures` (pacing and accounting); `engine` wires them; `builder` is
//! `ctx.backfill()`.

mod builder;
mod change;
mod engine;
mod failures;
mod meter;
mod pipeline;
mod progress;
pub mod rate;
mod reread;
mod scan;
mod segments;
mod settings;
mod sink;
mod spec;
// Visible in the crate so that `events` takes the summary's data from here, not from the engine
// that reports through it.
pub(crate) mod summary;
mod table;
mod transform;
mod value;
mod window;
mod writer;

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use builder::Backfill;
pub(crate) use builder::BackfillEnv;
pub use change::{Change, Expressions, Guard};
pub use engine::{pass, run, sample};
pub use pipeline::PAGES_HELD;
pub use rate::{RateLimits, RateMode};
pub use settings::{
    choose_segments, BackfillSettings, WriteMode, DEFAULT_MAX_FAILURES, DEFAULT_PAGE_SIZE, SEGMENTS_AT_ONCE,
};
pub use sink::{CountingSink, Distribution, PageSink, Tally, Verdict};
pub use spec::{BackfillSpec, Selection};
pub use summary::{AttributeDiff, BackfillSummary, ItemDiff};
pub use transform::{typed, Transform};
pub use value::{display, key_json, Item};
pub use window::{IN_FLIGHT_BYTES, MAX_WINDOW, START_WINDOW};

use crate::aws::RetryStats;
use crate::events::{Observer, Silent};
use crate::id::MigrationId;
pub use crate::ledger::Counts;

/// Where a pass runs: the client, whether it may write, how it is stopped, who hears of it.
#[derive(Clone)]
pub struct Scope {
    pub client: Client,
    /// Scan and transform for real, write nothing (no item, no checkpoint, no failures file).
    pub dry_run: bool,
    /// Cancel to stop after the current pages (Ctrl-C, a lost lease).
    pub cancel: CancellationToken,
    pub observer: Arc<dyn Observer>,
    /// The client's retry counters (see [`crate::aws::migration_client`]), for the summary.
    pub retry_stats: Arc<RetryStats>,
    /// The migration the pass belongs to, for failure records.
    pub migration: Option<MigrationId>,
    /// How far the pass has come in words the progress line shows, from its live counts and the
    /// table's estimated size: an upgrade says "71.3% of items at v2".
    pub completion: Option<Completion>,
}

/// See [`Scope::completion`].
pub type Completion = Arc<dyn Fn(&Counts, Option<u64>) -> Option<String> + Send + Sync>;

impl Scope {
    /// A scope that writes, is never cancelled, tells nobody and belongs to no migration.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            dry_run: false,
            cancel: CancellationToken::new(),
            observer: Arc::new(Silent),
            retry_stats: Arc::default(),
            migration: None,
            completion: None,
        }
    }
}

/// What a pass over a table did, whatever its sink.
#[derive(Debug, Clone, Serialize)]
pub struct ScanReport {
    pub segments: u32,
    #[serde(flatten)]
    pub counts: Counts,
    /// Continued from checkpoints an earlier, interrupted run left.
    pub resumed: bool,
    /// Every segment was scanned to its end.
    pub completed: bool,
    pub duration_ms: u64,
    /// Read capacity the scan consumed, as DynamoDB reported it.
    pub read_units: f64,
}

impl ScanReport {
    /// Items scanned per second, over the whole pass.
    pub fn items_per_second(&self) -> f64 {
        self.counts.scanned as f64 / (self.duration_ms as f64 / 1000.0).max(1e-3)
    }
}

/// The table's key attributes, partition key first, from DescribeTable: for transforms that must
/// tell a whole item from a patch (a script's answer holding the whole key is a whole item).
pub async fn key_names(client: &Client, table: &str) -> Result<Vec<String>, crate::Error> {
    Ok(table::describe(client, table).await?.key_names)
}
