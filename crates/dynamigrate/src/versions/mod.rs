//! Schema versions: DynamoDB's schema lives in the data, so each item carries a version attribute
//! and one [`UpgradeChain`] brings any item to the current shape, lazily in the application's read
//! path and eagerly in an upgrade backfill. A [`Census`] counts a table's items by version (the
//! `versions` command); a [`Requirement`] is what a contract step needs to hold before it runs,
//! checked by a read-only scan ([`verify`]). [`upgrade::run`] is the eager use of a chain.
//!
//! Pure: `chain`, `requirement`, `census`. I/O: `scan` and `upgrade`, through the backfill engine's page
//! pipeline, never writing to the table.

mod census;
mod chain;
mod requirement;
mod scan;
pub mod upgrade;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

pub use census::{completion, Census, Estimate, VersionCount};
pub use chain::{StepFn, UpgradeChain, UpgradeTo};
pub use requirement::Requirement;
pub use scan::{census, verify, Sampling};

use crate::backfill::{Item, Selection};

/// The version attribute when a table's configuration names none.
pub const DEFAULT_VERSION_ATTRIBUTE: &str = "version";

/// How one table's items carry their version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versioning {
    /// The attribute holding the version, a number.
    pub attribute: String,
    /// The version of an item without the attribute: items written before versions existed.
    pub unversioned: u64,
}

impl Default for Versioning {
    fn default() -> Self {
        Self { attribute: DEFAULT_VERSION_ATTRIBUTE.into(), unversioned: 1 }
    }
}

impl Versioning {
    /// The item's version: its attribute, or the unversioned version when it has none. A version
    /// that is not a whole number is an error, never a guess.
    pub fn version_of(&self, item: &Item) -> anyhow::Result<u64> {
        match item.get(&self.attribute) {
            None => Ok(self.unversioned),
            Some(AttributeValue::N(n)) => n.parse().map_err(|_| self.not_a_version(n)),
            Some(other) => Err(self.not_a_version(&crate::backfill::display(other))),
        }
    }

    fn not_a_version(&self, shown: &str) -> anyhow::Error {
        anyhow::anyhow!("its `{}` is {shown}, not a whole number, so its version is unknown", self.attribute)
    }

    /// The items below `version` (unversioned ones too when they are) as a server-side filter:
    /// what an upgrade backfill reads.
    pub fn below(&self, version: u64) -> Selection {
        let missing = self.unversioned < version;
        self.condition("<", version, missing)
    }

    /// The items at exactly `version`, as a server-side filter: what a downgrade reads.
    pub fn at(&self, version: u64) -> Selection {
        self.condition("=", version, self.unversioned == version)
    }

    fn condition(&self, operator: &str, version: u64, or_missing: bool) -> Selection {
        let missing = if or_missing { "attribute_not_exists(#dm_version) OR " } else { "" };
        Selection {
            filter: Some(format!("{missing}#dm_version {operator} :dm_version")),
            names: [("#dm_version".to_string(), self.attribute.clone())].into(),
            values: [(":dm_version".to_string(), AttributeValue::N(version.to_string()))].into(),
            ..Selection::default()
        }
    }
}
