//! Durations: Python's `datetime.timedelta` and dateutil's `relativedelta`
//! as template objects, their arithmetic, attributes and printing. The
//! classes that build them from template arguments (`utils.timedelta(...)`,
//! `relativedelta(...)`) are in `classes.rs`.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use minijinja::value::{DynObject, Object, ObjectRepr, Value};
use minijinja::{Error, ErrorKind, State};

use super::args::{invalid, no_args};

const MICROS_PER_SECOND: i128 = 1_000_000;
const MICROS_PER_DAY: i128 = 86_400 * MICROS_PER_SECOND;
/// Python's `timedelta.max.days`.
const MAX_DAYS: i128 = 999_999_999;

/// Python's `datetime.timedelta`, held as whole microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimeDelta {
    micros: i128,
}

impl TimeDelta {
    /// A duration of `micros` microseconds; Python's range is ±999999999 days.
    pub(crate) fn from_micros(micros: i128) -> Result<TimeDelta, Error> {
        let days = micros.div_euclid(MICROS_PER_DAY);
        if !(-MAX_DAYS..=MAX_DAYS).contains(&days) {
            return Err(invalid(format!(
                "days={days}; must have magnitude <= {MAX_DAYS}"
            )));
        }
        Ok(TimeDelta { micros })
    }

    /// The duration in microseconds.
    pub(crate) fn micros(self) -> i128 {
        self.micros
    }

    /// The chrono duration (Python's range fits).
    pub(crate) fn to_duration(self) -> Duration {
        let micros =
            i64::try_from(self.micros).unwrap_or(if self.micros < 0 { i64::MIN } else { i64::MAX });
        Duration::microseconds(micros)
    }

    /// Normalised as Python keeps it: `(days, seconds, microseconds)` with
    /// `0 <= seconds < 86400` and `0 <= microseconds < 1000000`.
    pub(crate) fn parts(self) -> (i128, i128, i128) {
        let days = self.micros.div_euclid(MICROS_PER_DAY);
        let rest = self.micros.rem_euclid(MICROS_PER_DAY);
        (days, rest / MICROS_PER_SECOND, rest % MICROS_PER_SECOND)
    }

    /// Python's `repr()`: `datetime.timedelta(days=1, seconds=3600)`.
    pub(crate) fn repr(&self) -> String {
        let (days, seconds, micros) = self.parts();
        let mut parts = Vec::new();
        if days != 0 {
            parts.push(format!("days={days}"));
        }
        if seconds != 0 {
            parts.push(format!("seconds={seconds}"));
        }
        if micros != 0 {
            parts.push(format!("microseconds={micros}"));
        }
        if parts.is_empty() {
            parts.push("0".to_string());
        }
        format!("datetime.timedelta({})", parts.join(", "))
    }
}

impl fmt::Display for TimeDelta {
    /// Python's `str()`: `1 day, 2:03:04`, `-1 day, 23:00:00`, `0:00:00.500000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (days, seconds, micros) = self.parts();
        if days != 0 {
            let plural = if days.abs() != 1 { "s" } else { "" };
            write!(f, "{days} day{plural}, ")?;
        }
        write!(
            f,
            "{}:{:02}:{:02}",
            seconds / 3600,
            (seconds / 60) % 60,
            seconds % 60
        )?;
        if micros != 0 {
            write!(f, ".{micros:06}")?;
        }
        Ok(())
    }
}

impl Object for TimeDelta {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let (days, seconds, micros) = self.parts();
        Some(match key.as_str()? {
            "days" => Value::from(days),
            "seconds" => Value::from(seconds),
            "microseconds" => Value::from(micros),
            _ => return None,
        })
    }

    fn is_true(self: &Arc<Self>) -> bool {
        self.micros != 0
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "total_seconds" => {
                no_args(method, args)?;
                Ok(Value::from(self.micros as f64 / 1e6))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.micros.cmp(&other.downcast_ref::<TimeDelta>()?.micros))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_ref(), f)
    }
}

/// dateutil's `relativedelta`: relative fields add calendar amounts,
/// absolute fields (singular names) replace them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RelativeDelta {
    years: i64,
    months: i64,
    days: i64,
    hours: i64,
    minutes: i64,
    seconds: i64,
    microseconds: i64,
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    hour: Option<i64>,
    minute: Option<i64>,
    second: Option<i64>,
    microsecond: Option<i64>,
}

