//! Migration ids: `YYYYMMDD_description`, a real calendar date then a lowercase snake-case description.
//!
//! Ids sort lexically in the order they must run, which is why the date comes first and is zero-padded.
//! Files are named `YYYYMMDD-description.*` and Rust modules `mYYYYMMDD_description`; both map to one id.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A validated migration id such as `20250125_add_metadata_field`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MigrationId(String);

/// Why a string is not a migration id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid migration id {id:?}: {reason} (expected YYYYMMDD_description, e.g. 20250125_add_metadata_field)")]
pub struct InvalidId {
    pub id: String,
    pub reason: &'static str,
}

impl MigrationId {
    pub fn parse(id: &str) -> Result<Self, InvalidId> {
        let invalid = |reason| InvalidId { id: id.to_string(), reason };
        let (date, description) = id.split_once('_').ok_or_else(|| invalid("no '_' after the date"))?;
        check_date(date).map_err(invalid)?;
        check_description(description).map_err(invalid)?;
        Ok(Self(id.to_string()))
    }

    /// The id for a migration file name such as `20250125-add-metadata-field.toml`.
    pub fn from_file_name(name: &str) -> Result<Self, InvalidId> {
        let stem = name.split_once('.').map_or(name, |(stem, _)| stem);
        let (date, description) = stem
            .split_once('-')
            .ok_or_else(|| InvalidId { id: name.to_string(), reason: "file name must be YYYYMMDD-description.ext" })?;
        Self::parse(&format!("{date}_{}", description.replace('-', "_")))
    }

    /// The id for a Rust module name such as `m20250125_add_metadata_field`.
    pub fn from_module_name(name: &str) -> Result<Self, InvalidId> {
        let id = name.rsplit("::").next().unwrap_or(name);
        Self::parse(id.strip_prefix('m').unwrap_or(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `YYYYMMDD` part.
    pub fn date(&self) -> &str {
        &self.0[..8]
    }

    /// The description part, after the date.
    pub fn description(&self) -> &str {
        &self.0[9..]
    }

    /// The conventional file name stem: `YYYYMMDD-description`.
    pub fn file_stem(&self) -> String {
        format!("{}-{}", self.date(), self.description().replace('_', "-"))
    }

    /// The conventional Rust module name: `mYYYYMMDD_description`.
    pub fn module_name(&self) -> String {
        format!("m{}", self.0)
    }
}

fn check_date(date: &str) -> Result<(), &'static str> {
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the date must be 8 digits, YYYYMMDD");
    }
    let number = |range: std::ops::Range<usize>| date[range].parse::<u32>().unwrap_or(0);
    let (year, month, day) = (number(0..4), number(4..6), number(6..8));
    if !(1970..=9999).contains(&year) {
        return Err("the year is out of range");
    }
    if !(1..=12).contains(&month) {
        return Err("the month must be 01 to 12");
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err("the day does not exist in that month");
    }
    Ok(())
}

fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn check_description(description: &str) -> Result<(), &'static str> {
    if description.is_empty() {
        return Err("the description after the date is empty");
    }
    if !description.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err("the description must be lowercase letters, digits and '_'");
    }
    if description.starts_with('_') || description.ends_with('_') || description.contains("__") {
        return Err("the description must be snake_case: no leading, trailing or doubled '_'");
    }
    Ok(())
}

impl fmt::Display for MigrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for MigrationId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for MigrationId {
    type Error = InvalidId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<MigrationId> for String {
    fn from(id: MigrationId) -> Self {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_ids() {
        let id = MigrationId::parse("20250125_add_metadata_field").unwrap();
        assert_eq!(id.date(), "20250125");
        assert_eq!(id.description(), "add_metadata_field");
        assert_eq!(id.file_stem(), "20250125-add-metadata-field");
        assert_eq!(id.module_name(), "m20250125_add_metadata_field");
        assert!(MigrationId::parse("20240229_leap_day").is_ok());
        assert!(MigrationId::parse("20000229_leap_century").is_ok());
        assert!(MigrationId::parse("20250101_v2").is_ok());
    }

    #[test]
    fn rejects_impossible_dates() {
        for id in ["20250230_x", "20230229_x", "19000229_x", "20251301_x", "20250100_x", "2025011_x", "2025010a_x"] {
            assert!(MigrationId::parse(id).is_err(), "{id} should be rejected");
        }
    }

    #[test]
    fn rejects_bad_descriptions() {
        for id in [
            "20250101",
            "20250101_",
            "20250101_Add",
            "20250101_add-field",
            "20250101__x",
            "20250101_x_",
            "20250101_a b",
        ] {
            assert!(MigrationId::parse(id).is_err(), "{id} should be rejected");
        }
    }

    #[test]
    fn maps_file_and_module_names_to_ids() {
        let from_file = MigrationId::from_file_name("20250125-add-metadata-field.toml").unwrap();
        let from_module = MigrationId::from_module_name("crate::migrations::m20250125_add_metadata_field").unwrap();
        assert_eq!(from_file, from_module);
        assert!(MigrationId::from_file_name("add-metadata.toml").is_err());
    }

    #[test]
    fn orders_by_date_then_description() {
        let mut ids = ["20250201_b", "20250125_z", "20250125_a"].map(|s| MigrationId::parse(s).unwrap());
        ids.sort();
        assert_eq!(ids.map(|i| i.to_string()), ["20250125_a", "20250125_z", "20250201_b"]);
    }
}
