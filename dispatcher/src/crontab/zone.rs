//! The time zone schedules are read in: `CRON_TZ` when the crontab's env
//! sets it (cronie honours it), else the host zone (Debian's cron ignores
//! `CRON_TZ`). Reads the `from`/`to` datetimes of schedule entries and fire
//! times are shown in it.

use std::collections::BTreeMap;

use chrono::{
    DateTime, FixedOffset, Local, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;

/// A time zone: the host's or a named IANA zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// The host zone (`TZ`, else `/etc/localtime`).
    Host,
    /// An IANA zone, as `CRON_TZ` names it.
    Named(Tz),
}

impl Zone {
    /// The zone of a crontab env: `CRON_TZ` if set, else the host zone.
    /// An unknown zone name is an error naming it.
    pub fn from_env(env: &BTreeMap<String, String>) -> Result<Self, String> {
        match env.get("CRON_TZ") {
            None => Ok(Self::Host),
            Some(name) => name
                .trim()
                .parse::<Tz>()
                .map(Self::Named)
                .map_err(|_| format!("CRON_TZ: unknown time zone {name:?}")),
        }
    }

    /// An instant shown in this zone.
    pub fn at(self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        match self {
            Self::Host => t.with_timezone(&Local).fixed_offset(),
            Self::Named(tz) => t.with_timezone(&tz).fixed_offset(),
        }
    }

    /// A wall-clock time read in this zone. An ambiguous time (clocks going
    /// back) is the earlier instant; a time in a gap (clocks going forward)
    /// is read with the offset in force before the gap.
    pub fn resolve(self, naive: NaiveDateTime) -> Option<DateTime<FixedOffset>> {
        match self {
            Self::Host => resolve_in(&Local, naive),
            Self::Named(tz) => resolve_in(&tz, naive),
        }
    }
}

fn resolve_in<Z: TimeZone>(zone: &Z, naive: NaiveDateTime) -> Option<DateTime<FixedOffset>> {
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t.fixed_offset()),
        LocalResult::Ambiguous(earlier, _) => Some(earlier.fixed_offset()),
        LocalResult::None => {
            let before = naive.checked_sub_signed(TimeDelta::days(1))?;
            let offset = zone.offset_from_local_datetime(&before).earliest()?.fix();
            offset.from_local_datetime(&naive).single()
        }
    }
}

/// Parses an ISO 8601 datetime as schedule windows and `--now` give them:
/// `YYYY-MM-DD`, optionally followed by `T` or a space and `HH[:MM[:SS[.f]]]`,
/// optionally followed by `Z` or an offset `±HH[:MM]` / `±HHMM`. Without an
/// offset the time is read in `zone`.
pub fn parse_datetime(text: &str, zone: Zone) -> Result<DateTime<FixedOffset>, String> {
    let bad = || format!("not an ISO 8601 datetime: {text:?}");
    let text = text.trim();
    let date_part = text.get(..10).ok_or_else(bad)?;
    let date = NaiveDate::parse_from_str(date_part, "%Y-%m-%d").map_err(|_| bad())?;
    let rest = &text[date_part.len()..];
    let (time, offset) = if rest.is_empty() {
        (NaiveTime::MIN, None)
    } else {
        let rest = rest
            .strip_prefix(['T', 't', ' '])
            .ok_or_else(bad)?
            .trim_start();
        let (clock, offset) = split_offset(rest).ok_or_else(bad)?;
        (parse_clock(clock).ok_or_else(bad)?, offset)
    };
    let naive = date.and_time(time);
    match offset {
        Some(offset) => offset.from_local_datetime(&naive).single().ok_or_else(bad),
        None => zone
            .resolve(naive)
            .ok_or_else(|| format!("{text:?} does not exist in the time zone")),
    }
}

/// Splits `HH:MM…` from a trailing `Z` or `±offset`.
fn split_offset(text: &str) -> Option<(&str, Option<FixedOffset>)> {
    let text = text.trim_end();
    if let Some(clock) = text.strip_suffix(['Z', 'z']) {
        return Some((clock.trim_end(), Some(Utc.fix())));
    }
    let Some(at) = text.find(['+', '-']) else {
        return Some((text, None));
    };
    let (clock, offset) = text.split_at(at);
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let digits: String = offset[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i32 = digits.get(..2)?.parse().ok()?;
    let minutes: i32 = digits
        .get(2..)
        .filter(|m| !m.is_empty())
        .map_or(Some(0), |m| m.parse().ok())?;
    if minutes > 59 {
        return None;
    }
    let offset = FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))?;
    Some((clock.trim_end(), Some(offset)))
}

