//! How a census of versions reads: `versions`' table, and `status`'s line per table.

use std::io::Write;

use dynamigrate::clock::{now_ms, parse_rfc3339};
use dynamigrate::events::format_duration;
use dynamigrate::versions::Census;

/// `versions`: one line per version with its items and share, and for a sample, the margins.
pub fn print(census: &Census) {
    let mut out = std::io::stdout().lock();
    let versioning = &census.versioning;
    let seconds = census.duration_ms as f64 / 1000.0;
    let _ = writeln!(
        out,
        "table {}: {} items by `{}` (items without it are v{}), scanned in {seconds:.1}s",
        census.table,
        census.total(),
        versioning.attribute,
        versioning.unversioned
    );
    if let Some(sample) = census.sample {
        let _ = writeln!(
            out,
            "ESTIMATE from {} items in {} of {} scan segments ({:.2}% of the table); ± is a 95% margin",
            census.items,
            sample.segments,
            sample.total_segments,
            sample.fraction() * 100.0
        );
    }
    let rows = census.rows();
    let width = rows.iter().map(|r| r.label.len()).max().unwrap_or(0).max(7);
    for row in rows {
        let margin = row.margin.map_or(String::new(), |(items, share)| format!("  ±{items} items, ±{share:.2}%"));
        let _ = writeln!(out, "  {:<width$}  {:>12}  {:>6.2}%{margin}", row.label, row.items, row.percent);
    }
}

/// `status`: each table's last census in one line, with its age.
pub fn status_lines(out: &mut impl Write, censuses: &[Census]) {
    if censuses.is_empty() {
        return;
    }
    let _ = writeln!(out, "versions (last census):");
    for census in censuses {
        let shares: Vec<String> =
            census.rows().iter().rev().map(|r| format!("{} {:.1}%", r.label, r.percent)).collect();
        let age = parse_rfc3339(&census.measured_at).map_or("at an unknown time".to_string(), |at| {
            format!("{} ago", format_duration(now_ms().saturating_sub(at) as f64 / 1000.0))
        });
        let estimate = if census.sample.is_some() { "estimated " } else { "" };
        let _ = writeln!(
            out,
            "  {}: {estimate}{} items: {} ({age}, {})",
            census.table,
            census.total(),
            shares.join(", "),
            census.measured_at
        );
    }
}
