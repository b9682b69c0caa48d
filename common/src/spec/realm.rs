//! A realm definition: one item of the global `lava.realms` table.

use serde_json::{Map, Value};

use super::{Item, SpecError, map_field, opt_string, require, string_field};

const KIND: &str = "realm";

/// A validated realm record. The item is kept whole: Jinja sees it as `realm`.
#[derive(Debug, Clone, PartialEq)]
pub struct Realm {
    item: Item,
}

impl Realm {
    /// Validates a realms-table item: `realm`, `s3_payloads` and `s3_temp`
    /// are required strings; `config` must be a map; others are tolerated.
    pub fn from_item(item: Item) -> Result<Self, SpecError> {
        require(&item, KIND, &["realm", "s3_payloads", "s3_temp"])?;
        for field in ["realm", "s3_payloads", "s3_temp"] {
            string_field(&item, KIND, field)?;
        }
        opt_string(&item, KIND, "s3_key")?;
        map_field(&item, KIND, "config")?;
        Ok(Self { item })
    }

    fn str_of(&self, field: &str) -> &str {
        self.item
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The realm name.
    pub fn name(&self) -> &str {
        self.str_of("realm")
    }

    /// Root of job payloads (`s3://bucket/prefix`).
    pub fn s3_payloads(&self) -> &str {
        self.str_of("s3_payloads")
    }

    /// Root of run outputs (`s3://bucket/prefix`).
    pub fn s3_temp(&self) -> &str {
        self.str_of("s3_temp")
    }

    /// KMS key for uploads; `None` means SSE AES256.
    pub fn s3_key(&self) -> Option<&str> {
        self.item.get("s3_key").and_then(Value::as_str)
    }

    /// Worker configuration overrides (keys as stored).
    pub fn config(&self) -> Map<String, Value> {
        self.item
            .get("config")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    /// A field as stored (`on_success`, `on_fail`, `on_retry`, `docker`, …).
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.item.get(name)
    }

    /// The whole item, as Jinja sees it.
    pub fn item(&self) -> &Item {
        &self.item
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn realm_rules() {
        let r = Realm::from_item(
            json!({"realm": "prod", "s3_payloads": "s3://b/p", "s3_temp": "s3://b/t",
                   "config": {"event_ttl": "7d"}, "x-workers": {}, "other": 1})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        )
        .expect("valid");
        assert_eq!(r.name(), "prod");
        assert_eq!(r.s3_key(), None);
        assert_eq!(r.config().get("event_ttl"), Some(&json!("7d")));
        let err = Realm::from_item(
            json!({"realm": "p"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        )
        .err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("Bad realm record: Missing keys: s3_payloads, s3_temp")
        );
    }
}
