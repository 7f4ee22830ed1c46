//! Helpers for backfill tests: a migration made of one backfill, running migrations in process,
//! writing "as the application" from inside a transform, and waiting for a run's progress.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use dynamigrate::backfill::{Backfill, BackfillSummary, Change, Item, Transform};
use dynamigrate::{async_trait, Migration, MigrationContext, Outcome, RunOptions};

use crate::{n, World};

/// Builder settings a test applies to a backfill.
pub type Configure = fn(Backfill) -> Backfill;

/// A migration whose `up` is one backfill with the given transform and builder settings.
pub struct BackfillMigration {
    id: &'static str,
    transform: Arc<dyn Transform>,
    configure: Configure,
}

#[async_trait]
impl Migration for BackfillMigration {
    fn id(&self) -> &str {
        self.id
    }
    fn description(&self) -> &str {
        "test backfill"
    }
    async fn up(&self, ctx: &MigrationContext) -> anyhow::Result<Outcome> {
        let summary = (self.configure)(ctx.backfill()).run_shared(self.transform.clone()).await?;
        Ok(summary.outcome())
    }
}

pub fn migration(
    id: &'static str,
    transform: impl Fn(&Item) -> anyhow::Result<Change> + Send + Sync + 'static,
    configure: Configure,
) -> Box<dyn Migration> {
    Box::new(BackfillMigration { id, transform: Arc::new(transform), configure })
}

/// Runs migrations in-process and returns the single backfill summary of each.
pub async fn run(world: &World, migrations: Vec<Box<dyn Migration>>, dry_run: bool) -> Vec<BackfillSummary> {
    let report = world.runner(migrations).run(&RunOptions { dry_run, ..RunOptions::default() }).await.expect("run");
    report.migrations.into_iter().flat_map(|m| m.backfills).collect()
}

/// Makes an application write from inside a (synchronous) transform, so it lands between our read
/// and our write. Needs the multi-threaded runtime.
pub fn write_now<T, E>(write: impl std::future::Future<Output = Result<T, E>>) -> anyhow::Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let write = async { write.await.map(drop).map_err(anyhow::Error::from) };
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(write))
}

pub fn num(v: &str) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Waits until the backfill's checkpoints show at least `scanned` items scanned.
pub async fn wait_for_progress(world: &World, scanned: i64) {
    for _ in 0..600 {
        let total: i64 = world.checkpoints().await.iter().filter_map(|c| n(c, "scanned")).sum();
        if total >= scanned {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the backfill never reached {scanned} scanned items");
}
