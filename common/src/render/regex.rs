//! `utils.re`: Python's `re` module on the `regex` crate, with match
//! objects offering `.group(n)`, `.groups()`, `.groupdict()`, `.start()`,
//! `.end()` and `.span()`.
//!
//! Patterns are translated only where Python and the `regex` crate spell
//! the same thing differently (`\Z`); look-around and back-references are
//! not supported by the `regex` crate and fail to compile.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Kwargs, Object, ObjectRepr, Tuple, Value};
use minijinja::{Error, ErrorKind, State};
use regex::{Captures, Regex, RegexBuilder};

use super::args::{arg, finish, int_arg, invalid, split_args};
use super::python::{PyDict, write_str_repr};
use super::pytype::str_arg;

/// `re.IGNORECASE`.
pub(crate) const IGNORECASE: i64 = 2;
/// `re.MULTILINE`.
pub(crate) const MULTILINE: i64 = 8;
/// `re.DOTALL`.
pub(crate) const DOTALL: i64 = 16;
/// `re.UNICODE` (the default; accepted and ignored).
pub(crate) const UNICODE: i64 = 32;
/// `re.VERBOSE`.
pub(crate) const VERBOSE: i64 = 64;
/// `re.ASCII`.
pub(crate) const ASCII: i64 = 256;

/// How a pattern is anchored for `search`, `match` and `fullmatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    None,
    Start,
    Full,
}

/// Translates Python pattern syntax the `regex` crate spells differently.
fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('Z') => out.push_str("\\z"),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn compile(pattern: &str, flags: i64, anchor: Anchor) -> Result<Regex, Error> {
    let body = translate(pattern);
    let verbose = flags & VERBOSE != 0;
    // In verbose mode a trailing comment would swallow the closing group.
    let nl = if verbose { "\n" } else { "" };
    let full = match anchor {
        Anchor::None => body,
        Anchor::Start => format!("\\A(?:{body}{nl})"),
        Anchor::Full => format!("\\A(?:{body}{nl})\\z"),
    };
    RegexBuilder::new(&full)
        .case_insensitive(flags & IGNORECASE != 0)
        .multi_line(flags & MULTILINE != 0)
        .dot_matches_new_line(flags & DOTALL != 0)
        .ignore_whitespace(verbose)
        .unicode(flags & ASCII == 0)
        .build()
        .map_err(|e| invalid(format!("bad regular expression {pattern:?}: {e}")))
}

/// A compiled pattern: the result of `utils.re.compile`.
#[derive(Debug)]
pub(crate) struct PyPattern {
    pattern: String,
    flags: i64,
    search: Regex,
}

/// Python's `re.Match`.
#[derive(Debug)]
pub(crate) struct PyMatch {
    text: Arc<str>,
    /// Byte ranges of each group; `None` when the group did not take part.
    groups: Vec<Option<(usize, usize)>>,
    names: Vec<Option<String>>,
}

impl PyMatch {
    fn new(text: &Arc<str>, caps: &Captures<'_>, re: &Regex) -> PyMatch {
        PyMatch {
            text: Arc::clone(text),
            groups: (0..caps.len())
                .map(|i| caps.get(i).map(|m| (m.start(), m.end())))
                .collect(),
            names: re.capture_names().map(|n| n.map(str::to_string)).collect(),
        }
    }

    fn index_of(&self, key: &Value) -> Result<usize, Error> {
        if let Some(name) = key.as_str() {
            return self
                .names
                .iter()
                .position(|n| n.as_deref() == Some(name))
                .ok_or_else(|| invalid("IndexError: no such group"));
        }
        key.as_usize()
            .filter(|i| *i < self.groups.len())
            .ok_or_else(|| invalid("IndexError: no such group"))
    }

    fn group_value(&self, idx: usize, default: &Value) -> Value {
        match self.groups.get(idx).copied().flatten() {
            Some((s, e)) => Value::from(&self.text[s..e]),
            None => default.clone(),
        }
    }

    /// A byte offset as a character offset, as Python counts.
    fn char_pos(&self, byte: usize) -> usize {
        self.text[..byte].chars().count()
    }

