//! UTC date formatting in the shapes Graph and the STS use, without a date crate.

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn parts(unix: i64) -> (i64, u32, u32, i64, i64, i64) {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, secs / 3600, secs / 60 % 60, secs % 60)
}

/// `2024-05-01T12:00:00`: the `innerError.date` form (no zone suffix, graph-api.md §7.1).
pub(crate) fn inner_error_date(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = parts(unix);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
}

/// `2023-03-13T19:15:41.6195833Z`: DateTimeOffset with 7 fractional digits (§1.3);
/// `None` for the fraction gives the short `…:41Z` form Graph also emits.
pub(crate) fn odata_datetime(unix: i64, ticks: Option<u32>) -> String {
    let (y, mo, d, h, mi, s) = parts(unix);
    match ticks {
        Some(t) => format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:07}Z",
            t % 10_000_000
        ),
        None => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
    }
}

/// `2024-01-09 02:02:12Z`: the STS error `timestamp` form (space, no `T`, §8.5).
pub(crate) fn sts_timestamp(unix: i64) -> String {
    let (y, mo, d, h, mi, s) = parts(unix);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}Z")
}

/// Seconds since the Unix epoch now.
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
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
    }
}
