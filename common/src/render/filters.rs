//! Filters whose minijinja versions differ from Jinja2's: `tojson` (sorted
//! keys, Python's separators and `\uXXXX` escapes), `int` (reads `"4.5"`
//! and `"0x1A"` as Jinja2 does), `string` and `join` (Python `str()` of
//! each item).

use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};

use super::args::invalid;
use super::delta::TimeDelta;
use super::python::{JsonOptions, py_str, to_json};

/// Jinja2's `tojson(indent=None)`: `json.dumps(value, sort_keys=True)`
/// made safe for HTML.
pub(crate) fn tojson(value: &Value, indent: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let indent = match indent {
        Some(v) => Some(v),
        None => kwargs.get::<Option<Value>>("indent")?,
    };
    kwargs.assert_all_used()?;
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "Object of type Undefined is not JSON serializable",
        ));
    }
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => Some(
            usize::try_from(v.clone())
                .map_err(|_| invalid(format!("tojson indent must be a number, not {v}")))?,
        ),
    };
    let text = to_json(
        value,
        JsonOptions {
            sort_keys: true,
            indent,
            html_safe: true,
        },
    )?;
    Ok(Value::from_safe_string(text))
}

/// Reads text as Python's `int(text, base)` does: surrounding whitespace,
/// a sign, `_` between digits, and with base 0 or 16/8/2 the prefixes.
fn parse_int(text: &str, base: u32) -> Option<i128> {
    let t = text.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let lower = t.to_ascii_lowercase();
    let (base, digits) = match (base, lower.get(..2)) {
        (0 | 16, Some("0x")) => (16, &t[2..]),
        (0 | 8, Some("0o")) => (8, &t[2..]),
        (0 | 2, Some("0b")) => (2, &t[2..]),
        (0, _) => (10, t),
        (b, _) => (b, t),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    let n = i128::from_str_radix(&clean, base).ok()?;
    Some(if neg { -n } else { n })
}

/// Jinja2's `int(default=0, base=10)`.
pub(crate) fn int(
    value: &Value,
    default: Option<Value>,
    base: Option<u32>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let default = match default {
        Some(d) => d,
        None => kwargs
            .get::<Option<Value>>("default")?
            .unwrap_or_else(|| Value::from(0)),
    };
    let base = match base {
        Some(b) => b,
        None => kwargs.get::<Option<u32>>("base")?.unwrap_or(10),
    };
    kwargs.assert_all_used()?;
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "int() of an undefined value",
        ));
    }
    let to_value = |n: i128| match i64::try_from(n) {
        Ok(small) => Value::from(small),
        Err(_) => Value::from(n),
    };
    match value.kind() {
        ValueKind::Bool => Ok(Value::from(i64::from(value.is_true()))),
        ValueKind::Number if value.is_integer() => Ok(value.clone()),
        ValueKind::Number => {
            let x = f64::try_from(value.clone()).unwrap_or(f64::NAN);
            if x.is_finite() {
                Ok(to_value(x.trunc() as i128))
            } else {
                Ok(default)
            }
        }
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default();
            if let Some(n) = parse_int(text, base) {
                return Ok(to_value(n));
            }
            // Jinja2 falls back to int(float(text)).
            match text
                .trim()
                .to_ascii_lowercase()
                .replace('_', "")
                .parse::<f64>()
            {
                Ok(x) if x.is_finite() && text.trim().chars().any(|c| c.is_ascii_digit()) => {
                    Ok(to_value(x.trunc() as i128))
                }
                _ => Ok(default),
            }
        }
        _ => Ok(default),
    }
}

/// Jinja2's `string`: Python's `str()`.
pub(crate) fn string(value: &Value) -> Value {
    if value.kind() == ValueKind::String {
        value.clone()
    } else {
        Value::from(py_str(value))
    }
}

/// Jinja2's `join(d='', attribute=None)`: `d.join(str(x) for x in value)`.
pub(crate) fn join(
    state: &State,
    value: &Value,
    d: Option<&str>,
    attribute: Option<&str>,
) -> Result<Value, Error> {
    let _ = state;
    if value.is_undefined() || value.is_none() {
        return Ok(Value::from(""));
    }
    if let Some(s) = value.as_str() {
        let sep = d.unwrap_or("");
        return Ok(Value::from(
            s.chars()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(sep),
        ));
    }
    let iter = value
        .try_iter()
        .map_err(|_| invalid(format!("cannot join {}", value.kind())))?;
    let mut out = String::new();
    for (idx, item) in iter.enumerate() {
        if idx > 0 {
            out.push_str(d.unwrap_or(""));
        }
        let item = match attribute {
            Some(attr) => attribute_path(&item, attr),
            None => item,
        };
        out.push_str(&py_str(&item));
    }
    Ok(Value::from(out))
}

/// Jinja2's `abs`, which also takes a `timedelta`.
pub(crate) fn abs(value: Value) -> Result<Value, Error> {
    if let Some(td) = value.downcast_object_ref::<TimeDelta>() {
        return TimeDelta::from_micros(td.micros().abs()).map(Value::from_object);
    }
    minijinja::filters::abs(value)
}

/// Jinja2's `center(width=80)`: Python's `str.center`.
pub(crate) fn center(value: &Value, width: Option<usize>) -> Value {
    let text = py_str(value);
    let width = width.unwrap_or(80);
    let len = text.chars().count();
    if len >= width {
        return Value::from(text);
    }
    let pad = width - len;
    // Python puts the odd space on the left when the width is odd.
    let left = pad / 2 + (pad & width & 1);
    let mut out = " ".repeat(left);
    out.push_str(&text);
    out.push_str(&" ".repeat(pad - left));
    Value::from(out)
}

/// Jinja2's `truncate(length=255, killwords=False, end='...', leeway=None)`
/// with positional arguments, on minijinja-contrib's keyword-only filter.
pub(crate) fn truncate(
    state: &mut State,
    value: &Value,
    positional: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let names = ["length", "killwords", "end", "leeway"];
    if positional.len() > names.len() {
        return Err(invalid("truncate() takes at most 4 arguments"));
    }
    let mut items: Vec<(String, Value)> = Vec::new();
    for (name, v) in names.iter().zip(positional.iter()) {
        if kwargs.has(name) {
            return Err(invalid(format!(
                "truncate() got multiple values for argument '{name}'"
            )));
        }
        items.push((name.to_string(), v.clone()));
    }
    for name in kwargs.args() {
        items.push((name.to_string(), kwargs.get::<Value>(name)?));
    }
    minijinja_contrib::filters::truncate(state, value, Kwargs::from_iter(items))
}

/// `item.a.b` for an attribute path `"a.b"` (numbers index sequences).
fn attribute_path(item: &Value, path: &str) -> Value {
    let mut current = item.clone();
    for part in path.split('.') {
        let next = match part.parse::<i64>() {
            Ok(idx) => current.get_item(&Value::from(idx)).ok(),
            Err(_) => current.get_attr(part).ok(),
        };
        current = next.unwrap_or(Value::UNDEFINED);
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_int_reads_like_python() {
        assert_eq!(parse_int(" 42 ", 10), Some(42));
        assert_eq!(parse_int("-1_000", 10), Some(-1000));
        assert_eq!(parse_int("0x1A", 16), Some(26));
        assert_eq!(parse_int("0x1A", 0), Some(26));
        assert_eq!(parse_int("1A", 16), Some(26));
        assert_eq!(parse_int("4.5", 10), None);
        assert_eq!(parse_int("_1", 10), None);
        assert_eq!(parse_int("", 10), None);
    }
}
