//! SQL statement splitting with the statement boundaries of Python's
//! `sqlparse.split` (0.5), which the original lava uses for `sql`, `sqli`
//! and `sqlv`: `;` ends a statement outside quotes, comments, dollar-quoted
//! bodies, square-bracket names, parentheses and `BEGIN … END` blocks of
//! `CREATE` statements; a comment on the line of the `;` stays with the
//! statement before it; each statement is trimmed; nothing but whitespace
//! makes no statement.
//!
//! The lexer reproduces the order and reach of sqlparse's token rules as
//! far as they decide a boundary (strings, comments, names, the keywords
//! the splitter looks at); tokens that cannot contain or form a boundary
//! are not classified further.

/// What the splitter needs to know of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One whitespace character other than a line break.
    Space,
    /// `\r\n`, `\r` or `\n`.
    Newline,
    /// `-- …` or `# …` up to and including the line break.
    LineComment,
    /// `/* … */`.
    BlockComment,
    /// `;`, `(`, `)` and other punctuation.
    Punct,
    /// A keyword (sqlparse `Keyword` or one of its sub-types); `ddl` for
    /// `CREATE [OR REPLACE]`, `exact` when the type is plain `Keyword`.
    Keyword { ddl: bool, exact: bool },
    /// A name (sqlparse `Name`).
    Name,
    /// Anything else (strings, numbers, operators, hints, placeholders).
    Other,
}

/// Python's `\s` for text patterns.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `\w` for text patterns.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// sqlparse's `[A-ZÀ-Ü]` under `IGNORECASE`.
fn is_letter(c: char) -> bool {
    c.is_ascii_alphabetic()
        || ('\u{c0}'..='\u{dc}').contains(&c)
        || (('\u{e0}'..='\u{fc}').contains(&c) && c != '\u{f7}')
        || c == '\u{17f}'
        || c == '\u{212a}'
}

/// Words sqlparse's keyword tables hold, of those the splitter looks at.
/// All of them are plain `Keyword`.
const KEYWORDS: &[&str] = &[
    "BEGIN",
    "END",
    "DECLARE",
    "IF",
    "FOR",
    "WHILE",
    "CASE",
    "GO",
    "TRANSACTION",
    "WORK",
    "DEFERRED",
    "IMMEDIATE",
    "EXCLUSIVE",
];

