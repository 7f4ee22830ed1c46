//! Command-line arguments (clap derive). Global options may come before or after the command.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use dynamigrate::{BackfillSettings, MigrationId};

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
    /// The migrations folder [default: the config's migrations_dir, else migrations/ beside the config]
    #[arg(long, global = true, env = "DYNAMIGRATE_DIR", value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The table holding history, lock and checkpoints [default: dynamigrate_history]
    #[arg(long, global = true, value_name = "TABLE")]
    pub history_table: Option<String>,
    /// More logging; repeat for more (-vv includes the AWS SDK)
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Print the result as JSON on stdout (logs stay on stderr)
    #[arg(long, global = true)]
    pub json: bool,
    /// Log lines on stderr as text, or as one JSON object per line (for CloudWatch, Kubernetes)
    #[arg(long, global = true, value_enum, env = "DYNAMIGRATE_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
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
        /// Run even though applied migrations changed since they ran (recorded in the attempts)
        #[arg(long)]
        allow_modified: bool,
        #[command(flatten)]
        backfill: BackfillSettings,
    },
    /// Roll back applied migrations, newest first, with their `down`
    Down {
        /// How many migrations to roll back, 1 to 1000000 [default: 1]
        #[arg(long, value_name = "N", conflicts_with = "to", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        steps: Option<u64>,
        /// Roll back every migration newer than ID, and ID itself
        #[arg(long, value_name = "ID", value_parser = parse_id)]
        to: Option<MigrationId>,
        /// Run the downs with dry_run = true: write nothing anywhere
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        wait: WaitArg,
        #[command(flatten)]
        backfill: BackfillSettings,
    },
    /// Count the table's items by version (a read-only scan) and record the result for `status`
    Versions {
        /// Exit 4 unless every item is at version N or above (for CI)
        #[arg(long, value_name = "N", conflicts_with = "sample")]
        at_least: Option<u64>,
        /// Estimate from a random PERCENT of the scan segments (0 < PERCENT <= 100) instead of reading every item
        #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
        sample: Option<f64>,
        /// Parallel scan segments [default: one per GiB of table, 16 to 1000]
        #[arg(long, value_name = "N")]
        segments: Option<u32>,
        /// Read-capacity limit for the scan, in RCU per second
        #[arg(long, value_name = "RCU")]
        max_rcu: Option<f64>,
    },
    /// Point-in-time recovery of the stage's table (--table for another): show it, or turn it on
    Pitr {
        #[command(subcommand)]
        action: Option<PitrAction>,
    },
    /// On-demand backups of the stage's table (--table for another)
    Backup {
        #[command(subcommand)]
        action: BackupAction,
    },
    /// Restore into a new table: from a backup, the backup taken before a migration, or a point in time
    Restore(RestoreArgs),
    /// Export the table (--table for another) to S3 by point-in-time recovery; wait; print where it went
    Export(ExportArgs),
    /// Print the least-privilege IAM policy for this stage's commands, tables and history table
    Policy {
        /// The AWS account id in the ARNs [default: *]
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        /// Also allow exports to this S3 bucket
        #[arg(long, value_name = "BUCKET")]
        export_bucket: Option<String>,
        /// ... under this prefix
        #[arg(long, value_name = "PREFIX", requires = "export_bucket")]
        export_prefix: Option<String>,
    },
    /// Write a new, dated migration file from a commented template and print its path
    New {
        /// What the migration does, e.g. "add metadata field" (also names the file)
        #[arg(required_unless_present = "helper")]
        description: Option<String>,
        /// Write normalize-item.ts (or .js with --js) instead: the application's lazy use of the upgrade steps
        #[arg(long, conflicts_with_all = ["description", "toml"])]
        helper: bool,
        /// A TOML migration: declarative operations
        #[arg(long, group = "form")]
        toml: bool,
        /// A JavaScript migration: a transform function
        #[arg(long, group = "form")]
        js: bool,
        /// A TypeScript migration (the default): a typed transform function
        #[arg(long, group = "form")]
        ts: bool,
    },
    /// Release the runner lock (another owner's lease needs --force)
    Unlock {
        /// Release the lock whoever holds it
        #[arg(long)]
        force: bool,
    },
}

/// Where `restore` restores from (exactly one source) and into which new table.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A backup's ARN
    #[arg(long, value_name = "ARN")]
    pub backup: Option<String>,
    /// The backup taken before this migration ran
    #[arg(long, value_name = "ID", value_parser = parse_id)]
    pub before: Option<MigrationId>,
    /// The table (--table, or the stage's) as it was at TIME (RFC 3339, e.g. 2026-11-21T10:00:00Z), by PITR
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub to_time: Option<u64>,
    /// The table as late as PITR can restore it
    #[arg(long)]
    pub latest: bool,
    /// The new table to restore into (DynamoDB cannot restore in place)
    #[arg(long, value_name = "TABLE")]
    pub to_table: String,
}

/// Where `export` writes, and what.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The S3 bucket
    #[arg(long, value_name = "BUCKET")]
    pub bucket: String,
    /// The key prefix [default: dynamigrate/TABLE/YYYYMMDDTHHMMSSZ]
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// The table as it was at TIME (RFC 3339, UTC) [default: now]
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub time: Option<u64>,
    /// The format of the exported items
    #[arg(long, value_enum, default_value_t = ExportFormat::DynamodbJson)]
    pub format: ExportFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    DynamodbJson,
    Ion,
}

#[derive(Debug, Clone, Subcommand)]
pub enum PitrAction {
    /// Whether it is on, and the earliest time a restore can reach [the default]
    Status,
    /// Turn it on
    Enable,
}

#[derive(Debug, Clone, Subcommand)]
pub enum BackupAction {
    /// Take an on-demand backup now and wait until it is AVAILABLE
    Create,
    /// List the table's backups, newest first
    List {
        /// Every table's backups, not only the stage's table
        #[arg(long)]
        all: bool,
    },
    /// Delete a backup (asks to type its name unless --yes)
    Delete {
        /// The backup's ARN, as `backup list` shows it
        #[arg(value_name = "ARN")]
        arn: String,
    },
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Command {
    /// The command that resumes this one's work when it stops part-way.
    pub fn resumed_by(&self) -> &'static str {
        match self {
            Self::Down { .. } => "down",
            _ => "run",
        }
    }
}

#[derive(Debug, Args)]
pub struct WaitArg {
    /// Wait up to SECS (at most 86400, a day) for a lock held by another runner instead of failing at once
    #[arg(long, value_name = "SECS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub wait: u64,
}

fn parse_percent(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(format!("{value} is not a percentage above 0 and at most 100, e.g. 1 or 0.01")),
    }
}

fn parse_time(value: &str) -> Result<u64, String> {
    dynamigrate::clock::parse_rfc3339(value)
        .ok_or_else(|| format!("{value} is not an RFC 3339 time in UTC, e.g. 2026-11-21T10:00:00Z"))
}

fn parse_id(value: &str) -> Result<MigrationId, String> {
    MigrationId::parse(value).map_err(|e| e.to_string())
}
