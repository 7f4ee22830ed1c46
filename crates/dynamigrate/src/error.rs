//! The library's error type. Each variant is a case a user must be told about in words; the CLI maps
//! them onto exit codes ([`Error::kind`]).

use crate::id::{InvalidId, MigrationId};
use crate::lock::LockHolder;
use crate::plan::PlanError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidId(#[from] InvalidId),

    #[error("duplicate migration id {0}: every migration needs its own id")]
    DuplicateId(MigrationId),

    #[error(transparent)]
    Plan(#[from] PlanError),

    #[error(
        "locked by {} on {} (pid {}) since {}, expires {}; wait with --wait SECS, or if that runner is gone, \
         run `dynamigrate unlock --force`",
        .0.owner, .0.host, .0.pid, .0.acquired_at, .0.expires_at
    )]
    LockHeld(Box<LockHolder>),

    #[error("{0}")]
    UnlockRefused(String),

    #[error("lost the lease on the history table's lock (another runner took it over); stopped")]
    LeaseLost,

    #[error("table {table:?} does not exist{where_}; create it, or fix --table / the stage's `table`")]
    TableNotFound { table: String, where_: String },

    #[error("{0}")]
    Config(String),

    #[error("migration {id} failed: {message}")]
    MigrationFailed { id: MigrationId, message: String },

    #[error("{context}: {message}")]
    Aws { context: String, message: String },
}

/// What kind of failure an error is, for exit codes and for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input: ids, plans, configuration, a missing table. Nothing was changed.
    Invalid,
    /// Another runner holds the lock.
    LockHeld,
    /// A migration ran and failed (or the run lost its lease).
    MigrationFailed,
    /// DynamoDB or the network failed us.
    Aws,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidId(_)
            | Self::DuplicateId(_)
            | Self::Plan(_)
            | Self::TableNotFound { .. }
            | Self::Config(_) => ErrorKind::Invalid,
            Self::LockHeld(_) | Self::UnlockRefused(_) => ErrorKind::LockHeld,
            Self::MigrationFailed { .. } | Self::LeaseLost => ErrorKind::MigrationFailed,
            Self::Aws { .. } => ErrorKind::Aws,
        }
    }

    /// Wraps an SDK error with what we were doing, keeping the whole cause chain in the message.
    pub fn aws<E>(context: impl Into<String>, error: E) -> Self
    where
        E: std::error::Error + 'static,
    {
        Self::Aws { context: context.into(), message: aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string() }
    }
}
