//! Cron expressions as both Debian's cron and cronie accept them (one bad
//! line makes cron refuse the whole crontab): five fields of digits, `*`, `,`, `-`, `/` and English
//! month and day names, or one of the `@` nicknames. croner must parse them
//! too; it computes the fire times that `lava-crontab next` shows.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Local, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use super::zone::Zone;

/// The nicknames cron knows, exactly as it spells them (cron compares
/// them case-sensitively), with the five-field pattern croner is given.
const NICKNAMES: &[(&str, Option<&str>)] = &[
    ("@yearly", Some("0 0 1 1 *")),
    ("@annually", Some("0 0 1 1 *")),
    ("@monthly", Some("0 0 1 * *")),
    ("@weekly", Some("0 0 * * 0")),
    ("@daily", Some("0 0 * * *")),
    ("@midnight", Some("0 0 * * *")),
    ("@hourly", Some("0 * * * *")),
    ("@reboot", None),
];

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// One field of a five-field expression.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names for values, the first meaning `min`.
    names: &'static [&'static str],
}

const FIELDS: [Field; 5] = [
    Field {
        name: "minute",
        min: 0,
        max: 59,
        names: &[],
    },
    Field {
        name: "hour",
        min: 0,
        max: 23,
        names: &[],
    },
    Field {
        name: "day of month",
        min: 1,
        max: 31,
        names: &[],
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: MONTHS,
    },
    Field {
        name: "day of week",
        min: 0,
        max: 7,
        names: DAYS,
    },
];

/// A valid cron expression.
#[derive(Debug, Clone)]
pub struct CronExpr {
    text: String,
    cron: Option<Arc<Cron>>,
}

impl CronExpr {
    /// Checks a schedule text. The error says what is wrong, naming the field.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim_matches([' ', '\t']);
        if let Some(c) = text.chars().find(|c| c.is_control() && *c != '\t') {
            return Err(format!("control character {c:?} in the schedule"));
        }
        if text.starts_with('@') {
            return match NICKNAMES.iter().find(|(name, _)| *name == text) {
                Some((name, pattern)) => Ok(Self {
                    text: (*name).to_string(),
                    cron: pattern.map(|p| croner(p, false)).transpose()?.map(Arc::new),
                }),
                None => Err(format!(
                    "unknown nickname {text}: use one of {}",
                    NICKNAMES.iter().map(|n| n.0).collect::<Vec<_>>().join(" ")
                )),
            };
        }
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!("expected 5 fields, got {}", fields.len()));
        }
        for (field, spec) in fields.iter().zip(&FIELDS) {
            check_field(field, spec)?;
        }
        // Vixie cron and cronie match day of month AND day of week when
        // either field starts with `*`, else either one (OR).
        let and = fields[2].starts_with('*') || fields[4].starts_with('*');
        let text = fields.join(" ");
        let cron = croner(&text, and)?;
        Ok(Self {
            text,
            cron: Some(Arc::new(cron)),
        })
    }

    /// The expression as written into the crontab: fields joined by one space.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True for `@reboot`, which has no fire times.
    pub fn is_reboot(&self) -> bool {
        self.cron.is_none()
    }

    /// The next `n` fire times after `now`, in `zone`.
    pub fn next_times(
        &self,
        now: DateTime<Utc>,
        zone: Zone,
        n: usize,
    ) -> Vec<DateTime<FixedOffset>> {
        let Some(cron) = &self.cron else {
            return Vec::new();
        };
        match zone {
            Zone::Host => next_in(cron, now.with_timezone(&Local), n),
            Zone::Named(tz) => next_in(cron, now.with_timezone(&tz), n),
        }
    }
}

/// Expressions already checked, by text: many jobs share a schedule, and
/// croner's parse is the costly part of building a large crontab.
#[derive(Debug, Default)]
pub struct Cache {
    parsed: HashMap<String, Result<CronExpr, String>>,
}

impl Cache {
    /// [`CronExpr::parse`], remembered.
    pub fn parse(&mut self, text: &str) -> Result<CronExpr, String> {
        if let Some(known) = self.parsed.get(text) {
            return known.clone();
        }
        let parsed = CronExpr::parse(text);
        self.parsed.insert(text.to_string(), parsed.clone());
        parsed
    }
}

fn next_in<Z: TimeZone>(cron: &Cron, start: DateTime<Z>, n: usize) -> Vec<DateTime<FixedOffset>> {
    cron.iter_after(start)
        .take(n)
        .map(|t| t.fixed_offset())
        .collect()
}

fn croner(pattern: &str, dom_and_dow: bool) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .dom_and_dow(dom_and_dow)
        .build()
        .parse(pattern)
        .map_err(|e| format!("croner: {e}"))
}

/// Checks one field: a `,` list of `*`, `N` or `N-M`, each optionally
/// followed by `/STEP` (a step needs `*` or a range).
fn check_field(field: &str, spec: &Field) -> Result<(), String> {
    let name = spec.name;
    if let Some(c) = field
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '*' | ',' | '-' | '/')))
    {
        return Err(format!("{name}: {c:?} is not allowed in {field:?}"));
    }
    for item in field.split(',') {
        if item.is_empty() {
            return Err(format!("{name}: empty list item in {field:?}"));
        }
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(step)),
            None => (item, None),
        };
        let ranged = if base == "*" {
            true
        } else if let Some((low, high)) = base.split_once('-') {
            let low = value(low, spec)?;
            let high = value(high, spec)?;
            if low > high {
                return Err(format!("{name}: range {base} runs backwards"));
            }
            true
        } else {
            value(base, spec)?;
            false
        };
        if let Some(step) = step {
            if !ranged {
                return Err(format!("{name}: a step needs * or a range, not {item:?}"));
            }
            let n: u32 = step
                .parse()
                .ok()
                .filter(|_| step.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("{name}: bad step {step:?} in {item:?}"))?;
            if n == 0 || n > spec.max {
                return Err(format!("{name}: step {n} out of range 1-{}", spec.max));
            }
        }
    }
    Ok(())
}

