//! What a transform returns for an item, and how a change becomes a guarded DynamoDB write.
//! Pure: building expressions and applying a change to an item in memory are unit-tested here.

use std::borrow::Cow;
use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::value::Item;

/// A transform's verdict on one item.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Leave the item as it is (e.g. already migrated). Counted as processed, not modified.
    Skip,
    /// Set and remove top-level attributes.
    Update { set: BTreeMap<String, AttributeValue>, remove: Vec<String> },
    /// Replace the whole item (it must keep its key).
    Put(Item),
    /// Delete the item.
    Delete,
}

impl Change {
    /// Starts an update: `Change::update().set("version", n(2)).remove("legacy")`.
    pub fn update() -> Self {
        Self::Update { set: BTreeMap::new(), remove: Vec::new() }
    }

    /// Adds an attribute to set (on an update; other changes are returned unchanged).
    pub fn set(mut self, name: impl Into<String>, value: AttributeValue) -> Self {
        if let Self::Update { set, .. } = &mut self {
            set.insert(name.into(), value);
        }
        self
    }

    /// Adds an attribute to remove (on an update; other changes are returned unchanged).
    pub fn remove(mut self, name: impl Into<String>) -> Self {
        if let Self::Update { remove, .. } = &mut self {
            remove.push(name.into());
        }
        self
    }

    /// A typed item as a whole-item put, through `serde_dynamo`.
    pub fn put_typed<T: serde::Serialize>(value: &T) -> anyhow::Result<Self> {
        Ok(Self::Put(serde_dynamo::aws_sdk_dynamodb_1::to_item(value)?))
    }

    /// Skip when the change would leave `item` exactly as it is, so a second run writes nothing.
    pub fn normalize(self, item: &Item) -> Self {
        let unchanged = match &self {
            Self::Update { set, remove } => {
                set.iter().all(|(k, v)| item.get(k) == Some(v)) && remove.iter().all(|k| !item.contains_key(k))
            }
            Self::Put(new) => new == item,
            _ => false,
        };
        if unchanged || matches!(&self, Self::Update { set, remove } if set.is_empty() && remove.is_empty()) {
            Self::Skip
        } else {
            self
        }
    }

    /// The item after the change (None when deleted): for dry-run diffs and conflict checks.
    pub fn apply(&self, item: &Item) -> Option<Item> {
        self.clone().apply_to(item.clone())
    }

    /// The item after the change, made from `item` in place: for batch writes, which own the item
    /// they read and need not copy it.
    pub fn apply_to(self, mut item: Item) -> Option<Item> {
        match self {
            Self::Skip => Some(item),
            Self::Update { set, remove } => {
                for name in &remove {
                    item.remove(name);
                }
                item.extend(set);
                Some(item)
            }
            Self::Put(new) => Some(new),
            Self::Delete => None,
        }
    }

    /// For a guarded write: a `Put` becomes the update that turns `read` into the new item (set what
    /// differs, remove what is gone). A whole-item PutItem would drop attributes the application
    /// added after our read, which no condition can detect; an update leaves them alone.
    pub fn as_update(&self, read: &Item, key_names: &[String]) -> Cow<'_, Self> {
        let Self::Put(new) = self else { return Cow::Borrowed(self) };
        let set = new
            .iter()
            .filter(|(k, v)| !key_names.contains(k) && read.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let remove = read.keys().filter(|k| !new.contains_key(*k)).cloned().collect();
        Cow::Owned(Self::Update { set, remove })
    }

    /// Attribute names the change writes or removes.
    fn touched(&self, item: &Item) -> Vec<String> {
        match self {
            Self::Update { set, remove } => set.keys().chain(remove.iter()).cloned().collect(),
            Self::Put(new) => new.keys().chain(item.keys()).cloned().collect(),
            Self::Skip | Self::Delete => Vec::new(),
        }
    }
}

