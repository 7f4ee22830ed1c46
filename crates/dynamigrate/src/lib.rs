//! dynamigrate: safe, resumable schema and data migrations for Amazon DynamoDB.
//!
//! DynamoDB has no schema, so schema changes live in data and code, following
//! expand → backfill → contract. This crate is the core: the [`Migration`] model, the pure
//! [`plan`](crate::plan) of what to run, the [`ledger`] (history, lock, checkpoints), the
//! [`backfill`] engine and the [`Runner`]. It reports [`events`] and returns data; the command line
//! in `dynamigrate-cli` renders them, and a team's own migrations binary hands its migrations to
//! `dynamigrate_cli::main`.
//!
//! Imports go one way: `runner` → `context` → `backfill` → `ledger` → `aws`, with the pure
//! modules (`id`, `plan`, `attempt`, `migration`, `events`, `clock`) beside them.

pub mod attempt;
pub mod aws;
pub mod backfill;
pub mod clock;
pub mod context;
pub mod error;
pub mod events;
pub mod id;
mod identity;
pub mod ledger;
pub mod migration;
pub mod plan;
pub mod runner;
pub mod safety;
pub mod versions;

pub use async_trait::async_trait;
pub use attempt::{Attempt, AttemptState, Direction, RunIdentity, Verification};
pub use backfill::{BackfillSettings, BackfillSpec, BackfillSummary, Change, Guard, Item, Transform, WriteMode};
pub use context::MigrationContext;
pub use error::{Error, ErrorKind};
pub use events::{Event, Observer, Progress, ProgressSnapshot};
pub use id::MigrationId;
pub use ledger::Ledger;
pub use migration::{Migration, MigrationSet, Outcome, Phase};
pub use plan::{DownTarget, MigrationState, Status};
pub use runner::{DownOptions, RunOptions, RunReport, Runner, RunnerConfig, StatusReport};

/// Re-exported so migrations use the same SDK version as the runner.
pub use aws_sdk_dynamodb;