/// The relative fields of a relativedelta, in dateutil's print order.
pub(crate) const RELATIVE: [&str; 7] = [
    "years",
    "months",
    "days",
    "hours",
    "minutes",
    "seconds",
    "microseconds",
];
/// The absolute fields of a relativedelta, in dateutil's print order.
pub(crate) const ABSOLUTE: [&str; 7] = [
    "year",
    "month",
    "day",
    "hour",
    "minute",
    "second",
    "microsecond",
];

impl RelativeDelta {
    fn relative(&self) -> [i64; 7] {
        [
            self.years,
            self.months,
            self.days,
            self.hours,
            self.minutes,
            self.seconds,
            self.microseconds,
        ]
    }

    fn absolute(&self) -> [Option<i64>; 7] {
        [
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.microsecond,
        ]
    }

    fn with_relative(mut self, r: [i64; 7]) -> Self {
        [
            self.years,
            self.months,
            self.days,
            self.hours,
            self.minutes,
            self.seconds,
            self.microseconds,
        ] = r;
        self
    }

    /// A relativedelta from its relative fields (in [`RELATIVE`] order) and
    /// absolute fields (in [`ABSOLUTE`] order), overflowing units carried
    /// upwards as dateutil does.
    pub(crate) fn from_fields(relative: [i64; 7], absolute: [Option<i64>; 7]) -> RelativeDelta {
        let mut rd = RelativeDelta::default();
        [
            rd.year,
            rd.month,
            rd.day,
            rd.hour,
            rd.minute,
            rd.second,
            rd.microsecond,
        ] = absolute;
        rd.with_relative(relative).fixed()
    }

    /// dateutil's `_fix()`: carries overflowing units upwards, keeping signs.
    fn fixed(self) -> Self {
        let mut r = self.relative();
        // (index, limit, carry into index)
        for (i, limit, up) in [
            (6, 999_999, 5),
            (5, 59, 4),
            (4, 59, 3),
            (3, 23, 2),
            (1, 11, 0),
        ] {
            if r[i].abs() > limit {
                let s = r[i].signum();
                let modulus = limit + 1;
                let (div, rem) = ((r[i] * s) / modulus, (r[i] * s) % modulus);
                r[i] = rem * s;
                r[up] = r[up].saturating_add(div * s);
            }
        }
        self.with_relative(r)
    }

    /// `-rd`: relative fields negated, absolute fields kept.
    pub(crate) fn negate(self) -> Self {
        let r = self.relative().map(|x| x.saturating_neg());
        self.with_relative(r)
    }

    /// `rd + rd`: relative fields summed, absolute fields from the right
    /// operand when set.
    pub(crate) fn plus(self, other: RelativeDelta) -> Self {
        let a = self.relative();
        let b = other.relative();
        let mut out = self.with_relative(std::array::from_fn(|i| a[i].saturating_add(b[i])));
        let abs_a = self.absolute();
        let abs_b = other.absolute();
        [
            out.year,
            out.month,
            out.day,
            out.hour,
            out.minute,
            out.second,
            out.microsecond,
        ] = std::array::from_fn(|i| abs_b[i].or(abs_a[i]));
        out.fixed()
    }

    /// `rd + timedelta`: the timedelta's days, seconds and microseconds
    /// are added to the relative fields.
    pub(crate) fn plus_timedelta(self, td: TimeDelta) -> Self {
        let (days, seconds, micros) = td.parts();
        let mut r = self.relative();
        r[2] = r[2].saturating_add(i64::try_from(days).unwrap_or(i64::MAX));
        r[5] = r[5].saturating_add(i64::try_from(seconds).unwrap_or(0));
        r[6] = r[6].saturating_add(i64::try_from(micros).unwrap_or(0));
        self.with_relative(r).fixed()
    }