/// `HH`, `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fff`.
fn parse_clock(text: &str) -> Option<NaiveTime> {
    ["%H:%M:%S%.f", "%H:%M", "%H"]
        .iter()
        .find_map(|format| NaiveTime::parse_from_str(text, format).ok())
        .or_else(|| {
            // chrono's `%H` alone does not parse; take two digits by hand.
            let hour: u32 = text.parse().ok().filter(|_| text.len() == 2)?;
            NaiveTime::from_hms_opt(hour, 0, 0)
        })
}

/// A fire time or window edge as ISO 8601 with its offset (`2025-01-06T12:00:00+11:00`).
pub fn format(t: &DateTime<FixedOffset>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sydney() -> Zone {
        Zone::Named(chrono_tz::Australia::Sydney)
    }

    fn iso(text: &str, zone: Zone) -> String {
        parse_datetime(text, zone).map_or_else(|e| e, |t| format(&t))
    }

    #[test]
    fn forms_with_and_without_offsets() {
        let utc = Zone::Named(chrono_tz::UTC);
        assert_eq!(iso("2025-03-01", utc), "2025-03-01T00:00:00+00:00");
        assert_eq!(iso("2025-03-01T11:00", utc), "2025-03-01T11:00:00+00:00");
        assert_eq!(iso("2025-03-01 11:00:05", utc), "2025-03-01T11:00:05+00:00");
        assert_eq!(
            iso("2025-03-01T11:00:05.25", utc),
            "2025-03-01T11:00:05+00:00"
        );
        assert_eq!(iso("2025-03-01T11", utc), "2025-03-01T11:00:00+00:00");
        assert_eq!(
            iso("2025-03-01T11:00Z", sydney()),
            "2025-03-01T11:00:00+00:00"
        );
        assert_eq!(
            iso("2025-03-01T11:00:00+05:30", utc),
            "2025-03-01T11:00:00+05:30"
        );
        assert_eq!(
            iso("2025-03-01T11:00:00-0400", utc),
            "2025-03-01T11:00:00-04:00"
        );
        assert_eq!(
            iso("2025-03-01T11:00:00+02", utc),
            "2025-03-01T11:00:00+02:00"
        );
        // Summer time in Sydney is +11:00, winter +10:00.
        assert_eq!(
            iso("2025-03-01T11:00", sydney()),
            "2025-03-01T11:00:00+11:00"
        );
        assert_eq!(
            iso("2025-07-01T11:00", sydney()),
            "2025-07-01T11:00:00+10:00"
        );
        for bad in [
            "",
            "2025",
            "2025-13-01",
            "2025-02-30",
            "2025-03-01X11:00",
            "2025-03-01T25:00",
            "2025-03-01T11:00+5",
            "2025-03-01T11:00+05:99",
            "tomorrow",
            "2025-03-01T",
            "20250301",
            "2025-03-0é",
        ] {
            assert!(parse_datetime(bad, utc).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn dst_gap_and_overlap() {
        // Sydney: clocks go forward 2025-10-05 02:00 → 03:00, back 2025-04-06 03:00 → 02:00.
        // In the gap: read with the offset before it (the same instant as 03:30+11:00).
        assert_eq!(
            iso("2025-10-05T02:30", sydney()),
            "2025-10-05T02:30:00+10:00"
        );
        assert_eq!(
            iso("2025-04-06T02:30", sydney()),
            "2025-04-06T02:30:00+11:00"
        );
    }

    #[test]
    fn zone_from_env() {
        let mut env = BTreeMap::new();
        assert_eq!(Zone::from_env(&env), Ok(Zone::Host));
        env.insert("CRON_TZ".to_string(), "Australia/Sydney".to_string());
        assert_eq!(Zone::from_env(&env), Ok(sydney()));
        env.insert("CRON_TZ".to_string(), "Mars/Olympus".to_string());
        assert!(Zone::from_env(&env).is_err());
    }
}
