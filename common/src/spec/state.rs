//! A state item: one item of `lava.<realm>.state`. The reader is strict, as
//! the original's: exactly `state_id`, `type`, `value`, `timestamp` and
//! `ttl`, and optionally `publisher` — nothing else, not even `x-*`.

use serde_json::Value;

use super::Item;

const REQUIRED: &[&str] = &["state_id", "type", "value", "timestamp", "ttl"];
const OPTIONAL: &[&str] = &["publisher"];

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

impl StateType {
    /// Every type, by name, sorted (the original's `state_types()`).
    pub const NAMES: [&'static str; 3] = ["json", "raw", "secure"];

    /// The type called `name`; `None` for any other name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "json" => Some(Self::Json),
            "raw" => Some(Self::Raw),
            "secure" => Some(Self::Secure),
            _ => None,
        }
    }

    /// The type's name as stored in the item's `type`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Raw => "raw",
            Self::Secure => "secure",
        }
    }
}

/// A stored item that is not a valid state item (the texts are the
/// original's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadStateItem {
    /// Required attributes are absent (sorted, comma separated).
    #[error("Bad state item: Missing keys: {0}")]
    Missing(String),
    /// Attributes a state item may not have (sorted, comma separated).
    #[error("Bad state item: Unexpected keys: {0}")]
    Unexpected(String),
    /// A `type` lava does not know.
    #[error("Unknown state type: {0}")]
    UnknownType(String),
    /// An attribute of the wrong kind.
    #[error("Bad state item: {field}: {reason}")]
    Field {
        /// The attribute.
        field: &'static str,
        /// What is wrong, naming the value.
        reason: String,
    },
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
    pub ttl: i64,
    /// Who wrote it.
    pub publisher: Option<String>,
}

fn keys_text(keys: Vec<&str>) -> String {
    let mut keys = keys;
    keys.sort_unstable();
    keys.join(", ")
}

fn string(item: &Item, field: &'static str) -> Result<String, BadStateItem> {
    match item.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        other => Err(BadStateItem::Field {
            field,
            reason: format!(
                "must be a string, not {}",
                other.map_or("nothing".into(), Value::to_string)
            ),
        }),
    }
}

impl StateItem {
    /// Validates a state-table item: missing keys first, then unexpected
    /// ones, then the type, as the original checks them.
    pub fn from_item(item: &Item) -> Result<Self, BadStateItem> {
        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|k| !item.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            return Err(BadStateItem::Missing(keys_text(missing)));
        }
        let unexpected: Vec<&str> = item
            .keys()
            .map(String::as_str)
            .filter(|k| !REQUIRED.contains(k) && !OPTIONAL.contains(k))
            .collect();
        if !unexpected.is_empty() {
            return Err(BadStateItem::Unexpected(keys_text(unexpected)));
        }
        let state_type = match item.get("type") {
            Some(Value::String(name)) => {
                StateType::from_name(name).ok_or_else(|| BadStateItem::UnknownType(name.clone()))?
            }
            other => {
                let shown = other.map_or_else(String::new, Value::to_string);
                return Err(BadStateItem::UnknownType(shown));
            }
        };
        // DynamoDB numbers: an integer, or a number in another form.
        let ttl = match item.get("ttl") {
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .unwrap_or_default(),
            other => {
                return Err(BadStateItem::Field {
                    field: "ttl",
                    reason: format!(
                        "must be a number, not {}",
                        other.map_or("nothing".into(), Value::to_string)
                    ),
                });
            }
        };
        let publisher = match item.get("publisher") {
            None | Some(Value::Null) => None,
            Some(_) => Some(string(item, "publisher")?),
        };
        Ok(Self {
            state_id: string(item, "state_id")?,
            state_type,
            value: item.get("value").cloned().unwrap_or(Value::Null),
            timestamp: string(item, "timestamp")?,
            ttl,
            publisher,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value) -> Result<StateItem, String> {
        let item = v.as_object().cloned().unwrap_or_default();
        StateItem::from_item(&item).map_err(|e| e.to_string())
    }

    #[test]
    fn exactly_the_known_keys() {
        let ok = check(
            json!({"state_id": "s", "type": "json", "value": "1", "timestamp": "t",
                              "ttl": 5, "publisher": "p"}),
        );
        let ok = ok.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.state_type, StateType::Json);
        assert_eq!((ok.ttl, ok.publisher.as_deref()), (5, Some("p")));
        assert_eq!(
            check(
                json!({"state_id": "s", "type": "json", "value": "1", "timestamp": "t", "ttl": 5, "x-note": 1})
            ),
            Err("Bad state item: Unexpected keys: x-note".into())
        );
        // Missing keys are reported first, sorted; `type` and `ttl` are required.
        assert_eq!(
            check(json!({"state_id": "s", "value": "1", "timestamp": "t", "zz": 1})),
            Err("Bad state item: Missing keys: ttl, type".into())
        );
        assert_eq!(
            check(
                json!({"state_id": "s", "type": "yaml", "value": "1", "timestamp": "t", "ttl": 5})
            ),
            Err("Unknown state type: yaml".into())
        );
        assert_eq!(
            check(
                json!({"state_id": "s", "type": "raw", "value": 1, "timestamp": "t", "ttl": "5"})
            ),
            Err("Bad state item: ttl: must be a number, not \"5\"".into())
        );
    }

    #[test]
    fn type_names() {
        for name in StateType::NAMES {
            assert_eq!(StateType::from_name(name).map(StateType::name), Some(name));
        }
        assert_eq!(StateType::from_name("JSON"), None);
    }
}