    /// `datetime + relativedelta`, dateutil's `__add__`.
    pub(crate) fn apply(&self, dt: NaiveDateTime) -> Result<NaiveDateTime, Error> {
        let out_of_range = || invalid("date value out of range");
        let base_year = self.year.unwrap_or(i64::from(dt.year()));
        let mut year = base_year.checked_add(self.years).ok_or_else(out_of_range)?;
        let mut month = self.month.unwrap_or(i64::from(dt.month()));
        if !(1..=12).contains(&month) {
            return Err(invalid("month must be in 1..12"));
        }
        if self.months != 0 {
            month += self.months;
            if month > 12 {
                year += 1;
                month -= 12;
            } else if month < 1 {
                year -= 1;
                month += 12;
            }
        }
        let year = i32::try_from(year).map_err(|_| out_of_range())?;
        if !(1..=9999).contains(&year) {
            return Err(invalid(format!("year {year} is out of range")));
        }
        let month = u32::try_from(month).map_err(|_| out_of_range())?;
        let last = days_in_month(year, month).ok_or_else(out_of_range)?;
        let day = self.day.unwrap_or(i64::from(dt.day())).min(i64::from(last));
        let day = u32::try_from(day).map_err(|_| invalid("day is out of range for month"))?;
        let date = NaiveDate::from_ymd_opt(year, month, day)
            .ok_or_else(|| invalid("day is out of range for month"))?;
        let field = |v: Option<i64>, cur: u32, max: i64, name: &str| -> Result<u32, Error> {
            match v {
                None => Ok(cur),
                Some(x) if (0..=max).contains(&x) => Ok(x as u32),
                Some(_) => Err(invalid(format!("{name} must be in 0..{max}"))),
            }
        };
        let hour = field(self.hour, dt.hour(), 23, "hour")?;
        let minute = field(self.minute, dt.minute(), 59, "minute")?;
        let second = field(self.second, dt.second(), 59, "second")?;
        let micro = field(
            self.microsecond,
            dt.nanosecond() / 1000,
            999_999,
            "microsecond",
        )?;
        let replaced = date
            .and_hms_micro_opt(hour, minute, second, micro)
            .ok_or_else(out_of_range)?;
        let delta = i128::from(self.days) * MICROS_PER_DAY
            + i128::from(self.hours) * 3_600 * MICROS_PER_SECOND
            + i128::from(self.minutes) * 60 * MICROS_PER_SECOND
            + i128::from(self.seconds) * MICROS_PER_SECOND
            + i128::from(self.microseconds);
        let delta = TimeDelta::from_micros(delta)?;
        let out = replaced
            .checked_add_signed(delta.to_duration())
            .ok_or_else(out_of_range)?;
        if !(1..=9999).contains(&out.year()) {
            return Err(out_of_range());
        }
        Ok(out)
    }
}

/// Days in a month of the proleptic Gregorian calendar.
pub(crate) fn days_in_month(year: i32, month: u32) -> Option<u32> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    u32::try_from((next - first).num_days()).ok()
}

/// Python's `'{:+g}'.format(n)` for an integer.
fn plus_g(n: i64) -> String {
    if n.abs() < 1_000_000 {
        return format!("{n:+}");
    }
    let s = format!("{:.5e}", n as f64);
    let (m, e) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let m = m.trim_end_matches('0').trim_end_matches('.');
    let e: i32 = e.parse().unwrap_or(0);
    let sign = if n >= 0 && !m.starts_with('-') {
        "+"
    } else {
        ""
    };
    format!("{sign}{m}e+{e:02}")
}

impl fmt::Display for RelativeDelta {
    /// dateutil's repr: `relativedelta(months=+1, days=-2, hour=3)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (name, v) in RELATIVE.iter().zip(self.relative()) {
            if v != 0 {
                parts.push(format!("{name}={}", plus_g(v)));
            }
        }
        for (name, v) in ABSOLUTE.iter().zip(self.absolute()) {
            if let Some(v) = v {
                parts.push(format!("{name}={v}"));
            }
        }
        write!(f, "relativedelta({})", parts.join(", "))
    }
}

impl Object for RelativeDelta {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        if key == "weeks" {
            return Some(Value::from(self.days / 7));
        }
        if let Some(i) = RELATIVE.iter().position(|k| *k == key) {
            return Some(Value::from(self.relative()[i]));
        }
        let i = ABSOLUTE.iter().position(|k| *k == key)?;
        Some(self.absolute()[i].map_or(Value::from(()), Value::from))
    }

    fn is_true(self: &Arc<Self>) -> bool {
        self.relative().iter().any(|x| *x != 0) || self.absolute().iter().any(Option::is_some)
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        let other = other.downcast_ref::<RelativeDelta>()?;
        (self.as_ref() == other).then_some(Ordering::Equal)
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_ref(), f)
    }
}
