//! A backfill as plain data: which table, which items, how to guard and write them, with which
//! knobs. A spec can be stored and read back (the ledger keeps it for workers that share a
//! backfill), and it says nothing about where it runs: that is the [`Scope`](super::Scope).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::change::Guard;
use super::settings::BackfillSettings;
use super::transform::Transform;
use super::value::dynamo_json;

/// One backfill: the table, the items, the guard and the knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillSpec {
    /// Names the backfill when a migration runs more than one (checkpoints are kept per name).
    pub name: String,
    pub table: String,
    #[serde(default)]
    pub selection: Selection,
    #[serde(default)]
    pub guard: Guard,
    #[serde(default)]
    pub settings: BackfillSettings,
}

/// Which items a scan hands on, and which of their attributes it reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// Only items whose partition key begins with this (a server-side filter).
    pub pk_prefix: Option<String>,
    /// Only items whose sort key begins with this (a server-side filter).
    pub sk_prefix: Option<String>,
    /// A server-side filter expression, with its placeholders below.
    pub filter: Option<String>,
    #[serde(default)]
    pub names: BTreeMap<String, String>,
    #[serde(default, with = "dynamo_json")]
    pub values: BTreeMap<String, AttributeValue>,
    /// Read only these attributes (the key is always added).
    pub projection: Option<Vec<String>>,
}

impl Selection {
    /// The items both select: the filters joined with AND, each in parentheses only then (DynamoDB
    /// refuses redundant ones, and the scan wraps the whole filter in its own), the placeholders
    /// merged; prefixes and projection are `other`'s where it sets them.
    pub fn and(mut self, other: Selection) -> Selection {
        self.filter = match (self.filter.take(), other.filter) {
            (Some(mine), Some(theirs)) => Some(format!("({mine}) AND ({theirs})")),
            (mine, theirs) => mine.or(theirs),
        };
        self.names.extend(other.names);
        self.values.extend(other.values);
        self.pk_prefix = other.pk_prefix.or(self.pk_prefix);
        self.sk_prefix = other.sk_prefix.or(self.sk_prefix);
        self.projection = other.projection.or(self.projection);
        self
    }
}

impl BackfillSpec {
    /// A backfill named `main` of every item of `table`, with the default guard and knobs.
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            name: "main".into(),
            table: table.into(),
            selection: Selection::default(),
            guard: Guard::default(),
            settings: BackfillSettings::default(),
        }
    }

    /// A stable digest of what the backfill does (table, selection, guard, write mode) and of the
    /// transform's fingerprint: two processes with the same fingerprint do the same work. The
    /// knobs that only change pace (concurrency, rates) are left out.
    pub fn fingerprint(&self, transform: &dyn Transform) -> String {
        let what = serde_json::json!({
            "table": self.table,
            "selection": self.selection,
            "guard": self.guard,
            "write_mode": self.settings.write_mode.unwrap_or_default(),
            "transform": transform.fingerprint(),
        });
        let digest = Sha256::digest(what.to_string().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::change::Change;
    use super::super::value::Item;
    use super::*;

    fn upgrade(_: &Item) -> anyhow::Result<Change> {
        Ok(Change::Skip)
    }

    fn spec() -> BackfillSpec {
        let mut spec = BackfillSpec::new("items");
        spec.selection.filter = Some("#n = :big".into());
        spec.selection.names.insert("#n".into(), "n".into());
        spec.selection.values.insert(":big".into(), AttributeValue::N("12345678901234567890123456789012345678".into()));
        spec.selection.values.insert(":tags".into(), AttributeValue::Ss(vec!["a".into(), "b".into()]));
        spec.guard = Guard::Version("version".into());
        spec
    }

    #[test]
    fn a_spec_round_trips_through_json_with_every_value_type_kept() {
        let spec = spec();
        let text = serde_json::to_string(&spec).unwrap();
        assert!(text.contains(r#""N":"12345678901234567890123456789012345678""#), "{text}");
        let back: BackfillSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn selections_combine_their_filters_and_placeholders() {
        let one = |filter: &str, name: &str| Selection {
            filter: Some(filter.into()),
            names: BTreeMap::from([(name.to_string(), "a".to_string())]),
            ..Selection::default()
        };
        let both = one("#x = :x", "#x").and(one("#y < :y", "#y"));
        assert_eq!(both.filter.as_deref(), Some("(#x = :x) AND (#y < :y)"));
        assert_eq!(both.names.len(), 2);
        assert_eq!(Selection::default().and(one("#y < :y", "#y")).filter.as_deref(), Some("#y < :y"), "bare");
    }

    #[test]
    fn the_fingerprint_is_stable_and_follows_what_the_backfill_does() {
        let closure = |item: &Item| upgrade(item);
        let first = spec().fingerprint(&upgrade);
        assert_eq!(first, spec().fingerprint(&upgrade), "stable");
        assert_eq!(first.len(), 64);
        let mut paced = spec();
        paced.settings.concurrency = Some(64);
        assert_eq!(paced.fingerprint(&upgrade), first, "pace is not part of it");
        let mut other = spec();
        other.selection.sk_prefix = Some("METADATA".into());
        assert_ne!(other.fingerprint(&upgrade), first, "the selection is");
        assert_ne!(spec().fingerprint(&closure), first, "and so is the transform");
    }
}
