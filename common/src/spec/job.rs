//! A job specification: one item of `lava.<realm>.jobs`.

use serde_json::{Map, Value};

use super::{Item, SpecError, map_field, opt_string, require, string_field, unknown_keys};

const KIND: &str = "job";
const REQUIRED: &[&str] = &["job_id", "type", "worker", "payload"];
/// Every field a job item may have (others warn; `x-*` are ignored).
pub const JOB_KEYS: &[&str] = &[
    "job_id",
    "type",
    "worker",
    "payload",
    "enabled",
    "parameters",
    "globals",
    "description",
    "owner",
    "dispatcher",
    "schedule",
    "max_tries",
    "max_run_delay",
    "iteration_limit",
    "iteration_delay",
    "on_success",
    "on_fail",
    "on_retry",
    "state",
    "event_log",
    "cw_metrics",
];

/// The `enabled` field of a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Enabled {
    /// A static switch (also `false` when the field is absent).
    Static(bool),
    /// A Jinja template rendered at run time; the job runs when the result,
    /// trimmed and lower-cased, is `true`.
    Template(String),
    /// Any other type: treated as enabled (a quirk of the original).
    Other(Value),
}

/// A validated job specification with the worker's defaults applied. The
/// item itself is kept (with defaults filled in) because Jinja sees it whole.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    item: Item,
    /// Warnings found while reading it (unknown keys, missing owner or description).
    pub warnings: Vec<String>,
}

impl JobSpec {
    /// Validates a jobs-table item as the worker and dispatcher read it:
    /// required keys, reserved globals, field types; unknown keys and a
    /// missing owner or description only warn.
    pub fn from_item(mut item: Item) -> Result<Self, SpecError> {
        require(&item, KIND, REQUIRED)?;
        for field in ["job_id", "type", "worker"] {
            string_field(&item, KIND, field)?;
        }
        opt_string(&item, KIND, "dispatcher")?;
        let mut warnings = Vec::new();
        let unknown = unknown_keys(&item, JOB_KEYS);
        if !unknown.is_empty() {
            warnings.push(format!("Unexpected keys: {}", unknown.join(", ")));
        }
        for field in ["owner", "description"] {
            let present = matches!(item.get(field), Some(Value::String(s)) if !s.is_empty());
            if !present {
                if item
                    .get(field)
                    .is_some_and(|v| !v.is_null() && !v.is_string())
                {
                    return Err(SpecError::Field {
                        kind: KIND,
                        field: field.into(),
                        reason: "must be a string".into(),
                    });
                }
                warnings.push(format!("Missing {field}"));
                item.insert(field.into(), Value::String(String::new()));
            }
        }
        for field in ["parameters", "globals", "state"] {
            let map = map_field(&item, KIND, field)?;
            item.insert(field.into(), Value::Object(map));
        }
        item.entry("enabled").or_insert(Value::Bool(false));
        item.entry("max_tries").or_insert(Value::from(0));
        if let Some(Value::Object(globals)) = item.get("globals")
            && let Some(name) = globals
                .keys()
                .find(|k| k.to_ascii_lowercase().starts_with("lava"))
        {
            return Err(SpecError::ReservedGlobal(name.clone()));
        }
        Ok(Self { item, warnings })
    }

    fn str_of(&self, field: &str) -> &str {
        self.item
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The job id.
    pub fn job_id(&self) -> &str {
        self.str_of("job_id")
    }

    /// The job type (`cmd`, `exe`, …), not checked here: an unknown type
    /// fails the run, not the lookup.
    pub fn job_type(&self) -> &str {
        self.str_of("type")
    }

    /// The worker fleet that must run it.
    pub fn worker(&self) -> &str {
        self.str_of("worker")
    }

    /// The owner (`""` when missing).
    pub fn owner(&self) -> &str {
        self.str_of("owner")
    }

    /// The dispatcher whose crontab carries its schedule.
    pub fn dispatcher(&self) -> Option<&str> {
        self.item.get("dispatcher").and_then(Value::as_str)
    }

    /// The type-specific payload (may be NULL).
    pub fn payload(&self) -> &Value {
        self.item.get("payload").unwrap_or(&Value::Null)
    }

    /// The `enabled` switch.
    pub fn enabled(&self) -> Enabled {
        match self.item.get("enabled") {
            None | Some(Value::Null) => Enabled::Static(false),
            Some(Value::Bool(b)) => Enabled::Static(*b),
            Some(Value::String(s)) => Enabled::Template(s.clone()),
            Some(other) => Enabled::Other(other.clone()),
        }
    }

    /// Job parameters (empty when absent).
    pub fn parameters(&self) -> &Map<String, Value> {
        self.map_of("parameters")
    }

    /// Job globals (empty when absent).
    pub fn globals(&self) -> &Map<String, Value> {
        self.map_of("globals")
    }

    /// State ids and their defaults (empty when absent).
    pub fn state(&self) -> &Map<String, Value> {
        self.map_of("state")
    }

    fn map_of(&self, field: &str) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.item
            .get(field)
            .and_then(Value::as_object)
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }

    /// A field as stored, for fields the worker checks at run time
    /// (`max_run_delay`, `iteration_limit`, `on_fail`, …).
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.item.get(name)
    }

    /// The whole item with defaults applied, as Jinja sees it.
    pub fn item(&self) -> &Item {
        &self.item
    }

    /// Consumes the spec, giving back the item with defaults applied.
    pub fn into_item(self) -> Item {
        self.item
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(v: Value) -> Result<JobSpec, SpecError> {
        JobSpec::from_item(v.as_object().cloned().unwrap_or_default())
    }

    #[test]
    fn minimal_job_gets_defaults() {
        let j = job(json!({"job_id": "a/b", "type": "cmd", "worker": "core", "payload": null}));
        let j = j.expect("valid");
        assert_eq!(j.job_id(), "a/b");
        assert_eq!(j.enabled(), Enabled::Static(false));
        assert_eq!(j.field("max_tries"), Some(&json!(0)));
        assert!(j.parameters().is_empty() && j.globals().is_empty() && j.state().is_empty());
        assert_eq!(j.owner(), "");
        assert_eq!(j.warnings, vec!["Missing owner", "Missing description"]);
    }

    #[test]
    fn missing_keys_are_sorted_and_x_fields_ignored() {
        let err = job(json!({"type": "cmd", "x-payload": 1})).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("Bad job record: Missing keys: job_id, payload, worker")
        );
        let j = job(json!({"job_id": "j", "type": "cmd", "worker": "w", "payload": "x",
                           "owner": "o", "description": "d", "x-lava-chk": "abc", "X-y": 1, "colour": 2}))
        .expect("valid");
        assert_eq!(j.warnings, vec!["Unexpected keys: colour"]);
        assert_eq!(
            j.item().get("x-lava-chk"),
            Some(&json!("abc")),
            "x- fields stay visible"
        );
    }

    #[test]
    fn reserved_globals_rejected() {
        for name in ["lava", "LavaThing", "LAVA_X"] {
            let err = job(
                json!({"job_id": "j", "type": "cmd", "worker": "w", "payload": "x",
                                 "globals": {"ok": 1, name: 2}}),
            )
            .err();
            assert_eq!(err, Some(SpecError::ReservedGlobal(name.into())));
        }
        assert!(
            job(
                json!({"job_id": "j", "type": "cmd", "worker": "w", "payload": "x",
                           "globals": {"my_lava": 1}})
            )
            .is_ok()
        );
    }

    #[test]
    fn enabled_forms_and_type_errors() {
        let base = |e: Value| {
            job(json!({"job_id": "j", "type": "cmd", "worker": "w", "payload": "x", "enabled": e}))
        };
        assert_eq!(
            base(json!(true)).map(|j| j.enabled()),
            Ok(Enabled::Static(true))
        );
        assert_eq!(
            base(json!("{{ True }}")).map(|j| j.enabled()),
            Ok(Enabled::Template("{{ True }}".into()))
        );
        assert_eq!(
            base(json!(1)).map(|j| j.enabled()),
            Ok(Enabled::Other(json!(1)))
        );
        let err = job(json!({"job_id": "j", "type": "cmd", "worker": 7, "payload": "x"})).err();
        assert!(err.is_some_and(|e| e.to_string().contains("worker")));
        let err = job(
            json!({"job_id": "j", "type": "cmd", "worker": "w", "payload": "x", "parameters": [1]}),
        )
        .err();
        assert!(
            err.is_some_and(
                |e| e.to_string() == "Bad job record: parameters: must be a map, not [1]"
            )
        );
    }
}
