//! Python printing: values reach templates as Python would hold them and
//! print as Python's `str()` and `repr()` print them.
//!
//! JSON maps and lists become [`PyDict`] and [`PyList`] objects whose
//! `Display` is Python's `repr`, so `{{ x }}`, `~` concatenation, `|string`
//! and `|join` all print `{'a': 1, 'b': [True, None, 'x']}`. Values built
//! inside a template (literals, filter results) are minijinja's own maps and
//! lists: the environment's formatter and the `string`/`join` filters print
//! them the Python way, `~` cannot (see COMPATIBILITY.md).

use std::fmt::{self, Write};
use std::sync::Arc;

use indexmap::IndexMap;
use minijinja::value::{DynObject, Enumerator, Object, ObjectRepr, Value, ValueKind};

use super::datetime::{PyDate, PyDateTime, PyTime};
use super::delta::{RelativeDelta, TimeDelta};
use super::pyuuid::PyUuid;

/// A Python `dict` read from JSON: keys keep their order.
#[derive(Debug, Default, Clone)]
pub(crate) struct PyDict {
    map: IndexMap<Value, Value>,
}

impl PyDict {
    /// A dict of the given items.
    pub(crate) fn new(map: IndexMap<Value, Value>) -> PyDict {
        PyDict { map }
    }

    /// The dict as a template value.
    pub(crate) fn into_value(self) -> Value {
        Value::from_object(self)
    }
}

impl Object for PyDict {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.map.get(key).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.map.keys().cloned().collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.map.len())
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_dict(f, self.map.iter())
    }
}

/// A Python `list` read from JSON.
#[derive(Debug, Default, Clone)]
pub(crate) struct PyList {
    items: Vec<Value>,
}

impl PyList {
    /// A list of the given items.
    pub(crate) fn new(items: Vec<Value>) -> PyList {
        PyList { items }
    }

    /// The list as a template value.
    pub(crate) fn into_value(self) -> Value {
        Value::from_object(self)
    }
}

impl Object for PyList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let idx = key.as_i64()?;
        let len = i64::try_from(self.items.len()).ok()?;
        let idx = if idx < 0 { idx + len } else { idx };
        usize::try_from(idx)
            .ok()
            .and_then(|i| self.items.get(i))
            .cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.items.len())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.items.len())
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_seq(f, "[", "]", self.items.iter().cloned(), false)
    }
}

/// Converts a JSON value into a template value: integers stay integers,
/// maps and lists become [`PyDict`] and [`PyList`].
pub(crate) fn from_json(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => {
            PyList::new(items.iter().map(from_json).collect()).into_value()
        }
        serde_json::Value::Object(map) => PyDict::new(
            map.iter()
                .map(|(k, v)| (Value::from(k.as_str()), from_json(v)))
                .collect(),
        )
        .into_value(),
    }
}

/// Python's `str(value)`.
pub(crate) fn py_str(value: &Value) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = write_str(&mut out, value);
    out
}

/// Writes Python's `str(value)`.
pub(crate) fn write_str<W: Write>(out: &mut W, value: &Value) -> fmt::Result {
    match value.kind() {
        ValueKind::Undefined => Ok(()),
        ValueKind::String => out.write_str(value.as_str().unwrap_or_default()),
        ValueKind::Number if !value.is_integer() => write_float(out, f64_of(value)),
        ValueKind::Map | ValueKind::Seq | ValueKind::Iterable => write_repr(out, value),
        _ => write!(out, "{value}"),
    }
}

/// Writes Python's `repr(value)`.
pub(crate) fn write_repr<W: Write>(out: &mut W, value: &Value) -> fmt::Result {
    match value.kind() {
        ValueKind::Undefined => Ok(()),
        ValueKind::String => write_str_repr(out, value.as_str().unwrap_or_default()),
        ValueKind::Bytes => {
            out.write_str("b")?;
            let text = String::from_utf8_lossy(value.as_bytes().unwrap_or_default()).into_owned();
            write_str_repr(out, &text)
        }
        ValueKind::Number if !value.is_integer() => write_float(out, f64_of(value)),
        _ => match value.as_object() {
            Some(obj) => write_object_repr(out, value, obj),
            None => write!(out, "{value}"),
        },
    }
}

