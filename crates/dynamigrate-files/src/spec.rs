//! What every migration file says besides its transform: description, table, which items and
//! the backfill's settings. The TOML form and a script's exports have the same shape; both are
//! read here from JSON values (TOML converts losslessly). Pure.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use dynamigrate::backfill::{Backfill, Selection};
use dynamigrate::versions::Versioning;
use dynamigrate::{BackfillSettings, Guard};
use serde::Deserialize;
use serde_json::Value;

use crate::ops::{self, Op};
use crate::phase::{self, Lifecycle};
use crate::value::literal;

/// The version attribute when a file does not name one.
pub const DEFAULT_VERSION_ATTRIBUTE: &str = "version";

/// A file's description, table, selection and settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileSpec {
    pub description: String,
    /// A logical table name from the stage's `[tables]`; the stage's main table when absent.
    pub table: Option<String>,
    pub select: Select,
    pub settings: BackfillSettings,
    pub guard: Option<Guard>,
    pub version_attribute: String,
    pub lifecycle: Lifecycle,
    /// A major migration: stages with `backup_before = "major"` back its table up first.
    pub major: bool,
}

/// Which items: key prefixes, a filter with named values, and a condition on the version.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Select {
    pub pk_prefix: Option<String>,
    pub sk_prefix: Option<String>,
    /// A DynamoDB filter expression, e.g. `#s = :active`.
    pub filter: Option<String>,
    /// `#placeholder = "attribute"`.
    #[serde(default)]
    pub names: BTreeMap<String, String>,
    /// `":placeholder" = value`, in the typed literal notation.
    #[serde(default, skip)]
    pub values: BTreeMap<String, AttributeValue>,
    #[serde(default, rename = "values")]
    raw_values: BTreeMap<String, Value>,
    /// Only items whose version is below this (items without one count as version 1).
    pub version_below: Option<u64>,
    /// Only items at exactly this version.
    pub version_at: Option<u64>,
}

/// The keys a file may set at its top level besides its transform.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub description: Option<String>,
    pub id: Option<String>,
    pub table: Option<String>,
    pub version_attribute: Option<String>,
    pub select: Option<Value>,
    pub settings: Option<Value>,
    /// `expand`, `backfill` or `contract`.
    pub phase: Option<String>,
    /// The version this file's step brings items to.
    pub upgrade_to: Option<u64>,
    /// What must hold before this contract step runs.
    pub requires: Option<Value>,
    /// A major migration (a backup first, on stages that want one).
    pub major: Option<bool>,
}

impl FileSpec {
    /// Checks and reads a file's header.
    pub fn read(header: Header) -> Result<Self, String> {
        let description = header.description.filter(|d| !d.trim().is_empty());
        let description = description.ok_or("it has no `description` (one line saying what it does)")?;
        let select = match header.select {
            Some(raw) => read_select(raw)?,
            None => Select::default(),
        };
        if select.version_below.is_some() && select.version_at.is_some() {
            return Err("[select]: give version_below or version_at, not both".into());
        }
        let (settings, guard) = match header.settings {
            Some(raw) => read_settings(raw)?,
            None => (BackfillSettings::default(), None),
        };
        let version_attribute = header.version_attribute.unwrap_or_else(|| DEFAULT_VERSION_ATTRIBUTE.into());
        let condition = select.version_below.is_some() || select.version_at.is_some();
        let lifecycle =
            phase::read(header.phase, header.upgrade_to, header.requires, header.table.as_deref(), condition)?;
        phase::check_contract(&lifecycle)?;
        let major = header.major.unwrap_or(false);
        Ok(Self { description, table: header.table, select, settings, guard, version_attribute, lifecycle, major })
    }

    /// Configures a backfill with this file's selection, guard and settings. The version
    /// condition narrows `up` only: the items a `down` must undo are the ones `up` moved past it.
    pub fn configure(&self, backfill: Backfill, up: bool) -> Backfill {
        let select = &self.select;
        let mut selection = Selection {
            pk_prefix: select.pk_prefix.clone(),
            sk_prefix: select.sk_prefix.clone(),
            filter: select.filter.clone(),
            names: select.names.clone(),
            values: select.values.clone(),
            projection: None,
        };
        // Items without a version are version 1 here (a file's own condition, not an upgrade's).
        let versioning = Versioning { attribute: self.version_attribute.clone(), unversioned: 1 };
        if let (true, Some(below)) = (up, select.version_below) {
            selection = selection.and(versioning.below(below));
        }
        if let (true, Some(at)) = (up, select.version_at) {
            selection = selection.and(versioning.at(at));
        }
        let mut backfill = backfill.select(selection);
        if let Some(guard) = &self.guard {
            backfill = backfill.guard(guard.clone());
        }
        backfill.settings(self.settings.clone())
    }

    /// The guard for a TOML file's operations when `[settings]` names none: what they read, and the
    /// version attribute where `up`'s selection conditions on it (`ops::guard`), so that a change
    /// there fails the write and the re-read checks the selection again. None keeps the whole-item
    /// guard: a `filter` may read any attribute, and the file's own guard comes first.
    pub fn operations_guard(&self, ops: &[Op], up: bool) -> Option<Guard> {
        if self.guard.is_some() || self.select.filter.is_some() {
            return None;
        }
        let on_version = up && (self.select.version_below.is_some() || self.select.version_at.is_some());
        Some(ops::guard(ops, on_version.then_some(self.version_attribute.as_str())))
    }
}

