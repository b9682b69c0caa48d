//! Value formats shared by every lava component: durations (`nnX`), sizes with
//! SI and IEC units, and lava booleans, as the original lava reads them in
//! job fields, dispatch parameters and configuration. Durations that become
//! a `std::time::Duration` go through [`to_duration`] / [`duration_of`],
//! which refuse what cannot be represented instead of panicking.

use std::time::Duration;

use serde_json::Value;

/// A value that could not be read as a duration, size or boolean.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Not a duration: a number of seconds or a number followed by `s m h d w`.
    #[error("bad duration: {0}")]
    Duration(String),
    /// Not a size: bytes, or a number followed by a size unit.
    #[error("bad size: {0}")]
    Size(String),
    /// Not a lava boolean.
    #[error("bad boolean: {0}")]
    Bool(String),
    /// A duration longer than lava accepts ([`MAX_DURATION_SECS`]).
    #[error("duration too long: {0} (at most 100 years)")]
    TooLong(String),
}

/// The longest duration lava accepts anywhere (100 years, in seconds).
/// Longer values are refused: turning them into a deadline would overflow
/// the clock, and none of them can mean anything but a mistake.
pub const MAX_DURATION_SECS: f64 = 100.0 * 365.25 * 86_400.0;

/// Seconds as a [`Duration`], checked. A negative value counts as zero (a
/// negative timeout ends at once, as it always has); NaN, infinities and
/// values over [`MAX_DURATION_SECS`] are an error that names the value.
pub fn to_duration(seconds: f64) -> Result<Duration, UnitError> {
    if seconds.is_nan() {
        return Err(UnitError::Duration(seconds.to_string()));
    }
    if seconds > MAX_DURATION_SECS {
        return Err(UnitError::TooLong(seconds.to_string()));
    }
    Duration::try_from_secs_f64(seconds.max(0.0))
        .map_err(|_| UnitError::Duration(seconds.to_string()))
}

/// A duration field's value (number of seconds or `nnX` text) as a
/// [`Duration`], checked as [`to_duration`] does; the error names the value
/// as it was written.
pub fn duration_of(value: &Value) -> Result<Duration, UnitError> {
    let seconds = duration_value(value)?;
    to_duration(seconds).map_err(|e| match e {
        UnitError::TooLong(_) => UnitError::TooLong(show(value)),
        _ => UnitError::Duration(show(value)),
    })
}

