//! Running one direction of one migration and turning whatever it returns into a report.

use std::time::Instant;

use super::report::MigrationReport;
use crate::attempt::Direction;
use crate::backfill::BackfillSummary;
use crate::context::MigrationContext;
use crate::events::millis;
use crate::id::MigrationId;
use crate::migration::{Migration, Outcome};

pub(super) async fn execute(
    migration: &dyn Migration,
    id: &MigrationId,
    direction: Direction,
    context: &MigrationContext,
) -> MigrationReport {
    let verb = if direction == Direction::Up { "applying" } else { "rolling back" };
    let dry = if context.dry_run { " (dry run)" } else { "" };
    tracing::info!("{verb} {id}{dry}: {}", migration.description());
    let started = Instant::now();
    let result = match direction {
        Direction::Up => migration.up(context).await,
        Direction::Down => migration.down(context).await,
    };
    let backfills = context.backfills.take_summaries();
    let (outcome, error) = match result {
        Ok(outcome) if outcome.success => (outcome, None),
        Ok(outcome) => (outcome, Some("the migration reported success = false".to_string())),
        // What its backfills did before the failure is still what happened to the table.
        Err(error) => (partial(&backfills), Some(format!("{error:#}"))),
    };
    match &error {
        None => tracing::info!(
            "{id}: done in {:.1?}: {} processed, {} modified",
            started.elapsed(),
            outcome.items_processed,
            outcome.items_modified
        ),
        Some(message) => tracing::error!("{id}: failed after {:.1?}: {message}", started.elapsed()),
    }
    MigrationReport {
        id: id.clone(),
        description: migration.description().to_string(),
        direction,
        outcome,
        duration_ms: millis(started.elapsed()),
        error,
        backfills,
        verification: None,
        backup: None,
    }
}

/// A failed migration's counts: the sum of what its backfills did.
fn partial(backfills: &[BackfillSummary]) -> Outcome {
    let sum = |count: fn(&BackfillSummary) -> u64| backfills.iter().map(count).sum();
    Outcome::failed(sum(|b| b.counts.processed), sum(|b| b.counts.modified))
}
