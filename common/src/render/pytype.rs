//! Python's type of a template value: the name error messages give it
//! (`datetime.timedelta`, `NoneType`, `str`), whether it is one of the
//! date and duration objects, and `str_arg`, the string-argument check
//! whose message names the type of a wrong argument.

use minijinja::Error;
use minijinja::value::{Kwargs, Value, ValueKind};

use super::args::{arg, invalid};
use super::datetime::{PyDate, PyDateTime, PyTime};
use super::delta::{RelativeDelta, TimeDelta};

/// Python's type name of a template value, for error messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    if let Some(obj) = v.as_object() {
        if obj.downcast_ref::<TimeDelta>().is_some() {
            return "datetime.timedelta";
        }
        if obj.downcast_ref::<RelativeDelta>().is_some() {
            return "relativedelta";
        }
        if obj.downcast_ref::<PyDateTime>().is_some() {
            return "datetime.datetime";
        }
        if obj.downcast_ref::<PyDate>().is_some() {
            return "datetime.date";
        }
        if obj.downcast_ref::<PyTime>().is_some() {
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

/// Whether a template value is a datetime, date, time, timedelta or
/// relativedelta.
pub(crate) fn is_temporal(v: &Value) -> bool {
    v.as_object().is_some_and(|o| {
        o.downcast_ref::<PyDateTime>().is_some()
            || o.downcast_ref::<PyDate>().is_some()
            || o.downcast_ref::<PyTime>().is_some()
            || o.downcast_ref::<TimeDelta>().is_some()
            || o.downcast_ref::<RelativeDelta>().is_some()
    }) && v.kind() != ValueKind::Undefined
}

/// One required string argument by position or keyword.
pub(crate) fn str_arg(
    positional: &[Value],
    kwargs: Option<&Kwargs>,
    idx: usize,
    name: &str,
) -> Result<String, Error> {
    match arg(positional, kwargs, idx, name)? {
        Some(v) => match v.as_str() {
            Some(s) => Ok(s.to_string()),
            None => Err(invalid(format!(
                "argument '{name}' must be a string, not {}",
                type_name(&v)
            ))),
        },
        None => Err(invalid(format!("missing required argument '{name}'"))),
    }
}
