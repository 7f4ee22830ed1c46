//! What the runner's commands report, as data (serializable for `--json`).

use serde::Serialize;

use crate::attempt::{Direction, Verification};
use crate::backfill::BackfillSummary;
use crate::id::MigrationId;
use crate::ledger::LockHolder;
use crate::migration::Outcome;
use crate::plan::Status;
use crate::versions::Census;

/// What `status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub stage: String,
    pub history_table: String,
    pub history_table_exists: bool,
    pub lock: Option<LockHolder>,
    #[serde(flatten)]
    pub status: Status,
    /// Each table's last census of versions, from `versions` or a contract step's verification.
    pub censuses: Vec<Census>,
    /// Each table's point-in-time recovery.
    pub pitr: Vec<super::PitrLine>,
}

/// One migration's part of a run.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationReport {
    pub id: MigrationId,
    pub description: String,
    pub direction: Direction,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What each backfill the migration ran did, including one that stopped part-way.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backfills: Vec<BackfillSummary>,
    /// A contract step's check before it ran (or was refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// The backup taken first (its ARN), or in a dry run the one that would be taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
}

/// What `run` or `down` did (or, for a dry run, would do).
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub stage: String,
    pub table: String,
    pub direction: Direction,
    pub dry_run: bool,
    pub migrations: Vec<MigrationReport>,
}

impl RunReport {
    pub fn succeeded(&self) -> bool {
        self.migrations.iter().all(|m| m.outcome.success)
    }
}

/// A migration chosen by a plan, with what a confirmation prompt shows about it.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedMigration {
    pub id: MigrationId,
    pub description: String,
}
