//! An S3 trigger: one item of `lava.<realm>.s3triggers`.

use serde_json::Value;

use super::{Item, SpecError, require, string_field, unknown_keys};
use crate::units;

const KIND: &str = "s3trigger";
const KNOWN: &[&str] = &[
    "trigger_id",
    "bucket",
    "prefix",
    "job_id",
    "enabled",
    "globals",
    "parameters",
    "jinja",
    "delay",
    "description",
    "owner",
    "if_fnmatch",
    "if_not_fnmatch",
    "if_size_gt",
    "if_not_size_gt",
    "if_event_type",
    "if_not_event_type",
];

/// A validated s3trigger entry.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Trigger {
    item: Item,
    delay: f64,
}

impl S3Trigger {
    /// Validates an entry: required keys, no unknown keys (x-* aside),
    /// `job_id` a string or list of strings, `delay` a duration within
    /// `0..=max_delay_secs`.
    pub fn from_item(mut item: Item, max_delay_secs: f64) -> Result<Self, SpecError> {
        require(
            &item,
            KIND,
            &["trigger_id", "bucket", "prefix", "job_id", "enabled"],
        )?;
        let unknown = unknown_keys(&item, KNOWN);
        if !unknown.is_empty() {
            return Err(SpecError::Unexpected {
                kind: KIND,
                keys: unknown.join(", "),
            });
        }
        for field in ["trigger_id", "bucket", "prefix"] {
            string_field(&item, KIND, field)?;
        }
        let field_error = |field: &str, reason: String| SpecError::Field {
            kind: KIND,
            field: field.into(),
            reason,
        };
        match item.get("job_id") {
            Some(Value::String(_)) => {}
            Some(Value::Array(ids)) if ids.iter().all(Value::is_string) => {}
            other => {
                return Err(field_error(
                    "job_id",
                    format!(
                        "must be a string or list of strings, not {}",
                        other.unwrap_or(&Value::Null)
                    ),
                ));
            }
        }
        for field in ["globals", "parameters"] {
            if item
                .get(field)
                .is_some_and(|v| !v.is_object() && !v.is_null())
            {
                return Err(field_error(field, "must be a map".into()));
            }
        }
        item.entry("jinja").or_insert(Value::Bool(true));
        let delay = match item.get("delay") {
            None | Some(Value::Null) => 0.0,
            Some(v) => units::duration_value(v).map_err(|e| field_error("delay", e.to_string()))?,
        };
        if !(0.0..=max_delay_secs).contains(&delay) {
            return Err(field_error(
                "delay",
                format!("must be 0 to {max_delay_secs} seconds, not {delay}"),
            ));
        }
        Ok(Self { item, delay })
    }

    /// The SQS delay in whole seconds (truncated).
    pub fn delay_secs(&self) -> u32 {
        self.delay as u32
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

    fn trig(v: Value) -> Result<S3Trigger, SpecError> {
        S3Trigger::from_item(v.as_object().cloned().unwrap_or_default(), 900.0)
    }

    #[test]
    fn s3trigger_rules() {
        let base = json!({"trigger_id": "t", "bucket": "b", "prefix": "p", "job_id": ["a", "b"],
                          "enabled": true, "delay": "1m", "x-note": 1});
        assert_eq!(trig(base.clone()).map(|t| t.delay_secs()), Ok(60));
        let mut bad = base.clone();
        bad["if_colour"] = json!("red");
        assert_eq!(
            trig(bad).err().map(|e| e.to_string()).as_deref(),
            Some("Bad s3trigger: Unexpected keys: if_colour")
        );
        let mut bad = base.clone();
        bad["delay"] = json!("16m");
        assert!(trig(bad).is_err());
        let mut bad = base;
        bad["job_id"] = json!([1]);
        assert!(trig(bad).is_err());
    }
}