/// A single value: digits in range, or a three-letter name where the field has names.
fn value(text: &str, spec: &Field) -> Result<u32, String> {
    let name = spec.name;
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let n: u32 = text.parse().unwrap_or(u32::MAX);
        if n < spec.min || n > spec.max {
            return Err(format!(
                "{name} {text} out of range {}-{}",
                spec.min, spec.max
            ));
        }
        return Ok(n);
    }
    let lower = text.to_ascii_lowercase();
    match spec.names.iter().position(|n| *n == lower) {
        Some(i) => Ok(spec.min + u32::try_from(i).unwrap_or(0)),
        None if spec.names.is_empty() => Err(format!("{name}: {text:?} is not a number")),
        None => Err(format!(
            "{name}: {text:?} is neither a number nor one of {}",
            spec.names.join(" ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> String {
        match CronExpr::parse(text) {
            Ok(e) => e.text().to_string(),
            Err(e) => panic!("{text:?} should be valid: {e}"),
        }
    }

    fn bad(text: &str) -> String {
        match CronExpr::parse(text) {
            Ok(_) => panic!("{text:?} should be invalid"),
            Err(e) => e,
        }
    }

    #[test]
    fn valid_forms() {
        for text in [
            "* * * * *",
            "0-59/15 * * * *",
            "*/5 1,2,3 1-31 1-12 0-7",
            "0 12 * * mon-fri",
            "0 12 * * MON-Fri",
            "0 0 1 jan,JUL *",
            "59 23 31 12 7",
            "0 0 * * sun",
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
            "@reboot",
        ] {
            ok(text);
        }
        assert_eq!(ok("  0\t12  * * 1-5 "), "0 12 * * 1-5");
    }

    #[test]
    fn invalid_forms_say_why() {
        assert_eq!(bad("61 * * * *"), "minute 61 out of range 0-59");
        assert_eq!(bad("* 24 * * *"), "hour 24 out of range 0-23");
        assert_eq!(bad("* * 0 * *"), "day of month 0 out of range 1-31");
        assert_eq!(bad("* * * 13 *"), "month 13 out of range 1-12");
        assert_eq!(bad("* * * * 8"), "day of week 8 out of range 0-7");
        assert_eq!(bad("* * * *"), "expected 5 fields, got 4");
        assert_eq!(bad("bad"), "expected 5 fields, got 1");
        assert_eq!(bad("0 0 * * * *"), "expected 5 fields, got 6");
        assert!(bad("0 0 L * *").contains("day of month"));
        assert!(bad("0 0 15W * *").contains("day of month"));
        assert!(bad("0 0 * * 5#2").contains("'#'"));
        assert!(bad("0 0 ? * *").contains("'?'"));
        assert!(bad("0 0 * * 5L").contains("day of week"));
        assert!(bad("0 0 * * mon-sun").contains("backwards"));
        assert!(bad("5/15 * * * *").contains("step needs"));
        assert!(bad("*/0 * * * *").contains("step 0"));
        assert!(bad("*/ * * * *").contains("bad step"));
        assert!(bad("1,,2 * * * *").contains("empty"));
        assert!(bad("0 0 * jan-mon *").contains("month"));
        assert!(bad("0 0 * * monday").contains("day of week"));
        assert!(bad("@Daily").contains("unknown nickname"));
        assert!(bad("@every 5m").contains("unknown nickname"));
        assert!(bad("0 0 * * *\n* * * * * rm").contains("control"));
        assert!(bad("0 0 * * 1\r").contains("control"));
        assert!(bad("0 0 * * 1 %").contains("fields"));
        assert!(bad("0 0 * * +1").contains("'+'"));
    }

    #[test]
    fn next_fire_times() {
        let now = DateTime::parse_from_rfc3339("2025-01-03T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let utc = Zone::Named(chrono_tz::UTC);
        let shown = |text: &str, zone: Zone| -> Vec<String> {
            CronExpr::parse(text)
                .map(|e| e.next_times(now, zone, 3))
                .unwrap_or_default()
                .iter()
                .map(super::super::zone::format)
                .collect()
        };
        assert_eq!(
            shown("0 12 * * mon-fri", utc),
            [
                "2025-01-03T12:00:00+00:00",
                "2025-01-06T12:00:00+00:00",
                "2025-01-07T12:00:00+00:00"
            ]
        );
        assert_eq!(
            shown(
                "0 12 * * mon-fri",
                Zone::Named(chrono_tz::Australia::Sydney)
            ),
            [
                "2025-01-03T12:00:00+11:00",
                "2025-01-06T12:00:00+11:00",
                "2025-01-07T12:00:00+11:00"
            ]
        );
        // Day of month OR day of week when neither starts with *.
        assert_eq!(
            shown("0 0 4 * mon", utc),
            [
                "2025-01-04T00:00:00+00:00",
                "2025-01-06T00:00:00+00:00",
                "2025-01-13T00:00:00+00:00"
            ]
        );
        // AND when one starts with * (vixie's rule, also for */2).
        assert_eq!(
            shown("0 0 */2 * mon", utc),
            [
                "2025-01-13T00:00:00+00:00",
                "2025-01-27T00:00:00+00:00",
                "2025-02-03T00:00:00+00:00"
            ]
        );
        assert_eq!(shown("@weekly", utc)[0], "2025-01-05T00:00:00+00:00");
        assert!(shown("@reboot", utc).is_empty());
    }
}