    fn span_of(&self, idx: usize) -> (i64, i64) {
        match self.groups.get(idx).copied().flatten() {
            Some((s, e)) => (self.char_pos(s) as i64, self.char_pos(e) as i64),
            None => (-1, -1),
        }
    }
}

impl fmt::Display for PyMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, e) = self.span_of(0);
        write!(f, "<re.Match object; span=({s}, {e}), match=")?;
        let matched = self.group_value(0, &Value::from(""));
        write_str_repr(f, matched.as_str().unwrap_or_default())?;
        f.write_str(">")
    }
}

impl Object for PyMatch {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "string" => Some(Value::from(&*self.text)),
            "lastindex" => Some(
                self.groups
                    .iter()
                    .enumerate()
                    .skip(1)
                    .filter(|(_, g)| g.is_some())
                    .max_by_key(|(_, g)| g.map(|(_, e)| e))
                    .map_or(Value::from(()), |(i, _)| Value::from(i)),
            ),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let none = Value::from(());
        match method {
            "group" => match args {
                [] => Ok(self.group_value(0, &none)),
                [one] => Ok(self.group_value(self.index_of(one)?, &none)),
                many => {
                    let values = many
                        .iter()
                        .map(|k| Ok(self.group_value(self.index_of(k)?, &none)))
                        .collect::<Result<Vec<_>, Error>>()?;
                    Ok(Value::from(Tuple::from(values)))
                }
            },
            "groups" => {
                let (positional, kwargs) = split_args(args)?;
                let default = arg(positional, kwargs.as_ref(), 0, "default")?.unwrap_or(none);
                finish(kwargs.as_ref())?;
                Ok(Value::from(Tuple::from(
                    (1..self.groups.len())
                        .map(|i| self.group_value(i, &default))
                        .collect::<Vec<_>>(),
                )))
            }
            "groupdict" => {
                let (positional, kwargs) = split_args(args)?;
                let default = arg(positional, kwargs.as_ref(), 0, "default")?.unwrap_or(none);
                finish(kwargs.as_ref())?;
                let map = self
                    .names
                    .iter()
                    .enumerate()
                    .filter_map(|(i, n)| {
                        n.as_ref()
                            .map(|n| (Value::from(n.as_str()), self.group_value(i, &default)))
                    })
                    .collect();
                Ok(PyDict::new(map).into_value())
            }
            "start" | "end" | "span" => {
                let idx = match args.first() {
                    Some(k) => self.index_of(k)?,
                    None => 0,
                };
                let (s, e) = self.span_of(idx);
                Ok(match method {
                    "start" => Value::from(s),
                    "end" => Value::from(e),
                    _ => Value::from(Tuple::from(vec![Value::from(s), Value::from(e)])),
                })
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_ref(), f)
    }
}

/// The `re` functions that take a pattern first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReFn {
    /// `re.search`.
    Search,
    /// `re.match`.
    Match,
    /// `re.fullmatch`.
    FullMatch,
    /// `re.sub`.
    Sub,
    /// `re.findall`.
    FindAll,
    /// `re.split`.
    Split,
}

impl ReFn {
    /// The function of a method name.
    pub(crate) fn from_name(name: &str) -> Option<ReFn> {
        Some(match name {
            "search" => ReFn::Search,
            "match" => ReFn::Match,
            "fullmatch" => ReFn::FullMatch,
            "sub" => ReFn::Sub,
            "findall" => ReFn::FindAll,
            "split" => ReFn::Split,
            _ => return None,
        })
    }
}

/// Calls `re.<f>(pattern, ...)`.
pub(crate) fn call_module(f: ReFn, args: &[Value]) -> Result<Value, Error> {
    let (positional, kwargs) = split_args(args)?;
    let kw = kwargs.as_ref();
    let pattern = str_arg(positional, kw, 0, "pattern")?;
    // `flags` follows the function's own arguments.
    let flags_idx = match f {
        ReFn::Sub => 4,
        ReFn::Split => 3,
        _ => 2,
    };
    let flags = int_arg(positional, kw, flags_idx, "flags")?.unwrap_or(0);
    if positional.len() > flags_idx + 1 {
        return Err(invalid(format!(
            "too many positional arguments ({})",
            positional.len()
        )));
    }
    let end = positional.len().min(flags_idx);
    let rest = positional.get(1..end).unwrap_or_default();
    run(f, &pattern, flags, rest, kw)
}

