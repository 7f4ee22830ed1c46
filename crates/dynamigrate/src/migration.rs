//! The migration model: the [`Migration`] trait a team implements, what it reports ([`Outcome`]),
//! and the validated, ordered set of migrations a runner works from ([`MigrationSet`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::backfill::BackfillSummary;
use crate::context::MigrationContext;
use crate::id::MigrationId;
use crate::versions::Requirement;
use crate::Error;

/// One migration: an id, a description, `up`, and optionally `down`.
///
/// ```no_run
/// use dynamigrate::{async_trait, Migration, MigrationContext, Outcome};
///
/// pub struct AddMetadata;
///
/// #[async_trait]
/// impl Migration for AddMetadata {
///     fn id(&self) -> &str { "20250125_add_metadata_field" }
///     fn description(&self) -> &str { "Add metadata { tags, category } and version 2" }
///     async fn up(&self, ctx: &MigrationContext) -> anyhow::Result<Outcome> {
///         ctx.log(format!("migrating {}", ctx.table_name));
///         Ok(Outcome::succeeded(0, 0))
///     }
/// }
/// ```
#[async_trait]
pub trait Migration: Send + Sync {
    /// `YYYYMMDD_description`, e.g. `20250125_add_metadata_field`. Ids order the migrations.
    fn id(&self) -> &str;

    /// One line saying what the migration does; shown by `status` and kept in the history.
    fn description(&self) -> &str;

    /// Applies the migration. Must honour `ctx.dry_run` (write nothing) and be safe to run again
    /// after a failure: the runner retries a failed migration on the next `run`.
    async fn up(&self, ctx: &MigrationContext) -> anyhow::Result<Outcome>;

    /// A checksum of the migration's code, recorded with each attempt. When an applied migration's
    /// checksum changes, `status` shows it as modified and `run` refuses to go on (the code that
    /// ran is no longer the code in hand). Migration files have one; a Rust migration may.
    fn checksum(&self) -> Option<String> {
        None
    }

    /// Where the migration stands in expand → backfill → contract; shown by `status`.
    fn phase(&self) -> Option<Phase> {
        None
    }

    /// The logical table the migration works on (from the stage's `[tables]`); `None` is the
    /// stage's main table.
    fn table(&self) -> Option<String> {
        None
    }

    /// For an upgrade: the version it brings the items of its table to.
    fn upgrades_to(&self) -> Option<u64> {
        None
    }

    /// For a contract step: what must hold before it runs. `run` checks it with a read-only scan
    /// right before the step, and refuses (nothing written) if any item breaks it.
    fn requires(&self) -> Option<Requirement> {
        None
    }

    /// A major migration: stages with `backup_before = "major"` take an on-demand backup of its
    /// table before it runs.
    fn major(&self) -> bool {
        false
    }

    /// Whether [`Migration::down`] is implemented. `down` refuses, before running anything,
    /// to roll back past a migration that says `false`.
    fn has_down(&self) -> bool {
        false
    }

    /// Reverts `up`. Implement it together with `has_down() -> true`.
    async fn down(&self, _ctx: &MigrationContext) -> anyhow::Result<Outcome> {
        anyhow::bail!("migration {} has no down", self.id())
    }
}

/// What a migration reports: whether it succeeded and the items it looked at and changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub success: bool,
    pub items_processed: u64,
    pub items_modified: u64,
}

impl Outcome {
    pub fn succeeded(items_processed: u64, items_modified: u64) -> Self {
        Self { success: true, items_processed, items_modified }
    }

    pub fn failed(items_processed: u64, items_modified: u64) -> Self {
        Self { success: false, items_processed, items_modified }
    }
}

// Here, beside `Outcome`, rather than with the summary: the summary is data that events carry, and
// it should not depend on the migration trait (which depends on the backfill that sends events).
impl BackfillSummary {
    /// Succeeded only when every segment finished and no item failed.
    pub fn outcome(&self) -> Outcome {
        let success = self.completed && self.counts.failed == 0;
        Outcome { success, items_processed: self.counts.processed, items_modified: self.counts.modified }
    }
}

/// The migrations of one binary, validated (ids well formed and unique) and in id order.
#[derive(Clone, Default)]
pub struct MigrationSet {
    by_id: BTreeMap<MigrationId, Arc<dyn Migration>>,
}