struct Lexer<'a> {
    chars: Vec<(usize, char)>,
    text: &'a str,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            chars: text.char_indices().collect(),
            text,
        }
    }

    fn at(&self, i: usize) -> Option<char> {
        self.chars.get(i).map(|&(_, c)| c)
    }

    fn byte(&self, i: usize) -> usize {
        self.chars.get(i).map_or(self.text.len(), |&(b, _)| b)
    }

    /// Case-insensitive ASCII match of `word` at `i`.
    fn starts_with_ci(&self, i: usize, word: &str) -> bool {
        word.chars()
            .enumerate()
            .all(|(k, w)| self.at(i + k).is_some_and(|c| c.eq_ignore_ascii_case(&w)))
    }

    /// Python's `\b` at `i`.
    fn boundary(&self, i: usize) -> bool {
        let before = i > 0 && self.at(i - 1).is_some_and(is_word);
        let after = self.at(i).is_some_and(is_word);
        before != after
    }

    fn word_end(&self, mut i: usize) -> usize {
        while self.at(i).is_some_and(is_word) {
            i += 1;
        }
        i
    }

    /// End of a comment running to and including the next line break.
    fn line_end(&self, mut i: usize) -> usize {
        while let Some(c) = self.at(i) {
            if c == '\r' {
                return if self.at(i + 1) == Some('\n') {
                    i + 2
                } else {
                    i + 1
                };
            }
            if c == '\n' {
                return i + 1;
            }
            i += 1;
        }
        i
    }

    /// End of `/* … */` starting at `i`, if closed.
    fn block_end(&self, i: usize) -> Option<usize> {
        let mut j = i + 2;
        while j + 1 < self.chars.len() {
            if self.at(j) == Some('*') && self.at(j + 1) == Some('/') {
                return Some(j + 2);
            }
            j += 1;
        }
        None
    }

    /// A quoted token `q(qq|\q|[^q])*q` (with the backslash form only when
    /// `backslash`), matched with the backtracking order of Python's `re`.
    fn quoted_end(&self, i: usize, q: char, backslash: bool) -> Option<usize> {
        // Depth-first over the loop positions; `next` is the alternative to
        // try next at each position: 0 `qq`, 1 `\q`, 2 other char, 3 stop.
        let mut failed = vec![false; self.chars.len() + 1];
        let mut stack: Vec<(usize, u8)> = vec![(i + 1, 0)];
        while let Some(&mut (pos, ref mut next)) = stack.last_mut() {
            let alt = *next;
            *next += 1;
            let c = self.at(pos);
            match alt {
                0 if c == Some(q) && self.at(pos + 1) == Some(q) => {
                    if !failed[pos + 2] {
                        stack.push((pos + 2, 0));
                    }
                }
                1 if backslash && c == Some('\\') && self.at(pos + 1) == Some(q) => {
                    if !failed[pos + 2] {
                        stack.push((pos + 2, 0));
                    }
                }
                2 if c.is_some_and(|c| c != q) => {
                    if !failed[pos + 1] {
                        stack.push((pos + 1, 0));
                    }
                }
                3 if c == Some(q) => return Some(pos + 1),
                0..=3 => {}
                _ => {
                    failed[pos] = true;
                    stack.pop();
                }
            }
        }
        None
    }

    /// `$tag$ … $tag$` starting at `i`.
    fn dollar_end(&self, i: usize) -> Option<usize> {
        if i > 0
            && self
                .at(i - 1)
                .is_some_and(|c| is_word(c) || c == '"' || c == '$')
        {
            return None;
        }
        let mut j = i + 1;
        if self.at(j).is_some_and(|c| is_letter(c) || c == '_') {
            j = self.word_end(j);
        }
        if self.at(j) != Some('$') {
            return None;
        }
        let tag: Vec<char> = (i..=j).filter_map(|k| self.at(k)).collect();
        let mut k = j + 1;
        while k + tag.len() <= self.chars.len() {
            if (0..tag.len()).all(|t| self.at(k + t) == Some(tag[t])) {
                return Some(k + tag.len());
            }
            k += 1;
        }
        None
    }

    /// `KEYWORD(\s+KEYWORD)*\b` words separated by whitespace, at `i`.
    fn words_end(&self, i: usize, words: &[&str]) -> Option<usize> {
        let mut j = i;
        for (n, w) in words.iter().enumerate() {
            if n > 0 {
                let start = j;
                while self.at(j).is_some_and(is_space) {
                    j += 1;
                }
                if j == start {
                    return None;
                }
            }
            if !self.starts_with_ci(j, w) {
                return None;
            }
            j += w.chars().count();
        }
        self.boundary(j).then_some(j)
    }

    /// The token at `i`: its kind and end.
    fn token(&self, i: usize) -> (Kind, usize) {
        let Some(c) = self.at(i) else {
            return (Kind::Other, i + 1);
        };
        let next = self.at(i + 1);
        // Comments (hints first: they are not comments to the splitter).
        if (c == '-' && next == Some('-')) || (c == '#' && next == Some(' ')) {
            let end = self.line_end(i + 2);
            let kind = if self.at(i + 2) == Some('+') {
                Kind::Other
            } else {
                Kind::LineComment
            };
            return (kind, end);
        }
        if c == '/'
            && next == Some('*')
            && let Some(end) = self.block_end(i)
        {
            let kind = if self.at(i + 2) == Some('+') {
                Kind::Other
            } else {
                Kind::BlockComment
            };
            return (kind, end);
        }
        if c == '\r' {
            return (
                Kind::Newline,
                if next == Some('\n') { i + 2 } else { i + 1 },
            );
        }
        if c == '\n' {
            return (Kind::Newline, i + 1);
        }
        if is_space(c) {
            return (Kind::Space, i + 1);
        }
        if c == ':' && matches!(next, Some('=' | ':')) {
            return (Kind::Other, i + 2);
        }
        if c == '*' {
            return (Kind::Other, i + 1);
        }
        if (c == '`' || c == '´')
            && let Some(end) = self.quoted_end(i, c, false)
        {
            return (Kind::Name, end);
        }
        if c == '$'
            && let Some(end) = self.dollar_end(i)
        {
            return (Kind::Other, end);
        }
        if c == '?' {
            return (Kind::Other, i + 1);
        }
        if c == '%' {
            if next == Some('s') {
                return (Kind::Other, i + 2);
            }
            if next == Some('(') {
                let close = self.word_end(i + 2);
                if close > i + 2 && self.at(close) == Some(')') && self.at(close + 1) == Some('s') {
                    return (Kind::Other, close + 2);
                }
            }
        }
        if matches!(c, '$' | ':' | '?')
            && !(i > 0 && self.at(i - 1).is_some_and(is_word))
            && next.is_some_and(is_word)
        {
            return (Kind::Other, self.word_end(i + 1));
        }
        if c == '\\' && next.is_some_and(is_word) {
            return (Kind::Other, self.word_end(i + 1));
        }
        if (is_word(c) || matches!(c, '@' | '#'))
            && let Some(word) = self.word_token(i)
        {
            return word;
        }
        if (c == '\'' || c == '"')
            && let Some(end) = self.quoted_end(i, c, true)
        {
            return (Kind::Other, end);
        }
        if c == '['
            && !(i > 0
                && self
                    .at(i - 1)
                    .is_some_and(|p| is_word(p) || p == ']' || p == ')'))
        {
            let mut j = i + 1;
            while self.at(j).is_some_and(|x| x != ']' && x != '[') {
                j += 1;
            }
            if j > i + 1 && self.at(j) == Some(']') {
                return (Kind::Name, j + 1);
            }
        }
        if is_word(c) {
            return self.number(i);
        }
        if matches!(c, ';' | ':' | '(' | ')' | '[' | ']' | ',' | '.') {
            return (Kind::Punct, i + 1);
        }
        // Operators: the JSON ones, comparisons, then runs of the others.
        if c == '-' || (c == '#' && matches!(next, Some('>' | '-'))) {
            let mut j = i + 1;
            if c == '#' {
                j += 1;
                if next == Some('>') && self.at(j) == Some('>') {
                    j += 1;
                }
            } else if next == Some('>') {
                j += 1;
                if self.at(j) == Some('>') {
                    j += 1;
                }
            }
            return (Kind::Other, j);
        }
        if (c == '@' && next == Some('>')) || (c == '<' && next == Some('@')) {
            return (Kind::Other, i + 2);
        }
        let run = |set: &str| {
            let mut j = i;
            while self.at(j).is_some_and(|x| set.contains(x)) {
                j += 1;
            }
            j
        };
        let end = run("<>=~!");
        if end > i {
            return (Kind::Other, end);
        }
        let end = run("+/@#%^&|-");
        if end > i {
            return (Kind::Other, end);
        }
        (Kind::Other, i + 1)
    }

    /// A token starting with a digit (or another non-letter word
    /// character): sqlparse's number rules (hexadecimal, `1.5E-3`, then
    /// digits not followed by a letter), else the generic word rule. Digits
    /// never form a boundary, so plain digits are taken one at a time.
    fn number(&self, i: usize) -> (Kind, usize) {
        let digit = |k: usize| self.at(k).is_some_and(|d| d.is_numeric());
        if self.at(i) == Some('0')
            && matches!(self.at(i + 1), Some('x' | 'X'))
            && self.at(i + 2).is_some_and(|h| h.is_ascii_hexdigit())
        {
            let mut j = i + 2;
            while self.at(j).is_some_and(|h| h.is_ascii_hexdigit()) {
                j += 1;
            }
            return (Kind::Other, j);
        }
        if digit(i) {
            let mut j = i;
            while digit(j) {
                j += 1;
            }
            if self.at(j) == Some('.') && digit(j + 1) {
                j += 1;
                while digit(j) {
                    j += 1;
                }
            }
            if matches!(self.at(j), Some('e' | 'E')) {
                let mut k = j + 1;
                if self.at(k) == Some('-') {
                    k += 1;
                }
                if digit(k) {
                    while digit(k) {
                        k += 1;
                    }
                    return (Kind::Other, k);
                }
            }
            if !self.at(i + 1).is_some_and(|n| is_letter(n) || n == '_') {
                return (Kind::Other, i + 1);
            }
        }
        (Kind::Name, self.generic_word_end(i))
    }

    /// `\w[$#\w]*`.
    fn generic_word_end(&self, i: usize) -> usize {
        let mut j = i + 1;
        while self
            .at(j)
            .is_some_and(|x| is_word(x) || x == '$' || x == '#')
        {
            j += 1;
        }
        j
    }

    /// The rules for words, in sqlparse's order; `None` when none applies
    /// and the character is lexed by the later rules.
    fn word_token(&self, i: usize) -> Option<(Kind, usize)> {
        let c = self.at(i)?;
        let keyword = Kind::Keyword {
            ddl: false,
            exact: true,
        };
        for w in ["CASE", "IN", "VALUES", "USING", "FROM", "AS"] {
            if self.starts_with_ci(i, w) && self.boundary(i + w.len()) {
                return Some((keyword, i + w.len()));
            }
        }
        if matches!(c, '@' | '#') {
            let start = if c == '#' && self.at(i + 1) == Some('#') {
                i + 2
            } else {
                i + 1
            };
            for s in [start, i + 1] {
                if self.at(s).is_some_and(is_letter) && self.at(s + 1).is_some_and(is_word) {
                    return Some((Kind::Name, self.word_end(s + 1)));
                }
            }
            return None;
        }
        if is_letter(c) {
            let end = self.word_end(i + 1);
            let mut j = end;
            while self.at(j).is_some_and(is_space) {
                j += 1;
            }
            if self.at(j) == Some('.')
                || (i > 0 && self.at(i - 1) == Some('.'))
                || self.at(end) == Some('(')
            {
                return Some((Kind::Name, end));
            }
        }
        if !is_letter(c) && c != '_' {
            // Digits: the number rules and the generic word rule give
            // tokens that are never keywords.
            return None;
        }
        // Multi-word keywords that can swallow a word the splitter watches.
        let multi: &[(&[&str], Kind)] = &[
            (&["END", "IF"], keyword),
            (&["END", "LOOP"], keyword),
            (&["END", "WHILE"], keyword),
            (&["END"], keyword),
            (&["IF", "NOT", "EXISTS"], keyword),
            (&["IF", "EXISTS"], keyword),
            (
                &["CREATE", "OR", "REPLACE"],
                Kind::Keyword {
                    ddl: true,
                    exact: false,
                },
            ),
            (
                &["CREATE"],
                Kind::Keyword {
                    ddl: true,
                    exact: false,
                },
            ),
            (&["HANDLER", "FOR"], keyword),
        ];
        for (words, kind) in multi {
            if let Some(end) = self.words_end(i, words) {
                return Some((*kind, end));
            }
        }
        if self.starts_with_ci(i, "GO") {
            let j = i + 2;
            if self.at(j).is_some_and(is_space)
                && self.at(j + 1).is_some_and(|d| d.is_ascii_digit())
            {
                let mut k = j + 1;
                while self.at(k).is_some_and(|d| d.is_ascii_digit()) {
                    k += 1;
                }
                if self.boundary(k) {
                    return Some((keyword, k));
                }
            }
        }
        if (self.starts_with_ci(i, "AT") || self.starts_with_ci(i, "WITH'"))
            && let Some(end) = self.time_zone_end(i)
        {
            return Some((Kind::Other, end));
        }
        let end = self.generic_word_end(i);
        let word: String = (i..end).filter_map(|k| self.at(k)).collect();
        let upper = word.to_uppercase();
        if KEYWORDS.contains(&upper.as_str()) {
            Some((keyword, end))
        } else {
            Some((Kind::Name, end))
        }
    }

    /// `(AT|WITH')\s+TIME\s+ZONE\s+'[^']+'`.
    fn time_zone_end(&self, i: usize) -> Option<usize> {
        let mut j = if self.starts_with_ci(i, "AT") {
            i + 2
        } else {
            i + 5
        };
        for w in ["TIME", "ZONE"] {
            let start = j;
            while self.at(j).is_some_and(is_space) {
                j += 1;
            }
            if j == start || !self.starts_with_ci(j, w) {
                return None;
            }
            j += w.len();
        }
        let start = j;
        while self.at(j).is_some_and(is_space) {
            j += 1;
        }
        if j == start || self.at(j) != Some('\'') {
            return None;
        }
        let mut k = j + 1;
        while self.at(k).is_some_and(|x| x != '\'') {
            k += 1;
        }
        (k > j + 1 && self.at(k) == Some('\'')).then_some(k + 1)
    }
}

