//! `-p`/`-g NAME=VALUE` options: dotted names build nested maps.

use serde_json::{Map, Value};

/// A bad `NAME=VALUE` option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DottedError {
    /// No `=` in the option value.
    #[error("bad option {0:?}: expected NAME=VALUE")]
    Syntax(String),
    /// A path step already holds a value that is not a map.
    #[error("Path conflict: {0}")]
    Conflict(String),
}

/// Splits `NAME=VALUE` at the first `=`.
pub fn split_assignment(option: &str) -> Result<(String, String), DottedError> {
    option
        .split_once('=')
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .ok_or_else(|| DottedError::Syntax(option.to_string()))
}

/// Builds a map from `NAME=VALUE` options. A repeated name keeps its last
/// value but its first position; names are then placed in that order, each
/// split on `.` into nested maps. A step that already holds a non-map is a
/// conflict; a later shorter name silently replaces a map.
pub fn build(options: &[String]) -> Result<Map<String, Value>, DottedError> {
    let mut assignments: Vec<(String, String)> = Vec::with_capacity(options.len());
    for option in options {
        let (name, value) = split_assignment(option)?;
        match assignments.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => assignments.push((name, value)),
        }
    }
    let mut root = Map::new();
    for (name, value) in assignments {
        let mut steps: Vec<&str> = name.split('.').collect();
        let last = steps.pop().unwrap_or_default();
        let mut node = &mut root;
        for step in steps {
            let entry = node
                .entry(step.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            node = match entry {
                Value::Object(map) => map,
                _ => return Err(DottedError::Conflict(name.clone())),
            };
        }
        node.insert(last.to_string(), Value::String(value));
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nested_maps() {
        let got = build(&opts(&[
            "vars.location=Isabela",
            "vars.name=Sierra Negra",
            "timeout=1h",
            "eq=a=b",
        ]));
        assert_eq!(
            got.map(Value::Object),
            Ok(
                json!({"vars": {"location": "Isabela", "name": "Sierra Negra"}, "timeout": "1h", "eq": "a=b"})
            )
        );
    }

    #[test]
    fn order_repeats_and_conflicts() {
        let got = build(&opts(&["b=1", "a=2", "b=3"]))
            .map(|m| serde_json::to_string(&m).unwrap_or_default());
        assert_eq!(got.as_deref(), Ok(r#"{"b":"3","a":"2"}"#));
        assert_eq!(
            build(&opts(&["a=1", "a.b=2"])),
            Err(DottedError::Conflict("a.b".into()))
        );
        assert_eq!(
            build(&opts(&["a.b=2", "a=1"])).map(Value::Object),
            Ok(json!({"a": "1"}))
        );
        assert_eq!(
            build(&opts(&["a..b=1"])).map(Value::Object),
            Ok(json!({"a": {"": {"b": "1"}}}))
        );
        assert_eq!(
            build(&opts(&["novalue"])),
            Err(DottedError::Syntax("novalue".into()))
        );
        assert_eq!(
            build(&opts(&["x="])).map(Value::Object),
            Ok(json!({"x": ""}))
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(list in proptest::collection::vec("[a.=b]{0,6}", 0..6)) {
            let _ = build(&list);
        }
    }
}
