//! dynamigrate: safe, resumable schema and data migrations for Amazon DynamoDB.
//!
//! DynamoDB has no schema, so schema changes live in data and code, following
//! expand → backfill → contract. This crate is the core: the [`Migration`] model, the pure
//! [`plan`](crate::plan) of what to run, the [history](crate::history) table, the
//! [lease lock](crate::lock) and the [`Runner`]. The command line lives in `dynamigrate-cli`;
//! a team's own migrations binary hands its migrations to `dynamigrate_cli::run`.

pub mod attempt;
pub mod aws;
pub mod backfill;
pub mod clock;
pub mod context;
pub mod error;
pub mod history;
pub mod id;
mod identity;
pub mod lock;
pub mod migration;
pub mod plan;
pub mod progress;
pub mod runner;

pub use async_trait::async_trait;
pub use attempt::{Attempt, AttemptState, Direction, RunIdentity};
pub use backfill::{BackfillSettings, BackfillSummary, Change, Guard, Item, WriteMode};
pub use context::MigrationContext;
pub use error::{Error, ErrorKind};
pub use id::MigrationId;
pub use migration::{Migration, MigrationSet, Outcome};
pub use plan::{DownTarget, MigrationState, Status};
pub use progress::{Progress, ProgressMode};
pub use runner::{DownOptions, RunOptions, RunReport, Runner, RunnerConfig, StatusReport};

/// Re-exported so migrations use the same SDK version as the runner.
pub use aws_sdk_dynamodb;
