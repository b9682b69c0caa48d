//! The `utils` object of lava templates: how Python's datetime classes,
//! dateutil, `uuid`, `os.path` and `re` are laid out under it, and the
//! small helpers that live nowhere else (S3 URLs, `os.path`).

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Tuple, Value};
use minijinja::{Error, ErrorKind, State};

use super::args::{finish, invalid, split_args};
use super::classes::{
    ClassKind, DateClass, parse_iso, parse_lenient, relativedelta_class, timedelta_class,
};
use super::pytype::str_arg;
use super::pyuuid::uuid4;
use super::regex::{self as re, ReFn};

/// A function offered to templates.
type NativeFn = fn(&[Value]) -> Result<Value, Error>;

/// A named native function value.
#[derive(Debug)]
pub(crate) struct Func {
    name: &'static str,
    f: NativeFn,
}

impl Object for Func {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn call(self: &Arc<Self>, _state: &mut State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        (self.f)(args)
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<function {}>", self.name)
    }
}

fn func(name: &'static str, f: NativeFn) -> (&'static str, Value) {
    (name, Value::from_object(Func { name, f }))
}

/// A Python module (or the `utils` dict): named members, callable as methods.
#[derive(Debug)]
pub(crate) struct Module {
    name: &'static str,
    /// `utils` itself is a dict in the original; the rest are modules.
    is_dict: bool,
    members: Vec<(&'static str, Value)>,
}

impl Module {
    fn member(&self, name: &str) -> Option<&Value> {
        self.members
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
}

impl Object for Module {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        if self.is_dict {
            ObjectRepr::Map
        } else {
            ObjectRepr::Plain
        }
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.member(key.as_str()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        if self.is_dict {
            Enumerator::Values(self.members.iter().map(|(n, _)| Value::from(*n)).collect())
        } else {
            Enumerator::NonEnumerable
        }
    }

