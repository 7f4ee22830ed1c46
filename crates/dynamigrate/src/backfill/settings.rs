//! The engine's knobs, declared once: this one type is a stage's keys in `dynamigrate.toml`, the
//! command line's backfill options (with the `clap` feature) and what a migration's builder sets.
//! The command line wins over the stage, which wins over the migration's code, which wins over the
//! defaults: the operator knows the table and the hour.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::rate::{RateLimits, RateMode};
use super::window::MAX_WINDOW;
use crate::ledger::MAX_SEGMENTS;
use crate::Error;

/// How changed items are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// One conditional write per changed item (UpdateItem / DeleteItem with a guard).
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

/// Knobs a run may set; `None` leaves the choice to the next layer, then to the default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[cfg_attr(feature = "clap", command(next_help_heading = "Backfill options"))]
pub struct BackfillSettings {
    /// Parallel scan segments [default: one per GiB of table, 16 to 1000]
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    pub segments: Option<u32>,
    /// Write requests in flight at once, across all segments; pins the window, which otherwise
    /// adapts to the round trip and the rate allowed [default: adaptive, from 16, 4 to 1024]
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    pub concurrency: Option<u32>,
    /// Items per scan page (a page also ends at 1 MB) [default: 1000]
    #[cfg_attr(feature = "clap", arg(long, value_name = "N", alias = "batch-size"))]
    pub page_size: Option<u32>,
    /// Pause after each page of each segment, in milliseconds [default: 0]
    #[cfg_attr(feature = "clap", arg(long, value_name = "MS", alias = "batch-delay-ms"))]
    pub page_delay_ms: Option<u64>,
    /// Stop (keeping checkpoints) once more items than this have failed [default: 100]
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    pub max_failures: Option<u64>,
    /// update: a conditional write per item, safe on a live table; batch: BatchWriteItem, faster,
    /// but clobbers concurrent writes (maintenance windows only) [default: update]
    #[cfg_attr(feature = "clap", arg(long, value_name = "MODE"))]
    pub write_mode: Option<WriteMode>,
    /// Where failed items are appended as JSON lines [default: dynamigrate-failures-<id>.jsonl]
    #[cfg_attr(feature = "clap", arg(long, value_name = "FILE"))]
    pub failures_file: Option<PathBuf>,
    /// How many sample diffs a dry run prints [default: 5]
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    pub sample_diffs: Option<u32>,
    /// At most this many items per second [default: no cap]
    #[cfg_attr(feature = "clap", arg(long, value_name = "ITEMS_PER_S"))]
    pub rate: Option<f64>,
    /// At most this many write capacity units per second, as DynamoDB reports them consumed
    #[cfg_attr(feature = "clap", arg(long, value_name = "UNITS_PER_S"))]
    pub max_wcu: Option<f64>,
    /// At most this many read capacity units per second for the scan
    #[cfg_attr(feature = "clap", arg(long, value_name = "UNITS_PER_S"))]
    pub max_rcu: Option<f64>,
    /// adaptive: also back off on throttling and creep back up; fixed: only the caps [default: adaptive]
    #[cfg_attr(feature = "clap", arg(long, value_name = "MODE"))]
    pub rate_mode: Option<RateMode>,
    /// Re-reads of an item whose guarded write found it changed, before it counts as failed [default: 5]
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    pub max_conflict_retries: Option<u32>,
}

/// Segments scanned at once. Each has up to three pages (two being written, one read ahead) within
/// the pass's budget of pages (`PAGES_HELD`), which is what bounds the scan's memory; 16 segments
/// keep far more items ready than the widest window writes, at any round trip.
pub const SEGMENTS_AT_ONCE: usize = 16;
/// Items per scan page. A full 1 MB page of small items holds over 10,000 of them, several times
/// that size once parsed, and a pass holds up to 12 pages (`PAGES_HELD`, read ahead or being written):
/// 1,000 keeps a backfill's memory in tens of megabytes whatever the item size (large items end
/// their page at 1 MB first), and bounds what a resumed run looks at twice to three pages a segment.
/// Reads cost the same: capacity is charged by size, not by request.
pub const DEFAULT_PAGE_SIZE: u32 = 1000;
pub const DEFAULT_MAX_FAILURES: u64 = 100;
pub const DEFAULT_SAMPLE_DIFFS: u32 = 5;
pub const DEFAULT_MAX_CONFLICT_RETRIES: u32 = 5;

/// Bounds of the whole-number knobs: (name, lowest, highest). A value past them is a typo or a
/// mistake, never a wish; `concurrency` stops at the widest window the engine ever opens.
const BOUNDS: [(&str, u64, u64); 7] = [
    ("segments", 1, MAX_SEGMENTS as u64),
    ("concurrency", 1, MAX_WINDOW as u64),
    ("page_size", 1, i32::MAX as u64),
    ("page_delay_ms", 0, 3_600_000),
    ("sample_diffs", 0, 10_000),
    ("max_conflict_retries", 0, 1_000),
    ("max_failures", 0, u64::MAX),
];

