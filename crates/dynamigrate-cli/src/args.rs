//! Command-line arguments (clap derive). Global options may come before or after the command.

use std::path::PathBuf;

use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};
use dynamigrate::backfill::RateMode;
use dynamigrate::{BackfillSettings, MigrationId, WriteMode};

#[derive(Debug, Parser)]
#[command(version, about = "Safe, resumable schema and data migrations for Amazon DynamoDB")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Config file naming the stages [default: dynamigrate.toml, if present]
    #[arg(long, global = true, env = "DYNAMIGRATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Stage to work on (a [stages.NAME] section of the config)
    #[arg(long, global = true, env = "STAGE", default_value = "dev")]
    pub stage: String,
    /// AWS profile (overrides the stage's `profile`)
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// AWS region (overrides the stage's `region`)
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// DynamoDB endpoint, e.g. http://localhost:8000 for DynamoDB Local
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The table migrations work on (overrides the stage's `table`)
    #[arg(long, global = true)]
    pub table: Option<String>,
    /// The table holding history, lock and checkpoints [default: dynamigrate_history]
    #[arg(long, global = true, value_name = "TABLE")]
    pub history_table: Option<String>,
    /// More logging; repeat for more (-vv includes the AWS SDK)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Print the result as JSON on stdout (logs stay on stderr)
    #[arg(long, global = true)]
    pub json: bool,
    /// Do not ask for confirmation on stages that require it
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show each migration's state: applied, pending, failed, missing
    Status {
        /// Exit 4 when anything is pending, failed or missing (for CI)
        #[arg(long)]
        check: bool,
    },
    /// Apply pending migrations in id order; stop at the first failure
    Run {
        /// Run the migrations with dry_run = true: write nothing anywhere, report what would change
        #[arg(long)]
        dry_run: bool,
        /// Stop after this migration id
        #[arg(long, value_name = "ID", value_parser = parse_id)]
        to: Option<MigrationId>,
        #[command(flatten)]
        wait: WaitArg,
        /// Run even though the history has applied migrations this binary does not have
        #[arg(long)]
        ignore_missing: bool,
        #[command(flatten)]
        backfill: BackfillArgs,
    },
    /// Roll back applied migrations, newest first, with their `down`
    Down {
        /// How many migrations to roll back [default: 1]
        #[arg(long, value_name = "N", conflicts_with = "to")]
        steps: Option<usize>,
        /// Roll back every migration newer than ID, and ID itself
        #[arg(long, value_name = "ID", value_parser = parse_id)]
        to: Option<MigrationId>,
        /// Run the downs with dry_run = true: write nothing anywhere
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        wait: WaitArg,
        #[command(flatten)]
        backfill: BackfillArgs,
    },
    /// Release the runner lock (another owner's lease needs --force)
    Unlock {
        /// Release the lock whoever holds it
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct WaitArg {
    /// Wait up to SECS for a lock held by another runner instead of failing at once
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub wait: u64,
}

/// Backfill knobs; each overrides what the migration's code chose.
#[derive(Debug, Args)]
#[command(next_help_heading = "Backfill options")]
pub struct BackfillArgs {
    /// Parallel scan segments [default: one per GiB of table, 4 to 1000]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub segments: Option<u32>,
    /// Writes in flight at once, across all segments [default: 16]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: Option<u32>,
    /// Items per scan page (a page also ends at 1 MB) [default: 1000]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub batch_size: Option<i32>,
    /// Pause after each page of each segment, in milliseconds [default: 0]
    #[arg(long, value_name = "MS")]
    pub batch_delay_ms: Option<u64>,
    /// Stop (keeping checkpoints) once more items than this have failed [default: 100]
    #[arg(long, value_name = "N")]
    pub max_failures: Option<u64>,
    /// update: a conditional write per item, safe on a live table; batch: BatchWriteItem, faster,
    /// but clobbers concurrent writes (maintenance windows only) [default: update]
    #[arg(long, value_name = "MODE")]
    pub write_mode: Option<WriteMode>,
    /// Where failed items are appended as JSON lines [default: dynamigrate-failures-<id>.jsonl]
    #[arg(long, value_name = "FILE")]
    pub failures_file: Option<PathBuf>,
    /// How many sample diffs a dry run prints [default: 5]
    #[arg(long, value_name = "N")]
    pub sample_diffs: Option<usize>,
    /// At most this many items per second [default: no cap]
    #[arg(long, value_name = "ITEMS_PER_S", value_parser = positive)]
    pub rate: Option<f64>,
    /// At most this many write capacity units per second, as DynamoDB reports them consumed
    #[arg(long, value_name = "UNITS_PER_S", value_parser = positive)]
    pub max_wcu: Option<f64>,
    /// At most this many read capacity units per second for the scan
    #[arg(long, value_name = "UNITS_PER_S", value_parser = positive)]
    pub max_rcu: Option<f64>,
    /// adaptive: also back off on throttling and creep back up; fixed: only the caps [default: adaptive]
    #[arg(long, value_name = "MODE")]
    pub rate_mode: Option<RateMode>,
}

fn positive(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(n) if n > 0.0 && n.is_finite() => Ok(n),
        _ => Err(format!("{value:?} is not a positive number")),
    }
}

impl BackfillArgs {
    pub fn settings(&self) -> BackfillSettings {
        BackfillSettings {
            segments: self.segments,
            concurrency: self.concurrency.map(|n| n as usize),
            batch_size: self.batch_size,
            batch_delay: self.batch_delay_ms.map(Duration::from_millis),
            max_failures: self.max_failures,
            write_mode: self.write_mode,
            failures_file: self.failures_file.clone(),
            sample_diffs: self.sample_diffs,
            rate: self.rate,
            max_wcu: self.max_wcu,
            max_rcu: self.max_rcu,
            rate_mode: self.rate_mode,
        }
    }
}

fn parse_id(value: &str) -> Result<MigrationId, String> {
    MigrationId::parse(value).map_err(|e| e.to_string())
}
