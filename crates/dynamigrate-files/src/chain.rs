//! The upgrade chain of a folder: the upgrade steps of each table, linked in version order when
//! the folder is read (a gap, a duplicate or a version out of id order is a folder problem), and
//! turned into a `dynamigrate::versions::UpgradeChain` when an upgrade runs.

use std::collections::BTreeMap;
use std::sync::Arc;

use dynamigrate::versions::{UpgradeChain, Versioning};
use dynamigrate::{Change, Item, MigrationId, Transform};
use dynamigrate_script::{Entry, RunInfo, Script};

use crate::ops::{Op, Operations};

/// One step's code, as its file gives it.
#[derive(Debug, Clone)]
pub(crate) enum StepCode {
    Operations(Vec<Op>),
    Script(Arc<Script>),
}

/// One upgrade file's step.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub to: u64,
    pub id: MigrationId,
    pub checksum: String,
    pub code: StepCode,
}

/// The steps of one table, in version order.
pub(crate) type Steps = Arc<Vec<Step>>;

/// Links each table's steps (files in id order): versions must rise one at a time with the ids.
/// Returns the steps by table, or the problems, each naming a file.
pub(crate) fn link(steps: Vec<(Option<String>, Step)>) -> Result<BTreeMap<Option<String>, Steps>, Vec<String>> {
    let mut by_table: BTreeMap<Option<String>, Vec<Step>> = BTreeMap::new();
    for (table, step) in steps {
        by_table.entry(table).or_default().push(step);
    }
    let mut problems = Vec::new();
    for (table, steps) in &mut by_table {
        steps.sort_by(|a, b| a.id.cmp(&b.id));
        let of = table.as_ref().map_or(String::new(), |t| format!(" of table {t}"));
        for pair in steps.windows(2) {
            let (before, after) = (&pair[0], &pair[1]);
            if after.to != before.to + 1 {
                problems.push(format!(
                    "{}: upgrades{of} to v{}, but the step before it ({}) upgrades to v{}; each upgrade step \
                     goes one version further than the one before, in id order",
                    after.id, after.to, before.id, before.to
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(by_table.into_iter().map(|(table, steps)| (table, Arc::new(steps))).collect())
    } else {
        Err(problems)
    }
}

/// The chain a run uses: the table's steps with the configured versioning; scripts get the
/// table's key (to tell a whole item from a patch) and the run's facts.
pub(crate) fn chain(steps: &Steps, versioning: Versioning, key_names: &[String], info: &RunInfo) -> UpgradeChain {
    let mut chain = UpgradeChain::new(versioning);
    for step in steps.iter() {
        let transform: Arc<dyn Transform> = match &step.code {
            StepCode::Operations(ops) => {
                Arc::new(Operations { ops: ops.clone(), fingerprint: format!("toml:{}:up", step.checksum) })
            }
            StepCode::Script(script) => {
                let info = RunInfo { migration: step.id.to_string(), ..info.clone() };
                Arc::new(script.transform(Entry::Up, key_names.to_vec(), info))
            }
        };
        let apply = move |item: Item| match transform.apply(&item)? {
            Change::Delete => anyhow::bail!("an upgrade step cannot delete an item"),
            change => Ok(change.apply_to(item).unwrap_or_default()),
        };
        chain.add_step(step.to, Arc::new(apply), format!("{}:{}", step.id, step.checksum));
    }
    chain
}

/// A down of an upgrade to `from`: the file's down, then the version one lower.
pub(crate) struct Downgrade {
    pub inner: Arc<dyn Transform>,
    pub attribute: String,
    pub from: u64,
}

impl Transform for Downgrade {
    fn apply(&self, item: &Item) -> anyhow::Result<Change> {
        let version = dynamigrate::aws_sdk_dynamodb::types::AttributeValue::N((self.from - 1).to_string());
        Ok(match self.inner.apply(item)? {
            Change::Skip => Change::update().set(&self.attribute, version),
            Change::Put(mut new) => {
                new.insert(self.attribute.clone(), version);
                Change::Put(new)
            }
            Change::Delete => Change::Delete,
            update => update.set(&self.attribute, version),
        })
    }

    fn fingerprint(&self) -> String {
        format!("down from v{} of {}", self.from, self.inner.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(id: &str, to: u64) -> (Option<String>, Step) {
        let id = MigrationId::parse(id).unwrap();
        (None, Step { to, id, checksum: String::new(), code: StepCode::Operations(Vec::new()) })
    }

    #[test]
    fn steps_link_in_id_order_one_version_at_a_time() {
        let linked = link(vec![step("20250301_c", 4), step("20250101_a", 2), step("20250201_b", 3)]).unwrap();
        let versions: Vec<u64> = linked[&None].iter().map(|s| s.to).collect();
        assert_eq!(versions, [2, 3, 4]);
        let gap = link(vec![step("20250101_a", 2), step("20250201_b", 4)]).unwrap_err();
        assert!(gap[0].contains("20250201_b: upgrades to v4, but the step before it (20250101_a) upgrades to v2"));
        assert_eq!(link(vec![step("20250101_a", 3), step("20250201_b", 2)]).unwrap_err().len(), 1, "out of order");
        assert_eq!(link(vec![step("20250101_a", 2), step("20250201_b", 2)]).unwrap_err().len(), 1, "twice");
    }
}
