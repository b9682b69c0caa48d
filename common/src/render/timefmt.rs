//! Datetime text: Python's `strftime`/`strptime` directives mapped onto
//! chrono, and the readers behind `dateutil.parser.isoparse` and
//! `dateutil.parser.parse`.

use std::fmt::Write;

use chrono::format::{Item, StrftimeItems};
use chrono::{
    DateTime, Datelike, FixedOffset, Local, NaiveDate, NaiveDateTime, NaiveTime, Timelike,
};

/// A parsed datetime: wall-clock time and, when the text had one, its offset.
pub(crate) type Parsed = (NaiveDateTime, Option<FixedOffset>);

/// Formats `wall` with a Python `strftime` format. `zone` is the offset and
/// name of an aware value (`%z`, `%Z` print nothing for naive values).
/// Unknown directives are copied as written, as glibc does.
pub(crate) fn strftime(
    wall: &NaiveDateTime,
    zone: Option<(FixedOffset, String)>,
    fmt: &str,
) -> String {
    let mut out = String::with_capacity(fmt.len() + 16);
    let mut chars = fmt.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flag = None;
        if let Some(&(_, f)) = chars.peek()
            && matches!(f, '-' | '_' | '0' | '^' | '#')
        {
            flag = Some(f);
            chars.next();
        }
        let mut colon = false;
        if let Some(&(_, ':')) = chars.peek() {
            colon = true;
            chars.next();
        }
        let Some((end, d)) = chars.next() else {
            out.push_str(&fmt[start..]);
            break;
        };
        let literal = &fmt[start..end + d.len_utf8()];
        match (d, colon) {
            ('%', false) => out.push('%'),
            ('f', false) => {
                let _ = write!(out, "{:06}", wall.nanosecond() / 1000 % 1_000_000);
            }
            ('z', _) => {
                if let Some((offset, _)) = &zone {
                    out.push_str(&offset_text(*offset, colon));
                }
            }
            ('Z', false) => {
                if let Some((_, name)) = &zone {
                    out.push_str(name);
                }
            }
            (_, true) => out.push_str(literal),
            _ => {
                let spec = match flag {
                    Some(f @ ('-' | '_' | '0')) => format!("%{f}{d}"),
                    _ => format!("%{d}"),
                };
                let text = chrono_directive(wall, &spec);
                match (text, flag) {
                    (Some(t), Some('^')) => out.push_str(&t.to_uppercase()),
                    (Some(t), Some('#')) => out.push_str(&swap_case(&t)),
                    (Some(t), _) => out.push_str(&t),
                    (None, _) => out.push_str(literal),
                }
            }
        }
    }
    out
}

fn swap_case(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_uppercase() {
                c.to_lowercase().collect::<String>()
            } else {
                c.to_uppercase().collect::<String>()
            }
        })
        .collect()
}

/// One directive through chrono; `None` if chrono does not know it or
/// needs an offset.
fn chrono_directive(wall: &NaiveDateTime, spec: &str) -> Option<String> {
    let items: Vec<Item<'_>> = StrftimeItems::new(spec).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return None;
    }
    let mut text = String::new();
    write!(text, "{}", wall.format_with_items(items.into_iter())).ok()?;
    Some(text)
}

/// `+1000`, or `+10:00` with `colon`; seconds only when not zero.
pub(crate) fn offset_text(offset: FixedOffset, colon: bool) -> String {
    let secs = offset.local_minus_utc();
    let sign = if secs < 0 { '-' } else { '+' };
    let secs = secs.unsigned_abs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let sep = if colon { ":" } else { "" };
    let mut text = format!("{sign}{h:02}{sep}{m:02}");
    if s != 0 {
        let _ = write!(text, "{sep}{s:02}");
    }
    text
}

