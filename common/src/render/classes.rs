//! The Python classes and parsers that build date and duration values
//! from template arguments: `utils.datetime`, `utils.date` and
//! `utils.time` (callable, with class methods such as `now`, `strptime`
//! and `fromisoformat`), `utils.timedelta`, dateutil's `relativedelta`,
//! and `dateutil.parser.parse`/`isoparse`. The values themselves are in
//! `datetime.rs` and `delta.rs`.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Local, Offset, TimeZone, Utc};
use minijinja::value::{Object, ObjectRepr, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};

use super::args::{
    arg, at_most, finish, int_arg, invalid, kwarg_names, no_args, one_str, split_args,
};
use super::datetime::{
    PyDate, PyDateTime, PyTime, Zone, make_date, make_time, out_of_range, zone_arg,
};
use super::delta::{ABSOLUTE, RELATIVE, RelativeDelta, TimeDelta};
use super::pytype::{str_arg, type_name};
use super::timefmt;

/// A class whose call constructs a duration: `timedelta`, `relativedelta`.
#[derive(Debug)]
struct DeltaClass {
    name: &'static str,
    construct: fn(&[Value]) -> Result<Value, Error>,
}

impl Object for DeltaClass {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        (self.construct)(args)
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<class '{}'>", self.name)
    }
}

/// The class `utils.timedelta`.
pub(crate) fn timedelta_class() -> Value {
    Value::from_object(DeltaClass {
        name: "datetime.timedelta",
        construct: |args| timedelta(args).map(Value::from_object),
    })
}

/// The class `utils.dateutil.relativedelta.relativedelta`.
pub(crate) fn relativedelta_class() -> Value {
    Value::from_object(DeltaClass {
        name: "dateutil.relativedelta.relativedelta",
        construct: |args| relativedelta(args).map(Value::from_object),
    })
}

/// `utils.timedelta(days=0, seconds=0, microseconds=0, milliseconds=0,
/// minutes=0, hours=0, weeks=0)`, positionally or by keyword; numbers
/// may be fractional (rounded to the microsecond, half to even).
fn timedelta(args: &[Value]) -> Result<TimeDelta, Error> {
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

fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

/// `relativedelta(years=, months=, weeks=, days=, hours=, minutes=,
/// seconds=, microseconds=, year=, month=, day=, hour=, minute=,
/// second=, microsecond=)`: keywords only, whole numbers only.
fn relativedelta(args: &[Value]) -> Result<RelativeDelta, Error> {
    let (positional, kwargs) = split_args(args)?;
    if !positional.is_empty() {
        return Err(invalid(
            "relativedelta(dt1, dt2) is not supported: use keyword arguments",
        ));
    }
    let Some(kwargs) = kwargs else {
        return Ok(RelativeDelta::default());
    };
    let mut rel = [0_i64; 7];
    let mut abs = [None; 7];
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
    Ok(RelativeDelta::from_fields(rel, abs))
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

/// Which Python class a [`DateClass`] stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClassKind {
    /// `datetime.datetime`.
    DateTime,
    /// `datetime.date`.
    Date,
    /// `datetime.time`.
    Time,
}

/// The classes `utils.datetime`, `utils.date` and `utils.time`: callable to
/// construct, with Python's class methods (`now`, `strptime`, ...).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DateClass(pub(crate) ClassKind);

impl DateClass {
    fn construct(&self, args: &[Value]) -> Result<Value, Error> {
        let (positional, kwargs) = split_args(args)?;
        let kw = kwargs.as_ref();
        let need = |idx: usize, name: &str| -> Result<i64, Error> {
            int_arg(positional, kw, idx, name)?
                .ok_or_else(|| invalid(format!("missing required argument '{name}'")))
        };
        let opt = |idx: usize, name: &str| -> Result<i64, Error> {
            Ok(int_arg(positional, kw, idx, name)?.unwrap_or(0))
        };
        let value = match self.0 {
            ClassKind::DateTime => {
                at_most("datetime", positional, 7)?;
                let date = make_date(need(0, "year")?, need(1, "month")?, need(2, "day")?)?;
                let time = make_time(
                    opt(3, "hour")?,
                    opt(4, "minute")?,
                    opt(5, "second")?,
                    opt(6, "microsecond")?,
                )?;
                let zone = match kw {
                    Some(k) if k.has("tzinfo") => {
                        let v: Value = k.get("tzinfo")?;
                        if v.is_none() {
                            None
                        } else {
                            Some(zone_arg(&v)?)
                        }
                    }
                    _ => None,
                };
                PyDateTime::new(date.and_time(time), zone)?.into_value()
            }
            ClassKind::Date => {
                at_most("date", positional, 3)?;
                Value::from_object(PyDate(make_date(
                    need(0, "year")?,
                    need(1, "month")?,
                    need(2, "day")?,
                )?))
            }
            ClassKind::Time => {
                at_most("time", positional, 4)?;
                Value::from_object(PyTime(make_time(
                    opt(0, "hour")?,
                    opt(1, "minute")?,
                    opt(2, "second")?,
                    opt(3, "microsecond")?,
                )?))
            }
        };
        finish(kw)?;
        Ok(value)
    }

    fn name(&self) -> &'static str {
        match self.0 {
            ClassKind::DateTime => "datetime.datetime",
            ClassKind::Date => "datetime.date",
            ClassKind::Time => "datetime.time",
        }
    }
}