/// The splitter's state for one statement.
#[derive(Default)]
struct Splitter {
    in_declare: bool,
    in_case: bool,
    is_create: bool,
    begin_depth: i64,
    seen_begin: bool,
    consume_ws: bool,
    level: i64,
}

impl Splitter {
    fn change_level(&mut self, kind: Kind, value: &str) -> i64 {
        match kind {
            Kind::Punct if value == "(" => return 1,
            Kind::Punct if value == ")" => return -1,
            Kind::Keyword { .. } => {}
            _ => return 0,
        }
        let Kind::Keyword { ddl, exact } = kind else {
            return 0;
        };
        let unified = value.to_uppercase();
        if ddl && unified.starts_with("CREATE") {
            self.is_create = true;
            return 0;
        }
        if unified == "DECLARE" && self.is_create && self.begin_depth == 0 {
            self.in_declare = true;
            return 1;
        }
        if unified == "BEGIN" {
            self.begin_depth += 1;
            self.seen_begin = true;
            return i64::from(self.is_create);
        }
        if self.seen_begin && exact && is_transaction_word(value) {
            self.begin_depth = (self.begin_depth - 1).max(0);
            self.seen_begin = false;
            return 0;
        }
        if unified == "END" {
            if self.in_case {
                self.in_case = false;
            } else {
                self.begin_depth = (self.begin_depth - 1).max(0);
            }
            return -1;
        }
        if matches!(unified.as_str(), "IF" | "FOR" | "WHILE" | "CASE")
            && self.is_create
            && self.begin_depth > 0
        {
            if unified == "CASE" {
                self.in_case = true;
            }
            return 1;
        }
        if matches!(unified.as_str(), "END IF" | "END FOR" | "END WHILE") {
            return -1;
        }
        0
    }
}