/// Python's `datetime.strptime(text, fmt)`: naive unless the format has
/// `%z`. Missing date fields default to 1900-01-01, time fields to zero.
pub(crate) fn strptime(text: &str, fmt: &str) -> Option<Parsed> {
    let mut chrono_fmt = String::with_capacity(fmt.len() + 4);
    let mut chars = fmt.chars().peekable();
    let mut has_offset = false;
    while let Some(c) = chars.next() {
        if c != '%' {
            chrono_fmt.push(c);
            continue;
        }
        match chars.next() {
            Some('f') => {
                // Python's `%f` takes 1 to 6 digits; chrono's `%.f` reads a
                // dot and the digits.
                if chrono_fmt.ends_with('.') {
                    chrono_fmt.pop();
                    chrono_fmt.push_str("%.f");
                } else {
                    chrono_fmt.push_str("%6f");
                }
            }
            Some('z') => {
                has_offset = true;
                chrono_fmt.push_str("%#z");
            }
            Some(d) => {
                chrono_fmt.push('%');
                chrono_fmt.push(d);
            }
            None => return None,
        }
    }
    let text_fixed;
    let text = if has_offset && text.ends_with('Z') {
        text_fixed = format!("{}+00:00", &text[..text.len() - 1]);
        text_fixed.as_str()
    } else {
        text
    };
    if has_offset {
        return DateTime::parse_from_str(text, &chrono_fmt)
            .ok()
            .map(|dt| (dt.naive_local(), Some(*dt.offset())))
            .or_else(|| {
                let mut parsed = chrono::format::Parsed::new();
                chrono::format::parse(&mut parsed, text, StrftimeItems::new(&chrono_fmt)).ok()?;
                let offset = FixedOffset::east_opt(parsed.offset()?)?;
                let date = parsed
                    .to_naive_date()
                    .ok()
                    .or_else(|| NaiveDate::from_ymd_opt(1900, 1, 1))?;
                let time = parsed.to_naive_time().unwrap_or(NaiveTime::MIN);
                Some((date.and_time(time), Some(offset)))
            });
    }
    if let Ok(dt) = NaiveDateTime::parse_from_str(text, &chrono_fmt) {
        return Some((dt, None));
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, &chrono_fmt) {
        return Some((d.and_time(NaiveTime::MIN), None));
    }
    let mut parsed = chrono::format::Parsed::new();
    chrono::format::parse(&mut parsed, text, StrftimeItems::new(&chrono_fmt)).ok()?;
    let date = match parsed.to_naive_date() {
        Ok(d) => d,
        Err(_) => {
            let year = parsed.year().unwrap_or(1900);
            let month = parsed.month().unwrap_or(1);
            let day = parsed.day().unwrap_or(1);
            NaiveDate::from_ymd_opt(year, month, day)?
        }
    };
    let time = parsed.to_naive_time().unwrap_or(NaiveTime::MIN);
    Some((date.and_time(time), None))
}

/// A cursor over ASCII text for the ISO reader.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<u32> {
        let end = self.pos.checked_add(n)?;
        let chunk = self.s.get(self.pos..end)?;
        if !chunk.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.pos = end;
        chunk
            .iter()
            .try_fold(0u32, |acc, b| Some(acc * 10 + u32::from(b - b'0')))
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn done(&self) -> bool {
        self.pos >= self.s.len()
    }
}

/// dateutil's `isoparse`: `YYYY[-MM[-DD]]` or `YYYYMMDD`, then optionally a
/// one-character separator and `HH[:MM[:SS[.ffffff]]]` (or without colons),
/// then `Z`, `±HH`, `±HHMM` or `±HH:MM`. `24:00` is the next midnight.
pub(crate) fn isoparse(text: &str) -> Option<Parsed> {
    let mut c = Cursor {
        s: text.as_bytes(),
        pos: 0,
    };
    let year = c.digits(4)?;
    let (mut month, mut day) = (1, 1);
    if c.eat(b'-') {
        month = c.digits(2)?;
        if c.eat(b'-') {
            day = c.digits(2)?;
        }
    } else if c.peek().is_some_and(|b| b.is_ascii_digit()) {
        month = c.digits(2)?;
        day = c.digits(2)?;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    if c.done() {
        return Some((date.and_time(NaiveTime::MIN), None));
    }
    // The separator: any single character that is not a digit.
    let sep = c.peek()?;
    if sep.is_ascii_digit() {
        return None;
    }
    c.pos += 1;
    let (time, extra_day) = iso_time(&mut c)?;
    let offset = iso_offset(&mut c)?;
    if !c.done() {
        return None;
    }
    let mut wall = date.and_time(time);
    if extra_day {
        wall = wall.checked_add_signed(chrono::Duration::days(1))?;
    }
    Some((wall, offset))
}

fn iso_time(c: &mut Cursor<'_>) -> Option<(NaiveTime, bool)> {
    let hour = c.digits(2)?;
    let (mut minute, mut second, mut micro) = (0, 0, 0);
    let colons = c.peek() == Some(b':');
    let next_is_part = |c: &Cursor<'_>| {
        if colons {
            c.peek() == Some(b':')
        } else {
            c.peek().is_some_and(|b| b.is_ascii_digit())
        }
    };
    if next_is_part(c) {
        if colons {
            c.pos += 1;
        }
        minute = c.digits(2)?;
        if next_is_part(c) {
            if colons {
                c.pos += 1;
            }
            second = c.digits(2)?;
            if c.eat(b'.') || c.eat(b',') {
                let start = c.pos;
                while c.peek().is_some_and(|b| b.is_ascii_digit()) {
                    c.pos += 1;
                }
                let frac = std::str::from_utf8(c.s.get(start..c.pos)?).ok()?;
                if frac.is_empty() {
                    return None;
                }
                let mut digits: String = frac.chars().take(6).collect();
                while digits.len() < 6 {
                    digits.push('0');
                }
                micro = digits.parse().ok()?;
            }
        }
    }
    if hour == 24 && minute == 0 && second == 0 && micro == 0 {
        return Some((NaiveTime::MIN, true));
    }
    Some((
        NaiveTime::from_hms_micro_opt(hour, minute, second, micro)?,
        false,
    ))
}

