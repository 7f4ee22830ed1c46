//! What a migration is handed when it runs.

use std::collections::BTreeMap;
use std::fmt::Display;

use aws_sdk_dynamodb::Client;

use crate::backfill::{Backfill, BackfillEnv};
use crate::events::Progress;
use crate::id::MigrationId;
use crate::versions::Versioning;

/// Everything a migration needs: where to work, whether to write, and how to report.
#[derive(Clone)]
pub struct MigrationContext {
    pub migration_id: MigrationId,
    /// The stage's main table.
    pub table_name: String,
    /// Other tables the stage names, by logical name (`[stages.NAME.tables]` in the config).
    pub tables: BTreeMap<String, String>,
    /// When true the migration must write nothing: not the table, not anywhere else.
    pub dry_run: bool,
    pub client: Client,
    pub stage: String,
    /// How each table carries versions, by physical name (the config's `[versions]`).
    pub versioning: BTreeMap<String, Versioning>,
    /// The run's scope (cancellation, observer) and what backfills get from it.
    pub(crate) backfills: BackfillEnv,
}

impl MigrationContext {
    /// Logs a line tagged with the migration's id.
    pub fn log(&self, message: impl Display) {
        tracing::info!(migration = %self.migration_id, "{message}");
    }

    /// The physical name of another configured table.
    pub fn table(&self, logical_name: &str) -> anyhow::Result<&str> {
        self.tables.get(logical_name).map(String::as_str).ok_or_else(|| {
            anyhow::anyhow!(
                "no table named {logical_name:?} in stage {:?}; add it under [stages.{}.tables]",
                self.stage,
                self.stage
            )
        })
    }

    /// How `table` (a physical name) carries versions: configured, or the defaults.
    pub fn versioning(&self, table: &str) -> Versioning {
        self.versioning.get(table).cloned().unwrap_or_default()
    }

    /// A counter for a long loop, reported to whoever watches the run (a bar on a terminal, log
    /// lines elsewhere). `total` is an estimate when known (say so in the label if it is rough).
    pub fn progress(&self, label: impl Into<String>, total: Option<u64>) -> Progress {
        Progress::new(label, total, self.backfills.scope.observer.clone())
    }

    /// Starts describing a backfill of `table_name`: see [`crate::backfill`].
    pub fn backfill(&self) -> Backfill {
        Backfill::new(&self.table_name, self.backfills.clone())
    }

    /// True once the run must stop: the lease was lost or the user pressed Ctrl-C.
    /// Long loops should check it between pages and return early.
    pub fn is_cancelled(&self) -> bool {
        self.backfills.scope.cancel.is_cancelled()
    }

    /// Completes when the run must stop; for `tokio::select!`.
    pub async fn cancelled(&self) {
        self.backfills.scope.cancel.cancelled().await
    }
}