fn write_object_repr<W: Write>(out: &mut W, value: &Value, obj: &DynObject) -> fmt::Result {
    if obj.downcast_ref::<PyDict>().is_some() || obj.downcast_ref::<PyList>().is_some() {
        return write!(out, "{value}");
    }
    if let Some(x) = obj.downcast_ref::<PyDateTime>() {
        return out.write_str(&x.repr());
    }
    if let Some(x) = obj.downcast_ref::<PyDate>() {
        return out.write_str(&x.repr());
    }
    if let Some(x) = obj.downcast_ref::<PyTime>() {
        return out.write_str(&x.repr());
    }
    if let Some(x) = obj.downcast_ref::<TimeDelta>() {
        return out.write_str(&x.repr());
    }
    if let Some(x) = obj.downcast_ref::<RelativeDelta>() {
        return write!(out, "{x}");
    }
    if let Some(x) = obj.downcast_ref::<PyUuid>() {
        return out.write_str(&x.repr());
    }
    if value.is_tuple() {
        let items: Vec<Value> = value.try_iter().map(|i| i.collect()).unwrap_or_default();
        let single = items.len() == 1;
        return write_seq(out, "(", ")", items.into_iter(), single);
    }
    match obj.repr() {
        ObjectRepr::Map => {
            let pairs: Vec<(Value, Value)> = obj
                .try_iter_pairs()
                .map(|i| i.collect())
                .unwrap_or_default();
            write_dict(out, pairs.iter().map(|(k, v)| (k, v)))
        }
        ObjectRepr::Seq | ObjectRepr::Iterable => {
            let items: Vec<Value> = value.try_iter().map(|i| i.collect()).unwrap_or_default();
            write_seq(out, "[", "]", items.into_iter(), false)
        }
        // The other plain objects (match and pattern objects of `re`,
        // classes, modules) print as their repr.
        _ => write!(out, "{value}"),
    }
}

fn write_dict<'a, W: Write>(
    out: &mut W,
    items: impl Iterator<Item = (&'a Value, &'a Value)>,
) -> fmt::Result {
    out.write_str("{")?;
    for (idx, (k, v)) in items.enumerate() {
        if idx > 0 {
            out.write_str(", ")?;
        }
        write_repr(out, k)?;
        out.write_str(": ")?;
        write_repr(out, v)?;
    }
    out.write_str("}")
}

fn write_seq<W: Write>(
    out: &mut W,
    open: &str,
    close: &str,
    items: impl Iterator<Item = Value>,
    trailing_comma: bool,
) -> fmt::Result {
    out.write_str(open)?;
    for (idx, v) in items.enumerate() {
        if idx > 0 {
            out.write_str(", ")?;
        }
        write_repr(out, &v)?;
    }
    if trailing_comma {
        out.write_str(",")?;
    }
    out.write_str(close)
}

fn f64_of(value: &Value) -> f64 {
    f64::try_from(value.clone()).unwrap_or(f64::NAN)
}

/// Python's `repr(str)`: single quotes unless the text holds a single quote
/// and no double quote; backslash escapes for control characters.
pub(crate) fn write_str_repr<W: Write>(out: &mut W, s: &str) -> fmt::Result {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.write_char(quote)?;
    for c in s.chars() {
        match c {
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if c == quote => {
                out.write_char('\\')?;
                out.write_char(c)?;
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(out, "\\x{:02x}", c as u32)?,
            c if is_unprintable(c) => {
                let n = c as u32;
                if n <= 0xff {
                    write!(out, "\\x{n:02x}")?
                } else if n <= 0xffff {
                    write!(out, "\\u{n:04x}")?
                } else {
                    write!(out, "\\U{n:08x}")?
                }
            }
            c => out.write_char(c)?,
        }
    }
    out.write_char(quote)
}

/// The characters Python's `str.isprintable()` rejects that matter in
/// practice: C1 controls, the no-break and zero-width spaces, line and
/// paragraph separators, BOM and surrogates.
fn is_unprintable(c: char) -> bool {
    matches!(c as u32, 0x80..=0xa0 | 0xad | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x206f | 0x3000 | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff)
}

/// Python's `repr(float)`: the shortest text that reads back, with `.0` on
/// whole numbers and exponent notation below 1e-4 and from 1e16.
pub(crate) fn write_float<W: Write>(out: &mut W, x: f64) -> fmt::Result {
    out.write_str(&float_repr(x))
}

/// Python's `repr(float)` as text.
pub(crate) fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.to_string();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    // `{:e}` gives the shortest round-trip digits: "1.5e-5", "1e16".
    let sci = format!("{x:e}");
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    if (-4..16).contains(&exp) {
        let mut s = format!("{x}");
        if !s.contains('.') {
            s.push_str(".0");
        }
        s
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    }
}

/// Options of [`to_json`]: Python's `json.dumps` keywords.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsonOptions {
    /// `sort_keys=True`.
    pub(crate) sort_keys: bool,
    /// `indent=n`.
    pub(crate) indent: Option<usize>,
    /// Jinja2's `htmlsafe_json_dumps`: `<`, `>`, `&`, `'` as `\u00XX`.
    pub(crate) html_safe: bool,
}

/// Python's `json.dumps(value)` (with `ensure_ascii=True`, separators
/// `", "` and `": "`). Datetimes and other objects that Python cannot encode
/// are written as their `str()` text.
pub(crate) fn to_json(value: &Value, opts: JsonOptions) -> Result<String, minijinja::Error> {
    let mut out = String::new();
    write_json(&mut out, value, opts, 0)?;
    Ok(out)
}

