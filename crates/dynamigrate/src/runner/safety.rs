//! The runner's safety rails: the preflight that refuses a run on tables without point-in-time
//! recovery when the stage requires it, and the backup taken before a migration the stage's
//! `backup_before` picks, waited for until AVAILABLE, its ARN kept in the attempt.

use std::sync::Arc;

use super::report::MigrationReport;
use super::{LockedRun, Runner};
use crate::attempt::Direction;
use crate::clock::now_ms;
use crate::id::MigrationId;
use crate::migration::{Migration, Outcome};
use crate::safety::{self, Backup, ExportRequest, Exported, Patience, Pitr, PolicyScope, RestoreSource, Restored};
use crate::Error;

impl Runner {
    /// The point-in-time recovery of a table of the stage (`None`: the main one).
    pub async fn pitr(&self, table: Option<&str>) -> Result<Pitr, Error> {
        safety::pitr(&self.client, &self.physical_table(table)?).await
    }

    /// Turns point-in-time recovery on for a table of the stage.
    pub async fn enable_pitr(&self, table: Option<&str>) -> Result<Pitr, Error> {
        safety::enable_pitr(&self.client, &self.physical_table(table)?).await
    }

    /// Each table of the stage's point-in-time recovery, for `status`: what is known, or why not.
    pub(super) async fn pitr_lines(&self) -> Vec<PitrLine> {
        let mut lines = Vec::new();
        let tables = self.config.table.iter().chain(self.config.tables.values());
        for table in tables {
            let unknown = |why: String| PitrLine { table: table.clone(), pitr: None, unknown: Some(why) };
            let line = match safety::pitr(&self.client, table).await {
                Ok(pitr) => PitrLine { table: table.clone(), pitr: Some(pitr), unknown: None },
                // The endpoint lacks the API (DynamoDB Local): a fact, not a failure of status.
                Err(Error::Invalid(_)) => unknown("this endpoint does not support it".into()),
                Err(error) => unknown(error.to_string()),
            };
            lines.push(line);
        }
        lines
    }

    /// Takes an on-demand backup of a table of the stage now and waits until it is AVAILABLE.
    pub async fn backup_now(&self, table: Option<&str>) -> Result<Backup, Error> {
        let table = self.physical_table(table)?;
        let started = safety::create_backup(&self.client, &table, &safety::backup_name(&table, None, now_ms())).await?;
        safety::wait_for_backup(&self.client, &started, &self.patience(self.shutdown.clone())).await
    }

    /// The backups of a table of the stage (`all`: of every table the credentials see).
    pub async fn backups(&self, table: Option<&str>, all: bool) -> Result<Vec<Backup>, Error> {
        let table = if all { None } else { Some(self.physical_table(table)?) };
        safety::list_backups(&self.client, table.as_deref()).await
    }

    /// One backup, by ARN.
    pub async fn backup(&self, arn: &str) -> Result<Backup, Error> {
        safety::describe_backup(&self.client, arn).await
    }

    pub async fn delete_backup(&self, arn: &str) -> Result<Backup, Error> {
        safety::delete_backup(&self.client, arn).await
    }

    /// Restores into the new table `target` from `source` (a backup, a point in time of a table of
    /// the stage, or the backup taken before migration `before`), waiting until it is ACTIVE.
    pub async fn restore(&self, source: Restore<'_>, target: &str) -> Result<Restored, Error> {
        if crate::aws::table_exists(&self.client, target).await? {
            return Err(Error::Invalid(format!(
                "table {target} exists already; a restore makes a new table: name one that does not exist"
            )));
        }
        let source = match source {
            Restore::Backup(arn) => RestoreSource::Backup { arn: arn.into() },
            Restore::Before(id) => RestoreSource::Backup { arn: self.backup_before(id).await? },
            Restore::ToTime { table, at_ms } => {
                RestoreSource::PointInTime { table: self.physical_table(table)?, at_ms }
            }
        };
        safety::restore(&self.client, &source, target, &self.patience(self.shutdown.clone())).await
    }

    /// The backup the runner took before migration `id` ran last.
    async fn backup_before(&self, id: &MigrationId) -> Result<String, Error> {
        let attempts = self.ledger().attempts(id).await?;
        attempts.into_iter().rev().find_map(|a| a.backup_arn).ok_or_else(|| {
            Error::Invalid(format!(
                "no backup was taken before migration {id} (the stage's backup_before did not ask for one, \
                 or it never ran); restore from a backup by ARN or to a point in time instead"
            ))
        })
    }