fn is_transaction_word(value: &str) -> bool {
    matches!(
        value.to_uppercase().as_str(),
        "TRANSACTION" | "WORK" | "TRAN" | "DISTRIBUTED" | "DEFERRED" | "IMMEDIATE" | "EXCLUSIVE"
    )
}

/// Python's `str.strip()`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// Splits `text` into statements as `sqlparse.split` does: each statement
/// trimmed, with its `;` kept.
pub fn split(text: &str) -> Vec<String> {
    let lexer = Lexer::new(text);
    let mut out = Vec::new();
    let mut s = Splitter::default();
    let mut start = 0usize; // char index where the current statement starts
    let mut only_space = true;
    let mut has_tokens = false;
    let mut i = 0usize;
    while i < lexer.chars.len() {
        let (kind, end) = lexer.token(i);
        let end = end.max(i + 1).min(lexer.chars.len());
        let value = &text[lexer.byte(i)..lexer.byte(end)];
        if s.consume_ws && !matches!(kind, Kind::Space | Kind::LineComment) {
            out.push(py_strip(&text[lexer.byte(start)..lexer.byte(i)]).to_string());
            s = Splitter::default();
            start = i;
            only_space = true;
        }
        s.level += s.change_level(kind, value);
        has_tokens = true;
        if !matches!(kind, Kind::Space | Kind::Newline) {
            only_space = false;
        }
        match kind {
            Kind::Punct if value == ";" => {
                if s.seen_begin {
                    s.begin_depth = (s.begin_depth - 1).max(0);
                }
                s.seen_begin = false;
                if s.level <= 0 && s.begin_depth == 0 {
                    s.consume_ws = true;
                }
            }
            Kind::Keyword { exact: true, .. } if value.split_whitespace().next() == Some("GO") => {
                s.consume_ws = true;
            }
            Kind::Space | Kind::Newline | Kind::LineComment | Kind::BlockComment => {}
            Kind::Keyword { .. } if value.eq_ignore_ascii_case("BEGIN") => {}
            _ => s.seen_begin = false,
        }
        i = end;
    }
    if has_tokens && !only_space && start < lexer.chars.len() {
        out.push(py_strip(&text[lexer.byte(start)..]).to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cases of `tests/golden/sql/split.json`, split by the original's
    /// splitter (`tests/golden/sql/regenerate.py` writes them).
    #[test]
    fn golden_boundaries_match_sqlparse() {
        let golden: serde_json::Value =
            serde_json::from_str(include_str!("../../../tests/golden/sql/split.json"))
                .unwrap_or_else(|e| panic!("{e}"));
        let cases = golden.as_array().cloned().unwrap_or_default();
        assert!(cases.len() > 400);
        let mut wrong = Vec::new();
        for case in cases {
            let sql = case["sql"].as_str().unwrap_or_default();
            let want: Vec<String> = case["statements"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect();
            let got = split(sql.trim_matches(is_space));
            if got != want {
                wrong.push(format!("{sql:?}\n  want {want:?}\n  got  {got:?}"));
            }
        }
        assert!(
            wrong.is_empty(),
            "{} cases differ:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }

    #[test]
    fn simple_boundaries() {
        assert_eq!(split("select 1; select 2;"), ["select 1;", "select 2;"]);
        assert_eq!(
            split("select ';'; -- x;\nselect 2"),
            ["select ';'; -- x;", "select 2"]
        );
        assert_eq!(split("  \n "), Vec::<String>::new());
    }
}