fn run(
    f: ReFn,
    pattern: &str,
    flags: i64,
    positional: &[Value],
    kw: Option<&Kwargs>,
) -> Result<Value, Error> {
    match f {
        ReFn::Search | ReFn::Match | ReFn::FullMatch => {
            let text = str_arg(positional, kw, 0, "string")?;
            finish(kw)?;
            let anchor = match f {
                ReFn::Search => Anchor::None,
                ReFn::Match => Anchor::Start,
                _ => Anchor::Full,
            };
            let re = compile(pattern, flags, anchor)?;
            let text: Arc<str> = Arc::from(text.as_str());
            Ok(match re.captures(&text) {
                Some(caps) => Value::from_object(PyMatch::new(&text, &caps, &re)),
                None => Value::from(()),
            })
        }
        ReFn::Sub => {
            let repl = str_arg(positional, kw, 0, "repl")?;
            let text = str_arg(positional, kw, 1, "string")?;
            let count = int_arg(positional, kw, 2, "count")?.unwrap_or(0);
            finish(kw)?;
            let re = compile(pattern, flags, Anchor::None)?;
            let template = parse_repl(&repl, &re)?;
            let mut out = String::with_capacity(text.len());
            let mut last = 0;
            for (n, caps) in py_matches(&re, &text).into_iter().enumerate() {
                if count > 0 && n as i64 >= count {
                    break;
                }
                let Some(m) = caps.get(0) else { continue };
                out.push_str(&text[last..m.start()]);
                for piece in &template {
                    match piece {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Group(g) => {
                            if let Some(gm) = caps.get(*g) {
                                out.push_str(gm.as_str());
                            }
                        }
                    }
                }
                last = m.end();
            }
            out.push_str(&text[last..]);
            Ok(Value::from(out))
        }
        ReFn::FindAll => {
            let text = str_arg(positional, kw, 0, "string")?;
            finish(kw)?;
            let re = compile(pattern, flags, Anchor::None)?;
            let ngroups = re.captures_len() - 1;
            let found = py_matches(&re, &text)
                .into_iter()
                .map(|caps| {
                    let g = |i: usize| Value::from(caps.get(i).map_or("", |m| m.as_str()));
                    match ngroups {
                        0 => g(0),
                        1 => g(1),
                        n => Value::from(Tuple::from((1..=n).map(g).collect::<Vec<_>>())),
                    }
                })
                .collect::<Vec<_>>();
            Ok(Value::from(found))
        }
        ReFn::Split => {
            let text = str_arg(positional, kw, 0, "string")?;
            let maxsplit = int_arg(positional, kw, 1, "maxsplit")?.unwrap_or(0);
            finish(kw)?;
            let re = compile(pattern, flags, Anchor::None)?;
            let mut out = Vec::new();
            let mut last = 0;
            for (n, caps) in py_matches(&re, &text).into_iter().enumerate() {
                if maxsplit > 0 && n as i64 >= maxsplit {
                    break;
                }
                let Some(m) = caps.get(0) else { continue };
                out.push(Value::from(&text[last..m.start()]));
                for i in 1..caps.len() {
                    out.push(
                        caps.get(i)
                            .map_or(Value::from(()), |g| Value::from(g.as_str())),
                    );
                }
                last = m.end();
            }
            out.push(Value::from(&text[last..]));
            Ok(Value::from(out))
        }
    }
}

