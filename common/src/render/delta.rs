//! Durations: Python's `datetime.timedelta` and dateutil's `relativedelta`
//! as template objects, with the constructors `utils.timedelta(...)` and
//! `utils.dateutil.relativedelta.relativedelta(...)`.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use minijinja::value::{DynObject, Object, ObjectRepr, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};

use super::args::{invalid, kwarg_names, split_args};

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

    /// `utils.timedelta(days=0, seconds=0, microseconds=0, milliseconds=0,
    /// minutes=0, hours=0, weeks=0)`, positionally or by keyword; numbers
    /// may be fractional (rounded to the microsecond, half to even).
    pub(crate) fn construct(args: &[Value]) -> Result<TimeDelta, Error> {
        const NAMES: [(&str, f64); 7] = [
            ("days", 86_400e6),
            ("seconds", 1e6),
            ("microseconds", 1.0),
            ("milliseconds", 1e3),
            ("minutes", 60e6),
            ("hours", 3_600e6),
            ("weeks", 604_800e6),
        ];
        let (positional, kwargs) = split_args(args)?;
        if positional.len() > NAMES.len() {
            return Err(invalid("timedelta() takes at most 7 arguments"));
        }
        let mut whole: i128 = 0;
        let mut frac: f64 = 0.0;
        let mut add = |name: &str, factor: f64, v: &Value| -> Result<(), Error> {
            if v.is_integer() || v.kind() == ValueKind::Bool {
                let n = i128::try_from(v.clone())
                    .map_err(|_| invalid(format!("timedelta {name}: bad number {v}")))?;
                // factor is a whole number of microseconds for every unit.
                whole = n
                    .checked_mul(factor as i128)
                    .and_then(|x| whole.checked_add(x))
                    .ok_or_else(|| invalid("timedelta out of range"))?;
            } else if v.kind() == ValueKind::Number {
                let x = f64::try_from(v.clone()).unwrap_or(f64::NAN) * factor;
                if !x.is_finite() {
                    return Err(invalid(format!("timedelta {name}: cannot convert {v}")));
                }
                frac += x;
            } else {
                return Err(invalid(format!(
                    "unsupported type for timedelta {name} component: {}",
                    type_name(v)
                )));
            }
            Ok(())
        };
        for (idx, v) in positional.iter().enumerate() {
            let (name, factor) = NAMES[idx];
            add(name, factor, v)?;
        }
        if let Some(kwargs) = kwargs {
            for key in kwarg_names(&kwargs) {
                let Some((name, factor)) = NAMES.iter().find(|(n, _)| *n == key) else {
                    return Err(invalid(format!(
                        "'{key}' is an invalid keyword argument for timedelta()"
                    )));
                };
                let v: Value = kwargs.get(name)?;
                add(name, *factor, &v)?;
            }
            kwargs.assert_all_used()?;
        }
        let frac_micros = round_half_even(frac);
        if frac_micros.abs() > 1e20 {
            return Err(invalid("timedelta out of range"));
        }
        TimeDelta::from_micros(whole + frac_micros as i128)
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

fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
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

/// Fails when a method that takes no arguments got some.
pub(crate) fn no_args(method: &str, args: &[Value]) -> Result<(), Error> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(invalid(format!("{method}() takes no arguments")))
    }
}

