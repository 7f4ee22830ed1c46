//! Wall-clock helpers. Lease expiry is compared in epoch milliseconds; humans get RFC 3339.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-21T05:37:36.123Z`.
pub fn rfc3339(epoch_ms: u64) -> String {
    let time = DateTime::from(UNIX_EPOCH + Duration::from_millis(epoch_ms));
    time.fmt(Format::DateTime).unwrap_or_else(|_| format!("{epoch_ms} ms since epoch"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_with_milliseconds() {
        assert_eq!(super::rfc3339(1_764_315_456_123), "2025-11-28T07:37:36.123Z");
    }
}
