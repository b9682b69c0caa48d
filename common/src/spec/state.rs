//! A state item: one item of `lava.<realm>.state`. The
//! reader is strict: no attribute beyond the known ones, not even `x-*`.

use serde_json::Value;

use super::{Item, SpecError, opt_string, require, string_field};

const KIND: &str = "state item";
const KNOWN: &[&str] = &["state_id", "type", "value", "timestamp", "ttl", "publisher"];

/// How a state value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateType {
    /// JSON text in a string attribute.
    Json,
    /// The value stored natively.
    Raw,
    /// A KMS ciphertext of the JSON text, in a binary attribute.
    Secure,
}

/// A validated state item.
#[derive(Debug, Clone, PartialEq)]
pub struct StateItem {
    /// The item id.
    pub state_id: String,
    /// Storage type.
    pub state_type: StateType,
    /// The stored value (still encoded for `json` and `secure`).
    pub value: Value,
    /// Write time, ISO 8601 with offset.
    pub timestamp: String,
    /// Expiry, epoch seconds.
    pub ttl: Option<i64>,
    /// Who wrote it.
    pub publisher: Option<String>,
}

impl StateItem {
    /// Validates a state-table item.
    pub fn from_item(item: &Item) -> Result<Self, SpecError> {
        let mut unexpected: Vec<&str> = item
            .keys()
            .map(String::as_str)
            .filter(|k| !KNOWN.contains(k))
            .collect();
        if !unexpected.is_empty() {
            unexpected.sort_unstable();
            return Err(SpecError::Unexpected {
                kind: KIND,
                keys: unexpected.join(", "),
            });
        }
        require(item, KIND, &["state_id", "value", "timestamp"])?;
        let state_type = match item.get("type").and_then(Value::as_str).unwrap_or("json") {
            "json" => StateType::Json,
            "raw" => StateType::Raw,
            "secure" => StateType::Secure,
            other => {
                return Err(SpecError::Field {
                    kind: KIND,
                    field: "type".into(),
                    reason: format!("unknown state type {other}"),
                });
            }
        };
        Ok(Self {
            state_id: string_field(item, KIND, "state_id")?,
            state_type,
            value: item.get("value").cloned().unwrap_or(Value::Null),
            timestamp: string_field(item, KIND, "timestamp")?,
            ttl: item.get("ttl").and_then(Value::as_i64),
            publisher: opt_string(item, KIND, "publisher")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn state_is_strict() {
        let ok = json!({"state_id": "s", "type": "json", "value": "1", "timestamp": "t", "ttl": 5});
        let s = StateItem::from_item(ok.as_object().expect("map")).expect("valid");
        assert_eq!(s.state_type, StateType::Json);
        let bad = json!({"state_id": "s", "value": "1", "timestamp": "t", "x-note": 1});
        assert_eq!(
            StateItem::from_item(bad.as_object().expect("map"))
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("Bad state item: Unexpected keys: x-note")
        );
    }
}
