//! Python's `datetime.datetime`, `datetime.date` and `datetime.time` as
//! template objects: their arithmetic, attributes, methods and printing.
//! The classes `utils.datetime`, `utils.date` and `utils.time` that
//! construct them are in `classes.rs`.
//!
//! A datetime is a wall-clock time plus an optional zone, as in Python:
//! arithmetic works on the wall clock and keeps the zone; the offset is
//! computed from the zone for that wall time.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, Local, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Timelike, Utc,
};
use chrono_tz::{OffsetName, Tz};
use minijinja::value::{DynObject, Object, ObjectRepr, Tuple, Value};
use minijinja::{Error, ErrorKind, State};

use super::args::{arg, at_most, finish, int_arg, invalid, no_args, one_str, split_args};
use super::delta::{RelativeDelta, TimeDelta};
use super::timefmt::{self, offset_text};

/// The zone of an aware datetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zone {
    /// `datetime.timezone.utc`.
    Utc,
    /// A fixed offset, `datetime.timezone(timedelta(...))`.
    Fixed(FixedOffset),
    /// An IANA zone, `zoneinfo.ZoneInfo(key)`.
    Named(Tz),
}

impl Zone {
    /// A zone from text: `UTC`, `Z`, `+10:00`/`+1000`, or an IANA name.
    pub(crate) fn parse(name: &str) -> Option<Zone> {
        let n = name.trim();
        if n.eq_ignore_ascii_case("utc") || n == "Z" || n.eq_ignore_ascii_case("gmt") {
            return Some(Zone::Utc);
        }
        if let Some((_, Some(offset))) = timefmt::isoparse(&format!("2000-01-01T00:00{n}")) {
            return Some(Zone::from_offset(offset));
        }
        n.parse::<Tz>().ok().map(Zone::Named)
    }

    /// A fixed-offset zone; offset zero is UTC.
    pub(crate) fn from_offset(offset: FixedOffset) -> Zone {
        if offset.local_minus_utc() == 0 {
            Zone::Utc
        } else {
            Zone::Fixed(offset)
        }
    }

    /// The offset in force at a wall-clock time (the earlier one when the
    /// time repeats, the one before the change when it is skipped).
    fn offset_at_wall(&self, wall: &NaiveDateTime) -> FixedOffset {
        match self {
            Zone::Utc => Utc.fix(),
            Zone::Fixed(o) => *o,
            Zone::Named(tz) => match tz.offset_from_local_datetime(wall).earliest() {
                Some(o) => o.fix(),
                None => tz
                    .offset_from_utc_datetime(&(*wall - Duration::days(1)))
                    .fix(),
            },
        }
    }

    /// The wall-clock time of a UTC instant in this zone.
    pub(crate) fn wall_of_utc(&self, utc: &NaiveDateTime) -> NaiveDateTime {
        match self {
            Zone::Utc => *utc,
            Zone::Fixed(o) => *utc + Duration::seconds(i64::from(o.local_minus_utc())),
            Zone::Named(tz) => tz.from_utc_datetime(utc).naive_local(),
        }
    }

    /// `tzname()` at a wall-clock time.
    fn name_at(&self, wall: &NaiveDateTime) -> String {
        match self {
            Zone::Utc => "UTC".to_string(),
            Zone::Fixed(o) => format!("UTC{}", offset_text(*o, true)),
            Zone::Named(tz) => {
                let offset = tz
                    .offset_from_local_datetime(wall)
                    .earliest()
                    .unwrap_or_else(|| tz.offset_from_utc_datetime(wall));
                offset
                    .abbreviation()
                    .map(str::to_string)
                    .unwrap_or_else(|| offset_text(offset.fix(), true))
            }
        }
    }

    fn repr(&self) -> String {
        match self {
            Zone::Utc => "datetime.timezone.utc".to_string(),
            Zone::Fixed(o) => format!(
                "datetime.timezone({})",
                TimeDelta::from_micros(i128::from(o.local_minus_utc()) * 1_000_000)
                    .map(|t| t.repr())
                    .unwrap_or_default()
            ),
            Zone::Named(tz) => format!("zoneinfo.ZoneInfo(key='{}')", tz.name()),
        }
    }

