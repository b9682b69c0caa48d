//! The items lava keeps in its tables (realm, job, connection, s3trigger,
//! state item, event record), read from plain JSON maps and validated as the
//! original lava validates them.

mod connection;
mod event;
mod job;
mod realm;
mod s3trigger;
mod state;

pub use connection::Connection;
pub use event::{EventHeader, EventRecord, LogEntry, Status};
pub use job::{Enabled, JOB_KEYS, JobSpec};
pub use realm::Realm;
pub use s3trigger::S3Trigger;
pub use state::{BadStateItem, StateItem, StateType};

use serde_json::{Map, Value};

/// A table item as a JSON map (DynamoDB items are converted at the seam).
pub type Item = Map<String, Value>;

/// An item that does not satisfy its table's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// No item with this key.
    #[error("No such {kind}")]
    NotFound {
        /// `job`, `realm`, `connection`, …
        kind: &'static str,
    },
    /// Required keys are absent (sorted, comma separated).
    #[error("Bad {kind} record: Missing keys: {keys}")]
    Missing {
        /// `job`, `realm`, `connection`, …
        kind: &'static str,
        /// The missing keys.
        keys: String,
    },
    /// Keys the table does not allow.
    #[error("Bad {kind}: Unexpected keys: {keys}")]
    Unexpected {
        /// `state item`, `s3trigger`, …
        kind: &'static str,
        /// The offending keys.
        keys: String,
    },
    /// A field holds a value of the wrong type or form.
    #[error("Bad {kind} record: {field}: {reason}")]
    Field {
        /// `job`, `realm`, …
        kind: &'static str,
        /// The field name.
        field: String,
        /// What is wrong, naming the value.
        reason: String,
    },
    /// A job declares a global whose name starts with `lava`.
    #[error("Reserved global: {0}")]
    ReservedGlobal(String),
}

/// True for names lava ignores on validation: `x-*` and `X-*`.
pub fn is_ignored_field(name: &str) -> bool {
    name.starts_with("x-") || name.starts_with("X-")
}

/// Fails with [`SpecError::Missing`] naming every absent required key.
fn require(item: &Item, kind: &'static str, required: &[&str]) -> Result<(), SpecError> {
    let mut missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|k| !item.contains_key(*k))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort_unstable();
    Err(SpecError::Missing {
        kind,
        keys: missing.join(", "),
    })
}

/// Keys of `item` outside `known` that are not `x-*`, sorted.
fn unknown_keys(item: &Item, known: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = item
        .keys()
        .filter(|k| !known.contains(&k.as_str()) && !is_ignored_field(k))
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// A required string field.
fn string_field(item: &Item, kind: &'static str, field: &str) -> Result<String, SpecError> {
    match item.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        other => Err(SpecError::Field {
            kind,
            field: field.to_string(),
            reason: format!(
                "must be a string, not {}",
                other.map_or("nothing".into(), Value::to_string)
            ),
        }),
    }
}

/// An optional string field; NULL counts as absent.
fn opt_string(item: &Item, kind: &'static str, field: &str) -> Result<Option<String>, SpecError> {
    match item.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => string_field(item, kind, field).map(Some),
    }
}

/// An optional map field; absent, NULL and empty give an empty map.
fn map_field(
    item: &Item,
    kind: &'static str,
    field: &str,
) -> Result<Map<String, Value>, SpecError> {
    match item.get(field) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(other) => Err(SpecError::Field {
            kind,
            field: field.to_string(),
            reason: format!("must be a map, not {other}"),
        }),
    }
}
