//! A table's items counted by version: exact from a full scan, or estimated from a sample of its
//! scan segments with a margin; and how far an upgrade has come. Pure; unit-tested here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Versioning;
use crate::backfill::{Counts, Distribution};

/// How many items sit at each version of one table, when measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Census {
    pub table: String,
    pub versioning: Versioning,
    /// RFC 3339, UTC: when the scan finished.
    pub measured_at: String,
    /// Items counted (in a sample, only those the sampled segments held).
    pub items: u64,
    /// Items by version, unversioned ones under the unversioned version.
    #[serde(with = "version_keys")]
    pub versions: BTreeMap<u64, u64>,
    /// Items without the attribute (also counted in `versions`).
    pub without: u64,
    /// Items whose version is not a whole number, by the value they hold.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unknown: BTreeMap<String, u64>,
    /// Set when only some segments were scanned: the counts are then a sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<Estimate>,
    pub duration_ms: u64,
}

/// What a sampled census scanned: `segments` of `total_segments`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub segments: u32,
    pub total_segments: u32,
}

impl Estimate {
    /// The fraction of the table the sample read.
    pub fn fraction(&self) -> f64 {
        f64::from(self.segments) / f64::from(self.total_segments.max(1))
    }
}

/// One line of a census: a version (or an unknown value), its items and share of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionCount {
    /// `v2`, `v1 (no version)`, or an unknown value as read.
    pub label: String,
    /// Items counted, or the estimate for the whole table.
    pub items: u64,
    pub percent: f64,
    /// For an estimate: the 95% margin of `items` and of `percent` (±).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub margin: Option<(u64, f64)>,
}

impl Census {
    /// Reads a counting pass's distribution of the version attribute.
    pub fn from_distribution(table: &str, versioning: &Versioning, seen: &Distribution) -> Self {
        let mut versions = BTreeMap::new();
        let mut unknown = BTreeMap::new();
        for (value, n) in &seen.values {
            match value.parse::<u64>() {
                Ok(version) => *versions.entry(version).or_default() += n,
                Err(_) => *unknown.entry(value.clone()).or_default() += n,
            }
        }
        if seen.absent > 0 {
            *versions.entry(versioning.unversioned).or_default() += seen.absent;
        }
        Self {
            table: table.into(),
            versioning: versioning.clone(),
            measured_at: String::new(),
            items: seen.items,
            versions,
            without: seen.absent,
            unknown,
            sample: None,
            duration_ms: 0,
        }
    }

    /// Items at `version` or above.
    pub fn at_least(&self, version: u64) -> u64 {
        self.versions.range(version..).map(|(_, n)| n).sum()
    }

    /// The share of items at `version` or above, in percent (100 for an empty table).
    pub fn percent_at_least(&self, version: u64) -> f64 {
        percent(self.at_least(version), self.items)
    }

    /// The table's item count: counted, or estimated from the sample.
    pub fn total(&self) -> u64 {
        self.scaled(self.items)
    }

    fn scaled(&self, counted: u64) -> u64 {
        match self.sample {
            Some(sample) => (counted as f64 / sample.fraction()).round() as u64,
            None => counted,
        }
    }

    /// One line per version, lowest first, then the unknown values.
    pub fn rows(&self) -> Vec<VersionCount> {
        let label = |version: u64| {
            let without = version == self.versioning.unversioned && self.without > 0;
            if without && self.without == self.versions[&version] {
                format!("v{version} (no {})", self.versioning.attribute)
            } else if without {
                format!("v{version} ({} without {})", self.without, self.versioning.attribute)
            } else {
                format!("v{version}")
            }
        };
        let versions = self.versions.iter().map(|(v, n)| (label(*v), *n));
        let unknown = self.unknown.iter().map(|(value, n)| (format!("{value} (not a version)"), *n));
        versions.chain(unknown).map(|(label, n)| self.row(label, n)).collect()
    }

    fn row(&self, label: String, counted: u64) -> VersionCount {
        let margin = self.sample.map(|sample| margins(counted, self.items, sample.fraction()));
        VersionCount { label, items: self.scaled(counted), percent: percent(counted, self.items), margin }
    }
}

