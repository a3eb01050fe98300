//! Report writers: the same report as JSON (for scripts), a table (for people) or SARIF (for code
//! scanning dashboards), plus the scan metadata every report starts with.
//!
//! Why together: the three formats must say the same thing; keeping them side by side, each a
//! pure function from a report to bytes, makes that easy to check and to test without running a
//! scan.

pub mod json;
pub mod sarif;
pub mod table;

use rand::Rng;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

/// The current UTC time, to the second (reports carry whole seconds; durations are in `stats`).
pub fn now_utc() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

/// A sortable, unique scan id: `YYYYMMDDTHHMMSSZ-xxxxxxxx` (UTC start, then 32 random bits).
pub fn scan_id(started: OffsetDateTime) -> String {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    let stamp = started
        .to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_else(|_| "00000000T000000Z".to_owned());
    format!("{stamp}-{:08x}", rand::thread_rng().gen::<u32>())
}

/// RFC 3339 in UTC, e.g. `2026-11-21T07:10:00Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_ids_sort_by_time_and_have_the_documented_shape() {
        let t1 = OffsetDateTime::from_unix_timestamp(1_795_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let t2 = t1 + time::Duration::seconds(1);
        let (a, b) = (scan_id(t1), scan_id(t2));
        assert!(a < b, "{a} < {b}");
        assert_eq!(a.len(), "YYYYMMDDTHHMMSSZ-xxxxxxxx".len(), "{a}");
        assert_eq!(&a[8..9], "T");
        assert_eq!(&a[15..17], "Z-");
        assert!(a[17..]
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(rfc3339(t1), "2026-11-18T11:06:40Z");
    }
}