    /// Exports a table of the stage to S3 (`request.table` is a logical name, or empty for the main
    /// one), waits until COMPLETED and lists what it wrote. Needs [`Runner::with_s3`].
    pub async fn export(&self, mut request: ExportRequest) -> Result<Exported, Error> {
        let s3 =
            self.s3.as_ref().ok_or_else(|| Error::Internal("export needs an S3 client (Runner::with_s3)".into()))?;
        let logical = Some(request.table.as_str()).filter(|t| !t.is_empty());
        request.table = self.physical_table(logical)?;
        safety::export(&self.client, s3, &request, &self.patience(self.shutdown.clone())).await
    }

    /// The least-privilege IAM policy of this stage.
    pub fn policy(
        &self,
        region: &str,
        account: Option<&str>,
        export_bucket: Option<(String, String)>,
    ) -> serde_json::Value {
        let tables = self.config.table.iter().chain(self.config.tables.values()).cloned().collect();
        safety::policy_document(&PolicyScope {
            region: region.into(),
            account: account.unwrap_or("*").into(),
            tables,
            history_table: self.config.history_table.clone(),
            export_bucket,
        })
    }

    fn patience(&self, cancel: tokio_util::sync::CancellationToken) -> Patience {
        Patience { timeout: self.config.backup_timeout, cancel }
    }

    /// Refuses (nothing written) when the stage requires point-in-time recovery and a table the
    /// planned migrations work on has it off.
    pub(super) async fn check_pitr(&self, planned: &[MigrationId]) -> Result<(), Error> {
        if !self.config.require_pitr {
            return Ok(());
        }
        let mut tables = vec![self.physical_table(None)?];
        for id in planned {
            let logical = self.migrations.get(id).and_then(|m| m.table());
            let table = self.physical_table(logical.as_deref())?;
            if !tables.contains(&table) {
                tables.push(table);
            }
        }
        for table in tables {
            if !safety::pitr(&self.client, &table).await?.enabled {
                return Err(Error::PitrOff { table, stage: self.config.stage.clone() });
            }
        }
        Ok(())
    }

    /// The table a migration's backup is of, when the stage wants one before it.
    pub(super) fn backup_table(&self, migration: &dyn Migration) -> Result<Option<String>, Error> {
        if !self.config.backup_before.wants(migration.major()) {
            return Ok(None);
        }
        self.physical_table(migration.table().as_deref()).map(Some)
    }

    /// Takes the backup the stage wants before `migration`, and waits until it is AVAILABLE.
    pub(super) async fn backup_first(
        &self,
        run: &LockedRun<'_>,
        migration: &Arc<dyn Migration>,
        id: &MigrationId,
    ) -> Result<Option<Backup>, Error> {
        let Some(table) = self.backup_table(migration.as_ref())? else { return Ok(None) };
        let name = safety::backup_name(&table, Some(id), now_ms());
        tracing::info!("{id}: backing up {table} as {name} first");
        let started = safety::create_backup(&self.client, &table, &name).await?;
        let backup = safety::wait_for_backup(&self.client, &started, &self.patience(run.token.clone())).await.map_err(
            |error| {
                let message = match error {
                    Error::Backup { message, .. } => message,
                    other => format!("{other} (backup {} may still finish in DynamoDB)", started.arn),
                };
                Error::Backup { table: table.clone(), message }
            },
        )?;
        tracing::info!("{id}: backup {} is available", backup.arn);
        Ok(Some(backup))
    }
}

/// What `restore` restores from.
#[derive(Debug, Clone, Copy)]
pub enum Restore<'a> {
    Backup(&'a str),
    /// The backup taken before this migration ran.
    Before(&'a MigrationId),
    /// A table of the stage (`None`: the main one) at a time (epoch ms; `None`: the latest).
    ToTime {
        table: Option<&'a str>,
        at_ms: Option<u64>,
    },
}

/// One table's point-in-time recovery in `status`: read, or why it could not be.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PitrLine {
    pub table: String,
    pub pitr: Option<Pitr>,
    pub unknown: Option<String>,
}

/// The report of a migration stopped because its backup did not complete: nothing ran.
pub(super) fn not_backed_up(
    migration: &dyn Migration,
    id: &MigrationId,
    direction: Direction,
    error: &Error,
) -> MigrationReport {
    MigrationReport {
        id: id.clone(),
        description: migration.description().to_string(),
        direction,
        outcome: Outcome::failed(0, 0),
        duration_ms: 0,
        error: Some(error.to_string()),
        backfills: Vec::new(),
        verification: None,
        backup: None,
    }
}