    fn key(&self) -> String {
        match self {
            Zone::Utc => "UTC".to_string(),
            Zone::Fixed(o) => format!("UTC{}", offset_text(*o, true)),
            Zone::Named(tz) => tz.name().to_string(),
        }
    }
}

/// Python's `datetime.datetime`: a wall-clock time, naive or with a zone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PyDateTime {
    wall: NaiveDateTime,
    zone: Option<Zone>,
}

/// Python's error for a date outside years 1 to 9999.
pub(crate) fn out_of_range() -> Error {
    invalid("date value out of range")
}

fn check_range(wall: NaiveDateTime) -> Result<NaiveDateTime, Error> {
    if (1..=9999).contains(&wall.year()) {
        Ok(wall)
    } else {
        Err(out_of_range())
    }
}

impl PyDateTime {
    /// A datetime from its parts; fails outside Python's range.
    pub(crate) fn new(wall: NaiveDateTime, zone: Option<Zone>) -> Result<PyDateTime, Error> {
        Ok(PyDateTime {
            wall: check_range(wall)?,
            zone,
        })
    }

    /// An aware datetime in a fixed offset (how lava holds `start`).
    pub(crate) fn from_fixed(dt: &DateTime<FixedOffset>) -> PyDateTime {
        PyDateTime {
            wall: dt.naive_local(),
            zone: Some(Zone::Fixed(*dt.offset())),
        }
    }

    /// An aware datetime in UTC (how lava holds `ustart`).
    pub(crate) fn from_utc(dt: &DateTime<Utc>) -> PyDateTime {
        PyDateTime {
            wall: dt.naive_utc(),
            zone: Some(Zone::Utc),
        }
    }

    /// A parsed text as Python would hold it: an offset of zero is UTC.
    pub(crate) fn from_parsed((wall, offset): timefmt::Parsed) -> Result<PyDateTime, Error> {
        PyDateTime::new(wall, offset.map(Zone::from_offset))
    }

    /// The datetime as a template value.
    pub(crate) fn into_value(self) -> Value {
        Value::from_object(self)
    }

    /// The wall-clock time.
    pub(crate) fn wall(&self) -> NaiveDateTime {
        self.wall
    }

    /// The offset, for aware values.
    fn offset(&self) -> Option<FixedOffset> {
        self.zone.map(|z| z.offset_at_wall(&self.wall))
    }

    /// The UTC instant; naive values count as local time, as Python does
    /// for `timestamp()` and `astimezone()`.
    fn utc(&self) -> NaiveDateTime {
        match self.offset() {
            Some(o) => self.wall - Duration::seconds(i64::from(o.local_minus_utc())),
            None => Local
                .from_local_datetime(&self.wall)
                .earliest()
                .map(|dt| dt.naive_utc())
                .unwrap_or(self.wall),
        }
    }

    /// `self + td` on the wall clock.
    pub(crate) fn add_delta(&self, td: TimeDelta) -> Result<PyDateTime, Error> {
        let wall = self
            .wall
            .checked_add_signed(td.to_duration())
            .ok_or_else(out_of_range)?;
        PyDateTime::new(wall, self.zone)
    }

    /// `self + rd`, dateutil's rules.
    pub(crate) fn add_relative(&self, rd: &RelativeDelta) -> Result<PyDateTime, Error> {
        PyDateTime::new(rd.apply(self.wall)?, self.zone)
    }

    /// `self - other`.
    pub(crate) fn minus(&self, other: &PyDateTime) -> Result<TimeDelta, Error> {
        let (a, b) = match (self.zone, other.zone) {
            (None, None) => (self.wall, other.wall),
            (Some(za), Some(zb)) if za == zb => (self.wall, other.wall),
            (Some(_), Some(_)) => (self.utc(), other.utc()),
            _ => {
                return Err(invalid(
                    "can't subtract offset-naive and offset-aware datetimes",
                ));
            }
        };
        let d = a.signed_duration_since(b);
        let micros = d
            .num_microseconds()
            .ok_or_else(|| invalid("timedelta out of range"))?;
        TimeDelta::from_micros(i128::from(micros))
    }