fn json_newline(out: &mut String, opts: JsonOptions, depth: usize) {
    if let Some(n) = opts.indent {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', n * depth));
    }
}

fn write_json(
    out: &mut String,
    value: &Value,
    opts: JsonOptions,
    depth: usize,
) -> Result<(), minijinja::Error> {
    if depth > 500 {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            "value nested too deeply for JSON",
        ));
    }
    let item_sep = if opts.indent.is_some() { "," } else { ", " };
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if value.is_integer() {
                out.push_str(&value.to_string());
            } else {
                let x = f64_of(value);
                if x.is_nan() {
                    out.push_str("NaN");
                } else if x.is_infinite() {
                    out.push_str(if x < 0.0 { "-Infinity" } else { "Infinity" });
                } else {
                    out.push_str(&float_repr(x));
                }
            }
        }
        ValueKind::String => write_json_str(out, value.as_str().unwrap_or_default(), opts),
        ValueKind::Map => {
            let mut pairs: Vec<(String, Value)> = value
                .as_object()
                .and_then(|o| o.try_iter_pairs())
                .map(|i| i.map(|(k, v)| (json_key(&k), v)).collect())
                .unwrap_or_default();
            if opts.sort_keys {
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
            }
            if pairs.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (idx, (k, v)) in pairs.iter().enumerate() {
                if idx > 0 {
                    out.push_str(item_sep);
                }
                json_newline(out, opts, depth + 1);
                write_json_str(out, k, opts);
                out.push_str(": ");
                write_json(out, v, opts, depth + 1)?;
            }
            json_newline(out, opts, depth);
            out.push('}');
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter().map(|i| i.collect()).unwrap_or_default();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (idx, v) in items.iter().enumerate() {
                if idx > 0 {
                    out.push_str(item_sep);
                }
                json_newline(out, opts, depth + 1);
                write_json(out, v, opts, depth + 1)?;
            }
            json_newline(out, opts, depth);
            out.push(']');
        }
        _ => write_json_str(out, &py_str(value), opts),
    }
    Ok(())
}

/// Python turns `True`, `None` and numbers used as keys into JSON text.
fn json_key(key: &Value) -> String {
    match key.kind() {
        ValueKind::Bool => if key.is_true() { "true" } else { "false" }.to_string(),
        ValueKind::None => "null".to_string(),
        _ => py_str(key),
    }
}

fn write_json_str(out: &mut String, s: &str, opts: JsonOptions) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\'' if opts.html_safe => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            ' '..='~' => out.push(c),
            c => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn render_python_str_of_json() {
        let v = from_json(&json!({"a": 1, "b": [true, null, "x"], "c": 2.5, "d": 1.0}));
        assert_eq!(
            py_str(&v),
            "{'a': 1, 'b': [True, None, 'x'], 'c': 2.5, 'd': 1.0}"
        );
        assert_eq!(v.to_string(), py_str(&v), "Display is Python repr");
        assert_eq!(py_str(&from_json(&json!("it's"))), "it's");
        assert_eq!(
            py_str(&from_json(&json!(["it's", "say \"hi\"", "a\nb"]))),
            r#"["it's", 'say "hi"', 'a\nb']"#
        );
        assert_eq!(py_str(&from_json(&json!([]))), "[]");
        assert_eq!(py_str(&from_json(&json!({}))), "{}");
        assert_eq!(
            py_str(&from_json(&json!(18446744073709551615u64))),
            "18446744073709551615"
        );
    }

    #[test]
    fn render_python_float_repr() {
        for (x, text) in [
            (1.0, "1.0"),
            (2.5, "2.5"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456789012345.6, "123456789012345.6"),
            (-3.0, "-3.0"),
            (1e300, "1e+300"),
            (f64::INFINITY, "inf"),
            (-0.0, "-0.0"),
        ] {
            assert_eq!(float_repr(x), text, "{x}");
        }
    }

    #[test]
    fn render_python_json_dumps() {
        let v = from_json(&json!({"b": [1, 2.0, "é<"], "a": null, "c": {}}));
        let plain = to_json(&v, JsonOptions::default()).expect("json");
        assert_eq!(plain, r#"{"b": [1, 2.0, "\u00e9<"], "a": null, "c": {}}"#);
        let jinja = to_json(
            &v,
            JsonOptions {
                sort_keys: true,
                html_safe: true,
                indent: None,
            },
        )
        .expect("json");
        assert_eq!(
            jinja,
            r#"{"a": null, "b": [1, 2.0, "\u00e9\u003c"], "c": {}}"#
        );
        let indented = to_json(
            &from_json(&json!({"a": [1]})),
            JsonOptions {
                indent: Some(2),
                ..JsonOptions::default()
            },
        )
        .expect("json");
        assert_eq!(indented, "{\n  \"a\": [\n    1\n  ]\n}");
        assert_eq!(
            to_json(&Value::from("😀"), JsonOptions::default()).expect("json"),
            r#""\ud83d\ude00""#
        );
    }
}
