//! The state manager: small typed values with an expiry in
//! `lava.<realm>.state`, read when a job's `state` map is expanded and
//! written by the `state` action.

use serde_json::{Map, Value};

use crate::spec::{SpecError, StateItem, StateType};
use crate::store::{Key, StoreError, Table, Tables};
use crate::timestamp;

/// A state read or write that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The stored item is not a valid state item.
    #[error("{state_id}: {error}")]
    BadItem {
        /// The item id.
        state_id: String,
        /// What is wrong.
        error: SpecError,
    },
    /// A `json` item whose value is not JSON text.
    #[error("{0}: Bad JSON value")]
    BadJson(String),
    /// A `secure` item: KMS decryption is not built yet.
    #[error("{0}: secure state items are not supported yet")]
    Secure(String),
    /// A state id lava reserves.
    #[error("Bad state_id: Values beginning with \"lava\" are reserved")]
    Reserved,
    /// An unknown state type.
    #[error("{0}: No such state type")]
    BadType(String),
    /// The backend failed.
    #[error("Cannot put state item: {0}")]
    Store(#[from] StoreError),
}

/// Reads a state value; `None` when absent or expired (an item whose `ttl`
/// has passed reads as absent on every backend, whenever TTL deletion runs).
pub async fn read(
    tables: &dyn Tables,
    realm: &str,
    state_id: &str,
) -> Result<Option<Value>, StateError> {
    let Some(item) = tables
        .get(realm, Table::State, &Key::new(state_id), true)
        .await?
    else {
        return Ok(None);
    };
    let state = StateItem::from_item(&item).map_err(|error| StateError::BadItem {
        state_id: state_id.to_string(),
        error,
    })?;
    if state
        .ttl
        .is_some_and(|ttl| ttl < chrono::Utc::now().timestamp())
    {
        tracing::debug!(state_id, "state item expired");
        return Ok(None);
    }
    match state.state_type {
        StateType::Raw => Ok(Some(state.value)),
        StateType::Json => match &state.value {
            Value::String(text) => serde_json::from_str(text)
                .map(Some)
                .map_err(|_| StateError::BadJson(state_id.to_string())),
            _ => Err(StateError::BadJson(state_id.to_string())),
        },
        StateType::Secure => Err(StateError::Secure(state_id.to_string())),
    }
}

/// A value to store.
#[derive(Debug, Clone, PartialEq)]
pub struct StateWrite {
    /// Item id (must not start with `lava`).
    pub state_id: String,
    /// The value.
    pub value: Value,
    /// `json` or `raw` (`secure` is not built yet).
    pub state_type: String,
    /// Time to live in seconds (already capped by the caller).
    pub ttl_secs: i64,
    /// Who wrote it; omitted when empty.
    pub publisher: String,
}

/// Writes (replaces) a state item.
pub async fn write(tables: &dyn Tables, realm: &str, w: &StateWrite) -> Result<(), StateError> {
    if w.state_id.to_ascii_lowercase().starts_with("lava") {
        return Err(StateError::Reserved);
    }
    let value = match w.state_type.as_str() {
        "json" => Value::String(w.value.to_string()),
        "raw" => w.value.clone(),
        "secure" => return Err(StateError::Secure(w.state_id.clone())),
        other => return Err(StateError::BadType(other.to_string())),
    };
    let now = timestamp::now_local();
    let mut item = Map::new();
    item.insert("state_id".into(), Value::String(w.state_id.clone()));
    item.insert("type".into(), Value::String(w.state_type.clone()));
    item.insert("value".into(), value);
    item.insert(
        "timestamp".into(),
        Value::String(timestamp::isoformat(&now)),
    );
    item.insert("ttl".into(), Value::from(now.timestamp() + w.ttl_secs));
    if !w.publisher.is_empty() {
        item.insert("publisher".into(), Value::String(w.publisher.clone()));
    }
    tables.put(realm, Table::State, &item).await?;
    Ok(())
}