    fn compare(&self, other: &PyDateTime) -> Ordering {
        match (self.zone, other.zone) {
            (Some(za), Some(zb)) if za != zb => self.utc().cmp(&other.utc()),
            _ => self.wall.cmp(&other.wall),
        }
    }

    /// `isoformat(sep='T', timespec='auto')`.
    fn isoformat(&self, sep: &str, timespec: &str) -> Result<String, Error> {
        let mut text = format!(
            "{}{sep}{}",
            self.wall.date().format("%Y-%m-%d"),
            time_text(&self.wall.time(), timespec)?
        );
        if let Some(o) = self.offset() {
            text.push_str(&offset_text(o, true));
        }
        Ok(text)
    }

    /// Python's `repr()`.
    pub(crate) fn repr(&self) -> String {
        let w = &self.wall;
        let mut text = format!(
            "datetime.datetime({}, {}, {}, {}, {}",
            w.year(),
            w.month(),
            w.day(),
            w.hour(),
            w.minute()
        );
        let micro = w.nanosecond() / 1000;
        if w.second() != 0 || micro != 0 {
            text.push_str(&format!(", {}", w.second()));
        }
        if micro != 0 {
            text.push_str(&format!(", {micro}"));
        }
        if let Some(z) = self.zone {
            text.push_str(&format!(", tzinfo={}", z.repr()));
        }
        text.push(')');
        text
    }

    fn strftime(&self, fmt: &str) -> String {
        let zone = self
            .zone
            .map(|z| (z.offset_at_wall(&self.wall), z.name_at(&self.wall)));
        timefmt::strftime(&self.wall, zone, fmt)
    }

    /// `astimezone(tz)`: the same instant in another zone (the local one
    /// when `tz` is absent).
    pub(crate) fn astimezone(&self, tz: Option<&Value>) -> Result<PyDateTime, Error> {
        let utc = self.utc();
        let zone = match tz {
            None => {
                let offset = Local.from_utc_datetime(&utc).offset().fix();
                Zone::from_offset(offset)
            }
            Some(v) => zone_arg(v)?,
        };
        PyDateTime::new(zone.wall_of_utc(&utc), Some(zone))
    }

    fn replace(&self, args: &[Value]) -> Result<PyDateTime, Error> {
        let (positional, kwargs) = split_args(args)?;
        at_most("replace", positional, 7)?;
        let kw = kwargs.as_ref();
        let w = &self.wall;
        let get = |idx: usize, name: &str, cur: i64| -> Result<i64, Error> {
            Ok(int_arg(positional, kw, idx, name)?.unwrap_or(cur))
        };
        let year = get(0, "year", i64::from(w.year()))?;
        let month = get(1, "month", i64::from(w.month()))?;
        let day = get(2, "day", i64::from(w.day()))?;
        let hour = get(3, "hour", i64::from(w.hour()))?;
        let minute = get(4, "minute", i64::from(w.minute()))?;
        let second = get(5, "second", i64::from(w.second()))?;
        let micro = get(6, "microsecond", i64::from(w.nanosecond() / 1000))?;
        let zone = match kw {
            Some(k) if k.has("tzinfo") => {
                let v: Value = k.get("tzinfo")?;
                if v.is_none() {
                    None
                } else {
                    Some(zone_arg(&v)?)
                }
            }
            _ => self.zone,
        };
        finish(kw)?;
        let date = make_date(year, month, day)?;
        let time = make_time(hour, minute, second, micro)?;
        PyDateTime::new(date.and_time(time), zone)
    }
}

/// The zone named by a template value: text, or `none` for UTC's absence.
pub(crate) fn zone_arg(v: &Value) -> Result<Zone, Error> {
    match v.as_str() {
        Some(name) => {
            Zone::parse(name).ok_or_else(|| invalid(format!("unknown time zone: {name}")))
        }
        None => Err(invalid(format!(
            "a time zone must be given by name (e.g. 'UTC', 'Australia/Sydney'), not {v}"
        ))),
    }
}