impl BackfillSettings {
    /// Each setting of `self`, or else of `fallback`.
    pub fn or(&self, fallback: &Self) -> Self {
        Self {
            segments: self.segments.or(fallback.segments),
            concurrency: self.concurrency.or(fallback.concurrency),
            page_size: self.page_size.or(fallback.page_size),
            page_delay_ms: self.page_delay_ms.or(fallback.page_delay_ms),
            max_failures: self.max_failures.or(fallback.max_failures),
            write_mode: self.write_mode.or(fallback.write_mode),
            failures_file: self.failures_file.clone().or_else(|| fallback.failures_file.clone()),
            sample_diffs: self.sample_diffs.or(fallback.sample_diffs),
            rate: self.rate.or(fallback.rate),
            max_wcu: self.max_wcu.or(fallback.max_wcu),
            max_rcu: self.max_rcu.or(fallback.max_rcu),
            rate_mode: self.rate_mode.or(fallback.rate_mode),
            max_conflict_retries: self.max_conflict_retries.or(fallback.max_conflict_retries),
        }
    }

    /// Checks every knob is in range. Called wherever settings come in (config, command line,
    /// before a backfill starts), so a bad value is refused before anything is written.
    pub fn validate(&self) -> Result<(), Error> {
        let whole = [
            self.segments.map(u64::from),
            self.concurrency.map(u64::from),
            self.page_size.map(u64::from),
            self.page_delay_ms,
            self.sample_diffs.map(u64::from),
            self.max_conflict_retries.map(u64::from),
            self.max_failures,
        ];
        for ((name, low, high), value) in BOUNDS.iter().zip(whole) {
            if let Some(value) = value.filter(|v| !(*low..=*high).contains(v)) {
                return Err(Error::Config(format!("{name} = {value} is out of range: use {low} to {high}")));
            }
        }
        for (name, value) in [("rate", self.rate), ("max_wcu", self.max_wcu), ("max_rcu", self.max_rcu)] {
            if let Some(value) = value.filter(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(Error::Config(format!("{name} = {value} must be a positive number")));
            }
        }
        Ok(())
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

    pub(crate) fn page_delay(&self) -> Duration {
        Duration::from_millis(self.page_delay_ms.unwrap_or(0))
    }
}

const GIB: u64 = 1 << 30;

/// Segments for a parallel scan when none are given: one per GiB of table, at least as many as are
/// scanned at once ([`SEGMENTS_AT_ONCE`]) and at most 1,000 (beyond that, per-segment overhead and
/// the checkpoint count grow for little gain). Fewer than 16 would leave workers idle for nothing:
/// what the scan holds in memory is bounded by pages, not segments (`PAGES_HELD`). On DynamoDB
/// Local more segments also mean shallower pages, which it serves faster (an artefact: on AWS a
/// page costs the same at any depth). `TableSizeBytes` is refreshed by AWS about every 6 hours.
pub fn choose_segments(table_size_bytes: u64) -> u32 {
    table_size_bytes.div_ceil(GIB).clamp(SEGMENTS_AT_ONCE as u64, 1000) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_grow_with_the_table_within_bounds() {
        assert_eq!(choose_segments(0), 16);
        assert_eq!(choose_segments(3 * GIB), 16);
        assert_eq!(choose_segments(20 * GIB + 1), 21);
        assert_eq!(choose_segments(5000 * GIB), 1000);
    }

    #[test]
    fn the_command_line_wins_over_code() {
        let cli = BackfillSettings { segments: Some(8), ..Default::default() };
        let code = BackfillSettings { segments: Some(2), concurrency: Some(4), ..Default::default() };
        let merged = cli.or(&code);
        assert_eq!((merged.segments, merged.concurrency), (Some(8), Some(4)));
    }

    #[test]
    fn knobs_out_of_range_are_refused_by_name() {
        let bad = [
            BackfillSettings { concurrency: Some(0), ..Default::default() },
            BackfillSettings { segments: Some(MAX_SEGMENTS + 1), ..Default::default() },
            BackfillSettings { page_delay_ms: Some(u64::MAX), ..Default::default() },
            BackfillSettings { max_wcu: Some(-1.0), ..Default::default() },
            BackfillSettings { rate: Some(f64::NAN), ..Default::default() },
        ];
        let names = ["concurrency", "segments", "page_delay_ms", "max_wcu", "rate"];
        for (settings, name) in bad.iter().zip(names) {
            let error = settings.validate().unwrap_err().to_string();
            assert!(error.starts_with(name), "{error}");
        }
        assert!(BackfillSettings { page_size: Some(1), rate: Some(0.5), ..Default::default() }.validate().is_ok());
    }

    #[test]
    fn every_knob_is_a_config_key() {
        let text = "segments = 8\nconcurrency = 32\npage_size = 500\npage_delay_ms = 10\nmax_failures = 3\n\
                    write_mode = \"batch\"\nfailures_file = \"f.jsonl\"\nsample_diffs = 2\nrate = 100\n\
                    max_wcu = 400\nmax_rcu = 800.5\nrate_mode = \"fixed\"\nmax_conflict_retries = 7\n";
        let settings: BackfillSettings = toml::from_str(text).unwrap();
        assert_eq!(settings.write_mode, Some(WriteMode::Batch));
        assert_eq!((settings.page_size, settings.max_wcu, settings.max_rcu), (Some(500), Some(400.0), Some(800.5)));
        assert_eq!(settings.max_conflict_retries, Some(7));
    }
}
