//! Argument handling for the Python-style callables offered to templates:
//! positional arguments followed by optional keyword arguments, arity
//! checks, and the error every such check raises. It knows no value type:
//! `str_arg`, whose message names the Python type of a wrong argument,
//! lives with the type names in `pytype.rs`.

use std::borrow::Cow;

use minijinja::value::{Kwargs, Value};
use minijinja::{Error, ErrorKind};

/// An `InvalidOperation` error with a message, as Python's `TypeError` or
/// `ValueError` would report it.
pub(crate) fn invalid(msg: impl Into<Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

/// Splits call arguments into the positional ones and the keyword arguments
/// minijinja passes last.
pub(crate) fn split_args(args: &[Value]) -> Result<(&[Value], Option<Kwargs>), Error> {
    match args.split_last() {
        Some((last, rest)) if last.is_kwargs() => Ok((rest, Some(Kwargs::try_from(last.clone())?))),
        _ => Ok((args, None)),
    }
}

/// The keyword names given in a call.
pub(crate) fn kwarg_names(kwargs: &Kwargs) -> Vec<String> {
    kwargs.args().map(str::to_string).collect()
}

/// One argument by position or keyword; `None` when absent or `none`.
pub(crate) fn arg(
    positional: &[Value],
    kwargs: Option<&Kwargs>,
    idx: usize,
    name: &str,
) -> Result<Option<Value>, Error> {
    let by_name: Option<Value> = match kwargs {
        Some(kw) if kw.has(name) => Some(kw.get(name)?),
        _ => None,
    };
    let value = match (positional.get(idx), by_name) {
        (Some(_), Some(_)) => {
            return Err(invalid(format!(
                "got multiple values for argument '{name}'"
            )));
        }
        (Some(v), None) => Some(v.clone()),
        (None, v) => v,
    };
    Ok(value.filter(|v| !v.is_none() && !v.is_undefined()))
}

/// One optional integer argument by position or keyword.
pub(crate) fn int_arg(
    positional: &[Value],
    kwargs: Option<&Kwargs>,
    idx: usize,
    name: &str,
) -> Result<Option<i64>, Error> {
    match arg(positional, kwargs, idx, name)? {
        Some(v) => i64::try_from(v.clone())
            .map(Some)
            .map_err(|_| invalid(format!("argument '{name}' must be an integer, not {v}"))),
        None => Ok(None),
    }
}

/// Fails on keyword arguments the callable does not know.
pub(crate) fn finish(kwargs: Option<&Kwargs>) -> Result<(), Error> {
    match kwargs {
        Some(kw) => kw.assert_all_used(),
        None => Ok(()),
    }
}

/// Fails when more positional arguments came than the callable takes.
pub(crate) fn at_most(name: &str, positional: &[Value], n: usize) -> Result<(), Error> {
    if positional.len() > n {
        Err(invalid(format!(
            "{name}() takes at most {n} positional arguments ({} given)",
            positional.len()
        )))
    } else {
        Ok(())
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

/// The one string argument of a method such as `strftime(format)`.
pub(crate) fn one_str(method: &str, args: &[Value]) -> Result<String, Error> {
    match args {
        [v] => v
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| invalid(format!("{method}() argument must be str, not {v}"))),
        _ => Err(invalid(format!("{method}() takes exactly one argument"))),
    }
}