fn to_u32(n: i64, what: &str) -> Result<u32, Error> {
    u32::try_from(n).map_err(|_| invalid(format!("{what} {n} is out of range")))
}

/// A date from Python constructor arguments.
pub(crate) fn make_date(year: i64, month: i64, day: i64) -> Result<NaiveDate, Error> {
    if !(1..=9999).contains(&year) {
        return Err(invalid(format!("year {year} is out of range")));
    }
    if !(1..=12).contains(&month) {
        return Err(invalid("month must be in 1..12"));
    }
    NaiveDate::from_ymd_opt(year as i32, to_u32(month, "month")?, to_u32(day, "day")?)
        .ok_or_else(|| invalid("day is out of range for month"))
}

/// A time from Python constructor arguments.
pub(crate) fn make_time(
    hour: i64,
    minute: i64,
    second: i64,
    micro: i64,
) -> Result<NaiveTime, Error> {
    if !(0..24).contains(&hour) {
        return Err(invalid("hour must be in 0..23"));
    }
    if !(0..60).contains(&minute) {
        return Err(invalid("minute must be in 0..59"));
    }
    if !(0..60).contains(&second) {
        return Err(invalid("second must be in 0..59"));
    }
    if !(0..1_000_000).contains(&micro) {
        return Err(invalid("microsecond must be in 0..999999"));
    }
    NaiveTime::from_hms_micro_opt(
        to_u32(hour, "hour")?,
        to_u32(minute, "minute")?,
        to_u32(second, "second")?,
        to_u32(micro, "microsecond")?,
    )
    .ok_or_else(|| invalid("invalid time"))
}

/// `HH:MM:SS[.ffffff]` with Python's `timespec`.
fn time_text(t: &NaiveTime, timespec: &str) -> Result<String, Error> {
    let micro = t.nanosecond() / 1000 % 1_000_000;
    let (h, m, s) = (t.hour(), t.minute(), t.second());
    Ok(match timespec {
        "auto" if micro == 0 => format!("{h:02}:{m:02}:{s:02}"),
        "auto" | "microseconds" => format!("{h:02}:{m:02}:{s:02}.{micro:06}"),
        "hours" => format!("{h:02}"),
        "minutes" => format!("{h:02}:{m:02}"),
        "seconds" => format!("{h:02}:{m:02}:{s:02}"),
        "milliseconds" => format!("{h:02}:{m:02}:{s:02}.{:03}", micro / 1000),
        other => return Err(invalid(format!("Unknown timespec value: {other}"))),
    })
}

/// `isoformat` arguments: `sep` (datetimes only) and `timespec`.
fn iso_args(args: &[Value], with_sep: bool) -> Result<(String, String), Error> {
    let (positional, kwargs) = split_args(args)?;
    let kw = kwargs.as_ref();
    let (sep, spec_idx) = if with_sep {
        (
            arg(positional, kw, 0, "sep")?
                .map(|v| v.to_string())
                .unwrap_or_else(|| "T".to_string()),
            1,
        )
    } else {
        (String::new(), 0)
    };
    let timespec = arg(positional, kw, spec_idx, "timespec")?
        .map(|v| v.to_string())
        .unwrap_or_else(|| "auto".to_string());
    finish(kw)?;
    Ok((sep, timespec))
}