/// All matches as Python 3.7+ finds them: an empty match is allowed right
/// after a non-empty one, but not twice at the same place.
fn py_matches<'t>(re: &Regex, text: &'t str) -> Vec<Captures<'t>> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut last_empty_at = None;
    while pos <= text.len() {
        let Some(caps) = re.captures_at(text, pos) else {
            break;
        };
        let Some(m) = caps.get(0) else { break };
        if m.is_empty() && last_empty_at == Some(m.start()) {
            // Step over one character and search again.
            match text[m.start()..].chars().next() {
                Some(c) => pos = m.start() + c.len_utf8(),
                None => break,
            }
            continue;
        }
        let (start, end) = (m.start(), m.end());
        out.push(caps);
        if start == end {
            last_empty_at = Some(end);
        } else {
            last_empty_at = None;
        }
        pos = end;
    }
    out
}

/// A piece of a `re.sub` replacement template.
#[derive(Debug)]
enum Piece {
    Text(String),
    Group(usize),
}

/// Reads Python's replacement syntax: `\1`, `\g<1>`, `\g<name>`, and the
/// escapes `\n`, `\t`, `\\`.
fn parse_repl(repl: &str, re: &Regex) -> Result<Vec<Piece>, Error> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = repl.chars().peekable();
    let ngroups = re.captures_len();
    let bad_group = |g: &str| invalid(format!("invalid group reference {g}"));
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        let group = match chars.next() {
            Some(d @ '0'..='9') => {
                let mut num = d.to_string();
                if let Some(&d2 @ '0'..='9') = chars.peek() {
                    num.push(d2);
                    chars.next();
                }
                let g: usize = num.parse().map_err(|_| bad_group(&num))?;
                if g == 0 || g >= ngroups {
                    return Err(bad_group(&num));
                }
                Some(g)
            }
            Some('g') => {
                if chars.next() != Some('<') {
                    return Err(invalid("missing < in group reference"));
                }
                let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                let g = match name.parse::<usize>() {
                    Ok(g) if g < ngroups => g,
                    Ok(_) => return Err(bad_group(&name)),
                    Err(_) => re
                        .capture_names()
                        .position(|n| n == Some(name.as_str()))
                        .ok_or_else(|| invalid(format!("unknown group name '{name}'")))?,
                };
                Some(g)
            }
            Some('n') => {
                text.push('\n');
                None
            }
            Some('t') => {
                text.push('\t');
                None
            }
            Some('r') => {
                text.push('\r');
                None
            }
            Some('\\') => {
                text.push('\\');
                None
            }
            Some(other) if other.is_ascii_alphabetic() => {
                return Err(invalid(format!("bad escape \\{other}")));
            }
            Some(other) => {
                text.push('\\');
                text.push(other);
                None
            }
            None => {
                text.push('\\');
                None
            }
        };
        if let Some(g) = group {
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Group(g));
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// `utils.re.compile(pattern, flags=0)`.
pub(crate) fn compile_pattern(args: &[Value]) -> Result<Value, Error> {
    let (positional, kwargs) = split_args(args)?;
    let kw = kwargs.as_ref();
    let pattern = str_arg(positional, kw, 0, "pattern")?;
    let flags = int_arg(positional, kw, 1, "flags")?.unwrap_or(0);
    finish(kw)?;
    let search = compile(&pattern, flags, Anchor::None)?;
    Ok(Value::from_object(PyPattern {
        pattern,
        flags,
        search,
    }))
}

/// `utils.re.escape(text)`: Python escapes every character that is not
/// alphanumeric or `_`.
pub(crate) fn escape(args: &[Value]) -> Result<Value, Error> {
    let (positional, kwargs) = split_args(args)?;
    let text = str_arg(positional, kwargs.as_ref(), 0, "pattern")?;
    finish(kwargs.as_ref())?;
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if !(c.is_alphanumeric() || c == '_') && c.is_ascii() {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(Value::from(out))
}

impl Object for PyPattern {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "pattern" => Some(Value::from(self.pattern.as_str())),
            "flags" => Some(Value::from(self.flags | UNICODE)),
            "groups" => Some(Value::from(self.search.captures_len() - 1)),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let f = ReFn::from_name(method).ok_or_else(|| Error::from(ErrorKind::UnknownMethod))?;
        let (positional, kwargs) = split_args(args)?;
        run(f, &self.pattern, self.flags, positional, kwargs.as_ref())
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("re.compile(")?;
        write_str_repr(f, &self.pattern)?;
        f.write_str(")")
    }
}