/// What a conditional write checks, so it never clobbers what the application wrote meanwhile.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guard {
    /// Every attribute the transform read still holds the value it read, and none the change adds
    /// has appeared. The safe default: a concurrent write to anything the transform saw makes our
    /// write fail, and the engine re-reads and transforms again. Attributes the application adds
    /// meanwhile are never overwritten (writes are updates that touch only what they change).
    #[default]
    Item,
    /// The version attribute still holds what was read (or is still absent): for tables whose
    /// writers bump a version on every write. Cheaper conditions than `Item`.
    Version(String),
    /// These attributes, and those the change touches, still hold what was read.
    Attributes(Vec<String>),
}

/// Expressions for one guarded write, with placeholders for every name and value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expressions {
    pub update: Option<String>,
    pub condition: String,
    pub names: BTreeMap<String, String>,
    pub values: BTreeMap<String, AttributeValue>,
}

/// Condition expressions longer than this are rejected by DynamoDB (4 KB).
const MAX_EXPRESSION: usize = 4096;

impl Expressions {
    /// Builds the update (for `Change::Update`) and the guard condition against `read`, the item as
    /// the transform saw it. `key_names` are the table's key attributes.
    pub fn build(change: &Change, read: &Item, guard: &Guard, key_names: &[String]) -> Result<Self, String> {
        let mut e = Self::default();
        let mut conditions = Vec::new();
        let guarded: Vec<String> = match guard {
            Guard::Item => read.keys().chain(change.touched(read).iter()).cloned().collect(),
            Guard::Version(version) => vec![version.clone()],
            Guard::Attributes(names) => names.iter().cloned().chain(change.touched(read)).collect(),
        };
        let mut seen = std::collections::BTreeSet::new();
        for name in guarded.into_iter().filter(|n| !key_names.contains(n)) {
            if !seen.insert(name.clone()) {
                continue;
            }
            let placeholder = e.name(&name);
            conditions.push(match read.get(&name) {
                Some(value) => format!("{placeholder} = {}", e.value("c", value.clone())),
                None => format!("attribute_not_exists({placeholder})"),
            });
        }
        // The item still exists, or an update would create a stub of the key and the change. A
        // comparison with a value read says so already (it is false on an absent item); without
        // one, one key attribute does (an item has all of its key attributes or is absent). The
        // guard's comparisons are the only values so far.
        if e.values.is_empty() {
            if let Some(key) = key_names.first() {
                let exists = format!("attribute_exists({})", e.name(key));
                conditions.insert(0, exists);
            }
        }
        e.condition = conditions.join(" AND ");
        if let Change::Update { set, remove } = change {
            let sets: Vec<String> =
                set.iter().map(|(k, v)| format!("{} = {}", e.name(k), e.value("s", v.clone()))).collect();
            let removes: Vec<String> = remove.iter().map(|k| e.name(k)).collect();
            let mut clauses = Vec::new();
            if !sets.is_empty() {
                clauses.push(format!("SET {}", sets.join(", ")));
            }
            if !removes.is_empty() {
                clauses.push(format!("REMOVE {}", removes.join(", ")));
            }
            e.update = Some(clauses.join(" "));
        }
        if e.condition.len() > MAX_EXPRESSION {
            return Err(format!(
                "the guard condition for this item is {} bytes, over DynamoDB's 4 KB limit; \
                 use Guard::Version or Guard::Attributes for items this wide",
                e.condition.len()
            ));
        }
        Ok(e)
    }

    fn name(&mut self, attribute: &str) -> String {
        if let Some((placeholder, _)) = self.names.iter().find(|(_, a)| *a == attribute) {
            return placeholder.clone();
        }
        let placeholder = format!("#a{}", self.names.len());
        self.names.insert(placeholder.clone(), attribute.to_string());
        placeholder
    }

