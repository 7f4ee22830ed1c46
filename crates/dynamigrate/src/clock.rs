//! Wall-clock helpers. Lease expiry is compared in epoch milliseconds; humans get RFC 3339.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// RFC 3339 in UTC with exactly three fraction digits, e.g. `2026-11-21T05:37:36.120Z`: fixed width,
/// so the history's timestamps sort as text. (The SDK's formatter drops trailing zeros, and
/// `…36.12Z` sorted after `…36.123Z`.)
pub fn rfc3339(epoch_ms: u64) -> String {
    let seconds = DateTime::from(UNIX_EPOCH + Duration::from_secs(epoch_ms / 1000));
    match seconds.fmt(Format::DateTime) {
        Ok(text) => format!("{}.{:03}Z", text.trim_end_matches('Z'), epoch_ms % 1000),
        Err(_) => format!("{epoch_ms} ms since epoch"),
    }
}

/// Epoch milliseconds of an RFC 3339 time, as [`rfc3339`] writes them; None for anything else.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let time = DateTime::from_str(text, Format::DateTime).ok()?;
    u64::try_from(time.to_millis().ok()?).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_back_what_it_writes() {
        assert_eq!(super::parse_rfc3339(&super::rfc3339(1_764_315_456_123)), Some(1_764_315_456_123));
        assert_eq!(super::parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn formats_utc_with_milliseconds() {
        assert_eq!(super::rfc3339(1_764_315_456_123), "2025-11-28T07:37:36.123Z");
    }

    #[test]
    fn timestamps_have_a_fixed_width_and_sort_as_text() {
        assert_eq!(super::rfc3339(1_764_315_456_120), "2025-11-28T07:37:36.120Z");
        assert_eq!(super::rfc3339(1_764_315_456_000), "2025-11-28T07:37:36.000Z");
        let times = [1_764_315_456_000, 1_764_315_456_005, 1_764_315_456_050, 1_764_315_456_120, 1_764_315_456_123];
        let texts: Vec<String> = times.iter().map(|t| super::rfc3339(*t)).collect();
        assert!(texts.windows(2).all(|pair| pair[0] < pair[1]), "{texts:?}");
    }
}