/// Shows a JSON value the way an error message should name it: strings
/// without quotes, everything else as JSON.
pub fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Splits `text` into a leading number (sign, digits, decimal point,
/// exponent) and the rest, with surrounding whitespace removed from both.
fn split_number(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let bytes = text.as_bytes();
    let mut end = 0;
    if end < bytes.len() && (bytes[end] == b'+' || bytes[end] == b'-') {
        end += 1;
    }
    let mut digits = 0;
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        end += 1;
        digits += 1;
    }
    if end < bytes.len() && bytes[end] == b'.' {
        end += 1;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    // An exponent only counts when digits follow it.
    if end < bytes.len() && (bytes[end] == b'e' || bytes[end] == b'E') {
        let mut exp_end = end + 1;
        if exp_end < bytes.len() && (bytes[exp_end] == b'+' || bytes[exp_end] == b'-') {
            exp_end += 1;
        }
        let exp_digits_start = exp_end;
        while exp_end < bytes.len() && bytes[exp_end].is_ascii_digit() {
            exp_end += 1;
        }
        if exp_end > exp_digits_start {
            end = exp_end;
        }
    }
    let number: f64 = text[..end].parse().ok()?;
    Some((number, text[end..].trim()))
}

/// Parses a duration in seconds: a number, or text `[ws]<number>[ws]<unit>[ws]`
/// with unit `s`, `m`, `h`, `d`, `w` (case-sensitive) or none (seconds).
/// The result may be fractional or negative; callers check ranges.
pub fn parse_duration(text: &str) -> Result<f64, UnitError> {
    let bad = || UnitError::Duration(text.to_string());
    let (number, unit) = split_number(text).ok_or_else(bad)?;
    let scale = match unit {
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        "w" => 604_800.0,
        _ => return Err(bad()),
    };
    let seconds = number * scale;
    if seconds.is_finite() {
        Ok(seconds)
    } else {
        Err(bad())
    }
}

/// Parses a duration given as a table value: a number of seconds or a string.
pub fn duration_value(value: &Value) -> Result<f64, UnitError> {
    match value {
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .ok_or_else(|| UnitError::Duration(n.to_string())),
        Value::String(s) => parse_duration(s),
        other => Err(UnitError::Duration(show(other))),
    }
}

/// Parses a size in bytes: an integer (or integer text), or a number with a
/// unit `B`, `K`/`KB`, `M`/`MB`, `G`/`GB`, `T`/`TB`, `P`/`PB` (powers of 1000)
/// or `KiB`, `MiB`, `GiB`, `TiB`, `PiB` (powers of 1024), case-sensitive.
/// The result is rounded to whole bytes.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let bad = || UnitError::Size(text.to_string());
    let trimmed = text.trim();
    if let Ok(bytes) = trimmed.parse::<u64>() {
        return Ok(bytes);
    }
    let (number, unit) = split_number(trimmed).ok_or_else(bad)?;
    let scale: f64 = match unit {
        "B" => 1.0,
        "K" | "KB" => 1e3,
        "M" | "MB" => 1e6,
        "G" | "GB" => 1e9,
        "T" | "TB" => 1e12,
        "P" | "PB" => 1e15,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024f64.powi(4),
        "PiB" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    let bytes = (number * scale).round();
    if bytes.is_finite() && bytes >= 0.0 && bytes <= u64::MAX as f64 {
        Ok(bytes as u64)
    } else {
        Err(bad())
    }
}

/// Parses a size given as a table value: a non-negative integer or a string.
pub fn size_value(value: &Value) -> Result<u64, UnitError> {
    match value {
        Value::Number(n) => n.as_u64().ok_or_else(|| UnitError::Size(n.to_string())),
        Value::String(s) => parse_size(s),
        other => Err(UnitError::Size(show(other))),
    }
}

/// Parses a lava boolean from text: `true t yes y` / `false f no n` (trimmed,
/// any case), or integer text (non-zero is true).
pub fn parse_bool(text: &str) -> Result<bool, UnitError> {
    let word = text.trim().to_ascii_lowercase();
    match word.as_str() {
        "true" | "t" | "yes" | "y" => Ok(true),
        "false" | "f" | "no" | "n" => Ok(false),
        _ => word
            .parse::<i64>()
            .map(|n| n != 0)
            .map_err(|_| UnitError::Bool(text.to_string())),
    }
}

/// Parses a lava boolean given as a table value: a real boolean or text.
/// Numbers are not booleans (DynamoDB numbers are refused, as in the original).
pub fn bool_value(value: &Value) -> Result<bool, UnitError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) => parse_bool(s),
        other => Err(UnitError::Bool(show(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_convert_without_panicking() {
        assert_eq!(to_duration(1.5), Ok(Duration::from_millis(1500)));
        assert_eq!(to_duration(-3.0), Ok(Duration::ZERO));
        assert!(to_duration(f64::NAN).is_err());
        assert!(to_duration(f64::INFINITY).is_err());
        assert!(to_duration(1e20).is_err());
        assert!(to_duration(MAX_DURATION_SECS).is_ok());
        assert_eq!(
            duration_of(&json!("1e20")).map_err(|e| e.to_string()),
            Err("duration too long: 1e20 (at most 100 years)".to_string())
        );
        assert_eq!(
            duration_of(&json!(1e300)).map_err(|e| e.to_string()),
            Err("duration too long: 1e+300 (at most 100 years)".to_string())
        );
        assert_eq!(duration_of(&json!("2m")), Ok(Duration::from_secs(120)));
        assert!(duration_of(&json!("soon")).is_err());
    }

    #[test]
    fn durations() {
        let cases: &[(&str, f64)] = &[
            ("10", 10.0),
            ("10s", 10.0),
            (" 10 s ", 10.0),
            ("1.5m", 90.0),
            ("2h", 7200.0),
            ("1d", 86_400.0),
            ("1w", 604_800.0),
            ("-3s", -3.0),
            ("+3s", 3.0),
            ("1e2s", 100.0),
            ("1.5e1", 15.0),
            (".5m", 30.0),
            ("5.", 5.0),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(*want), "{text}");
        }
        for bad in [
            "", "s", "10x", "10 S", "10M", "ten", "1e", "10 s s", "nan", "inf",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad} should fail");
        }
        assert_eq!(duration_value(&json!(30)), Ok(30.0));
        assert_eq!(duration_value(&json!(2.5)), Ok(2.5));
        assert_eq!(duration_value(&json!("1m")), Ok(60.0));
        assert!(duration_value(&json!(true)).is_err());
        assert!(duration_value(&json!(null)).is_err());
    }

    #[test]
    fn sizes() {
        let cases: &[(&str, u64)] = &[
            ("0", 0),
            ("1024", 1024),
            (" 77 ", 77),
            ("10B", 10),
            ("1K", 1000),
            ("1KB", 1000),
            ("2M", 2_000_000),
            ("1.5MB", 1_500_000),
            ("1G", 1_000_000_000),
            ("1T", 1_000_000_000_000),
            ("1P", 1_000_000_000_000_000),
            ("1KiB", 1024),
            ("1MiB", 1_048_576),
            ("1.5KiB", 1536),
            ("1GiB", 1_073_741_824),
            ("1TiB", 1_099_511_627_776),
            ("1PiB", 1_125_899_906_842_624),
            ("0.4B", 0),
            ("0.6B", 1),
        ];
        for (text, want) in cases {
            assert_eq!(parse_size(text), Ok(*want), "{text}");
        }
        for bad in ["", "1.5", "10 kb", "1k", "1Ki", "-1K", "K", "1 MiB x"] {
            assert!(parse_size(bad).is_err(), "{bad} should fail");
        }
        assert_eq!(size_value(&json!(5)), Ok(5));
        assert_eq!(size_value(&json!("10M")), Ok(10_000_000));
        assert!(size_value(&json!(-5)).is_err());
        assert!(size_value(&json!(1.5)).is_err());
    }

    #[test]
    fn booleans() {
        for t in ["true", "True", " TRUE ", "t", "yes", "Y", "1", "-2", "10"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for f in ["false", "F", "no", "n", "0", " 00 "] {
            assert_eq!(parse_bool(f), Ok(false), "{f}");
        }
        for bad in ["", "on", "off", "1.0", "truthy"] {
            assert!(parse_bool(bad).is_err(), "{bad} should fail");
        }
        assert_eq!(bool_value(&json!(true)), Ok(true));
        assert!(bool_value(&json!(1)).is_err());
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(text in ".{0,40}") {
            let _ = parse_duration(&text);
            let _ = parse_size(&text);
            let _ = parse_bool(&text);
        }

        #[test]
        fn whole_seconds_round_trip(n in -1_000_000i64..1_000_000, unit in 0usize..5) {
            let (suffix, scale) = [("s", 1), ("m", 60), ("h", 3600), ("d", 86_400), ("w", 604_800)][unit];
            proptest::prop_assert_eq!(parse_duration(&format!("{n}{suffix}")), Ok((n * scale) as f64));
        }
    }
}
