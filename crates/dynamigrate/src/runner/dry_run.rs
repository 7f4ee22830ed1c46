//! A dry run: the same plan, each migration run with `dry_run` set, no lock, nothing written.

use super::report::{PlannedMigration, RunReport};
use super::{execute, versions, Runner};
use crate::attempt::Direction;
use crate::backfill::BackfillSettings;
use crate::ledger::LockHolder;
use crate::Error;

impl Runner {
    pub(super) async fn dry_run(
        &self,
        table: &str,
        direction: Direction,
        (plan, lock): (&[PlannedMigration], Option<&LockHolder>),
        settings: &BackfillSettings,
    ) -> Result<RunReport, Error> {
        if let Some(holder) = lock.filter(|h| !h.is_expired()) {
            tracing::warn!("{holder} is running migrations now; this dry run may be out of date");
        }
        let mut report = self.report(table, direction, true);
        for (index, planned) in plan.iter().enumerate() {
            let Some(migration) = self.migrations.get(&planned.id) else {
                continue;
            };
            let verification =
                self.verify_first(migration, (&planned.id, direction), settings, false, self.shutdown.clone()).await?;
            if let Some(verification) = verification.filter(|v| !v.passed) {
                // Steps before it in this plan did not run (dry run): they may be what it waits for.
                if index == 0 {
                    report.migrations.push(versions::refused(migration.as_ref(), &planned.id, verification));
                    break;
                }
                tracing::warn!(
                    "{}: {} of {} items break {} now; a real run checks again after the steps before it",
                    planned.id,
                    verification.failing,
                    verification.scanned,
                    verification.requirement
                );
            }
            let env = self.backfill_env(&planned.id, true, self.shutdown.clone(), settings, direction, None);
            let context = self.context(&planned.id, table, env);
            let mut migration_report = execute(migration.as_ref(), &planned.id, direction, &context).await;
            migration_report.backup =
                self.backup_table(migration.as_ref())?.map(|t| format!("would back up {t} first"));
            let failed = !migration_report.outcome.success;
            report.migrations.push(migration_report);
            if failed {
                break;
            }
        }
        Ok(report)
    }
}
