//! The `generic` connector: an `attributes` map whose values are scalars,
//! `{type: local, value}`, or `{type: ssm, parameter}` (read from SSM).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::{ConnError, Connections, Record};

/// Resolved attributes: name → value (SSM values as text).
pub type Attributes = BTreeMap<String, Value>;

/// `^[a-zA-Z][\w-]*$`.
static NAME: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^[a-zA-Z][\w-]*$").ok());

/// Whether `name` is a valid attribute name.
pub fn valid_name(name: &str) -> bool {
    NAME.as_ref().is_some_and(|re| re.is_match(name))
}

/// Checks a `generic` record and resolves its attributes.
pub(super) async fn resolve(c: &Connections, record: &Record) -> Result<Attributes, ConnError> {
    let id = record.id();
    record.allow_only(&["attributes"])?;
    let attributes = match record.item().get("attributes") {
        Some(Value::Object(map)) => map,
        None => return Err(ConnError::field(id, "attributes", "required")),
        Some(_) => return Err(ConnError::field(id, "attributes", "must be a map")),
    };
    let mut out = Attributes::new();
    for (name, value) in attributes {
        let field = format!("attributes.{name}");
        if !valid_name(name) {
            return Err(ConnError::field(id, &field, "Bad attribute name"));
        }
        let resolved = match value {
            Value::Object(spec) => {
                let kind = match spec.get("type") {
                    None | Some(Value::Null) => "local",
                    Some(Value::String(t)) => t.as_str(),
                    Some(_) => return Err(ConnError::field(id, &field, "Unknown attribute type")),
                };
                match kind {
                    "local" => match spec.get("value") {
                        Some(v @ (Value::Object(_) | Value::Array(_))) => {
                            return Err(ConnError::field(
                                id,
                                &field,
                                format!("Unsupported attribute type: {}", kind_of(v)),
                            ));
                        }
                        Some(v) => integral(v),
                        None => Value::Null,
                    },
                    "ssm" => {
                        let Some(Value::String(parameter)) = spec.get("parameter") else {
                            return Err(ConnError::field(
                                id,
                                &field,
                                "parameter (an SSM parameter name) is required",
                            ));
                        };
                        Value::String(c.parameter(id, &field, parameter, true).await?)
                    }
                    _ => return Err(ConnError::field(id, &field, "Unknown attribute type")),
                }
            }
            Value::Array(_) => {
                return Err(ConnError::field(
                    id,
                    &field,
                    "Unsupported attribute type: list",
                ));
            }
            scalar => integral(scalar),
        };
        out.insert(name.clone(), resolved);
    }
    Ok(out)
}

/// A number that is integral becomes an integer (`5.0` → `5`).
fn integral(value: &Value) -> Value {
    if let Value::Number(n) = value
        && n.as_i64().is_none()
        && n.as_u64().is_none()
        && let Some(f) = n.as_f64()
        && f.fract() == 0.0
        && f.abs() < 9.0e15
    {
        #[allow(clippy::cast_possible_truncation)]
        return Value::from(f as i64);
    }
    value.clone()
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "list",
        Value::Object(_) => "map",
        _ => "scalar",
    }
}

/// An attribute value as the original's helper writes it (Python `str()`):
/// `True`/`False`, `None`, numbers and text as they are.
pub fn python_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::connections;
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn attributes_resolve_locally_and_from_ssm() {
        let (_dir, c) = connections(
            &[
                json!({"conn_id": "g", "type": "generic", "enabled": true, "attributes": {
                "user": "bob", "port": 5432, "ratio": 1.5, "whole": 3.0, "flag": true, "none": null,
                "local": {"value": "v"}, "typed": {"type": "local", "value": 7},
                "password": {"type": "ssm", "parameter": "/lava/r/pw"}}}),
            ],
            &[("/lava/r/pw", "hunter2")],
        )
        .await;
        let g = c.get("g").await.unwrap_or_else(|e| panic!("{e}"));
        let attrs = c
            .generic_attributes(&g)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let text: BTreeMap<&str, String> = attrs
            .iter()
            .map(|(k, v)| (k.as_str(), python_text(v)))
            .collect();
        assert_eq!(text["user"], "bob");
        assert_eq!(text["port"], "5432");
        assert_eq!(text["ratio"], "1.5");
        assert_eq!(text["whole"], "3");
        assert_eq!(text["flag"], "True");
        assert_eq!(text["none"], "None");
        assert_eq!(text["local"], "v");
        assert_eq!(text["typed"], "7");
        assert_eq!(text["password"], "hunter2");
    }

    #[tokio::test]
    async fn bad_attributes_name_the_field() {
        let cases = [
            (
                json!({"x": {"type": "ssm", "parameter": "/nope"}}),
                "Connection g: attributes.x: SSM parameter /nope not found",
            ),
            (
                json!({"1x": 1}),
                "Connection g: attributes.1x: Bad attribute name",
            ),
            (
                json!({"x": {"type": "vault"}}),
                "Connection g: attributes.x: Unknown attribute type",
            ),
            (
                json!({"x": [1]}),
                "Connection g: attributes.x: Unsupported attribute type: list",
            ),
            (
                json!({"x": {"type": "ssm"}}),
                "Connection g: attributes.x: parameter (an SSM parameter name) is required",
            ),
            (json!("text"), "Connection g: attributes: must be a map"),
        ];
        for (attributes, want) in cases {
            let (_dir, c) = connections(
                &[json!({"conn_id": "g", "type": "generic", "enabled": true, "attributes": attributes})],
                &[],
            )
            .await;
            let g = c.get("g").await.unwrap_or_else(|e| panic!("{e}"));
            let got = c.generic_attributes(&g).await.map_err(|e| e.to_string());
            assert_eq!(got.err().as_deref(), Some(want));
        }
        let (_dir, c) = connections(
            &[json!({"conn_id": "g", "type": "generic", "enabled": true, "attributes": {}, "host": "h"})],
            &[],
        )
        .await;
        let g = c.get("g").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            c.generic_attributes(&g)
                .await
                .map_err(|e| e.to_string())
                .err()
                .as_deref(),
            Some("Connection g: Unexpected keys: host")
        );
    }

    #[test]
    fn attribute_names() {
        assert!(valid_name("a") && valid_name("a_b-c9"));
        assert!(!valid_name("") && !valid_name("_a") && !valid_name("a/b") && !valid_name("a.b"));
    }
}
