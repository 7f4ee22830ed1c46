//! What a file says about expand → backfill → contract: its phase, the version it upgrades items
//! to, and what a contract step requires before it runs. Pure; unit-tested here.

use std::collections::BTreeMap;

use dynamigrate::versions::Requirement;
use dynamigrate::Phase;
use serde::Deserialize;
use serde_json::Value;

use crate::value::literal;

/// A file's place in expand → backfill → contract.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lifecycle {
    pub phase: Option<Phase>,
    /// For an upgrade step: the version its items end at (its step upgrades from the one before).
    pub upgrade_to: Option<u64>,
    pub requires: Option<Requirement>,
}

/// `requires = { version_at_least = 3 }` or `requires = { none_match = "...", names, values }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequires {
    version_at_least: Option<u64>,
    none_match: Option<String>,
    #[serde(default)]
    names: BTreeMap<String, String>,
    #[serde(default)]
    values: BTreeMap<String, Value>,
    table: Option<String>,
}

/// The header keys, checked together: `table` is the file's (a requirement's default table);
/// `version_condition` says whether `[select]` has `version_below` / `version_at`.
pub fn read(
    phase: Option<String>,
    upgrade_to: Option<u64>,
    requires: Option<Value>,
    table: Option<&str>,
    version_condition: bool,
) -> Result<Lifecycle, String> {
    let phase = phase.map(|p| p.parse::<Phase>().map_err(|e| format!("`phase`: {e}"))).transpose()?;
    let requires = requires.map(|raw| requirement(raw, table)).transpose()?;
    let default_phase = match (upgrade_to, &requires) {
        (Some(_), Some(_)) => {
            return Err("an upgrade step cannot also be a contract step with `requires`; split them".into())
        }
        (Some(_), None) => Phase::Backfill,
        (None, Some(_)) => Phase::Contract,
        (None, None) => return Ok(Lifecycle { phase, upgrade_to, requires }),
    };
    if phase.is_some_and(|p| p != default_phase) {
        let what = if upgrade_to.is_some() {
            "an upgrade step is a backfill"
        } else {
            "`requires` belongs to a contract step"
        };
        return Err(format!("`phase` is {}, but {what}", phase.map(|p| p.to_string()).unwrap_or_default()));
    }
    if upgrade_to.is_some() && version_condition {
        return Err(
            "an upgrade step selects the items below its version itself; drop version_below / version_at from [select]"
                .into(),
        );
    }
    if upgrade_to == Some(0) {
        return Err("`upgrade_to` must be a version above the one its items come from, e.g. upgrade_to = 2".into());
    }
    Ok(Lifecycle { phase: Some(default_phase), upgrade_to, requires })
}

/// Checks that a contract step says what it requires.
pub fn check_contract(lifecycle: &Lifecycle) -> Result<(), String> {
    if lifecycle.phase == Some(Phase::Contract) && lifecycle.requires.is_none() {
        return Err("a contract step needs `requires` (e.g. requires = { version_at_least = 3 }, or \
                    requires = { none_match = \"attribute_exists(#old)\", names = { \"#old\" = \"old\" } }): \
                    it runs only once that is verified"
            .into());
    }
    Ok(())
}

fn requirement(raw: Value, table: Option<&str>) -> Result<Requirement, String> {
    let raw: RawRequires = serde_json::from_value(raw).map_err(|e| format!("`requires`: {e}"))?;
    let table = raw.table.or(table.map(str::to_string));
    match (raw.version_at_least, raw.none_match) {
        (Some(version), None) => {
            if !raw.names.is_empty() || !raw.values.is_empty() {
                return Err("`requires`: names and values belong to none_match".into());
            }
            Ok(Requirement::AtLeast { table, version })
        }
        (None, Some(filter)) if !filter.trim().is_empty() => {
            let values = raw
                .values
                .into_iter()
                .map(|(placeholder, value)| {
                    let at = format!("`requires` values {placeholder}");
                    if !placeholder.starts_with(':') {
                        return Err(format!("{at}: a value placeholder starts with ':'"));
                    }
                    Ok((placeholder, literal(&value, &at)?))
                })
                .collect::<Result<_, String>>()?;
            Ok(Requirement::NoneMatch { table, filter, names: raw.names, values })
        }
        _ => Err("`requires` names one check: version_at_least = N, or none_match = \"filter expression\"".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn upgrades_are_backfills_and_requirements_make_contract_steps() {
        let upgrade = read(None, Some(3), None, None, false).unwrap();
        assert_eq!((upgrade.phase, upgrade.upgrade_to), (Some(Phase::Backfill), Some(3)));
        let contract = read(None, None, Some(json!({ "version_at_least": 3 })), Some("orders"), false).unwrap();
        assert_eq!(contract.phase, Some(Phase::Contract));
        assert_eq!(contract.requires, Some(Requirement::AtLeast { table: Some("orders".into()), version: 3 }));
        let none = read(
            Some("contract".into()),
            None,
            Some(json!({ "none_match": "attribute_exists(#n)", "names": { "#n": "name" }, "values": { ":x": 1 } })),
            None,
            false,
        )
        .unwrap();
        assert!(matches!(none.requires, Some(Requirement::NoneMatch { ref values, .. }) if values.len() == 1));
        assert_eq!(read(Some("expand".into()), None, None, None, false).unwrap().phase, Some(Phase::Expand));
    }

    #[test]
    fn contradictions_are_named() {
        for (phase, upgrade, requires, condition, expected) in [
            (Some("cleanup"), None, None, false, "unknown phase"),
            (Some("contract"), Some(2), None, false, "an upgrade step is a backfill"),
            (None, Some(2), None, true, "drop version_below"),
            (None, Some(0), None, false, "upgrade_to = 2"),
            (None, Some(2), Some(json!({ "version_at_least": 2 })), false, "split them"),
            (Some("backfill"), None, Some(json!({ "version_at_least": 2 })), false, "contract step"),
            (None, None, Some(json!({})), false, "names one check"),
            (None, None, Some(json!({ "version_at_least": 2, "none_match": "x" })), false, "names one check"),
            (None, None, Some(json!({ "version_at_least": 2, "names": { "#a": "a" } })), false, "belong to none_match"),
            (None, None, Some(json!({ "at_least": 2 })), false, "unknown field `at_least`"),
        ] {
            let error = read(phase.map(str::to_string), upgrade, requires, None, condition).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
        let bare = Lifecycle { phase: Some(Phase::Contract), ..Lifecycle::default() };
        assert!(check_contract(&bare).unwrap_err().contains("needs `requires`"));
    }
}
