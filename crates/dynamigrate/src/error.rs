//! The library's error type. Each variant is a case a user must be told about in words; callers
//! branch on [`Error::kind`] (the CLI maps it onto exit codes and adds advice that names its flags).
//!
//! The variants keep four kinds of failure apart, because they call for different reactions:
//! bad input (fix the command, the config or the code; nothing was changed), DynamoDB failing us
//! (try again), a ledger item this version cannot trust (inspect it), and a bug of ours (report it).

use crate::backfill::BackfillSummary;
use crate::id::{InvalidId, MigrationId};
use crate::ledger::{ItemKey, LockHolder, UnlockRefusal};
use crate::plan::PlanError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    InvalidId(#[from] InvalidId),

    #[error("duplicate migration id {0}: every migration needs its own id")]
    DuplicateId(MigrationId),

    #[error(transparent)]
    Plan(#[from] PlanError),

    /// Configuration that cannot work: a stage without a table, a knob out of range.
    #[error("{0}")]
    Config(String),

    /// A migration or backfill asked for something the table or the engine cannot do, e.g. a sort-key
    /// prefix on a table without a sort key. Found before anything was written.
    #[error("{0}")]
    Invalid(String),

    #[error("table {table:?} does not exist; create it, or point the stage at the right table")]
    TableNotFound { table: String },

    #[error("no table for stage {stage:?}: the stage must name the table it migrates")]
    NoTable { stage: String },

    #[error("locked by {0}")]
    LockHeld(Box<LockHolder>),

    #[error(transparent)]
    UnlockRefused(UnlockRefusal),

    #[error("lost the lease on the history table's lock (another runner took it over); stopped")]
    LeaseLost,

    #[error("migration {id} failed: {message}")]
    MigrationFailed { id: MigrationId, message: String },

    /// A backfill stopped part-way; `summary` says what it did before it stopped.
    #[error("backfill {} stopped: {source}", summary.name)]
    Backfill { summary: Box<BackfillSummary>, source: Box<Error> },

    #[error("{context}: {message}")]
    Aws { context: String, message: String },

    /// The table named as the history table is not one (wrong key schema, items of other kinds).
    #[error("{table} is not a dynamigrate history table: {why}; name the history table of this project")]
    NotALedger { table: String, why: String },

    /// Stopped by Ctrl-C or SIGTERM before any work began (waiting for the lock, say).
    #[error("interrupted while {while_}; nothing was changed")]
    Interrupted { while_: String },

    /// An item of the history table that this version cannot read or does not trust.
    #[error(
        "history table {table}: the item {key} is malformed: {problem}. It was edited by hand or written by \
         another version of dynamigrate; inspect it, then repair or delete it"
    )]
    CorruptLedger { table: String, key: ItemKey, problem: String },

    /// A bug in dynamigrate: an invariant broke or a task panicked. Nothing the user did.
    #[error("internal error (a bug in dynamigrate, please report it): {0}")]
    Internal(String),

    #[error(
        "point-in-time recovery is off for table {table}, and stage {stage:?} requires it; nothing was changed. \
         Turn it on for the table, or set require_pitr = false for the stage"
    )]
    PitrOff { table: String, stage: String },

    #[error("the backup of {table} did not complete: {message}; the migration did not run")]
    Backup { table: String, message: String },

    #[error("gave up waiting for {what} after {}s", after.as_secs())]
    Timeout { what: String, after: std::time::Duration },
}

/// What kind of failure an error is, for exit codes and for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad input: ids, plans, configuration, a missing table. Nothing was changed.
    Invalid,
    /// Another runner holds the lock.
    LockHeld,
    /// A migration ran and failed (or the run lost its lease).
    MigrationFailed,
    /// DynamoDB or the network failed us.
    Aws,
    /// The history table holds an item this version cannot trust.
    CorruptLedger,
    /// A bug in dynamigrate.
    Internal,
    /// Stopped by a signal before any work began.
    Interrupted,
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidId(_)
            | Self::DuplicateId(_)
            | Self::Plan(_)
            | Self::TableNotFound { .. }
            | Self::NoTable { .. }
            | Self::NotALedger { .. }
            | Self::Config(_)
            | Self::PitrOff { .. }
            | Self::Invalid(_) => ErrorKind::Invalid,
            Self::LockHeld(_) | Self::UnlockRefused(_) => ErrorKind::LockHeld,
            Self::MigrationFailed { .. } | Self::LeaseLost | Self::Backup { .. } | Self::Timeout { .. } => {
                ErrorKind::MigrationFailed
            }
            // A stopped backfill has written: it is a failed migration whatever stopped it.
            Self::Backfill { .. } => ErrorKind::MigrationFailed,
            Self::Aws { .. } => ErrorKind::Aws,
            Self::CorruptLedger { .. } => ErrorKind::CorruptLedger,
            Self::Internal(_) => ErrorKind::Internal,
            Self::Interrupted { .. } => ErrorKind::Interrupted,
        }
    }

    /// Wraps an SDK error with what we were doing, keeping the whole cause chain in the message.
    pub fn aws<E>(context: impl Into<String>, error: E) -> Self
    where
        E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
    {
        // DynamoDB's answer in its own words ("ValidationException: ..."); the SDK's full context
        // (with the raw response) only when the service said nothing, e.g. a connection error.
        let message = match (error.code(), error.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string(),
        };
        Self::Aws { context: context.into(), message }
    }

    /// A request the SDK's builder refused: only our own code can build one wrong.
    pub(crate) fn request(error: impl std::fmt::Display) -> Self {
        Self::Internal(format!("building a DynamoDB request: {error}"))
    }

    /// The error beneath a stopped backfill, or this one.
    pub fn root(&self) -> &Error {
        match self {
            Self::Backfill { source, .. } => source.root(),
            other => other,
        }
    }
}

/// The message of a panic payload, as `std` prints it.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_keeps_its_message() {
        let caught = std::panic::catch_unwind(|| panic!("item {} has no name", 7)).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "item 7 has no name");
        let caught = std::panic::catch_unwind(|| std::panic::panic_any(42)).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "a panic without a message");
    }
}
