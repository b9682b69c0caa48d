//! Timestamps as lava writes and reads them: local time with a numeric
//! offset and whole seconds (`2024-05-01T10:00:00+10:00`), naive UTC for
//! `tu_event`, and a lenient reader for dispatch messages.

use chrono::{
    DateTime, FixedOffset, Local, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc,
};

/// Now, in the local zone, whole seconds.
pub fn now_local() -> DateTime<FixedOffset> {
    let now = Local::now().fixed_offset();
    now.with_nanosecond_zero()
}

trait DropFraction {
    fn with_nanosecond_zero(self) -> Self;
}

impl DropFraction for DateTime<FixedOffset> {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap_or(self)
    }
}

/// ISO 8601 with a numeric offset, as Python's `isoformat()` prints an aware
/// datetime: `2024-05-01T10:00:00+10:00`, never `Z`; fractions only if present.
pub fn isoformat(t: &DateTime<FixedOffset>) -> String {
    use chrono::Timelike;
    if t.nanosecond() == 0 {
        t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string()
    }
}

/// Naive UTC without offset or fraction: `2024-05-01T00:00:00` (`tu_event`).
pub fn naive_utc(t: &DateTime<FixedOffset>) -> String {
    t.with_timezone(&Utc)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// The same instant in UTC, ISO with `+00:00`.
pub fn utc_isoformat(t: &DateTime<FixedOffset>) -> String {
    isoformat(&t.with_timezone(&Utc).fixed_offset())
}

/// Reads a date-time leniently, as workers read `ts_dispatch`: RFC 3339 /
/// ISO 8601 with `T` or a space, optional fraction, offset `Z`, `+HH:MM`,
/// `+HHMM` or none (then the local zone), or a bare date (local midnight).
pub fn parse_lenient(text: &str) -> Option<DateTime<FixedOffset>> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Some(dt);
    }
    let t = t.replacen(' ', "T", 1);
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%:z",
    ] {
        if let Ok(dt) = DateTime::parse_from_str(&t, fmt) {
            return Some(dt);
        }
    }
    let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|fmt| NaiveDateTime::parse_from_str(&t, fmt).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(&t, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|dt| dt.fixed_offset())
}

/// Reads strict ISO 8601 with an offset, as `globals.lava.*_start` must be.
pub fn parse_strict(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .or_else(|| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%:z").ok())
}

/// RFC 3339 with seconds, for logs.
pub fn rfc3339(t: &DateTime<FixedOffset>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = DateTime::parse_from_rfc3339("2024-05-01T10:00:00+10:00").expect("valid");
        assert_eq!(isoformat(&t), "2024-05-01T10:00:00+10:00");
        assert_eq!(naive_utc(&t), "2024-05-01T00:00:00");
        assert_eq!(utc_isoformat(&t), "2024-05-01T00:00:00+00:00");
        let z = DateTime::parse_from_rfc3339("2024-05-01T00:00:00Z").expect("valid");
        assert_eq!(isoformat(&z), "2024-05-01T00:00:00+00:00");
        let now = now_local();
        assert_eq!(
            isoformat(&now).len(),
            25,
            "whole seconds with offset: {}",
            isoformat(&now)
        );
    }

    #[test]
    fn lenient_reader() {
        for text in [
            "2024-05-01T10:00:00+10:00",
            "2024-05-01 10:00:00+10:00",
            "2024-05-01T10:00:00.123456+10:00",
            "2024-05-01T00:00:00Z",
            "2024-05-01T10:00:00+1000",
            "2024-05-01T10:00:00",
            "2024-05-01 10:00",
            "2024-05-01",
        ] {
            assert!(parse_lenient(text).is_some(), "{text}");
        }
        for bad in ["", "yesterday", "2024-13-01", "2024-05-01T25:00:00"] {
            assert!(parse_lenient(bad).is_none(), "{bad}");
        }
        assert!(parse_strict("2024-05-01T10:00:00+10:00").is_some());
        assert!(parse_strict("2024-05-01 10:00").is_none());
    }
}
