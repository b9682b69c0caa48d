//! A connection definition: one item of `lava.<realm>.connections`.

use serde_json::Value;

use super::{Item, SpecError, require, string_field};

const KIND: &str = "connection";

/// A validated connection record; type-specific fields stay in the item.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    item: Item,
}

impl Connection {
    /// Validates a connections-table item: `conn_id` and `type` required,
    /// `enabled` defaulted to `false` and required to be a boolean.
    pub fn from_item(mut item: Item) -> Result<Self, SpecError> {
        item.entry("enabled").or_insert(Value::Bool(false));
        require(&item, KIND, &["conn_id", "type", "enabled"])?;
        string_field(&item, KIND, "conn_id")?;
        string_field(&item, KIND, "type")?;
        if !item.get("enabled").is_some_and(Value::is_boolean) {
            return Err(SpecError::Field {
                kind: KIND,
                field: "enabled".into(),
                reason: "must be a boolean".into(),
            });
        }
        Ok(Self { item })
    }

    /// The connection id.
    pub fn conn_id(&self) -> &str {
        self.item
            .get("conn_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The connector type (`postgres`, `ssh`, …).
    pub fn conn_type(&self) -> &str {
        self.item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// Whether the connection may be used.
    pub fn enabled(&self) -> bool {
        self.item
            .get("enabled")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The whole item.
    pub fn item(&self) -> &Item {
        &self.item
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn connection_rules() {
        let c = Connection::from_item(
            json!({"conn_id": "db", "type": "postgres", "host": "h"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        )
        .expect("valid");
        assert!(!c.enabled());
        assert_eq!(c.conn_type(), "postgres");
        let err = Connection::from_item(
            json!({"conn_id": "db"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        )
        .err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("Bad connection record: Missing keys: type")
        );
    }
}
