//! Attempt numbers, and the record of an attempt that ended before its migration ran.

use super::report::MigrationReport;
use super::LockedRun;
use crate::attempt::{Attempt, AttemptState, Direction};
use crate::clock::{now_ms, rfc3339};
use crate::id::MigrationId;
use crate::ledger::MAX_ATTEMPT;
use crate::Error;

/// The number of a migration's next attempt.
pub(super) fn next_attempt(latest: &[Attempt], id: &MigrationId) -> Result<u32, Error> {
    let last = latest.iter().find(|a| &a.migration_id == id).map_or(0, |a| a.attempt);
    match last.checked_add(1).filter(|n| *n <= MAX_ATTEMPT) {
        Some(number) => Ok(number),
        None => Err(Error::Invalid(format!(
            "migration {id} has had {last} attempts, the most the history can number; \
             fix what makes it fail and give the fix a new migration id"
        ))),
    }
}

/// Records an attempt that ended before its migration ran (refused, or its backup failed).
pub(super) async fn ended_before(
    run: &LockedRun<'_>,
    mut attempt: Attempt,
    report: MigrationReport,
) -> Result<MigrationReport, Error> {
    attempt.state = AttemptState::Failed;
    attempt.finished_at = Some(rfc3339(now_ms()));
    attempt.duration_ms = Some(0);
    attempt.error = report.error.clone();
    run.ledger.write_attempt(&attempt, &run.fence).await?;
    Ok(report)
}

/// The attempt as its migration ended: the state for the direction, the time taken, the counts.
pub(super) fn settle(attempt: &mut Attempt, report: &MigrationReport, started_ms: u64) {
    let finished_ms = now_ms();
    attempt.state = match (report.outcome.success, attempt.direction) {
        (true, Direction::Up) => AttemptState::Succeeded,
        (true, Direction::Down) => AttemptState::RolledBack,
        (false, _) => AttemptState::Failed,
    };
    attempt.finished_at = Some(rfc3339(finished_ms));
    attempt.duration_ms = Some(finished_ms.saturating_sub(started_ms));
    attempt.items_processed = report.outcome.items_processed;
    attempt.items_modified = report.outcome.items_modified;
    attempt.error = report.error.clone();
}
