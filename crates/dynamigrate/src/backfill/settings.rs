//! The engine's knobs, and how their defaults are chosen. The command line wins over the
//! migration's code, which wins over the defaults: the operator knows the table and the hour.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::rate::{RateLimits, RateMode};

/// How changed items are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// One conditional write per changed item (UpdateItem / PutItem / DeleteItem with a guard).
    /// Never clobbers a concurrent write: on a conflict the item is re-read and transformed again.
    /// The mode for a live table.
    #[default]
    Update,
    /// `BatchWriteItem`, 25 items a call, unconditional whole-item puts and deletes. Faster and
    /// cheaper per item, but a write the application makes between our read and our write is
    /// lost. Only for maintenance windows in which nothing else writes to the table.
    Batch,
}

impl std::str::FromStr for WriteMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "update" => Ok(Self::Update),
            "batch" => Ok(Self::Batch),
            other => Err(format!("unknown write mode {other:?}: use update or batch")),
        }
    }
}

/// Knobs a run may set; `None` leaves the choice to the migration's code, then to the default.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BackfillSettings {
    /// Parallel scan segments (TotalSegments). Default: from the table's size, see [`choose_segments`].
    pub segments: Option<u32>,
    /// Writes in flight at once, across all segments. Default 16.
    pub concurrency: Option<usize>,
    /// Items per scan page (Scan `Limit`; DynamoDB also ends a page at 1 MB). Default 1,000: see
    /// [`DEFAULT_PAGE_SIZE`].
    pub batch_size: Option<i32>,
    /// Pause after each page of each segment. Default none.
    pub batch_delay: Option<Duration>,
    /// Stop (keeping checkpoints) once more items than this have failed. Default 100.
    pub max_failures: Option<u64>,
    pub write_mode: Option<WriteMode>,
    /// Where failed items are appended as JSON lines. Default `dynamigrate-failures-<id>.jsonl`.
    pub failures_file: Option<PathBuf>,
    /// How many sample diffs a dry run shows. Default 5.
    pub sample_diffs: Option<usize>,
    /// At most this many items per second.
    pub rate: Option<f64>,
    /// At most this many write capacity units per second (as DynamoDB reports them consumed).
    pub max_wcu: Option<f64>,
    /// At most this many read capacity units per second for the scan.
    pub max_rcu: Option<f64>,
    /// Adaptive (default): also back off on throttling and creep back up. Fixed: only the caps.
    pub rate_mode: Option<RateMode>,
}

pub const DEFAULT_CONCURRENCY: usize = 16;
/// Items per scan page. A full 1 MB page of small items holds over 10,000 of them, several times
/// that size once parsed, and each scanning segment holds two pages (one written, one read ahead):
/// 1,000 keeps a backfill's memory in tens of megabytes whatever the item size (large items end
/// their page at 1 MB first), and bounds what a resumed run looks at twice to 1,000 items a segment.
/// Reads cost the same: capacity is charged by size, not by request.
pub const DEFAULT_PAGE_SIZE: i32 = 1000;
pub const DEFAULT_MAX_FAILURES: u64 = 100;
pub const DEFAULT_SAMPLE_DIFFS: usize = 5;

impl BackfillSettings {
    /// Each setting of `self`, or else of `fallback`.
    pub fn or(&self, fallback: &Self) -> Self {
        Self {
            segments: self.segments.or(fallback.segments),
            concurrency: self.concurrency.or(fallback.concurrency),
            batch_size: self.batch_size.or(fallback.batch_size),
            batch_delay: self.batch_delay.or(fallback.batch_delay),
            max_failures: self.max_failures.or(fallback.max_failures),
            write_mode: self.write_mode.or(fallback.write_mode),
            failures_file: self.failures_file.clone().or_else(|| fallback.failures_file.clone()),
            sample_diffs: self.sample_diffs.or(fallback.sample_diffs),
            rate: self.rate.or(fallback.rate),
            max_wcu: self.max_wcu.or(fallback.max_wcu),
            max_rcu: self.max_rcu.or(fallback.max_rcu),
            rate_mode: self.rate_mode.or(fallback.rate_mode),
        }
    }

    /// The rate caps these settings ask for.
    pub fn rate_limits(&self) -> RateLimits {
        RateLimits {
            items_per_second: self.rate,
            write_units_per_second: self.max_wcu,
            read_units_per_second: self.max_rcu,
            mode: self.rate_mode.unwrap_or_default(),
        }
    }
}

const GIB: u64 = 1 << 30;

/// Segments for a parallel scan when none are given: one per GiB of table, at least 4 (even a small
/// table scans faster in parallel) and at most 1,000 (beyond that, per-segment overhead and the
/// checkpoint count grow for little gain). `TableSizeBytes` is refreshed by AWS about every 6 hours.
pub fn choose_segments(table_size_bytes: u64) -> u32 {
    table_size_bytes.div_ceil(GIB).clamp(4, 1000) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_grow_with_the_table_within_bounds() {
        assert_eq!(choose_segments(0), 4);
        assert_eq!(choose_segments(3 * GIB), 4);
        assert_eq!(choose_segments(10 * GIB + 1), 11);
        assert_eq!(choose_segments(5000 * GIB), 1000);
    }

    #[test]
    fn the_command_line_wins_over_code() {
        let cli = BackfillSettings { segments: Some(8), ..Default::default() };
        let code = BackfillSettings { segments: Some(2), concurrency: Some(4), ..Default::default() };
        let merged = cli.or(&code);
        assert_eq!((merged.segments, merged.concurrency), (Some(8), Some(4)));
    }
}
