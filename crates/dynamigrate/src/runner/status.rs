//! What the history says now: `status`, and the plans `run` and `down` would follow. The reads that
//! do not depend on each other go out together, since each is a round trip (100 ms from a laptop far
//! from the table) that a run pays before its first write.

use super::report::{PlannedMigration, StatusReport};
use super::{DownOptions, RunOptions, Runner};
use crate::id::MigrationId;
use crate::plan::Status;
use crate::Error;

/// Whether another runner holds the lock now: its work may change the plan, so nothing to do yet is
/// not nothing to do (the run waits for the lock, or reports who holds it).
pub(super) fn busy(status: &StatusReport) -> bool {
    status.lock.as_ref().is_some_and(|holder| !holder.is_expired())
}

impl Runner {
    pub async fn status(&self) -> Result<StatusReport, Error> {
        // The censuses' read is empty on an absent history, so it need not wait for the check;
        // the history's own error, if any, is the one reported.
        let (report, censuses, pitr) = tokio::join!(self.history_status(), self.censuses(), self.pitr_lines());
        let mut report = report?;
        report.censuses = censuses?;
        report.pitr = pitr;
        Ok(report)
    }

    /// The part of `status` a plan needs: the history and the lock, without the censuses and the
    /// point-in-time recovery lines (left empty).
    pub(super) async fn history_status(&self) -> Result<StatusReport, Error> {
        let (ledger, lock) = (self.ledger(), self.lock());
        let history_table_exists = ledger.verify_keys().await?;
        let (lock, latest) = if history_table_exists {
            // The sample that tells a history from a stranger goes out with the reads the plan
            // needs (all read-only, a round trip less in line); a stranger's error is the one reported.
            let (sample, lock, latest) = tokio::join!(ledger.verify_sample(), lock.holder(), ledger.latest_attempts());
            sample?;
            (lock?, latest?)
        } else {
            (None, Vec::new())
        };
        let live_run = lock.as_ref().filter(|h| !h.is_expired()).map(|h| h.run_id.as_str());
        let status = Status::derive(&self.migrations.summaries(), &latest, live_run);
        Ok(StatusReport {
            stage: self.config.stage.clone(),
            history_table: self.config.history_table.clone(),
            history_table_exists,
            lock,
            status,
            censuses: Vec::new(),
            pitr: Vec::new(),
        })
    }

    /// What `run` would apply now (read-only; the real run plans again under the lock).
    pub async fn plan_up(&self, options: &RunOptions) -> Result<Vec<PlannedMigration>, Error> {
        let status = self.history_status().await?.status;
        let ids = status.plan_up(options.to.as_ref(), options.ignore_missing, options.allow_modified)?;
        Ok(self.describe(&ids))
    }

    /// What `down` would revert now (read-only).
    pub async fn plan_down(&self, options: &DownOptions) -> Result<Vec<PlannedMigration>, Error> {
        let status = self.history_status().await?.status;
        Ok(self.describe(&status.plan_down(&options.target)?))
    }

    pub(super) fn describe(&self, ids: &[MigrationId]) -> Vec<PlannedMigration> {
        ids.iter()
            .map(|id| PlannedMigration {
                id: id.clone(),
                description: self.migrations.get(id).map(|m| m.description().to_string()).unwrap_or_default(),
            })
            .collect()
    }
}