/// Python's type name of a template value, for error messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    if let Some(obj) = v.as_object() {
        if obj.downcast_ref::<TimeDelta>().is_some() {
            return "datetime.timedelta";
        }
        if obj.downcast_ref::<RelativeDelta>().is_some() {
            return "relativedelta";
        }
        if obj.downcast_ref::<super::datetime::PyDateTime>().is_some() {
            return "datetime.datetime";
        }
        if obj.downcast_ref::<super::datetime::PyDate>().is_some() {
            return "datetime.date";
        }
        if obj.downcast_ref::<super::datetime::PyTime>().is_some() {
            return "datetime.time";
        }
    }
    match v.kind() {
        ValueKind::Undefined => "Undefined",
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if v.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq if v.is_tuple() => "tuple",
        ValueKind::Seq | ValueKind::Iterable => "list",
        ValueKind::Map => "dict",
        _ => "object",
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
const RELATIVE: [&str; 7] = [
    "years",
    "months",
    "days",
    "hours",
    "minutes",
    "seconds",
    "microseconds",
];
/// The absolute fields of a relativedelta, in dateutil's print order.
const ABSOLUTE: [&str; 7] = [
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

    /// `relativedelta(years=, months=, weeks=, days=, hours=, minutes=,
    /// seconds=, microseconds=, year=, month=, day=, hour=, minute=,
    /// second=, microsecond=)`: keywords only, whole numbers only.
    pub(crate) fn construct(args: &[Value]) -> Result<RelativeDelta, Error> {
        let (positional, kwargs) = split_args(args)?;
        if !positional.is_empty() {
            return Err(invalid(
                "relativedelta(dt1, dt2) is not supported: use keyword arguments",
            ));
        }
        let mut rd = RelativeDelta::default();
        let Some(kwargs) = kwargs else {
            return Ok(rd);
        };
        let mut rel = rd.relative();
        let mut abs = rd.absolute();
        for key in kwarg_names(&kwargs) {
            let v: Value = kwargs.get(&key)?;
            let n = whole_number(&key, &v)?;
            if key == "weeks" {
                rel[2] = rel[2].saturating_add(n.saturating_mul(7));
            } else if let Some(i) = RELATIVE.iter().position(|k| *k == key) {
                rel[i] = rel[i].saturating_add(n);
            } else if let Some(i) = ABSOLUTE.iter().position(|k| *k == key) {
                abs[i] = Some(n);
            } else {
                return Err(invalid(format!(
                    "relativedelta() got an unexpected keyword argument '{key}'"
                )));
            }
        }
        kwargs.assert_all_used()?;
        [
            rd.year,
            rd.month,
            rd.day,
            rd.hour,
            rd.minute,
            rd.second,
            rd.microsecond,
        ] = abs;
        rd = rd.with_relative(rel);
        Ok(rd.fixed())
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

fn whole_number(name: &str, v: &Value) -> Result<i64, Error> {
    if v.is_integer() || v.kind() == ValueKind::Bool {
        return i64::try_from(v.clone()).map_err(|_| invalid(format!("{name}: {v} is too large")));
    }
    if v.kind() == ValueKind::Number {
        let x = f64::try_from(v.clone()).unwrap_or(f64::NAN);
        if x.fract() == 0.0 && x.abs() < 9e15 {
            return Ok(x as i64);
        }
        return Err(invalid(format!(
            "relativedelta {name}={v}: only whole numbers are supported"
        )));
    }
    Err(invalid(format!(
        "relativedelta {name}: expected a number, got {}",
        type_name(v)
    )))
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

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::value::Kwargs;

    fn kw(items: &[(&str, Value)]) -> Vec<Value> {
        vec![Value::from(Kwargs::from_iter(
            items.iter().map(|(k, v)| (*k, v.clone())),
        ))]
    }

    #[test]
    fn render_timedelta_str_like_python() {
        let td = |items: &[(&str, Value)]| TimeDelta::construct(&kw(items)).expect("td");
        assert_eq!(td(&[("hours", Value::from(4))]).to_string(), "4:00:00");
        assert_eq!(
            td(&[("days", Value::from(1))]).to_string(),
            "1 day, 0:00:00"
        );
        assert_eq!(
            td(&[("days", Value::from(-1))]).to_string(),
            "-1 day, 0:00:00"
        );
        assert_eq!(
            td(&[("hours", Value::from(-1))]).to_string(),
            "-1 day, 23:00:00"
        );
        assert_eq!(
            td(&[("seconds", Value::from(0.5))]).to_string(),
            "0:00:00.500000"
        );
        assert_eq!(
            td(&[("weeks", Value::from(2)), ("minutes", Value::from(3))]).to_string(),
            "14 days, 0:03:00"
        );
        assert_eq!(td(&[]).repr(), "datetime.timedelta(0)");
        assert_eq!(
            td(&[("days", Value::from(1)), ("hours", Value::from(1))]).repr(),
            "datetime.timedelta(days=1, seconds=3600)"
        );
        let positional = TimeDelta::construct(&[Value::from(1), Value::from(30)]).expect("td");
        assert_eq!(positional.to_string(), "1 day, 0:00:30");
        assert!(TimeDelta::construct(&kw(&[("fortnights", Value::from(1))])).is_err());
        assert!(TimeDelta::construct(&kw(&[("days", Value::from(1_000_000_000))])).is_err());
    }

    #[test]
    fn render_relativedelta_like_dateutil() {
        let rd = |items: &[(&str, Value)]| RelativeDelta::construct(&kw(items)).expect("rd");
        let m1 = rd(&[("months", Value::from(1))]);
        assert_eq!(m1.to_string(), "relativedelta(months=+1)");
        let jan31 = NaiveDate::from_ymd_opt(2024, 1, 31)
            .and_then(|d| d.and_hms_opt(10, 0, 0))
            .expect("date");
        assert_eq!(
            m1.apply(jan31).expect("apply").to_string(),
            "2024-02-29 10:00:00"
        );
        assert_eq!(
            m1.negate().apply(jan31).expect("apply").to_string(),
            "2023-12-31 10:00:00"
        );
        let mixed = rd(&[
            ("months", Value::from(14)),
            ("hours", Value::from(25)),
            ("day", Value::from(1)),
        ]);
        assert_eq!(
            mixed.to_string(),
            "relativedelta(years=+1, months=+2, days=+1, hours=+1, day=1)"
        );
        assert_eq!(
            rd(&[("days", Value::from(1_234_567))]).to_string(),
            "relativedelta(days=+1.23457e+06)"
        );
        assert!(RelativeDelta::construct(&kw(&[("months", Value::from(1.5))])).is_err());
    }
}
