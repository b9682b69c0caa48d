//! What actions share about their fields: the one check of required and
//! allowed keys, and rendering an optional string field.

use serde_json::{Map, Value};

use super::ActionContext;

/// The fields an action takes.
#[derive(Debug, Clone, Copy)]
pub struct ActionKeys {
    /// Fields that must be present.
    pub required: &'static [&'static str],
    /// Every field allowed (with `action` and the required ones); `None`
    /// when any other field is accepted, as the original accepts them.
    pub allowed: Option<&'static [&'static str]>,
}

impl ActionKeys {
    /// "Unexpected keys: …" first, then "Missing keys: …", each sorted.
    pub fn check(&self, fields: &Map<String, Value>) -> Result<(), String> {
        if let Some(allowed) = self.allowed {
            let mut unexpected: Vec<&str> = fields
                .keys()
                .map(String::as_str)
                .filter(|k| *k != "action" && !allowed.contains(k) && !self.required.contains(k))
                .collect();
            if !unexpected.is_empty() {
                unexpected.sort_unstable();
                return Err(format!("Unexpected keys: {}", unexpected.join(", ")));
            }
        }
        let mut missing: Vec<&str> = self
            .required
            .iter()
            .copied()
            .filter(|k| !fields.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            missing.sort_unstable();
            return Err(format!("Missing keys: {}", missing.join(", ")));
        }
        Ok(())
    }
}

impl ActionContext<'_> {
    /// A field that [`ActionKeys::check`] has found present.
    pub(super) fn field(&self, key: &str) -> &Value {
        self.fields.get(key).unwrap_or(&Value::Null)
    }

    /// Renders a template with the action's context, off the async
    /// runtime's threads.
    pub(super) async fn render(&self, template: &str) -> Result<String, String> {
        self.services
            .renderer
            .render_str_async(template, &self.ctx)
            .await
            .map_err(|e| e.to_string())
    }

    /// Renders an optional string field ("Bad <key>: …"), or gives the default.
    pub(super) async fn rendered(&self, key: &str, default: String) -> Result<String, String> {
        match self.fields.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::String(t)) => self.render(t).await.map_err(|e| format!("Bad {key}: {e}")),
            Some(other) => Err(format!("Bad {key}: {other} is not a string")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unexpected_then_missing() {
        let keys = ActionKeys {
            required: &["state_id", "value"],
            allowed: Some(&["ttl"]),
        };
        let fields = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert_eq!(
            keys.check(&fields(json!({"action": "state", "zz": 1, "b": 2}))),
            Err("Unexpected keys: b, zz".into())
        );
        assert_eq!(
            keys.check(&fields(json!({"action": "state", "ttl": 1}))),
            Err("Missing keys: state_id, value".into())
        );
        let open = ActionKeys {
            required: &["message"],
            allowed: None,
        };
        assert!(
            open.check(&fields(json!({"action": "log", "message": "m", "x": 1})))
                .is_ok()
        );
    }
}