    fn value(&mut self, prefix: &str, value: AttributeValue) -> String {
        let placeholder = format!(":{prefix}{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    fn item() -> Item {
        Item::from([("pk".into(), s("ITEM#1")), ("sk".into(), s("METADATA")), ("name".into(), s("n"))])
    }

    fn keys() -> Vec<String> {
        vec!["pk".into(), "sk".into()]
    }

    #[test]
    fn an_update_that_changes_nothing_is_a_skip() {
        let item = item();
        assert_eq!(Change::update().set("name", s("n")).normalize(&item), Change::Skip);
        assert_eq!(Change::update().remove("absent").normalize(&item), Change::Skip);
        assert_eq!(Change::Put(item.clone()).normalize(&item), Change::Skip);
        assert_ne!(Change::update().set("name", s("m")).normalize(&item), Change::Skip);
    }

    #[test]
    fn a_put_is_sent_as_the_update_that_produces_it() {
        let mut new = item();
        new.insert("version".into(), AttributeValue::N("2".into()));
        new.remove("name");
        let update = Change::Put(new.clone()).as_update(&item(), &keys()).into_owned();
        assert_eq!(update, Change::update().set("version", AttributeValue::N("2".into())).remove("name"));
        assert_eq!(update.apply(&item()), Some(new));
    }

    #[test]
    fn apply_sets_and_removes() {
        let after = Change::update().set("v", AttributeValue::N("2".into())).remove("name").apply(&item()).unwrap();
        assert_eq!(after.get("v"), Some(&AttributeValue::N("2".into())));
        assert!(!after.contains_key("name"));
        assert_eq!(Change::Delete.apply(&item()), None);
    }

    #[test]
    fn the_item_guard_checks_every_attribute_read_and_the_absence_of_new_ones() {
        let change = Change::update().set("version", AttributeValue::N("2".into()));
        let e = Expressions::build(&change, &item(), &Guard::Item, &keys()).unwrap();
        let name_of = |attr: &str| e.names.iter().find(|(_, a)| *a == attr).map(|(p, _)| p.clone()).unwrap();
        assert!(e.condition.contains(&format!("{} = :c", name_of("name"))));
        assert!(e.condition.contains(&format!("attribute_not_exists({})", name_of("version"))));
        assert_eq!(e.update.as_deref(), Some(format!("SET {} = :s1", name_of("version")).as_str()));
        assert!(!e.names.values().any(|a| a == "pk" || a == "sk"), "the key is implied: {}", e.condition);
    }

    #[test]
    fn the_item_still_exists_by_a_compared_value_or_else_by_its_key() {
        let change = Change::update().set("version", AttributeValue::N("2".into()));
        let version = Guard::Version("version".into());
        let mut versioned = item();
        versioned.insert("version".into(), AttributeValue::N("1".into()));
        // `name = :c0` or `version = :c0` is false on an absent item: no clause needs to say so.
        for (read, guard) in [(&item(), &Guard::Item), (&versioned, &version)] {
            let e = Expressions::build(&change, read, guard, &keys()).unwrap();
            assert!(!e.condition.contains("attribute_exists("), "{}", e.condition);
        }
        // Nothing to compare: one key attribute says the item is there.
        let keys_only: Item = item().into_iter().filter(|(k, _)| k != "name").collect();
        for (read, guard) in [(&item(), &version), (&keys_only, &Guard::Item)] {
            let e = Expressions::build(&change, read, guard, &keys()).unwrap();
            assert_eq!(e.condition.matches("attribute_exists(").count(), 1, "{}", e.condition);
            assert_eq!(e.names.get("#a1").map(String::as_str), Some("pk"), "{:?}", e.names);
        }
    }

    #[test]
    fn the_version_guard_checks_only_the_version() {
        let mut read = item();
        read.insert("version".into(), AttributeValue::N("1".into()));
        let change = Change::update().set("version", AttributeValue::N("2".into())).remove("name");
        let e = Expressions::build(&change, &read, &Guard::Version("version".into()), &keys()).unwrap();
        assert_eq!(e.condition, "#a0 = :c0", "{e:?}");
        assert!(e.update.as_deref().unwrap_or("").contains("REMOVE"));
    }

    #[test]
    fn a_condition_over_4kb_is_refused() {
        let mut wide = item();
        for i in 0..400 {
            wide.insert(format!("attribute_{i}"), s("x"));
        }
        let change = Change::update().set("v", AttributeValue::N("2".into()));
        assert!(Expressions::build(&change, &wide, &Guard::Item, &keys()).is_err());
        assert!(Expressions::build(&change, &wide, &Guard::Version("v".into()), &keys()).is_ok());
    }
}
