//! The migration model: the [`Migration`] trait a team implements, what it reports ([`Outcome`]),
//! and the validated, ordered set of migrations a runner works from ([`MigrationSet`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::context::MigrationContext;
use crate::id::MigrationId;
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
    fn rejects_duplicates_and_invalid_ids() {
        let duplicate = MigrationSet::new(vec![Box::new(Named("20250101_a")), Box::new(Named("20250101_a"))]);
        assert!(matches!(duplicate, Err(Error::DuplicateId(_))));
        let invalid = MigrationSet::new(vec![Box::new(Named("2025-01-01_a"))]);
        assert!(matches!(invalid, Err(Error::InvalidId(_))));
    }
}
