//! A CSV writer with the rules of Python's `csv.writer` (CPython 3.11), so
//! that SQL results are written byte for byte as the original lava writes
//! them: the dialects `excel`, `excel-tab` and `unix` (only their line
//! terminators matter once delimiter, quote character and quoting are given),
//! the quoting modes `minimal`, `all`, `nonnumeric` and `none`,
//! `doublequote`, `escapechar`, and Python's errors ("need to escape, but no
//! escapechar set", "single empty field record must be quoted").

use std::io::Write;

/// When fields are quoted (Python's `csv.QUOTE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quoting {
    /// Only fields that need it.
    Minimal,
    /// Every field.
    All,
    /// Every field that is not a number (NULLs included).
    NonNumeric,
    /// No field; special characters are escaped.
    None,
}

impl Quoting {
    /// `minimal`, `all`, `nonnumeric` or `none`, in any case.
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "MINIMAL" => Some(Self::Minimal),
            "ALL" => Some(Self::All),
            "NONNUMERIC" => Some(Self::NonNumeric),
            "NONE" => Some(Self::None),
            _ => None,
        }
    }
}

/// A CSV setting Python's writer refuses, with Python's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CsvError(pub String);

/// The writer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialect {
    /// Field separator.
    pub delimiter: char,
    /// Quote character; `None` only with [`Quoting::None`].
    pub quotechar: Option<char>,
    /// Escape character.
    pub escapechar: Option<char>,
    /// Double a quote character inside a quoted field.
    pub doublequote: bool,
    /// When to quote.
    pub quoting: Quoting,
    /// Row terminator: `\r\n` (`excel`, `excel-tab`) or `\n` (`unix`).
    pub lineterminator: &'static str,
}

impl Dialect {
    /// The settings, checked as Python checks them; `dialect` is the base
    /// dialect's name.
    pub fn new(
        dialect: &str,
        delimiter: char,
        quotechar: Option<char>,
        escapechar: Option<char>,
        doublequote: bool,
        quoting: Quoting,
    ) -> Result<Self, CsvError> {
        let lineterminator = match dialect {
            "excel" | "excel-tab" => "\r\n",
            "unix" => "\n",
            _ => return Err(CsvError("unknown dialect".into())),
        };
        if quotechar.is_none() && quoting != Quoting::None {
            return Err(CsvError("quotechar must be set if quoting enabled".into()));
        }
        Ok(Self {
            delimiter,
            quotechar,
            escapechar,
            doublequote,
            quoting,
            lineterminator,
        })
    }

    /// A character one of the settings needs: exactly one character, or
    /// Python's `"<name>" must be a 1-character string`.
    pub fn one_char(name: &str, text: &str) -> Result<char, CsvError> {
        let mut chars = text.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(c),
            _ => Err(CsvError(format!("\"{name}\" must be a 1-character string"))),
        }
    }
}

/// One field: its text as Python's `str()` gives it (`None` for NULL) and
/// whether the value is a number (for [`Quoting::NonNumeric`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The text; `None` for NULL.
    pub text: Option<String>,
    /// An int, float, decimal or boolean in Python.
    pub numeric: bool,
}

impl Field {
    /// A text field.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            numeric: false,
        }
    }

    /// A number (or boolean) field.
    pub fn number(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            numeric: true,
        }
    }

    /// NULL.
    pub fn null() -> Self {
        Self {
            text: None,
            numeric: false,
        }
    }
}

impl Dialect {
    /// Appends one field to `rec`; `first` when no field precedes it.
    fn append(
        &self,
        rec: &mut String,
        first: bool,
        text: Option<&str>,
        mut quoted: bool,
    ) -> Result<(), CsvError> {
        if !first {
            rec.push(self.delimiter);
        }
        let mut body = String::new();
        for c in text.unwrap_or_default().chars() {
            let special = c == self.delimiter
                || Some(c) == self.escapechar
                || Some(c) == self.quotechar
                || self.lineterminator.contains(c);
            if special {
                let mut want_escape = false;
                if self.quoting == Quoting::None {
                    want_escape = true;
                } else {
                    if Some(c) == self.quotechar {
                        if self.doublequote {
                            body.push(c);
                        } else {
                            want_escape = true;
                        }
                    } else if Some(c) == self.escapechar {
                        want_escape = true;
                    }
                    if !want_escape {
                        quoted = true;
                    }
                }
                if want_escape {
                    let Some(esc) = self.escapechar else {
                        return Err(CsvError("need to escape, but no escapechar set".into()));
                    };
                    body.push(esc);
                }
            }
            body.push(c);
        }
        let q = self.quotechar.filter(|_| quoted);
        if let Some(q) = q {
            rec.push(q);
        }
        rec.push_str(&body);
        if let Some(q) = q {
            rec.push(q);
        }
        Ok(())
    }

    /// One row as Python's `writerow` writes it, terminator included.
    pub fn row(&self, fields: &[Field]) -> Result<String, CsvError> {
        let mut rec = String::new();
        for (n, f) in fields.iter().enumerate() {
            let quoted = match self.quoting {
                Quoting::NonNumeric => !f.numeric,
                Quoting::All => true,
                Quoting::Minimal | Quoting::None => false,
            };
            self.append(&mut rec, n == 0, f.text.as_deref(), quoted)?;
        }
        if !fields.is_empty() && rec.is_empty() {
            if self.quoting == Quoting::None {
                return Err(CsvError("single empty field record must be quoted".into()));
            }
            self.append(&mut rec, true, None, true)?;
        }
        rec.push_str(self.lineterminator);
        Ok(rec)
    }

    /// Writes one row to `out`.
    pub fn write_row(&self, out: &mut impl Write, fields: &[Field]) -> std::io::Result<()> {
        let row = self.row(fields).map_err(std::io::Error::other)?;
        out.write_all(row.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(quoting: Quoting, doublequote: bool, escapechar: Option<char>) -> Dialect {
        Dialect::new("excel", ',', Some('"'), escapechar, doublequote, quoting)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn python_rules() {
        let nn = d(Quoting::NonNumeric, true, None);
        assert_eq!(
            nn.row(&[
                Field::null(),
                Field::number("1"),
                Field::text("a"),
                Field::number("True"),
                Field::number("1.50")
            ]),
            Ok("\"\",1,\"a\",True,1.50\r\n".into())
        );
        assert_eq!(
            d(Quoting::Minimal, true, None).row(&[Field::null()]),
            Ok("\"\"\r\n".into())
        );
        assert_eq!(
            d(Quoting::None, true, None)
                .row(&[Field::text("")])
                .map_err(|e| e.0),
            Err("single empty field record must be quoted".into())
        );
        assert_eq!(
            d(Quoting::Minimal, false, None)
                .row(&[Field::text("a\"b")])
                .map_err(|e| e.0),
            Err("need to escape, but no escapechar set".into())
        );
        assert_eq!(
            d(Quoting::Minimal, false, Some('\\')).row(&[Field::text("a\"b\\")]),
            Ok("a\\\"b\\\\\r\n".into())
        );
        assert_eq!(
            d(Quoting::Minimal, false, Some('\\')).row(&[Field::text("a\\b,c")]),
            Ok("\"a\\\\b,c\"\r\n".into())
        );
        assert_eq!(
            d(Quoting::All, true, Some('\\')).row(&[Field::text("a\"b"), Field::null()]),
            Ok("\"a\"\"b\",\"\"\r\n".into())
        );
        let unix = Dialect::new("unix", ',', Some('"'), None, true, Quoting::Minimal)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            unix.row(&[Field::text("a\rb"), Field::text("")]),
            Ok("a\rb,\n".into())
        );
    }
}
