//! One attempt to apply or revert a migration, as kept in the history table.
//!
//! The history keeps every attempt, never overwriting an earlier one, so that the record of what
//! ran, when, by whom and with what result survives retries and rollbacks.

use serde::{Deserialize, Serialize};

use crate::id::MigrationId;

/// Which way an attempt ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
}

/// Where an attempt ended (or `Running` while it runs, or if its runner died).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptState {
    Running,
    Succeeded,
    Failed,
    RolledBack,
}

/// Who ran an attempt: enough to find the machine and process, never credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// Unique per runner process; the lease lock's fencing token.
    pub run_id: String,
    /// `user@host` unless set with `DYNAMIGRATE_OWNER`; who may `unlock` without `--force`.
    pub owner: String,
    pub host: String,
    pub pid: u32,
    pub user: String,
    pub tool_version: String,
}

/// One row of history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub migration_id: MigrationId,
    /// 1, 2, 3...: attempts of one migration in the order they started.
    pub attempt: u32,
    pub direction: Direction,
    pub state: AttemptState,
    pub description: String,
    pub stage: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub items_processed: u64,
    #[serde(default)]
    pub items_modified: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The migration's checksum when it ran (a file's SHA-256; a Rust migration's own, if it gives one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// Applied migrations whose code had changed, which this run was told to go past
    /// (`--allow-modified`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_modified: Vec<MigrationId>,
    /// The read-only check a contract step ran before it changed anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// The on-demand backup taken before the migration ran (the stage's `backup_before`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_arn: Option<String>,
    #[serde(flatten)]
    pub ran_by: RunIdentity,
}

/// What a verification scan found: whether the requirement held, and if not, how many items broke
/// it and the keys of the first few (DynamoDB JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// The requirement in words: "every item at v3 or above".
    pub requirement: String,
    pub table: String,
    pub passed: bool,
    pub failing: u64,
    pub scanned: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample_keys: Vec<String>,
    pub checked_at: String,
}
