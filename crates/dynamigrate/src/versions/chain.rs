//! The upgrade chain: one function per version step, defined once and used twice, lazily by the
//! application when it reads an old item ([`UpgradeChain::normalize`]) and eagerly by a backfill
//! ([`UpgradeChain::transform`]). Pure; unit-tested here.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;

use super::Versioning;
use crate::backfill::{Change, Item, Transform};

/// One step's code: the item at version N in, the item at N + 1 out (the chain sets the version).
pub type StepFn = dyn Fn(Item) -> anyhow::Result<Item> + Send + Sync;

#[derive(Clone)]
struct Step {
    apply: Arc<StepFn>,
    fingerprint: String,
}

/// Steps by the version they lead to: step `to = 3` upgrades an item at v2 to v3.
///
/// ```
/// use dynamigrate::versions::{UpgradeChain, Versioning};
/// use dynamigrate::aws_sdk_dynamodb::types::AttributeValue;
///
/// let chain = UpgradeChain::new(Versioning::default())
///     .step(2, |mut item| {
///         item.entry("status".into()).or_insert(AttributeValue::S("active".into()));
///         Ok(item)
///     })
///     .step(3, |mut item| {
///         if let Some(name) = item.remove("name") {
///             item.insert("title".into(), name);
///         }
///         Ok(item)
///     });
/// // In the application's read path:
/// # let item = Default::default();
/// let current = chain.normalize(item)?;
/// # anyhow::Ok(())
/// ```
#[derive(Clone, Default)]
pub struct UpgradeChain {
    versioning: Versioning,
    steps: BTreeMap<u64, Step>,
}

impl std::fmt::Debug for UpgradeChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let steps: Vec<_> = self.steps.keys().collect();
        f.debug_struct("UpgradeChain").field("versioning", &self.versioning).field("steps", &steps).finish()
    }
}

impl UpgradeChain {
    pub fn new(versioning: Versioning) -> Self {
        Self { versioning, steps: BTreeMap::new() }
    }

    /// Adds the step that brings an item at `to - 1` to `to`. Steps must be consecutive and lead
    /// past the version of unversioned items; a chain that breaks that fails every item it cannot
    /// bring up (and [`Self::check`] says so before anything runs).
    pub fn step(mut self, to: u64, apply: impl Fn(Item) -> anyhow::Result<Item> + Send + Sync + 'static) -> Self {
        let fingerprint = format!("{}:{to}", std::any::type_name_of_val(&apply));
        self.steps.insert(to, Step { apply: Arc::new(apply), fingerprint });
        self
    }

    /// Adds a step whose code is not Rust (a migration file's), named by `fingerprint` (its checksum).
    pub fn add_step(&mut self, to: u64, apply: Arc<StepFn>, fingerprint: String) {
        self.steps.insert(to, Step { apply, fingerprint });
    }

    pub fn versioning(&self) -> &Versioning {
        &self.versioning
    }

    /// The version every step leads to in the end.
    pub fn latest(&self) -> u64 {
        self.steps.keys().next_back().copied().unwrap_or(self.versioning.unversioned)
    }

    /// The steps' versions are consecutive and each is above the unversioned items' version.
    pub fn check(&self) -> Result<(), String> {
        let mut expected = None;
        for &to in self.steps.keys() {
            if to <= self.versioning.unversioned {
                return Err(format!(
                    "a step to v{to} cannot apply: items without `{}` are v{} already",
                    self.versioning.attribute, self.versioning.unversioned
                ));
            }
            if let Some(next) = expected.filter(|n| *n != to) {
                return Err(format!("the chain has no step to v{next} (it goes on at v{to})"));
            }
            expected = Some(to + 1);
        }
        Ok(())
    }

    /// Brings any item to the latest version: the application's read path.
    pub fn normalize(&self, item: Item) -> anyhow::Result<Item> {
        self.upgrade_to(item, self.latest())
    }

    /// Applies every step from the item's version up to `target`, in order, setting the version
    /// after each. An item at or past `target` is returned as it is.
    pub fn upgrade_to(&self, mut item: Item, target: u64) -> anyhow::Result<Item> {
        let mut version = self.versioning.version_of(&item)?;
        while version < target {
            let to = version + 1;
            let step = self.steps.get(&to).ok_or_else(|| {
                anyhow::anyhow!("the item is at v{version} and the upgrade chain has no step to v{to}")
            })?;
            item = (step.apply)(item).map_err(|e| e.context(format!("upgrading v{version} to v{to}")))?;
            item.insert(self.versioning.attribute.clone(), AttributeValue::N(to.to_string()));
            version = to;
        }
        Ok(item)
    }

