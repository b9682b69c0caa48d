//! Values as Python's `str()` renders them, for SQL results written the way
//! the original lava writes them: floats (`repr`), `Decimal`, `timedelta`,
//! times with microseconds, `bytes`, and JSON documents as Python objects.

use serde_json::Value;

/// Python's `repr(float)`: the shortest text that reads back, with `.0` on
/// whole numbers and exponents outside `1e-4 <= |x| < 1e16`.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Shortest round-trip digits and exponent, as `d.ddde±x`.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if f < 0.0 { "-" } else { "" };
    let n = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    let body = if (-4..16).contains(&exp) {
        if exp >= n - 1 {
            let zeros = usize::try_from(exp - (n - 1)).unwrap_or(0);
            format!("{digits}{}.0", "0".repeat(zeros))
        } else if exp >= 0 {
            let point = usize::try_from(exp + 1).unwrap_or(0);
            format!("{}.{}", &digits[..point], &digits[point..])
        } else {
            let zeros = usize::try_from(-exp - 1).unwrap_or(0);
            format!("0.{}{digits}", "0".repeat(zeros))
        }
    } else {
        let frac = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits.clone()
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{frac}e{esign}{:02}", exp.abs())
    };
    format!("{sign}{body}")
}

/// Python's `str(float(text))` for a float a database sent as text; the
/// text unchanged when it is not a number.
pub fn float_text(text: &str) -> String {
    let t = text.trim();
    let parsed = match t.to_ascii_lowercase().as_str() {
        "nan" | "+nan" | "-nan" => Some(f64::NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => Some(f64::INFINITY),
        "-infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => t.parse::<f64>().ok(),
    };
    parsed.map_or_else(|| text.to_string(), float_repr)
}

/// Python's `str(Decimal(text))`; the text unchanged when it is not a
/// decimal number.
pub fn decimal_text(text: &str) -> String {
    let t = text.trim();
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'-') => ("-", &t[1..]),
        Some(b'+') => ("", &t[1..]),
        _ => ("", t),
    };
    match rest.to_ascii_lowercase().as_str() {
        "nan" => return "NaN".into(),
        "infinity" | "inf" => return format!("{sign}Infinity"),
        _ => {}
    }
    let (mantissa, exp_text) = match rest.find(['e', 'E']) {
        Some(p) => (&rest[..p], Some(&rest[p + 1..])),
        None => (rest, None),
    };
    let mut exp: i64 = match exp_text.map(str::parse::<i64>) {
        None => 0,
        Some(Ok(e)) => e,
        Some(Err(_)) => return text.to_string(),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return text.to_string();
    }
    exp -= i64::try_from(frac_part.len()).unwrap_or(0);
    let all = format!("{int_part}{frac_part}");
    let coefficient = all.trim_start_matches('0');
    let coefficient = if coefficient.is_empty() {
        "0"
    } else {
        coefficient
    };
    let n = i64::try_from(coefficient.len()).unwrap_or(0);
    let leftdigits = exp + n;
    let dotplace = if exp <= 0 && leftdigits > -6 {
        leftdigits
    } else {
        1
    };
    let (intpart, fracpart) = if dotplace <= 0 {
        let zeros = usize::try_from(-dotplace).unwrap_or(0);
        (
            "0".to_string(),
            format!(".{}{coefficient}", "0".repeat(zeros)),
        )
    } else if dotplace >= n {
        let zeros = usize::try_from(dotplace - n).unwrap_or(0);
        (format!("{coefficient}{}", "0".repeat(zeros)), String::new())
    } else {
        let p = usize::try_from(dotplace).unwrap_or(0);
        (
            coefficient[..p].to_string(),
            format!(".{}", &coefficient[p..]),
        )
    };
    let exponent = if leftdigits == dotplace {
        String::new()
    } else {
        format!("E{:+}", leftdigits - dotplace)
    };
    format!("{sign}{intpart}{fracpart}{exponent}")
}

/// Python's `str(timedelta)` for a span in microseconds.
pub fn timedelta_text(micros: i128) -> String {
    const DAY: i128 = 86_400_000_000;
    let days = micros.div_euclid(DAY);
    let rest = micros.rem_euclid(DAY);
    let us = rest % 1_000_000;
    let secs = rest / 1_000_000;
    let mut s = format!("{}:{:02}:{:02}", secs / 3600, (secs / 60) % 60, secs % 60);
    if us != 0 {
        s.push_str(&format!(".{us:06}"));
    }
    if days != 0 {
        let plural = if days.abs() != 1 { "s" } else { "" };
        s = format!("{days} day{plural}, {s}");
    }
    s
}

