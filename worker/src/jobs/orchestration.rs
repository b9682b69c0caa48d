//! What the orchestration job types share: job id lists from a payload,
//! `job_prefix`, the `can_fail` globs (case-sensitive, shell style as
//! Python's `fnmatchcase`), integer parameters, and the result map of
//! `chain` and `dag`.

use lava_common::units;
use regex::Regex;
use serde_json::{Map, Value};

use super::Failure;

/// A parameter's text (`None` when absent or null).
pub(super) fn text_param(params: &Map<String, Value>, name: &str) -> Option<String> {
    match params.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(units::show(other)),
    }
}

/// The `job_prefix` parameter ("" when absent).
pub(super) fn job_prefix(params: &Map<String, Value>) -> String {
    text_param(params, "job_prefix").unwrap_or_default()
}

/// Job ids from a comma-separated text (items trimmed) or a list; `None`
/// for anything else.
pub(super) fn job_list(payload: &Value, prefix: &str) -> Option<Vec<String>> {
    let ids: Vec<String> = match payload {
        Value::String(s) => s.split(',').map(|j| j.trim().to_string()).collect(),
        Value::Array(list) => list
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => units::show(other),
            })
            .collect(),
        _ => return None,
    };
    Some(ids.into_iter().map(|id| format!("{prefix}{id}")).collect())
}

/// An integer parameter given as a number or a text; `None` when absent.
pub(super) fn int_param(params: &Map<String, Value>, name: &str) -> Result<Option<i64>, Failure> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .map(Some)
            .ok_or_else(|| Failure::new(format!("Bad {name}: {}", units::show(v)))),
    }
}

/// The `can_fail` globs of `chain` and `dag`: one text or a list of texts.
pub(super) struct CanFail(Vec<Regex>);

impl CanFail {
    /// From the parameters.
    pub(super) fn from_params(params: &Map<String, Value>) -> Result<Self, Failure> {
        let globs: Vec<String> = match params.get("can_fail") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => units::show(other),
                })
                .collect(),
            Some(other) => {
                return Err(Failure::new(format!(
                    "Bad can_fail: {}: must be a glob or a list of globs",
                    units::show(other)
                )));
            }
        };
        globs
            .iter()
            .map(|g| glob_regex(g))
            .collect::<Result<_, _>>()
            .map(Self)
            .map_err(|e| Failure::new(format!("Bad can_fail: {e}")))
    }

    /// Whether a (prefixed) job id may fail.
    pub(super) fn matches(&self, job_id: &str) -> bool {
        self.0.iter().any(|r| r.is_match(job_id))
    }
}

/// A shell glob as a whole-text regular expression: `*`, `?`, `[seq]`,
/// `[!seq]`; an unclosed `[` is literal.
pub(super) fn glob_regex(glob: &str) -> Result<Regex, regex::Error> {
    let chars: Vec<char> = glob.chars().collect();
    let mut re = String::from("(?s)^");
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => {
                let mut j = i;
                if j < chars.len() && chars[j] == '!' {
                    j += 1;
                }
                if j < chars.len() && chars[j] == ']' {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    re.push_str("\\[");
                } else {
                    let mut class: String = chars[i..j].iter().collect();
                    i = j + 1;
                    if let Some(rest) = class.strip_prefix('!') {
                        class = format!("^{rest}");
                    }
                    let class = class.replace('\\', "\\\\").replace('[', "\\[");
                    re.push('[');
                    re.push_str(&class);
                    re.push(']');
                }
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re)
}

/// The result of `chain` and `dag`: `{exit_status, jobs, failed_jobs}`,
/// with `error` when it failed.
#[derive(Debug, Default)]
pub(super) struct ChildResults {
    /// Children that succeeded (or were skipped), in the order they ended.
    pub(super) jobs: Vec<String>,
    /// Children that failed.
    pub(super) failed_jobs: Vec<String>,
}

impl ChildResults {
    /// The success result.
    pub(super) fn value(&self) -> Value {
        let mut map = Map::new();
        map.insert("exit_status".into(), Value::from(0));
        map.insert("jobs".into(), Value::from(self.jobs.clone()));
        map.insert("failed_jobs".into(), Value::from(self.failed_jobs.clone()));
        Value::Object(map)
    }

    /// The failure: `message`, with the result map (`exit_status` 1 and
    /// `error`) as its data.
    pub(super) fn failure(&self, message: String, error: String) -> Failure {
        let mut value = self.value();
        if let Value::Object(map) = &mut value {
            map.insert("exit_status".into(), Value::from(1));
            map.insert("error".into(), Value::String(error));
        }
        Failure::with_data(message, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn globs_match_as_fnmatchcase() {
        let m = |g: &str, t: &str| glob_regex(g).expect("glob").is_match(t);
        assert!(m("etl/*", "etl/load"));
        assert!(!m("etl/*", "ETL/load"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "abbc"));
        assert!(m("x[0-9]", "x7"));
        assert!(m("x[!0-9]", "xa"));
        assert!(!m("x[!0-9]", "x1"));
        assert!(m("a[b", "a[b"));
        assert!(m("a.b", "a.b"));
        assert!(!m("a.b", "axb"));
    }

    #[test]
    fn job_lists() {
        assert_eq!(
            job_list(&json!(" a, b ,c"), "p/"),
            Some(vec!["p/a".into(), "p/b".into(), "p/c".into()])
        );
        assert_eq!(job_list(&json!(["x"]), ""), Some(vec!["x".into()]));
        assert_eq!(job_list(&json!({"a": 1}), ""), None);
    }
}