impl fmt::Display for PyDateTime {
    /// Python's `str()`: `2024-05-01 10:00:00+10:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.isoformat(" ", "auto") {
            Ok(text) => f.write_str(&text),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl Object for PyDateTime {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let w = &self.wall;
        Some(match key.as_str()? {
            "year" => Value::from(w.year()),
            "month" => Value::from(w.month()),
            "day" => Value::from(w.day()),
            "hour" => Value::from(w.hour()),
            "minute" => Value::from(w.minute()),
            "second" => Value::from(w.second()),
            "microsecond" => Value::from(w.nanosecond() / 1000),
            "tzinfo" => self.zone.map_or(Value::from(()), |z| Value::from(z.key())),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "isoformat" => {
                let (sep, spec) = iso_args(args, true)?;
                Ok(Value::from(self.isoformat(&sep, &spec)?))
            }
            "strftime" => Ok(Value::from(self.strftime(&one_str(method, args)?))),
            "timestamp" => {
                no_args(method, args)?;
                let utc = self.utc().and_utc();
                let micros = utc.timestamp_micros();
                Ok(Value::from(micros as f64 / 1e6))
            }
            "date" => {
                no_args(method, args)?;
                Ok(Value::from_object(PyDate(self.wall.date())))
            }
            "time" => {
                no_args(method, args)?;
                Ok(Value::from_object(PyTime(self.wall.time())))
            }
            "astimezone" => {
                let (positional, kwargs) = split_args(args)?;
                at_most(method, positional, 1)?;
                let tz = arg(positional, kwargs.as_ref(), 0, "tz")?;
                finish(kwargs.as_ref())?;
                Ok(self.astimezone(tz.as_ref())?.into_value())
            }
            "replace" => Ok(self.replace(args)?.into_value()),
            "weekday" => {
                no_args(method, args)?;
                Ok(Value::from(self.wall.weekday().num_days_from_monday()))
            }
            "isoweekday" => {
                no_args(method, args)?;
                Ok(Value::from(self.wall.weekday().number_from_monday()))
            }
            "isocalendar" => {
                no_args(method, args)?;
                let (y, w, d) = timefmt::iso_calendar(&self.wall.date());
                Ok(Value::from(Tuple::from(vec![
                    Value::from(y),
                    Value::from(w),
                    Value::from(d),
                ])))
            }
            "utcoffset" => {
                no_args(method, args)?;
                match self.offset() {
                    Some(o) => Ok(Value::from_object(TimeDelta::from_micros(
                        i128::from(o.local_minus_utc()) * 1_000_000,
                    )?)),
                    None => Ok(Value::from(())),
                }
            }
            "tzname" => {
                no_args(method, args)?;
                Ok(self
                    .zone
                    .map_or(Value::from(()), |z| Value::from(z.name_at(&self.wall))))
            }
            "ctime" => {
                no_args(method, args)?;
                Ok(Value::from(self.strftime("%a %b %e %H:%M:%S %Y")))
            }
            "toordinal" => {
                no_args(method, args)?;
                Ok(Value::from(self.wall.date().num_days_from_ce()))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.compare(other.downcast_ref::<PyDateTime>()?))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_ref(), f)
    }
}

/// Python's `datetime.date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PyDate(pub(crate) NaiveDate);

impl PyDate {
    /// `self + td` (whole days of the timedelta only, as Python).
    pub(crate) fn add_delta(&self, td: TimeDelta) -> Result<PyDate, Error> {
        let (days, _, _) = td.parts();
        let days = i64::try_from(days).map_err(|_| out_of_range())?;
        self.0
            .checked_add_signed(Duration::days(days))
            .filter(|d| (1..=9999).contains(&d.year()))
            .map(PyDate)
            .ok_or_else(out_of_range)
    }

    /// `self + rd`: the calendar part of the relativedelta.
    pub(crate) fn add_relative(&self, rd: &RelativeDelta) -> Result<PyDate, Error> {
        Ok(PyDate(rd.apply(self.0.and_time(NaiveTime::MIN))?.date()))
    }

    /// `self - other`.
    pub(crate) fn minus(&self, other: &PyDate) -> Result<TimeDelta, Error> {
        TimeDelta::from_micros(i128::from((self.0 - other.0).num_days()) * 86_400_000_000)
    }