fn read_select(raw: Value) -> Result<Select, String> {
    let mut select: Select = serde_json::from_value(raw).map_err(|e| format!("[select]: {e}"))?;
    for (placeholder, value) in std::mem::take(&mut select.raw_values) {
        if !placeholder.starts_with(':') {
            return Err(format!("[select.values]: {placeholder:?} must start with ':', as in the filter"));
        }
        let value = literal(&value, &format!("[select.values] {placeholder}"))?;
        select.values.insert(placeholder, value);
    }
    if let Some(bad) = select.names.keys().find(|n| !n.starts_with('#')) {
        return Err(format!("[select.names]: {bad:?} must start with '#', as in the filter"));
    }
    let uses_placeholders = !select.names.is_empty() || !select.values.is_empty();
    if uses_placeholders && select.filter.is_none() {
        return Err("[select]: names and values are the filter's placeholders; give a `filter`".into());
    }
    Ok(select)
}

/// `[settings]`: the backfill knobs (as in a stage of dynamigrate.toml) plus `guard`.
fn read_settings(raw: Value) -> Result<(BackfillSettings, Option<Guard>), String> {
    let Value::Object(mut table) = raw else { return Err("[settings] must be a table".into()) };
    let guard = match table.remove("guard") {
        Some(raw) => Some(serde_json::from_value::<Guard>(raw).map_err(|_| {
            "[settings] guard must be \"item\", { version = \"attribute\" } or { attributes = [\"a\", \"b\"] }"
                .to_string()
        })?),
        None => None,
    };
    let settings: BackfillSettings =
        serde_json::from_value(Value::Object(table)).map_err(|e| format!("[settings]: {e}"))?;
    settings.validate().map_err(|e| format!("[settings]: {e}"))?;
    Ok((settings, guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(toml_text: &str) -> Header {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn a_full_header_reads() {
        let spec = FileSpec::read(header(
            "description = \"d\"\ntable = \"orders\"\n[select]\npk_prefix = \"ITEM#\"\nfilter = \"#s = :s\"\n\
             names = { \"#s\" = \"status\" }\nvalues = { \":s\" = \"ACTIVE\" }\nversion_below = 2\n\
             [settings]\npage_size = 100\nwrite_mode = \"batch\"\nguard = { version = \"version\" }\n",
        ))
        .unwrap();
        assert_eq!(spec.table.as_deref(), Some("orders"));
        assert_eq!(spec.select.values[":s"], AttributeValue::S("ACTIVE".into()));
        assert_eq!(spec.select.version_below, Some(2));
        assert_eq!(spec.settings.page_size, Some(100));
        assert_eq!(spec.guard, Some(Guard::Version("version".into())));
    }

    #[test]
    fn operations_are_guarded_on_what_they_and_the_selection_read_unless_a_filter_may_read_more() {
        let ops = [Op::Copy { from: "name".into(), to: "title".into() }];
        let names = |names: &[&str]| Some(Guard::Attributes(names.iter().map(|n| n.to_string()).collect()));
        let spec = |text: &str| FileSpec::read(header(&format!("description = \"d\"\n{text}"))).unwrap();

        assert_eq!(spec("").operations_guard(&ops, true), names(&["name", "title"]));
        let below = spec("version_attribute = \"v\"\n[select]\nsk_prefix = \"M\"\nversion_below = 2");
        assert_eq!(below.operations_guard(&ops, true), names(&["name", "title", "v"]));
        // `down` sees every item the rest of the selection matches: no version condition to guard.
        assert_eq!(below.operations_guard(&ops, false), names(&["name", "title"]));
        let filtered = spec("[select]\nfilter = \"attribute_exists(legacy)\"");
        assert_eq!(filtered.operations_guard(&ops, true), None, "the filter's attributes are not known");
        let named = spec("[settings]\nguard = \"item\"");
        assert_eq!(named.operations_guard(&ops, true), None, "the file's own guard stays");
    }

    #[test]
    fn mistakes_in_a_header_are_named() {
        for (text, expected) in [
            ("table = \"t\"", "no `description`"),
            ("description = \"d\"\n[select]\npk_prefx = \"A\"", "unknown field `pk_prefx`"),
            ("description = \"d\"\n[select]\nvalues = { \"s\" = 1 }\nfilter = \"x\"", "must start with ':'"),
            ("description = \"d\"\n[select]\nvalues = { \":s\" = 1 }", "give a `filter`"),
            ("description = \"d\"\n[select]\nversion_below = 2\nversion_at = 1", "not both"),
            ("description = \"d\"\n[settings]\npage_size = 0", "page_size"),
            ("description = \"d\"\n[settings]\nspeed = 1", "unknown field `speed`"),
            ("description = \"d\"\n[settings]\nguard = \"everything\"", "guard must be"),
        ] {
            let error = FileSpec::read(header(text)).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
