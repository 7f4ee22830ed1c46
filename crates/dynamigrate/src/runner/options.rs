//! What a runner is configured with, and what `run` and `down` are asked.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::backfill::BackfillSettings;
use crate::id::MigrationId;
use crate::ledger::{DEFAULT_HISTORY_TABLE, DEFAULT_LEASE};
use crate::plan::DownTarget;
use crate::safety::BackupPolicy;
use crate::versions::Versioning;

/// Where and how a runner works.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    pub stage: String,
    /// The stage's main table; `run` and `down` need it, `status` and `unlock` do not.
    pub table: Option<String>,
    pub tables: BTreeMap<String, String>,
    pub history_table: String,
    pub lease: Duration,
    /// How each table's items carry their version, by physical table name; a table not named
    /// here has the defaults (`version`, unversioned items at v1).
    pub versioning: BTreeMap<String, Versioning>,
    /// Refuse a real `run` or `down` on a table without point-in-time recovery.
    pub require_pitr: bool,
    /// Which migrations get an on-demand backup of their table first.
    pub backup_before: BackupPolicy,
    /// How long to wait for such a backup to become AVAILABLE before stopping the run.
    pub backup_timeout: Duration,
}

/// A backup of a large table can take a while on DynamoDB; an hour is past any normal one.
pub const DEFAULT_BACKUP_TIMEOUT: Duration = Duration::from_secs(3600);

impl RunnerConfig {
    pub fn new(stage: impl Into<String>, table: impl Into<String>) -> Self {
        Self {
            stage: stage.into(),
            table: Some(table.into()),
            tables: BTreeMap::new(),
            history_table: DEFAULT_HISTORY_TABLE.to_string(),
            lease: DEFAULT_LEASE,
            versioning: BTreeMap::new(),
            require_pitr: false,
            backup_before: BackupPolicy::Never,
            backup_timeout: DEFAULT_BACKUP_TIMEOUT,
        }
    }

    /// How `table` (a physical name) carries versions.
    pub fn versioning_of(&self, table: &str) -> Versioning {
        self.versioning.get(table).cloned().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop after this migration.
    pub to: Option<MigrationId>,
    pub dry_run: bool,
    /// How long to wait for a lock held by another runner before giving up.
    pub wait: Duration,
    /// Run even though the history has applied migrations this binary lacks.
    pub ignore_missing: bool,
    /// Run even though applied migrations changed since they ran (recorded in the attempts).
    pub allow_modified: bool,
    /// Backfill knobs from the command line and the stage; they win over the migration's own.
    pub backfill: BackfillSettings,
}

#[derive(Debug, Clone)]
pub struct DownOptions {
    pub target: DownTarget,
    pub dry_run: bool,
    pub wait: Duration,
    pub backfill: BackfillSettings,
}