    fn call_method(
        self: &Arc<Self>,
        state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match self.member(method) {
            Some(v) => match v.downcast_object_ref::<Func>() {
                Some(func) => (func.f)(args),
                None => v.call(state, args),
            },
            None => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_dict {
            f.write_str("{")?;
            for (idx, (name, value)) in self.members.iter().enumerate() {
                if idx > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "'{name}': {value}")?;
            }
            f.write_str("}")
        } else {
            write!(f, "<module '{}'>", self.name)
        }
    }
}

fn module(name: &'static str, members: Vec<(&'static str, Value)>) -> Value {
    Value::from_object(Module {
        name,
        is_dict: false,
        members,
    })
}

/// Builds the `utils` value.
pub(crate) fn utils() -> Value {
    let parser = module(
        "dateutil.parser",
        vec![func("parse", parse_lenient), func("isoparse", parse_iso)],
    );
    let dateutil = module(
        "dateutil",
        vec![
            (
                "relativedelta",
                module(
                    "dateutil.relativedelta",
                    vec![("relativedelta", relativedelta_class())],
                ),
            ),
            ("parser", parser.clone()),
        ],
    );
    let path = module(
        "posixpath",
        vec![
            func("basename", path_basename),
            func("dirname", path_dirname),
            func("join", path_join),
            func("splitext", path_splitext),
            func("exists", path_exists),
            func("isfile", path_isfile),
            func("isdir", path_isdir),
            func("isabs", path_isabs),
        ],
    );
    let re_module = module(
        "re",
        vec![
            func("search", |a| re::call_module(ReFn::Search, a)),
            func("match", |a| re::call_module(ReFn::Match, a)),
            func("fullmatch", |a| re::call_module(ReFn::FullMatch, a)),
            func("sub", |a| re::call_module(ReFn::Sub, a)),
            func("findall", |a| re::call_module(ReFn::FindAll, a)),
            func("split", |a| re::call_module(ReFn::Split, a)),
            func("compile", re::compile_pattern),
            func("escape", re::escape),
            ("I", Value::from(re::IGNORECASE)),
            ("IGNORECASE", Value::from(re::IGNORECASE)),
            ("M", Value::from(re::MULTILINE)),
            ("MULTILINE", Value::from(re::MULTILINE)),
            ("S", Value::from(re::DOTALL)),
            ("DOTALL", Value::from(re::DOTALL)),
            ("X", Value::from(re::VERBOSE)),
            ("VERBOSE", Value::from(re::VERBOSE)),
            ("A", Value::from(re::ASCII)),
            ("ASCII", Value::from(re::ASCII)),
            ("U", Value::from(re::UNICODE)),
            ("UNICODE", Value::from(re::UNICODE)),
        ],
    );
    Value::from_object(Module {
        name: "utils",
        is_dict: true,
        members: vec![
            ("timedelta", timedelta_class()),
            (
                "datetime",
                Value::from_object(DateClass(ClassKind::DateTime)),
            ),
            ("date", Value::from_object(DateClass(ClassKind::Date))),
            ("time", Value::from_object(DateClass(ClassKind::Time))),
            ("dateutil", dateutil),
            ("parsedate", parser),
            func("s3bucket", s3bucket),
            func("s3key", s3key),
            func("uuid", uuid4),
            ("path", path),
            ("re", re_module),
        ],
    })
}

/// Splits an S3 URL into bucket and key. With the local backend,
/// `s3_payloads`/`s3_temp` are `file://` URLs and reach templates as such:
/// one has no bucket and its path as key.
pub(crate) fn split_s3(url: &str) -> (&str, &str) {
    if let Some(path) = url.strip_prefix("file://") {
        return ("", path);
    }
    let rest = url
        .strip_prefix("s3://")
        .or_else(|| url.strip_prefix("s3:"))
        .unwrap_or(url)
        .trim_matches('/');
    match rest.split_once('/') {
        Some((bucket, key)) => (bucket, key.trim_matches('/')),
        None => (rest, ""),
    }
}

fn one_text(name: &str, args: &[Value]) -> Result<String, Error> {
    let (positional, kwargs) = split_args(args)?;
    let text = str_arg(positional, kwargs.as_ref(), 0, name)?;
    finish(kwargs.as_ref())?;
    if positional.len() > 1 {
        return Err(invalid("takes exactly one argument"));
    }
    Ok(text)
}

fn s3bucket(args: &[Value]) -> Result<Value, Error> {
    let url = one_text("url", args)?;
    Ok(Value::from(split_s3(&url).0))
}

fn s3key(args: &[Value]) -> Result<Value, Error> {
    let url = one_text("url", args)?;
    Ok(Value::from(split_s3(&url).1))
}

fn path_basename(args: &[Value]) -> Result<Value, Error> {
    let p = one_text("p", args)?;
    Ok(Value::from(p.rsplit('/').next().unwrap_or_default()))
}

fn path_dirname(args: &[Value]) -> Result<Value, Error> {
    let p = one_text("p", args)?;
    let cut = p.rfind('/').map_or(0, |i| i + 1);
    let head = &p[..cut];
    let head = if !head.is_empty() && !head.chars().all(|c| c == '/') {
        head.trim_end_matches('/')
    } else {
        head
    };
    Ok(Value::from(head))
}

fn path_join(args: &[Value]) -> Result<Value, Error> {
    let (positional, kwargs) = split_args(args)?;
    finish(kwargs.as_ref())?;
    let mut parts = Vec::with_capacity(positional.len());
    for (idx, v) in positional.iter().enumerate() {
        parts.push(
            str_arg(positional, None, idx, "path")
                .map_err(|_| invalid(format!("join() argument must be str, not {v}")))?,
        );
    }
    let Some((first, rest)) = parts.split_first() else {
        return Err(invalid("join() missing required argument 'a'"));
    };
    let mut path = first.clone();
    for b in rest {
        if b.starts_with('/') {
            path = b.clone();
        } else if path.is_empty() || path.ends_with('/') {
            path.push_str(b);
        } else {
            path.push('/');
            path.push_str(b);
        }
    }
    Ok(Value::from(path))
}

fn path_splitext(args: &[Value]) -> Result<Value, Error> {
    let p = one_text("p", args)?;
    let sep = p.rfind('/').map_or(0, |i| i + 1);
    let (root, ext) = match p.rfind('.') {
        Some(dot) if dot >= sep && p[sep..dot].chars().any(|c| c != '.') => p.split_at(dot),
        _ => (p.as_str(), ""),
    };
    Ok(Value::from(Tuple::from(vec![
        Value::from(root),
        Value::from(ext),
    ])))
}

fn path_exists(args: &[Value]) -> Result<Value, Error> {
    let p = one_text("path", args)?;
    Ok(Value::from(std::path::Path::new(&p).exists()))
}

fn path_isfile(args: &[Value]) -> Result<Value, Error> {
    let p = one_text("path", args)?;
    Ok(Value::from(std::path::Path::new(&p).is_file()))
}

fn path_isdir(args: &[Value]) -> Result<Value, Error> {
    let p = one_text("path", args)?;
    Ok(Value::from(std::path::Path::new(&p).is_dir()))
}

fn path_isabs(args: &[Value]) -> Result<Value, Error> {
    let p = one_text("s", args)?;
    Ok(Value::from(p.starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_s3_split_rules() {
        for (url, bucket, key) in [
            ("s3://b/k/x", "b", "k/x"),
            ("s3:b/k/x/", "b", "k/x"),
            ("s3:///b//k/", "b", "k"),
            ("s3://b", "b", ""),
            ("b/k", "b", "k"),
            ("", "", ""),
            ("file:///abs/dir/x", "", "/abs/dir/x"),
        ] {
            assert_eq!(split_s3(url), (bucket, key), "{url}");
        }
    }

    fn call(f: NativeFn, args: &[&str]) -> String {
        let args: Vec<Value> = args.iter().map(|a| Value::from(*a)).collect();
        super::super::python::py_str(&f(&args).expect("call"))
    }

    #[test]
    fn render_os_path_like_python() {
        assert_eq!(call(path_basename, &["a/b/c.txt"]), "c.txt");
        assert_eq!(call(path_basename, &["a/b/"]), "");
        assert_eq!(call(path_dirname, &["a/b/c.txt"]), "a/b");
        assert_eq!(call(path_dirname, &["/a"]), "/");
        assert_eq!(call(path_dirname, &["c.txt"]), "");
        assert_eq!(call(path_join, &["a", "b", "c"]), "a/b/c");
        assert_eq!(call(path_join, &["a/", "/b", "c"]), "/b/c");
        assert_eq!(call(path_join, &["", "b"]), "b");
        assert_eq!(call(path_splitext, &["a/b.tar.gz"]), "('a/b.tar', '.gz')");
        assert_eq!(call(path_splitext, &[".bashrc"]), "('.bashrc', '')");
        assert_eq!(call(path_splitext, &["a.d/x"]), "('a.d/x', '')");
        assert_eq!(call(path_splitext, &["a/..x.y"]), "('a/..x', '.y')");
        assert_eq!(call(path_exists, &["/"]), "True");
        assert_eq!(call(path_exists, &["/no/such/path/here"]), "False");
    }
}