/// Turns a parsed datetime into the value a class method returns.
fn parsed_value(kind: ClassKind, parsed: timefmt::Parsed) -> Result<Value, Error> {
    let dt = PyDateTime::from_parsed(parsed)?;
    Ok(match kind {
        ClassKind::DateTime => dt.into_value(),
        ClassKind::Date => Value::from_object(PyDate(dt.wall().date())),
        ClassKind::Time => Value::from_object(PyTime(dt.wall().time())),
    })
}

impl Object for DateClass {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        self.construct(args)
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let kind = self.0;
        match (kind, method) {
            (ClassKind::DateTime, "now") | (ClassKind::Date, "today") => {
                let (positional, kwargs) = split_args(args)?;
                at_most(method, positional, 1)?;
                let tz = arg(positional, kwargs.as_ref(), 0, "tz")?;
                finish(kwargs.as_ref())?;
                let (wall, _) = timefmt::now_local();
                let now = PyDateTime::new(wall, None)?;
                let now = match tz {
                    Some(tz) => now.astimezone(Some(&tz))?,
                    None => now,
                };
                Ok(match kind {
                    ClassKind::Date => Value::from_object(PyDate(now.wall().date())),
                    _ => now.into_value(),
                })
            }
            (ClassKind::DateTime, "today") => {
                no_args(method, args)?;
                Ok(PyDateTime::new(timefmt::now_local().0, None)?.into_value())
            }
            (ClassKind::DateTime, "utcnow") => {
                no_args(method, args)?;
                Ok(PyDateTime::new(Utc::now().naive_utc(), None)?.into_value())
            }
            (ClassKind::DateTime, "strptime") => {
                let (positional, kwargs) = split_args(args)?;
                let kw = kwargs.as_ref();
                let text = str_arg(positional, kw, 0, "date_string")?;
                let fmt = str_arg(positional, kw, 1, "format")?;
                finish(kw)?;
                let parsed = timefmt::strptime(&text, &fmt).ok_or_else(|| {
                    invalid(format!("time data '{text}' does not match format '{fmt}'"))
                })?;
                parsed_value(kind, parsed)
            }
            (_, "fromisoformat") => {
                let text = one_str(method, args)?;
                let parsed = match kind {
                    ClassKind::Time => timefmt::isoparse(&format!("2000-01-01T{text}")),
                    _ => timefmt::isoparse(&text),
                };
                let parsed =
                    parsed.ok_or_else(|| invalid(format!("Invalid isoformat string: '{text}'")))?;
                parsed_value(kind, parsed)
            }
            (ClassKind::DateTime | ClassKind::Date, "fromtimestamp") => {
                let (positional, kwargs) = split_args(args)?;
                let kw = kwargs.as_ref();
                let ts = arg(positional, kw, 0, "timestamp")?
                    .ok_or_else(|| invalid("missing required argument 'timestamp'"))?;
                let tz = arg(positional, kw, 1, "tz")?;
                finish(kw)?;
                let secs = f64::try_from(ts.clone())
                    .map_err(|_| invalid(format!("a number is required, not {ts}")))?;
                let micros = (secs * 1e6).round();
                if !micros.is_finite() || micros.abs() > 3e17 {
                    return Err(out_of_range());
                }
                let utc = DateTime::<Utc>::from_timestamp_micros(micros as i64)
                    .ok_or_else(out_of_range)?
                    .naive_utc();
                let zone = match tz {
                    Some(ref tz) => zone_arg(tz)?,
                    None => Zone::from_offset(Local.from_utc_datetime(&utc).offset().fix()),
                };
                let wall = zone.wall_of_utc(&utc);
                Ok(match (kind, tz.is_some()) {
                    (ClassKind::Date, _) => Value::from_object(PyDate(wall.date())),
                    (_, true) => PyDateTime::new(wall, Some(zone))?.into_value(),
                    (_, false) => PyDateTime::new(wall, None)?.into_value(),
                })
            }
            (ClassKind::DateTime, "combine") => match args {
                [d, t] => {
                    let d = d
                        .downcast_object_ref::<PyDate>()
                        .ok_or_else(|| invalid("combine() argument 1 must be datetime.date"))?;
                    let t = t
                        .downcast_object_ref::<PyTime>()
                        .ok_or_else(|| invalid("combine() argument 2 must be datetime.time"))?;
                    Ok(PyDateTime::new(d.0.and_time(t.0), None)?.into_value())
                }
                _ => Err(invalid("combine() takes exactly two arguments")),
            },
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<class '{}'>", self.name())
    }
}

