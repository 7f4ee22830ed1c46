//! The keys of every item the ledger keeps: the one place that knows the history table's layout.
//!
//! | item                          | `pk`             | `sk`                              | `entity`     |
//! |-------------------------------|------------------|-----------------------------------|--------------|
//! | the runner lock (a lease)     | `LOCK`           | `LOCK`                            | `lock`       |
//! | a migration's latest attempt  | `CATALOG`        | `MIGRATION#<id>`                  | `catalog`    |
//! | one attempt                   | `MIGRATION#<id>` | `ATTEMPT#000001`                  | `attempt`    |
//! | a scan segment's checkpoint   | `MIGRATION#<id>` | `CHECKPOINT#<dir>#<name>#00003`   | `checkpoint` |
//! | a table's last version census | `CENSUS`         | `TABLE#<table>`                   | `census`     |
//!
//! Everything about one migration shares a partition, so its attempts and its checkpoints are one
//! Query each; the catalog partition holds each migration's latest attempt, so `status` is one Query
//! however long the history, and finds migrations the binary does not have.

use std::collections::HashMap;
use std::fmt;

use aws_sdk_dynamodb::types::{AttributeValue, TableDescription};

use crate::aws::Item;
use crate::id::MigrationId;

pub(crate) const LOCK: &str = "LOCK";
pub(crate) const CATALOG: &str = "CATALOG";
pub(crate) const ATTEMPT_PREFIX: &str = "ATTEMPT#";
pub(crate) const CENSUS: &str = "CENSUS";
pub(crate) const TABLE_PREFIX: &str = "TABLE#";

/// What kind of item a ledger item is (its `entity` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entity {
    Lock,
    Catalog,
    Attempt,
    Checkpoint,
    Census,
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lock => "lock",
            Self::Catalog => "catalog",
            Self::Attempt => "attempt",
            Self::Checkpoint => "checkpoint",
            Self::Census => "census",
        }
    }
}

/// The key of one ledger item.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ItemKey {
    pub pk: String,
    pub sk: String,
}

impl fmt::Display for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(pk {:?}, sk {:?})", self.pk, self.sk)
    }
}

impl ItemKey {
    fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self { pk: pk.into(), sk: sk.into() }
    }

    pub fn lock() -> Self {
        Self::new(LOCK, LOCK)
    }

    pub fn catalog(id: &MigrationId) -> Self {
        Self::new(CATALOG, migration_pk(id))
    }

    pub fn attempt(id: &MigrationId, number: u32) -> Self {
        Self::new(migration_pk(id), format!("{ATTEMPT_PREFIX}{number:06}"))
    }

    /// The last census of a table's versions: one item per table, overwritten by the next.
    pub fn census(table: &str) -> Self {
        Self::new(CENSUS, format!("{TABLE_PREFIX}{table}"))
    }

    /// `scope` is `<direction>#<backfill name>`: one migration may run several backfills each way.
    pub fn checkpoint(id: &MigrationId, scope: &str, segment: u32) -> Self {
        Self::new(migration_pk(id), format!("{}{segment:05}", checkpoint_prefix(scope)))
    }

    /// The key as DynamoDB attributes.
    pub fn to_item(&self) -> Item {
        HashMap::from([
            ("pk".to_string(), AttributeValue::S(self.pk.clone())),
            ("sk".to_string(), AttributeValue::S(self.sk.clone())),
        ])
    }

    /// The key of an item read from the ledger, for error messages (`?` where it is not a string).
    pub fn of(item: &Item) -> Self {
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(s)) => s.clone(),
            _ => "?".to_string(),
        };
        Self::new(text("pk"), text("sk"))
    }
}

/// The history table's key schema: `pk` (S) as the partition key, `sk` (S) as the sort key.
pub(crate) const LEDGER_SCHEMA: [(&str, &str, &str); 2] = [("pk", "HASH", "S"), ("sk", "RANGE", "S")];

/// A table's key schema as (name, key type, attribute type), partition key first.
pub(crate) fn schema_of(table: &TableDescription) -> Vec<(&str, &str, &str)> {
    let type_of = |name: &str| {
        table
            .attribute_definitions()
            .iter()
            .find(|d| d.attribute_name() == name)
            .map_or("?", |d| d.attribute_type().as_str())
    };
    let mut keys: Vec<(&str, &str, &str)> = table
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().as_str(), type_of(k.attribute_name())))
        .collect();
    keys.sort_by_key(|(_, key_type, _)| *key_type != "HASH");
    keys
}

/// `pk (S), sk (S)`, for messages.
pub(crate) fn describe(keys: &[(&str, &str, &str)]) -> String {
    keys.iter().map(|(name, _, kind)| format!("{name} ({kind})")).collect::<Vec<_>>().join(" and ")
}

/// Whether an item is of a kind the ledger writes.
pub(crate) fn is_ledger_item(item: &Item) -> bool {
    let kinds = [Entity::Lock, Entity::Catalog, Entity::Attempt, Entity::Checkpoint, Entity::Census];
    matches!(item.get("entity"), Some(AttributeValue::S(entity)) if kinds.iter().any(|k| k.as_str() == entity))
}

pub(crate) fn migration_pk(id: &MigrationId) -> String {
    format!("MIGRATION#{id}")
}

pub(crate) fn checkpoint_prefix(scope: &str) -> String {
    format!("CHECKPOINT#{scope}#")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_the_documented_layout() {
        let id = MigrationId::parse("20250101_a").unwrap();
        assert_eq!(ItemKey::lock().to_string(), r#"(pk "LOCK", sk "LOCK")"#);
        assert_eq!(ItemKey::attempt(&id, 7), ItemKey::new("MIGRATION#20250101_a", "ATTEMPT#000007"));
        assert_eq!(ItemKey::catalog(&id), ItemKey::new("CATALOG", "MIGRATION#20250101_a"));
        assert_eq!(ItemKey::checkpoint(&id, "up#main", 3).sk, "CHECKPOINT#up#main#00003");
        assert_eq!(ItemKey::of(&ItemKey::lock().to_item()), ItemKey::lock());
    }
}
