//! An upgrade backfill: the chain applied eagerly to every item below a version.

use std::sync::Arc;

use super::{completion, Census, UpgradeChain};
use crate::backfill::{Backfill, BackfillSummary, Guard};

/// Configures `backfill` as the upgrade of its table to `target`: it reads only the items below
/// `target` (a server-side filter, joined to any filter already set), and its progress line says
/// what share of the table is at `target`, from the live counts and the table's last census.
///
/// The write is guarded on the version attribute alone: under expand → backfill → contract every
/// writer of the application writes items at the current version, so an item still below `target`
/// when our write lands is one nobody wrote since we read it. Cheaper than guarding every attribute
/// the item holds, and as safe under that discipline; call `.guard(Guard::Item)` on the result when
/// some writer still writes old-format items without moving the version.
pub async fn prepare(mut backfill: Backfill, chain: &UpgradeChain, target: u64) -> Backfill {
    let versioning = chain.versioning();
    backfill = backfill.select(versioning.below(target)).guard(Guard::Version(versioning.attribute.clone()));
    let baseline = last_census(&backfill, &versioning.attribute).await;
    backfill.completion(Arc::new(move |counts, estimated| {
        let percent = completion(target, counts, estimated, baseline.as_ref())?;
        Some(format!("{percent:.1}% of items at v{target}"))
    }))
}

/// Runs the upgrade of the backfill's table to `target` through `chain`.
pub async fn run(backfill: Backfill, chain: &UpgradeChain, target: u64) -> anyhow::Result<BackfillSummary> {
    chain.check().map_err(anyhow::Error::msg)?;
    let transform = Arc::new(chain.transform(target));
    prepare(backfill, chain, target).await.run_shared(transform).await
}

/// The table's last census, if it counted the same attribute; progress does without one.
async fn last_census(backfill: &Backfill, attribute: &str) -> Option<Census> {
    let ledger = backfill.ledger()?;
    match ledger.census::<Census>(&backfill.spec().table).await {
        Ok(found) => found.filter(|c| c.versioning.attribute == attribute),
        Err(error) => {
            tracing::debug!("no census for the progress line: {error}");
            None
        }
    }
}