    /// The backfill's transform: every item below `target` brought up to it.
    pub fn transform(&self, target: u64) -> UpgradeTo {
        UpgradeTo { chain: self.clone(), target }
    }
}

/// The eager use of a chain: a [`Transform`] that upgrades each item to one version.
pub struct UpgradeTo {
    chain: UpgradeChain,
    target: u64,
}

impl Transform for UpgradeTo {
    fn apply(&self, item: &Item) -> anyhow::Result<Change> {
        if self.chain.versioning.version_of(item)? >= self.target {
            return Ok(Change::Skip);
        }
        Ok(Change::Put(self.chain.upgrade_to(item.clone(), self.target)?))
    }

    fn fingerprint(&self) -> String {
        let steps = self.chain.steps.range(..=self.target).map(|(_, s)| s.fingerprint.as_str());
        format!("upgrade to v{} via {}", self.target, steps.collect::<Vec<_>>().join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }
    fn n(v: &str) -> AttributeValue {
        AttributeValue::N(v.into())
    }

    fn chain() -> UpgradeChain {
        UpgradeChain::new(Versioning::default())
            .step(2, |mut item| {
                item.entry("status".into()).or_insert(s("active"));
                Ok(item)
            })
            .step(3, |mut item| {
                let name = item.remove("name").ok_or_else(|| anyhow::anyhow!("no name"))?;
                item.insert("title".into(), name);
                Ok(item)
            })
    }

    fn item(version: Option<&str>) -> Item {
        let mut item = Item::from([("pk".into(), s("A")), ("name".into(), s("x"))]);
        if let Some(v) = version {
            item.insert("version".into(), n(v));
        }
        item
    }

    #[test]
    fn every_missing_step_runs_in_order_and_the_version_follows() {
        let at_v3 = Item::from([
            ("pk".into(), s("A")),
            ("title".into(), s("x")),
            ("status".into(), s("active")),
            ("version".into(), n("3")),
        ]);
        assert_eq!(chain().normalize(item(None)).unwrap(), at_v3, "unversioned is v1");
        assert_eq!(chain().normalize(item(Some("1"))).unwrap(), at_v3);
        let mut at_v2 = item(Some("2"));
        at_v2.insert("status".into(), s("paused"));
        let upgraded = chain().normalize(at_v2).unwrap();
        assert_eq!(upgraded.get("status"), Some(&s("paused")), "step 2 did not run again");
        assert_eq!(upgraded.get("version"), Some(&n("3")));
        assert_eq!(chain().upgrade_to(item(None), 2).unwrap().get("version"), Some(&n("2")));
    }

    #[test]
    fn the_transform_skips_what_is_current_and_puts_what_is_not() {
        let transform = chain().transform(3);
        assert_eq!(transform.apply(&item(Some("3"))).unwrap(), Change::Skip);
        assert_eq!(transform.apply(&item(Some("4"))).unwrap(), Change::Skip);
        assert!(matches!(transform.apply(&item(Some("1"))).unwrap(), Change::Put(_)));
        let failed = transform.apply(&Item::from([("version".into(), n("2"))])).unwrap_err();
        assert!(format!("{failed:#}").contains("upgrading v2 to v3: no name"), "{failed:#}");
        assert_ne!(chain().transform(2).fingerprint(), transform.fingerprint());
    }

    #[test]
    fn gaps_and_unusable_versions_are_named() {
        assert_eq!(chain().check(), Ok(()));
        let gap = chain().step(5, Ok);
        assert_eq!(gap.check().unwrap_err(), "the chain has no step to v4 (it goes on at v5)");
        let too_low = UpgradeChain::new(Versioning::default()).step(1, Ok);
        assert!(too_low.check().unwrap_err().contains("items without `version` are v1"));
        let missing = gap.upgrade_to(item(Some("3")), 5).unwrap_err().to_string();
        assert_eq!(missing, "the item is at v3 and the upgrade chain has no step to v4");
        let bad = Item::from([("version".into(), s("two"))]);
        assert!(chain().normalize(bad).unwrap_err().to_string().contains("not a whole number"));
    }
}