fn iso_offset(c: &mut Cursor<'_>) -> Option<Option<FixedOffset>> {
    match c.peek() {
        None => Some(None),
        Some(b'Z' | b'z') => {
            c.pos += 1;
            Some(FixedOffset::east_opt(0))
        }
        Some(sign @ (b'+' | b'-')) => {
            c.pos += 1;
            let h = c.digits(2)?;
            let mut m = 0;
            let colon = c.eat(b':');
            if colon || !c.done() {
                m = c.digits(2)?;
            }
            let secs = i32::try_from(h * 3600 + m * 60).ok()?;
            let secs = if sign == b'-' { -secs } else { secs };
            Some(Some(FixedOffset::east_opt(secs)?))
        }
        Some(_) => None,
    }
}

/// Formats the lenient reader tries after ISO 8601 and RFC 2822, with their
/// ordering of day and month as dateutil guesses it (month first).
const LENIENT_FORMATS: [&str; 22] = [
    "%Y/%m/%d %H:%M:%S%.f",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%m/%d/%Y %H:%M:%S%.f",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%m/%d/%y",
    "%d %b %Y %H:%M:%S%.f",
    "%d %b %Y %H:%M",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d %Y %H:%M:%S%.f",
    "%b %d %Y",
    "%b %d, %Y %H:%M:%S%.f",
    "%b %d, %Y",
    "%B %d %Y",
    "%B %d, %Y",
    "%a %b %d %H:%M:%S %Y",
    "%A, %d %B %Y %H:%M:%S%.f",
    "%A, %d %B %Y",
    "%Y%m%dT%H%M%S",
    "%Y-%m-%d %I:%M %p",
];

/// dateutil's `parser.parse`, within reason: ISO 8601 with `T` or a space,
/// RFC 2822, a trailing `UTC`/`GMT`/`Z`/offset, the formats above, and a
/// bare time (today's date). Naive when the text names no zone.
pub(crate) fn parse_lenient(text: &str) -> Option<Parsed> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    if let Some(p) = isoparse(t) {
        return Some(p);
    }
    if let Ok(dt) = DateTime::parse_from_rfc2822(t) {
        return Some((dt.naive_local(), Some(*dt.offset())));
    }
    // Split off a trailing zone word or offset.
    let (body, offset) = split_zone(t);
    let body = body.trim().trim_end_matches(',');
    if body != t
        && let Some((wall, None)) = isoparse(body)
    {
        return Some((wall, offset));
    }
    for fmt in LENIENT_FORMATS {
        if let Ok(dt) = NaiveDateTime::parse_from_str(body, fmt) {
            return Some((dt, offset));
        }
        if let Ok(d) = NaiveDate::parse_from_str(body, fmt) {
            return Some((d.and_time(NaiveTime::MIN), offset));
        }
    }
    for fmt in ["%H:%M:%S%.f", "%H:%M", "%I:%M %p", "%I %p"] {
        if let Ok(time) = NaiveTime::parse_from_str(body, fmt) {
            return Some((Local::now().date_naive().and_time(time), offset));
        }
    }
    None
}

fn split_zone(t: &str) -> (&str, Option<FixedOffset>) {
    for word in [" UTC", " GMT", " Z", "Z"] {
        if let Some(body) = t.strip_suffix(word) {
            return (body, FixedOffset::east_opt(0));
        }
    }
    if let Some(idx) = t.rfind([' ', '+', '-']) {
        let tail = &t[idx..];
        let tail = tail.trim_start();
        let mut c = Cursor {
            s: tail.as_bytes(),
            pos: 0,
        };
        if let Some(Some(offset)) = iso_offset(&mut c)
            && c.done()
            && idx > 0
        {
            return (&t[..idx], Some(offset));
        }
    }
    (t, None)
}

/// The current local wall time and its offset.
pub(crate) fn now_local() -> (NaiveDateTime, FixedOffset) {
    let now = Local::now();
    (now.naive_local(), *now.offset())
}

