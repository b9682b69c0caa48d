//! A job's `schedule` field: a cron string, a map `{crontab, from?, to?}`,
//! or a list of either. Each entry is checked on its own; a bad one is
//! reported and the others still count.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde_json::Value;

use super::expr::{Cache, CronExpr};
use super::zone::{self, Zone};

/// When an entry is active: `from ≤ now ≤ to`, or, when `from > to` (an
/// exclusion window), `now ≤ to` or `now ≥ from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start (default 0001-01-01 UTC).
    pub from: DateTime<FixedOffset>,
    /// End (default 9999-12-31 UTC).
    pub to: DateTime<FixedOffset>,
}

impl Window {
    /// Always active.
    pub fn always() -> Self {
        let utc = |y, m, d| {
            NaiveDate::from_ymd_opt(y, m, d)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().fixed_offset())
                .unwrap_or_default()
        };
        Self {
            from: utc(1, 1, 1),
            to: utc(9999, 12, 31),
        }
    }

    /// Whether the entry is active at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        if self.from <= self.to {
            self.from <= now && now <= self.to
        } else {
            now <= self.to || now >= self.from
        }
    }
}

/// One valid schedule entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// 1-based position in the schedule.
    pub number: usize,
    /// The cron expression.
    pub expr: CronExpr,
    /// When it is active.
    pub window: Window,
}

/// An entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEntry {
    /// 1-based position in the schedule.
    pub number: usize,
    /// The entry as written (a map as compact JSON).
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