impl MigrationSet {
    /// Validates every id and rejects duplicates, so that nothing runs from a set that is wrong.
    pub fn new(migrations: Vec<Box<dyn Migration>>) -> Result<Self, Error> {
        let mut by_id = BTreeMap::new();
        for migration in migrations {
            let id = MigrationId::parse(migration.id())?;
            if by_id.insert(id.clone(), Arc::from(migration)).is_some() {
                return Err(Error::DuplicateId(id));
            }
        }
        Ok(Self { by_id })
    }

    pub fn get(&self, id: &MigrationId) -> Option<&Arc<dyn Migration>> {
        self.by_id.get(id)
    }

    /// Migrations in id order, the order `run` applies them.
    pub fn iter(&self) -> impl Iterator<Item = (&MigrationId, &Arc<dyn Migration>)> {
        self.by_id.iter()
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// What the pure planning code needs to know about each migration.
    pub fn summaries(&self) -> Vec<LocalMigration> {
        self.iter()
            .map(|(id, m)| LocalMigration {
                id: id.clone(),
                description: m.description().to_string(),
                has_down: m.has_down(),
                checksum: m.checksum(),
                phase: m.phase(),
                table: m.table(),
                upgrades_to: m.upgrades_to(),
                requires: m.requires().map(|r| Required {
                    table: r.table().map(str::to_string),
                    version: r.version(),
                    text: r.to_string(),
                }),
            })
            .collect()
    }
}

/// A migration as the planner sees it: no code, just facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMigration {
    pub id: MigrationId,
    pub description: String,
    pub has_down: bool,
    pub checksum: Option<String>,
    pub phase: Option<Phase>,
    pub table: Option<String>,
    pub upgrades_to: Option<u64>,
    pub requires: Option<Required>,
}

/// A contract step's requirement as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Required {
    /// The logical table; `None` is the main one.
    pub table: Option<String>,
    /// The version every item must have reached, for a version requirement.
    pub version: Option<u64>,
    /// The requirement in words.
    pub text: String,
}

/// Where a migration stands in expand → backfill → contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Preparation and new-format writes; the old format still works.
    Expand,
    /// Rewrites existing items to the new format.
    Backfill,
    /// Stops supporting the old format (removes old attributes); runs only once verified.
    Contract,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Expand => "expand",
            Self::Backfill => "backfill",
            Self::Contract => "contract",
        })
    }
}

impl FromStr for Phase {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "expand" => Ok(Self::Expand),
            "backfill" => Ok(Self::Backfill),
            "contract" => Ok(Self::Contract),
            other => Err(format!("unknown phase {other:?}: use expand, backfill or contract")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(&'static str);

    #[async_trait]
    impl Migration for Named {
        fn id(&self) -> &str {
            self.0
        }
        fn description(&self) -> &str {
            "test"
        }
        async fn up(&self, _ctx: &MigrationContext) -> anyhow::Result<Outcome> {
            Ok(Outcome::succeeded(0, 0))
        }
    }

    #[test]
    fn orders_by_id_whatever_the_listing_order() {
        let set = MigrationSet::new(vec![Box::new(Named("20250201_b")), Box::new(Named("20250101_a"))]).unwrap();
        let ids: Vec<_> = set.iter().map(|(id, _)| id.to_string()).collect();
        assert_eq!(ids, ["20250101_a", "20250201_b"]);
    }

    #[test]
    fn phases_read_and_print_as_words() {
        assert_eq!("contract".parse::<Phase>(), Ok(Phase::Contract));
        assert_eq!(Phase::Expand.to_string(), "expand");
        assert!("cleanup".parse::<Phase>().unwrap_err().contains("expand, backfill or contract"));
    }

    #[test]
    fn rejects_duplicates_and_invalid_ids() {
        let duplicate = MigrationSet::new(vec![Box::new(Named("20250101_a")), Box::new(Named("20250101_a"))]);
        assert!(matches!(duplicate, Err(Error::DuplicateId(_))));
        let invalid = MigrationSet::new(vec![Box::new(Named("2025-01-01_a"))]);
        assert!(matches!(invalid, Err(Error::InvalidId(_))));
    }
}
