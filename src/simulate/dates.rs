//! UTC date formatting in the shapes Graph and the STS use, on `humantime`'s RFC 3339.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Last second humantime formats (9999-12-31T23:59:59Z).
const LAST_FORMATTABLE: u64 = 253_402_300_799;

/// `2024-05-01T12:00:00`: RFC 3339 to the second without the zone suffix. Times outside
/// 1970..=9999, which the simulator never generates, are clamped to that range.
fn seconds(unix: i64) -> String {
    let secs = u64::try_from(unix).unwrap_or(0).min(LAST_FORMATTABLE);
    let t = UNIX_EPOCH + Duration::from_secs(secs);
    let mut text = humantime::format_rfc3339_seconds(t).to_string();
    text.pop(); // the `Z`
    text
}

/// `2024-05-01T12:00:00`: the `innerError.date` form (no zone suffix, graph-api.md §7.1).
pub(crate) fn inner_error_date(unix: i64) -> String {
    seconds(unix)
}

/// `2023-03-13T19:15:41.6195833Z`: DateTimeOffset with 7 fractional digits (§1.3), a
/// precision humantime does not offer, so the ticks are appended; `None` for the
/// fraction gives the short `…:41Z` form Graph also emits.
pub(crate) fn odata_datetime(unix: i64, ticks: Option<u32>) -> String {
    match ticks {
        Some(t) => format!("{}.{:07}Z", seconds(unix), t % 10_000_000),
        None => format!("{}Z", seconds(unix)),
    }
}

/// `2024-01-09 02:02:12Z`: the STS error `timestamp` form (space, no `T`, §8.5).
pub(crate) fn sts_timestamp(unix: i64) -> String {
    format!("{}Z", seconds(unix).replacen('T', " ", 1))
}

/// Seconds since the Unix epoch now.
pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(inner_error_date(0), "1970-01-01T00:00:00");
        // 2023-03-13T19:15:41Z
        assert_eq!(
            odata_datetime(1_678_734_941, Some(6_195_833)),
            "2023-03-13T19:15:41.6195833Z"
        );
        assert_eq!(odata_datetime(951_782_400, None), "2000-02-29T00:00:00Z");
        assert_eq!(sts_timestamp(1_704_765_732), "2024-01-09 02:02:12Z");
        assert_eq!(odata_datetime(0, Some(7)), "1970-01-01T00:00:00.0000007Z");
        assert_eq!(inner_error_date(4_102_444_799), "2099-12-31T23:59:59");
    }
}