/// Versions as map keys are text in JSON and in a DynamoDB map; serde_dynamo reads map keys only
/// as strings, so they are read as text and parsed here.
mod version_keys {
    use std::collections::BTreeMap;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(versions: &BTreeMap<u64, u64>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(versions.iter().map(|(v, n)| (v.to_string(), n)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<u64, u64>, D::Error> {
        BTreeMap::<String, u64>::deserialize(d)?
            .into_iter()
            .map(|(v, n)| v.parse().map(|v| (v, n)).map_err(|_| D::Error::custom(format!("{v:?} is not a version"))))
            .collect()
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        100.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// 95% margins of a sampled count scaled to the table, and of its share. DynamoDB assigns items to
/// scan segments by a hash of the partition key, so the items of a random subset of segments are a
/// random sample of the table's item collections; with small collections that is close to a random
/// sample of items, which is what these binomial margins assume (large collections widen the truth).
/// A count of zero gets the rule of three's bound instead of a margin of zero.
fn margins(counted: u64, sampled: u64, fraction: f64) -> (u64, f64) {
    const Z: f64 = 1.96;
    let keep = (1.0 - fraction).max(0.0);
    let count_margin = if counted == 0 { 3.0 * keep / fraction } else { Z * (counted as f64 * keep).sqrt() / fraction };
    let share = if sampled == 0 { 0.0 } else { counted as f64 / sampled as f64 };
    let share_margin =
        if sampled == 0 { 0.0 } else { Z * (share * (1.0 - share) * keep / sampled as f64).sqrt() * 100.0 };
    (count_margin.ceil() as u64, share_margin)
}

/// How far an upgrade to `target` has come, in percent of the table's items now at `target` or
/// above: exact for the items scanned so far (those the backfill read below `target` were
/// upgraded unless they failed), and for the rest the share the last census found, or failing
/// one, the share among the items scanned. `estimated_items` is the table's size (the census's,
/// else DescribeTable's).
pub fn completion(target: u64, live: &Counts, estimated_items: Option<u64>, baseline: Option<&Census>) -> Option<f64> {
    // The backfill reads only items below `target`: the rest of what it scanned was there already.
    let scanned = live.scanned.max(live.processed);
    let at_target_scanned = scanned - live.processed + live.modified + live.skipped;
    let total = baseline.map(Census::total).or(estimated_items).unwrap_or(scanned).max(scanned);
    let share_of_rest = match baseline {
        Some(census) if census.items > 0 => census.at_least(target) as f64 / census.items as f64,
        _ if scanned > 0 => at_target_scanned as f64 / scanned as f64,
        _ => return None,
    };
    if total == 0 {
        return Some(100.0);
    }
    let at_target = at_target_scanned as f64 + (total - scanned) as f64 * share_of_rest;
    Some((at_target * 100.0 / total as f64).min(100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn census(values: &[(&str, u64)], absent: u64) -> Census {
        let values: BTreeMap<String, u64> = values.iter().map(|(v, n)| (v.to_string(), *n)).collect();
        let items = values.values().sum::<u64>() + absent;
        Census::from_distribution("t", &Versioning::default(), &Distribution { items, values, absent })
    }

    #[test]
    fn a_census_counts_unversioned_items_at_their_version_and_keeps_unknown_values_apart() {
        let c = census(&[("1", 10), ("2", 30), ("3", 50), ("\"x\"", 2)], 8);
        assert_eq!(c.items, 100);
        assert_eq!(c.versions, BTreeMap::from([(1, 18), (2, 30), (3, 50)]));
        assert_eq!((c.at_least(2), c.at_least(3), c.at_least(4)), (80, 50, 0));
        let rows = c.rows();
        let labels: Vec<_> = rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["v1 (8 without version)", "v2", "v3", "\"x\" (not a version)"]);
        assert_eq!(rows[2].percent, 50.0);
        assert_eq!(rows[0].margin, None, "a full scan is exact");
        assert_eq!(census(&[], 4).rows()[0].label, "v1 (no version)");
        assert_eq!(census(&[], 0).percent_at_least(9), 100.0, "an empty table is all there");
    }

    #[test]
    fn a_sample_scales_to_the_table_with_margins_that_shrink_as_it_grows() {
        let mut c = census(&[("1", 250), ("2", 750)], 0);
        c.sample = Some(Estimate { segments: 10, total_segments: 100 });
        assert_eq!(c.total(), 10_000);
        let rows = c.rows();
        assert_eq!(rows[1].items, 7_500);
        let (items, share) = rows[1].margin.unwrap();
        // 1.96 * sqrt(750 * 0.9) / 0.1 = 509; 1.96 * sqrt(0.75 * 0.25 * 0.9 / 1000) = 2.55%
        assert_eq!(items, 510);
        assert!((share - 2.55).abs() < 0.01, "{share}");
        c.sample = Some(Estimate { segments: 50, total_segments: 100 });
        assert!(c.rows()[1].margin.unwrap().1 < share);
        let mut none_at_v3 = census(&[("2", 100)], 0);
        none_at_v3.versions.insert(3, 0);
        none_at_v3.sample = Some(Estimate { segments: 1, total_segments: 10 });
        assert_eq!(none_at_v3.rows()[1].margin.unwrap().0, 27, "rule of three: 3 * 0.9 / 0.1");
    }

    #[test]
    fn completion_counts_what_was_upgraded_and_takes_the_rest_from_the_last_census() {
        let baseline = census(&[("1", 600), ("2", 400)], 0);
        // Half the table scanned: 300 items read below v2, 290 upgraded, 10 failed.
        let live = Counts { scanned: 500, processed: 300, modified: 290, failed: 10, ..Counts::default() };
        let done = completion(2, &live, None, Some(&baseline)).unwrap();
        // scanned: 200 + 290 at v2; rest: 500 * 0.4 = 200; (490 + 200) / 1000
        assert!((done - 69.0).abs() < 1e-9, "{done}");
        let without = completion(2, &live, Some(1000), None).unwrap();
        assert!((without - 98.0).abs() < 1e-9, "the scanned share, 490/500, for the rest: {without}");
        let finished = Counts { scanned: 1000, processed: 600, modified: 600, ..Counts::default() };
        assert_eq!(completion(2, &finished, None, Some(&baseline)), Some(100.0));
        assert_eq!(completion(2, &Counts::default(), None, None), None, "nothing to go on yet");
    }
}