/// `utils.dateutil.parser.parse` / `utils.parsedate.parse`.
pub(crate) fn parse_lenient(args: &[Value]) -> Result<Value, Error> {
    let (positional, kwargs) = split_args(args)?;
    let text = str_arg(positional, kwargs.as_ref(), 0, "timestr")?;
    finish(kwargs.as_ref())?;
    let parsed = timefmt::parse_lenient(&text)
        .ok_or_else(|| invalid(format!("Unknown string format: {text}")))?;
    Ok(PyDateTime::from_parsed(parsed)?.into_value())
}

/// `utils.dateutil.parser.isoparse` / `utils.parsedate.isoparse`.
pub(crate) fn parse_iso(args: &[Value]) -> Result<Value, Error> {
    let (positional, kwargs) = split_args(args)?;
    let text = str_arg(positional, kwargs.as_ref(), 0, "dt_str")?;
    finish(kwargs.as_ref())?;
    let parsed = timefmt::isoparse(text.trim())
        .ok_or_else(|| invalid(format!("ISO string too short or invalid: {text}")))?;
    Ok(PyDateTime::from_parsed(parsed)?.into_value())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use minijinja::value::Kwargs;

    fn kw(items: &[(&str, Value)]) -> Vec<Value> {
        vec![Value::from(Kwargs::from_iter(
            items.iter().map(|(k, v)| (*k, v.clone())),
        ))]
    }

    #[test]
    fn render_timedelta_str_like_python() {
        let td = |items: &[(&str, Value)]| timedelta(&kw(items)).expect("td");
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
        let positional = timedelta(&[Value::from(1), Value::from(30)]).expect("td");
        assert_eq!(positional.to_string(), "1 day, 0:00:30");
        assert!(timedelta(&kw(&[("fortnights", Value::from(1))])).is_err());
        assert!(timedelta(&kw(&[("days", Value::from(1_000_000_000))])).is_err());
    }

    #[test]
    fn render_relativedelta_like_dateutil() {
        let rd = |items: &[(&str, Value)]| relativedelta(&kw(items)).expect("rd");
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
        assert!(relativedelta(&kw(&[("months", Value::from(1.5))])).is_err());
    }
}