/// A `[-]H:MM:SS[.ffffff]` text as microseconds.
pub fn clock_micros(text: &str) -> Option<i128> {
    let (neg, t) = match text.strip_prefix('-') {
        Some(t) => (true, t),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let mut parts = t.split(':');
    let h: i128 = parts.next()?.parse().ok()?;
    let m: i128 = parts.next()?.parse().ok()?;
    let s_text = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let (s, frac) = s_text.split_once('.').unwrap_or((s_text, ""));
    let s: i128 = s.parse().ok()?;
    let frac_us: i128 = if frac.is_empty() {
        0
    } else {
        let mut f: String = frac.chars().take(6).collect();
        while f.len() < 6 {
            f.push('0');
        }
        f.parse().ok()?
    };
    let total = ((h * 60 + m) * 60 + s) * 1_000_000 + frac_us;
    Some(if neg { -total } else { total })
}

/// A time of day or timestamp text with its fraction as Python prints it:
/// six digits, or none when it is zero (`10:00:00.5` → `10:00:00.500000`).
/// `suffix_from` is where a time-zone suffix starts, if any.
pub fn fraction_text(text: &str) -> String {
    let Some(dot) = text.rfind('.') else {
        return text.to_string();
    };
    let digits_end = text[dot + 1..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(text.len(), |p| dot + 1 + p);
    let digits = &text[dot + 1..digits_end];
    if digits.is_empty() || text[..dot].contains(['+']) {
        return text.to_string();
    }
    let mut six: String = digits.chars().take(6).collect();
    while six.len() < 6 {
        six.push('0');
    }
    let rest = &text[digits_end..];
    if six.bytes().all(|b| b == b'0') {
        format!("{}{rest}", &text[..dot])
    } else {
        format!("{}.{six}{rest}", &text[..dot])
    }
}

/// Python's `repr(bytes)`.
pub fn bytes_repr(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::from("b");
    s.push(quote);
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            _ if char::from(b) == quote => {
                s.push('\\');
                s.push(quote);
            }
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push(quote);
    s
}

/// Python's `repr(str)`.
pub fn str_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut s = String::new();
    s.push(quote);
    for c in text.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\t' => s.push_str("\\t"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            _ if c == quote => {
                s.push('\\');
                s.push(quote);
            }
            _ if (c as u32) < 0x20 || (0x7f..=0xa0).contains(&(c as u32)) || c == '\u{ad}' => {
                s.push_str(&format!("\\x{:02x}", c as u32));
            }
            _ => s.push(c),
        }
    }
    s.push(quote);
    s
}

/// Python's `str()` of a JSON document after `json.loads`.
pub fn json_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => json_repr(other),
    }
}

/// Python's `repr()` of a JSON value after `json.loads`.
fn json_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => {
            if n.is_f64() {
                n.as_f64().map_or_else(|| n.to_string(), float_repr)
            } else {
                n.to_string()
            }
        }
        Value::String(s) => str_repr(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(json_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", str_repr(k), json_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_as_python() {
        for (f, want) in [
            (1.5, "1.5"),
            (100.0, "100.0"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456789012345.6, "123456789012345.6"),
            (-2.0, "-2.0"),
            (0.1 + 0.2, "0.30000000000000004"),
        ] {
            assert_eq!(float_repr(f), want, "{f}");
        }
        assert_eq!(float_text("1.1"), "1.1");
        assert_eq!(float_text("NaN"), "nan");
        assert_eq!(float_text("-Infinity"), "-inf");
    }

    #[test]
    fn decimals_as_python() {
        for (t, want) in [
            ("1.50", "1.50"),
            ("-0.00", "-0.00"),
            ("0.0000001", "1E-7"),
            ("0.000001", "0.000001"),
            ("12345", "12345"),
            ("1E+3", "1E+3"),
            ("NaN", "NaN"),
            ("007.10", "7.10"),
        ] {
            assert_eq!(decimal_text(t), want, "{t}");
        }
    }

    #[test]
    fn spans_times_bytes() {
        assert_eq!(timedelta_text(3_600_000_000), "1:00:00");
        assert_eq!(timedelta_text(-3_600_000_000), "-1 day, 23:00:00");
        assert_eq!(
            timedelta_text(90_000_000_000 + 500_000),
            "1 day, 1:00:00.500000"
        );
        assert_eq!(clock_micros("-01:00:00"), Some(-3_600_000_000));
        assert_eq!(fraction_text("10:00:00.5"), "10:00:00.500000");
        assert_eq!(
            fraction_text("2024-05-01 10:00:00.000"),
            "2024-05-01 10:00:00"
        );
        assert_eq!(
            fraction_text("2024-05-01 10:00:00.25+00:00"),
            "2024-05-01 10:00:00.250000+00:00"
        );
        assert_eq!(bytes_repr(b"\x00a'\\"), "b\"\\x00a'\\\\\"");
        let v: Value = serde_json::from_str(r#"{"a": [1, 2.0, "x'y", null, true]}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(json_text(&v), "{'a': [1, 2.0, \"x'y\", None, True]}");
    }
}