/// The ISO week-numbering year, week and weekday (1 = Monday).
pub(crate) fn iso_calendar(d: &NaiveDate) -> (i32, u32, u32) {
    let w = d.iso_week();
    (w.year(), w.week(), d.weekday().number_from_monday())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").expect("wall")
    }

    #[test]
    fn render_strftime_python_directives() {
        let w = wall("2024-05-01 09:05:03.042");
        let tz = Some((
            FixedOffset::east_opt(36000).expect("offset"),
            "AEST".to_string(),
        ));
        let f = |fmt: &str| strftime(&w, tz.clone(), fmt);
        assert_eq!(f("%Y-%m-%d %H:%M:%S"), "2024-05-01 09:05:03");
        assert_eq!(f("%A %a %B %b %j %y"), "Wednesday Wed May May 122 24");
        assert_eq!(f("%Z %z %:z %f"), "AEST +1000 +10:00 042000");
        assert_eq!(f("%p %I %-d %-m %e"), "AM 09 1 5  1");
        assert_eq!(f("%% %Q %"), "% %Q %");
        assert_eq!(f("%^a %c"), "WED Wed May  1 09:05:03 2024");
        assert_eq!(strftime(&w, None, "[%z][%Z]"), "[][]");
    }

    #[test]
    fn render_strptime_like_python() {
        let (w, off) = strptime("2024-05-01 10:30", "%Y-%m-%d %H:%M").expect("parse");
        assert_eq!(w, wall("2024-05-01 10:30:00"));
        assert!(off.is_none());
        let (w, _) = strptime("01/05/2024", "%d/%m/%Y").expect("date only");
        assert_eq!(w, wall("2024-05-01 00:00:00"));
        let (w, off) =
            strptime("2024-05-01T10:30:00.5+1000", "%Y-%m-%dT%H:%M:%S.%f%z").expect("tz");
        assert_eq!(w, wall("2024-05-01 10:30:00.5"));
        assert_eq!(off.map(|o| o.local_minus_utc()), Some(36000));
        let (_, off) = strptime("2024-05-01T10:30:00Z", "%Y-%m-%dT%H:%M:%S%z").expect("Z");
        assert_eq!(off.map(|o| o.local_minus_utc()), Some(0));
        let (w, _) = strptime("10:30", "%H:%M").expect("time only");
        assert_eq!(w, wall("1900-01-01 10:30:00"));
        assert!(strptime("2024-13-01", "%Y-%m-%d").is_none());
    }

    #[test]
    fn render_isoparse_forms() {
        for (text, expect, offset) in [
            ("2000-01-01T00:00:00Z", "2000-01-01 00:00:00", Some(0)),
            ("2024-05-01", "2024-05-01 00:00:00", None),
            ("20240501T103000", "2024-05-01 10:30:00", None),
            (
                "2024-05-01 10:30:00.123+10:00",
                "2024-05-01 10:30:00.123",
                Some(36000),
            ),
            ("2024-05-01T10:30-0530", "2024-05-01 10:30:00", Some(-19800)),
            ("2024-05-01T24:00", "2024-05-02 00:00:00", None),
        ] {
            let (w, off) = isoparse(text).expect(text);
            assert_eq!(w, wall(expect), "{text}");
            assert_eq!(off.map(|o| o.local_minus_utc()), offset, "{text}");
        }
        for bad in [
            "",
            "2024-5-1",
            "yesterday",
            "2024-05-01T25:00",
            "2024-05-01T10:00+xx",
        ] {
            assert!(isoparse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn render_lenient_parse_forms() {
        for (text, expect, offset) in [
            ("2000-01-01T00:00:00Z", "2000-01-01 00:00:00", Some(0)),
            (
                "Wed, 01 May 2024 10:00:00 +1000",
                "2024-05-01 10:00:00",
                Some(36000),
            ),
            ("2024-05-01 10:00:00 UTC", "2024-05-01 10:00:00", Some(0)),
            (
                "2024-05-01 10:00:00 +10:00",
                "2024-05-01 10:00:00",
                Some(36000),
            ),
            ("May 1 2024", "2024-05-01 00:00:00", None),
            ("1 May 2024 10:00", "2024-05-01 10:00:00", None),
            ("05/01/2024", "2024-05-01 00:00:00", None),
            ("2024/05/01 10:00:00", "2024-05-01 10:00:00", None),
        ] {
            let (w, off) = parse_lenient(text).expect(text);
            assert_eq!(w, wall(expect), "{text}");
            assert_eq!(off.map(|o| o.local_minus_utc()), offset, "{text}");
        }
        assert!(parse_lenient("not a date").is_none());
        assert!(parse_lenient("-- set at run-time --").is_none());
    }
}
