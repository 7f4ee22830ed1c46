//! What a migration is handed when it runs.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use tokio_util::sync::CancellationToken;

use crate::attempt::Direction;
use crate::aws::RetryStats;
use crate::backfill::checkpoint::CheckpointStore;
use crate::backfill::{Backfill, BackfillSettings, BackfillSummary};
use crate::history::HistoryStore;
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
    pub(crate) backfill_env: BackfillEnv,
}

/// What the backfill engine needs from the run: its knobs, where checkpoints go, where summaries land.
#[derive(Clone)]
pub(crate) struct BackfillEnv {
    pub settings: BackfillSettings,
    /// Where checkpoints go, fenced on this run id. None in a dry run: it writes nothing anywhere.
    pub checkpoints: Option<(HistoryStore, String)>,
    pub direction: Direction,
    pub summaries: Arc<Mutex<Vec<BackfillSummary>>>,
    /// The client's retry counters.
    pub retry_stats: Arc<RetryStats>,
}

impl BackfillEnv {
    pub fn checkpoint_store(&self, migration: &MigrationId, name: &str) -> Option<CheckpointStore> {
        let direction = match self.direction {
            Direction::Up => "up",
            Direction::Down => "down",
        };
        self.checkpoints.as_ref().map(|(history, run_id)| {
            CheckpointStore::new(history.clone(), migration, &format!("{direction}#{name}"), run_id.clone())
        })
    }

    pub fn record(&self, summary: BackfillSummary) {
        if let Ok(mut summaries) = self.summaries.lock() {
            summaries.push(summary);
        }
    }

    pub fn take_summaries(&self) -> Vec<BackfillSummary> {
        self.summaries.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default()
    }
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

    /// Starts describing a backfill of `table_name`: see [`crate::backfill`].
    pub fn backfill(&self) -> Backfill<'_> {
        Backfill::new(self)
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
