//! What a contract step requires to hold before it runs. Pure: deciding whether one item fails a requirement is unit-tested here.

use std::collections::BTreeMap;
use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue;

use super::Versioning;
use crate::backfill::{Item, Selection};

/// What must hold on a table before a contract step may run. `table` is a logical name from the
/// stage's `[tables]`; `None` is the stage's main table.
#[derive(Debug, Clone, PartialEq)]
pub enum Requirement {
    /// Every item at `version` or above (an item without the attribute is at the unversioned version).
    AtLeast { table: Option<String>, version: u64 },
    /// No item matches the filter expression.
    NoneMatch {
        table: Option<String>,
        filter: String,
        names: BTreeMap<String, String>,
        values: BTreeMap<String, AttributeValue>,
    },
}

impl Requirement {
    pub fn table(&self) -> Option<&str> {
        match self {
            Self::AtLeast { table, .. } | Self::NoneMatch { table, .. } => table.as_deref(),
        }
    }

    /// The version every item must have reached, for a version requirement.
    pub fn version(&self) -> Option<u64> {
        match self {
            Self::AtLeast { version, .. } => Some(*version),
            Self::NoneMatch { .. } => None,
        }
    }

    /// Whether `item` breaks a version requirement: below it, or with a version that is not a
    /// whole number (unknown is not verified).
    pub fn fails(version: u64, versioning: &Versioning, item: &Item) -> bool {
        versioning.version_of(item).map_or(true, |v| v < version)
    }

    /// What the verification scan reads: for a version, the keys and the version attribute of
    /// every item (so the scan also yields the table's census); for a filter, the keys of the items
    /// that match it (the filter runs server-side, so only those cross the network).
    pub fn selection(&self, versioning: &Versioning) -> Selection {
        match self {
            Self::AtLeast { .. } => {
                Selection { projection: Some(vec![versioning.attribute.clone()]), ..Selection::default() }
            }
            Self::NoneMatch { filter, names, values, .. } => Selection {
                filter: Some(filter.clone()),
                names: names.clone(),
                values: values.clone(),
                projection: Some(Vec::new()),
                ..Selection::default()
            },
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AtLeast { version, .. } => write!(f, "every item at v{version} or above"),
            Self::NoneMatch { filter, .. } => write!(f, "no item matching `{filter}`"),
        }?;
        match self.table() {
            Some(table) => write!(f, " in table {table}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_fails_below_the_version_or_when_its_version_is_unknown() {
        let versioning = Versioning::default();
        let item = |v: Option<AttributeValue>| {
            let mut item = Item::from([("pk".to_string(), AttributeValue::S("A".into()))]);
            if let Some(v) = v {
                item.insert("version".into(), v);
            }
            item
        };
        let n = |v: &str| Some(AttributeValue::N(v.into()));
        assert!(Requirement::fails(2, &versioning, &item(None)), "unversioned is v1");
        assert!(!Requirement::fails(1, &versioning, &item(None)));
        assert!(Requirement::fails(3, &versioning, &item(n("2"))));
        assert!(!Requirement::fails(3, &versioning, &item(n("3"))));
        assert!(!Requirement::fails(3, &versioning, &item(n("4"))));
        assert!(Requirement::fails(3, &versioning, &item(n("3.5"))), "not a whole number");
        assert!(Requirement::fails(3, &versioning, &item(Some(AttributeValue::S("3".into())))));
    }

    #[test]
    fn requirements_read_as_words() {
        let at_least = Requirement::AtLeast { table: None, version: 3 };
        assert_eq!(at_least.to_string(), "every item at v3 or above");
        let none = Requirement::NoneMatch {
            table: Some("orders".into()),
            filter: "attribute_exists(#l)".into(),
            names: BTreeMap::from([("#l".into(), "legacy".into())]),
            values: BTreeMap::new(),
        };
        assert_eq!(none.to_string(), "no item matching `attribute_exists(#l)` in table orders");
        assert_eq!(none.selection(&Versioning::default()).projection, Some(vec![]));
    }
}
