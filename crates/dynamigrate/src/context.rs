//! What a migration is handed when it runs.

use std::collections::BTreeMap;
use std::fmt::Display;

use aws_sdk_dynamodb::Client;
use tokio_util::sync::CancellationToken;

use crate::id::MigrationId;
use crate::progress::{Progress, ProgressMode};

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
    pub(crate) progress_mode: ProgressMode,
    pub(crate) cancel: CancellationToken,
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

    /// A progress handle shown as a bar on a terminal and as periodic log lines elsewhere.
    /// `total` is an estimate when known (say so in the label if it is rough).
    pub fn progress(&self, label: impl Into<String>, total: Option<u64>) -> Progress {
        Progress::new(label, total, self.progress_mode)
    }

    /// True once the run must stop: the lease was lost or the user pressed Ctrl-C.
    /// Long loops should check it between pages and return early.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes when the run must stop; for `tokio::select!`.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }
}
