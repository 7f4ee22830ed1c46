//! The runner's side of schema versions: `versions` (a census, recorded in the ledger), the last
//! censuses for `status`, and the verification a contract step must pass before it runs.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::report::MigrationReport;
use super::Runner;
use crate::attempt::{Direction, Verification};
use crate::backfill::{BackfillSettings, Scope};
use crate::id::MigrationId;
use crate::migration::{Migration, Outcome};
use crate::versions::{self, Census, Sampling};
use crate::Error;

impl Runner {
    /// The physical name of a table: the stage's main table for `None`, else a logical name from
    /// the stage's `[tables]`, or the main table's own name.
    pub fn physical_table(&self, name: Option<&str>) -> Result<String, Error> {
        let main = || self.config.table.clone().ok_or_else(|| Error::NoTable { stage: self.config.stage.clone() });
        match name {
            None => main(),
            Some(name) if self.config.tables.contains_key(name) => Ok(self.config.tables[name].clone()),
            Some(name) if self.config.table.as_deref() == Some(name) => main(),
            Some(name) => self.config.tables.get(name).cloned().ok_or_else(|| {
                let known: Vec<&str> =
                    self.config.table.iter().chain(self.config.tables.keys()).map(String::as_str).collect();
                Error::Config(format!(
                    "no table {name:?} in stage {:?}; its tables are: {}. Add it under [stages.{}.tables]",
                    self.config.stage,
                    known.join(", "),
                    self.config.stage
                ))
            }),
        }
    }

    /// Counts `table`'s items by version with a read-only scan and records the census in the
    /// history table (creating it if needed), where `status` shows it.
    pub async fn versions(
        &self,
        table: Option<&str>,
        sampling: Sampling,
        settings: &BackfillSettings,
    ) -> Result<Census, Error> {
        let table = self.physical_table(table)?;
        if !crate::aws::table_exists(&self.client, &table).await? {
            return Err(Error::TableNotFound { table });
        }
        let scope = self.scope(None, self.shutdown.clone());
        let census = versions::census(&scope, &table, &self.config.versioning_of(&table), sampling, settings).await?;
        let ledger = self.ledger();
        ledger.verify().await?;
        ledger.ensure_table().await?;
        ledger.record_census(&table, &census).await?;
        Ok(census)
    }

    /// Each table's last census, as recorded.
    pub(super) async fn censuses(&self) -> Result<Vec<Census>, Error> {
        self.ledger().censuses().await
    }

    /// A read-only scope for the scans of versions: writes nothing, stops when `cancel` is.
    fn scope(&self, migration: Option<&MigrationId>, cancel: CancellationToken) -> Scope {
        Scope {
            client: self.client.clone(),
            dry_run: true,
            cancel,
            observer: self.observer.clone(),
            retry_stats: self.retry_stats.clone(),
            migration: migration.cloned(),
            completion: None,
        }
    }

    /// Runs a contract step's verification, when it has one (and only on the way up: `down`
    /// brings the old format back, which needs no check). `record` keeps the census it yields;
    /// `cancel` stops the scan (Ctrl-C, or the run's lost lease).
    pub(super) async fn verify_first(
        &self,
        migration: &Arc<dyn Migration>,
        (id, direction): (&MigrationId, Direction),
        settings: &BackfillSettings,
        record: bool,
        cancel: CancellationToken,
    ) -> Result<Option<Verification>, Error> {
        let Some(requirement) = migration.requires().filter(|_| direction == Direction::Up) else {
            return Ok(None);
        };
        let table = self.physical_table(requirement.table())?;
        let versioning = self.config.versioning_of(&table);
        tracing::info!("{id}: verifying {requirement} before it runs");
        let (verification, census) =
            versions::verify(&self.scope(Some(id), cancel), &table, &versioning, &requirement, settings).await?;
        if let (true, Some(census)) = (record, census) {
            self.ledger().record_census(&table, &census).await?;
        }
        Ok(Some(verification))
    }
}

/// The report of a contract step refused by its verification: nothing ran, nothing was written.
pub(super) fn refused(migration: &dyn Migration, id: &MigrationId, verification: Verification) -> MigrationReport {
    let keys = if verification.sample_keys.is_empty() {
        String::new()
    } else {
        format!(" (first keys: {})", verification.sample_keys.join(", "))
    };
    let error = format!(
        "refused: {} of {} items in {} break the requirement {}{keys}; nothing was changed. \
         Finish the backfill that brings them there, then run again",
        verification.failing, verification.scanned, verification.table, verification.requirement
    );
    MigrationReport {
        id: id.clone(),
        description: migration.description().to_string(),
        direction: Direction::Up,
        outcome: Outcome::failed(0, 0),
        duration_ms: 0,
        error: Some(error),
        backfills: Vec::new(),
        verification: Some(verification),
        backup: None,
    }
}