/// The entries of a schedule, good and bad. Null, empty and `--`
/// schedules (and such strings inside a list or map) give nothing.
pub fn entries(schedule: &Value, zone: Zone, cache: &mut Cache) -> (Vec<Entry>, Vec<BadEntry>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut take = |number: usize, value: &Value| match entry(number, value, zone, cache) {
        Ok(Some(e)) => good.push(e),
        Ok(None) => {}
        Err(reason) => bad.push(BadEntry {
            number,
            text: text_of(value),
            reason,
        }),
    };
    match schedule {
        Value::Null => {}
        Value::Array(list) => {
            for (i, value) in list.iter().enumerate() {
                take(i + 1, value);
            }
        }
        other => take(1, other),
    }
    (good, bad)
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// True for the texts that mean "not scheduled".
fn is_blank(text: &str) -> bool {
    matches!(text.trim(), "" | "--")
}

fn entry(
    number: usize,
    value: &Value,
    zone: Zone,
    cache: &mut Cache,
) -> Result<Option<Entry>, String> {
    match value {
        Value::String(text) if is_blank(text) => Ok(None),
        Value::String(text) => Ok(Some(Entry {
            number,
            expr: cache.parse(text)?,
            window: Window::always(),
        })),
        Value::Object(map) => {
            let mut unexpected: Vec<&str> = map
                .keys()
                .map(String::as_str)
                .filter(|k| !matches!(*k, "crontab" | "from" | "to"))
                .collect();
            if !unexpected.is_empty() {
                unexpected.sort_unstable();
                return Err(format!("Unexpected keys: {}", unexpected.join(", ")));
            }
            let text = match map.get("crontab") {
                Some(Value::String(text)) => text,
                None => return Err("Missing key: crontab".into()),
                Some(other) => return Err(format!("crontab must be a string, not {other}")),
            };
            if is_blank(text) {
                return Ok(None);
            }
            let expr = cache.parse(text)?;
            let mut window = Window::always();
            if let Some(from) = map.get("from") {
                window.from = edge("from", from, zone)?;
            }
            if let Some(to) = map.get("to") {
                window.to = edge("to", to, zone)?;
            }
            Ok(Some(Entry {
                number,
                expr,
                window,
            }))
        }
        other => Err(format!("Expected a string or map, got {other}")),
    }
}

/// A `from` or `to` value. The message keeps the original's doubled quote.
fn edge(name: &str, value: &Value, zone: Zone) -> Result<DateTime<FixedOffset>, String> {
    let parsed = match value {
        Value::String(text) => zone::parse_datetime(text, zone),
        other => Err(format!("not a datetime: {other}")),
    };
    parsed.map_err(|e| format!("Bad \"{name}\"\": {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const UTC: Zone = Zone::Named(chrono_tz::UTC);

    fn entries(schedule: &Value, zone: Zone) -> (Vec<Entry>, Vec<BadEntry>) {
        super::entries(schedule, zone, &mut Cache::default())
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn active(schedule: Value, now: &str) -> Vec<usize> {
        let (good, bad) = entries(&schedule, UTC);
        assert!(bad.is_empty(), "{bad:?}");
        good.iter()
            .filter(|e| e.window.is_active(at(now)))
            .map(|e| e.number)
            .collect()
    }

    #[test]
    fn forms() {
        assert_eq!(active(json!("0 12 * * 1-5"), "2025-01-01T00:00:00Z"), [1]);
        assert_eq!(
            active(json!({"crontab": "@daily"}), "2025-01-01T00:00:00Z"),
            [1]
        );
        let list =
            json!(["0 12 * * 1-5", {"crontab": "0 14 * * 0,6", "from": "2024-01-01T00:00:00"}]);
        assert_eq!(active(list.clone(), "2025-01-01T00:00:00Z"), [1, 2]);
        assert_eq!(active(list, "2023-12-31T23:59:59Z"), [1]);
        for blank in [
            json!(null),
            json!(""),
            json!("--"),
            json!("  "),
            json!([]),
            json!(["", "--"]),
        ] {
            assert!(active(blank, "2025-01-01T00:00:00Z").is_empty());
        }
    }

    #[test]
    fn windows_at_their_edges() {
        let window = json!({"crontab": "* * * * *", "from": "2025-01-01T00:00:00", "to": "2025-01-31T00:00:00"});
        assert!(active(window.clone(), "2024-12-31T23:59:59Z").is_empty());
        assert_eq!(active(window.clone(), "2025-01-01T00:00:00Z"), [1]);
        assert_eq!(active(window.clone(), "2025-01-31T00:00:00Z"), [1]);
        assert!(active(window, "2025-01-31T00:00:01Z").is_empty());
        // from > to: active outside (to, from).
        let exclusion = json!({"crontab": "* * * * *", "from": "2025-02-01", "to": "2025-01-01"});
        assert_eq!(active(exclusion.clone(), "2025-01-01T00:00:00Z"), [1]);
        assert!(active(exclusion.clone(), "2025-01-01T00:00:01Z").is_empty());
        assert!(active(exclusion.clone(), "2025-01-31T23:59:59Z").is_empty());
        assert_eq!(active(exclusion.clone(), "2025-02-01T00:00:00Z"), [1]);
        assert_eq!(active(exclusion, "2026-01-01T00:00:00Z"), [1]);
        // Only `to`, only `from`.
        assert_eq!(
            active(
                json!({"crontab": "@daily", "to": "2025-01-01"}),
                "2024-06-01T00:00:00Z"
            ),
            [1]
        );
        assert!(
            active(
                json!({"crontab": "@daily", "from": "2025-01-01"}),
                "2024-06-01T00:00:00Z"
            )
            .is_empty()
        );
    }

    #[test]
    fn windows_read_in_the_zone() {
        let entry = json!({"crontab": "@daily", "from": "2025-03-01T11:00"});
        let now = at("2025-03-01T00:30:00Z"); // 11:30 in Sydney
        let sydney = Zone::Named(chrono_tz::Australia::Sydney);
        let (good, _) = entries(&entry, sydney);
        assert!(good[0].window.is_active(now));
        let (good, _) = entries(&entry, UTC);
        assert!(!good[0].window.is_active(now));
        // An explicit offset wins over the zone.
        let entry = json!({"crontab": "@daily", "from": "2025-03-01T11:00+00:00"});
        let (good, _) = entries(&entry, sydney);
        assert!(!good[0].window.is_active(now));
    }

    #[test]
    fn bad_entries_are_reported_alone() {
        let schedule = json!([
            "61 * * * *",
            "0 1 * * *",
            {"crontab": "0 2 * * *", "to:": "2025-01-01"},
            5,
            null,
            {"crontab": "0 3 * * *", "from": "soon"},
            {"from": "2025-01-01"},
            {"crontab": 7}
        ]);
        let (good, bad) = entries(&schedule, UTC);
        assert_eq!(good.iter().map(|e| e.number).collect::<Vec<_>>(), [2]);
        let shown: Vec<(usize, &str, &str)> = bad
            .iter()
            .map(|b| (b.number, b.text.as_str(), b.reason.as_str()))
            .collect();
        assert_eq!(shown[0], (1, "61 * * * *", "minute 61 out of range 0-59"));
        assert_eq!(
            shown[1],
            (
                3,
                r#"{"crontab":"0 2 * * *","to:":"2025-01-01"}"#,
                "Unexpected keys: to:"
            )
        );
        assert_eq!(shown[2], (4, "5", "Expected a string or map, got 5"));
        assert_eq!(shown[3], (5, "null", "Expected a string or map, got null"));
        assert!(shown[4].2.starts_with("Bad \"from\"\": "), "{}", shown[4].2);
        assert_eq!(shown[5].2, "Missing key: crontab");
        assert_eq!(shown[6].2, "crontab must be a string, not 7");
        let (good, bad) = entries(&json!(true), UTC);
        assert!(good.is_empty() && bad.len() == 1);
    }
}