    /// Python's `repr()`.
    pub(crate) fn repr(&self) -> String {
        format!(
            "datetime.date({}, {}, {})",
            self.0.year(),
            self.0.month(),
            self.0.day()
        )
    }
}

impl fmt::Display for PyDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl Object for PyDate {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "year" => Value::from(self.0.year()),
            "month" => Value::from(self.0.month()),
            "day" => Value::from(self.0.day()),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let midnight = self.0.and_time(NaiveTime::MIN);
        match method {
            "isoformat" | "__str__" => {
                no_args(method, args)?;
                Ok(Value::from(self.to_string()))
            }
            "strftime" => Ok(Value::from(timefmt::strftime(
                &midnight,
                None,
                &one_str(method, args)?,
            ))),
            "weekday" => {
                no_args(method, args)?;
                Ok(Value::from(self.0.weekday().num_days_from_monday()))
            }
            "isoweekday" => {
                no_args(method, args)?;
                Ok(Value::from(self.0.weekday().number_from_monday()))
            }
            "isocalendar" => {
                no_args(method, args)?;
                let (y, w, d) = timefmt::iso_calendar(&self.0);
                Ok(Value::from(Tuple::from(vec![
                    Value::from(y),
                    Value::from(w),
                    Value::from(d),
                ])))
            }
            "ctime" => {
                no_args(method, args)?;
                Ok(Value::from(timefmt::strftime(
                    &midnight,
                    None,
                    "%a %b %e %H:%M:%S %Y",
                )))
            }
            "toordinal" => {
                no_args(method, args)?;
                Ok(Value::from(self.0.num_days_from_ce()))
            }
            "replace" => {
                let (positional, kwargs) = split_args(args)?;
                at_most(method, positional, 3)?;
                let kw = kwargs.as_ref();
                let year = int_arg(positional, kw, 0, "year")?.unwrap_or(i64::from(self.0.year()));
                let month =
                    int_arg(positional, kw, 1, "month")?.unwrap_or(i64::from(self.0.month()));
                let day = int_arg(positional, kw, 2, "day")?.unwrap_or(i64::from(self.0.day()));
                finish(kw)?;
                Ok(Value::from_object(PyDate(make_date(year, month, day)?)))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.0.cmp(&other.downcast_ref::<PyDate>()?.0))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_ref(), f)
    }
}

/// Python's `datetime.time` (naive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PyTime(pub(crate) NaiveTime);

impl PyTime {
    /// Python's `repr()`.
    pub(crate) fn repr(&self) -> String {
        let t = &self.0;
        let micro = t.nanosecond() / 1000;
        let mut text = format!("datetime.time({}, {}", t.hour(), t.minute());
        if t.second() != 0 || micro != 0 {
            text.push_str(&format!(", {}", t.second()));
        }
        if micro != 0 {
            text.push_str(&format!(", {micro}"));
        }
        text.push(')');
        text
    }
}

impl fmt::Display for PyTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match time_text(&self.0, "auto") {
            Ok(text) => f.write_str(&text),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl Object for PyTime {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let t = &self.0;
        Some(match key.as_str()? {
            "hour" => Value::from(t.hour()),
            "minute" => Value::from(t.minute()),
            "second" => Value::from(t.second()),
            "microsecond" => Value::from(t.nanosecond() / 1000),
            "tzinfo" => Value::from(()),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "isoformat" => {
                let (_, spec) = iso_args(args, false)?;
                Ok(Value::from(time_text(&self.0, &spec)?))
            }
            "strftime" => {
                let base = NaiveDate::from_ymd_opt(1900, 1, 1).map(|d| d.and_time(self.0));
                let base = base.ok_or_else(|| invalid("invalid time"))?;
                Ok(Value::from(timefmt::strftime(
                    &base,
                    None,
                    &one_str(method, args)?,
                )))
            }
            "replace" => {
                let (positional, kwargs) = split_args(args)?;
                at_most(method, positional, 4)?;
                let kw = kwargs.as_ref();
                let t = &self.0;
                let hour = int_arg(positional, kw, 0, "hour")?.unwrap_or(i64::from(t.hour()));
                let minute = int_arg(positional, kw, 1, "minute")?.unwrap_or(i64::from(t.minute()));
                let second = int_arg(positional, kw, 2, "second")?.unwrap_or(i64::from(t.second()));
                let micro = int_arg(positional, kw, 3, "microsecond")?
                    .unwrap_or(i64::from(t.nanosecond() / 1000));
                finish(kw)?;
                Ok(Value::from_object(PyTime(make_time(
                    hour, minute, second, micro,
                )?)))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        Some(self.0.cmp(&other.downcast_ref::<PyTime>()?.0))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_ref(), f)
    }
}
