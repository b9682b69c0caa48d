//! The state manager: small typed values (`json`, `raw`, `secure`) with an
//! expiry in `lava.<realm>.state`, read when a job's `state` map is
//! expanded and by `lava-state get`, written by the `state` action and by
//! `lava-state put`. Items have the original's shape, so either lava reads
//! what the other wrote; `secure` values go through the key seam
//! ([`Kms`]): KMS on AWS, a realm key file on the local backend.

use serde_json::{Map, Value};

use crate::dispatch::message::python_json;
use crate::spec::{BadStateItem, StateItem, StateType};
use crate::store::item::BINARY_KEY;
use crate::store::kms::MAX_PLAINTEXT;
use crate::store::{Key, Kms, StoreError, Table, Tables};
use crate::timestamp;

/// A state read or write that failed. Read errors name the item, and the
/// field at fault where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The stored item is not a valid state item.
    #[error("{state_id}: {error}")]
    BadItem {
        /// The item id.
        state_id: String,
        /// What is wrong.
        error: BadStateItem,
    },
    /// A `json` or `secure` value that is not JSON text.
    #[error("{0}: value: Bad JSON value")]
    BadJson(String),
    /// A `secure` item whose value is not binary.
    #[error("{0}: value: Expected DynamoDB Binary type for secure state item value")]
    NotBinary(String),
    /// A `secure` value the key service would not decrypt.
    #[error("{state_id}: value: Cannot decrypt secure state item: {error}")]
    Decrypt {
        /// The item id.
        state_id: String,
        /// The key service's answer.
        error: StoreError,
    },
    /// A state id lava reserves.
    #[error("Bad state_id: Values beginning with \"lava\" are reserved")]
    Reserved,
    /// An unknown state type.
    #[error("{0}: No such state type")]
    BadType(String),
    /// A value that cannot be stored as asked.
    #[error("Bad value: {0}")]
    BadValue(String),
    /// A `secure` value the key service would not encrypt.
    #[error("Cannot encrypt state item: {0}")]
    Encrypt(StoreError),
    /// Reading the item failed.
    #[error("Cannot get state item {state_id}: {error}")]
    Get {
        /// The item id.
        state_id: String,
        /// The backend's answer.
        error: StoreError,
    },
    /// Writing the item failed.
    #[error("Cannot put state item: {0}")]
    Store(StoreError),
}

/// Whether lava reserves a state id: those beginning with `lava`, in any case.
pub fn is_reserved(state_id: &str) -> bool {
    state_id
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("lava"))
}

/// The state type called `name` ("<name>: No such state type" for others).
pub fn state_type(name: &str) -> Result<StateType, StateError> {
    StateType::from_name(name).ok_or_else(|| StateError::BadType(name.to_string()))
}

/// The key `secure` values use when none is given: the realm's `sys` key.
pub fn default_kms_key(realm: &str) -> String {
    format!("alias/lava-{realm}-sys")
}

/// An item's time to live in seconds: `given` unless it is absent or zero
/// (zero means the default, never "expire now"), else `state_ttl`; at most
/// `max_ttl`. All in seconds.
pub fn ttl_seconds(given: Option<f64>, state_ttl: f64, max_ttl: f64) -> i64 {
    let ttl = given.filter(|t| *t != 0.0).unwrap_or(state_ttl);
    // Capped, never converted to a `Duration`: any number is a valid ttl.
    ttl.min(max_ttl) as i64
}

/// Reads a state value, decoded; `None` when absent or expired (an item
/// whose `ttl` has passed reads as absent on every backend, whenever TTL
/// deletion runs).
pub async fn read(
    tables: &dyn Tables,
    kms: &dyn Kms,
    realm: &str,
    state_id: &str,
) -> Result<Option<Value>, StateError> {
    let item = tables
        .get(realm, Table::State, &Key::new(state_id), true)
        .await
        .map_err(|error| StateError::Get {
            state_id: state_id.to_string(),
            error,
        })?;
    let Some(item) = item else {
        return Ok(None);
    };
    let state = StateItem::from_item(&item).map_err(|error| StateError::BadItem {
        state_id: state_id.to_string(),
        error,
    })?;
    if state.ttl < chrono::Utc::now().timestamp() {
        tracing::debug!(state_id, "state item expired");
        return Ok(None);
    }
    let bad_json = || StateError::BadJson(state_id.to_string());
    match state.state_type {
        StateType::Raw => Ok(Some(state.value)),
        StateType::Json => match &state.value {
            Value::String(text) => serde_json::from_str(text).map(Some).map_err(|_| bad_json()),
            _ => Err(bad_json()),
        },
        StateType::Secure => {
            let Some(blob) = state
                .value
                .as_object()
                .and_then(crate::store::item::binary_bytes)
            else {
                return Err(StateError::NotBinary(state_id.to_string()));
            };
            let plain = kms
                .decrypt(realm, &blob)
                .await
                .map_err(|error| StateError::Decrypt {
                    state_id: state_id.to_string(),
                    error,
                })?;
            serde_json::from_slice(&plain)
                .map(Some)
                .map_err(|_| bad_json())
        }
    }
}

/// A value to store.
#[derive(Debug, Clone, PartialEq)]
pub struct StateWrite {
    /// Item id (must not start with `lava`).
    pub state_id: String,
    /// The value.
    pub value: Value,
    /// How it is stored.
    pub state_type: StateType,
    /// Time to live in seconds ([`ttl_seconds`]).
    pub ttl_secs: i64,
    /// Who wrote it; omitted when empty.
    pub publisher: String,
    /// `secure` only: the key (ARN or `alias/…`); `None` is
    /// [`default_kms_key`]. Ignored for the other types.
    pub kms_key: Option<String>,
}

/// Writes (replaces) a state item.
pub async fn write(
    tables: &dyn Tables,
    kms: &dyn Kms,
    realm: &str,
    w: &StateWrite,
) -> Result<(), StateError> {
    if is_reserved(&w.state_id) {
        return Err(StateError::Reserved);
    }
    let value = match w.state_type {
        // Python's `json.dumps` layout, as the original stores it.
        StateType::Json => Value::String(python_json(&w.value)),
        StateType::Raw => {
            if has_binary_marker(&w.value) {
                return Err(StateError::BadValue(format!(
                    "a raw value may not hold a map whose only key is {BINARY_KEY}"
                )));
            }
            w.value.clone()
        }
        StateType::Secure => {
            let plaintext = python_json(&w.value);
            if plaintext.len() > MAX_PLAINTEXT {
                return Err(StateError::BadValue(format!(
                    "a secure value is at most {MAX_PLAINTEXT} bytes as JSON, not {}",
                    plaintext.len()
                )));
            }
            let key = w
                .kms_key
                .clone()
                .filter(|k| !k.is_empty())
                .unwrap_or_else(|| default_kms_key(realm));
            let blob = kms
                .encrypt(realm, &key, plaintext.as_bytes())
                .await
                .map_err(StateError::Encrypt)?;
            crate::store::item::binary_value(&blob)
        }
    };
    let now = timestamp::now_local();
    let mut item = Map::new();
    item.insert("state_id".into(), Value::String(w.state_id.clone()));
    item.insert("type".into(), Value::String(w.state_type.name().into()));
    item.insert("value".into(), value);
    item.insert(
        "timestamp".into(),
        Value::String(timestamp::isoformat(&now)),
    );
    item.insert("ttl".into(), Value::from(now.timestamp() + w.ttl_secs));
    if !w.publisher.is_empty() {
        item.insert("publisher".into(), Value::String(w.publisher.clone()));
    }
    tables
        .put(realm, Table::State, &item)
        .await
        .map_err(StateError::Store)?;
    Ok(())
}

/// Whether a value holds a map the tables seam would store as binary.
fn has_binary_marker(value: &Value) -> bool {
    match value {
        Value::Array(list) => list.iter().any(has_binary_marker),
        Value::Object(map) => {
            crate::store::item::binary_bytes(map).is_some() || map.values().any(has_binary_marker)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kms::LocalKms;
    use crate::store::local;
    use serde_json::json;

    #[test]
    fn reserved_ids_and_ttls() {
        for id in ["lava", "LAVA/x", "Lava_tick", "lavabo"] {
            assert!(is_reserved(id), "{id}");
        }
        for id in ["sid", "la", "", "my-lava", "lavé", "lavender"] {
            assert!(!is_reserved(id), "{id}");
        }
        let day = 86_400.0;
        assert_eq!(ttl_seconds(None, 7.0 * day, 366.0 * day), 7 * 86_400);
        assert_eq!(
            ttl_seconds(Some(0.0), 7.0 * day, 366.0 * day),
            7 * 86_400,
            "0 is the default, not expire-now"
        );
        assert_eq!(ttl_seconds(Some(60.5), 7.0 * day, 366.0 * day), 60);
        assert_eq!(
            ttl_seconds(Some(1e20), 7.0 * day, 366.0 * day),
            366 * 86_400
        );
        assert_eq!(default_kms_key("prod"), "alias/lava-prod-sys");
        assert_eq!(
            state_type("yaml").err().map(|e| e.to_string()),
            Some("yaml: No such state type".into())
        );
    }

    async fn local_store() -> (tempfile::TempDir, local::LocalStore, LocalKms) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = local::open(dir.path())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let tables: &dyn Tables = &store.tables;
        tables
            .create_realm_tables("r")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let kms = LocalKms::new(dir.path());
        (dir, store, kms)
    }

    fn put(id: &str, state_type: StateType, value: Value) -> StateWrite {
        StateWrite {
            state_id: id.into(),
            value,
            state_type,
            ttl_secs: 3600,
            publisher: "demo/p".into(),
            kms_key: None,
        }
    }

    #[tokio::test]
    async fn every_type_round_trips_with_the_original_item_shape() {
        let (_dir, store, kms) = local_store().await;
        let value = json!({"lines": "45", "n": 3, "ok": true, "café": null});
        for t in [StateType::Json, StateType::Raw, StateType::Secure] {
            let id = format!("sid-{}", t.name());
            let written = write(&store.tables, &kms, "r", &put(&id, t, value.clone())).await;
            assert_eq!(written, Ok(()));
            assert_eq!(
                read(&store.tables, &kms, "r", &id).await,
                Ok(Some(value.clone())),
                "{t:?}"
            );
            let item = store
                .tables
                .get("r", Table::State, &Key::new(&id), true)
                .await;
            let item = item.ok().flatten().unwrap_or_default();
            let keys: Vec<&str> = item.keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                ["publisher", "state_id", "timestamp", "ttl", "type", "value"]
            );
            assert_eq!(item["type"], json!(t.name()));
            match t {
                StateType::Json => assert_eq!(
                    item["value"],
                    json!(r#"{"lines": "45", "n": 3, "ok": true, "caf\u00e9": null}"#)
                ),
                StateType::Raw => assert_eq!(item["value"], value),
                StateType::Secure => assert!(item["value"].get(BINARY_KEY).is_some()),
            }
        }
        assert_eq!(read(&store.tables, &kms, "r", "absent").await, Ok(None));
    }

    #[tokio::test]
    async fn bad_items_name_the_item_and_field() {
        let (_dir, store, kms) = local_store().await;
        let ttl = chrono::Utc::now().timestamp() + 600;
        let cases = [
            (
                json!({"state_id": "s1", "type": "secure", "value": "clear", "timestamp": "t", "ttl": ttl}),
                "s1: value: Expected DynamoDB Binary type for secure state item value",
            ),
            (
                json!({"state_id": "s2", "type": "secure", "value": {"$binary": "AAEC"}, "timestamp": "t", "ttl": ttl}),
                "s2: value: Cannot decrypt secure state item: InvalidCiphertextException: not a ciphertext",
            ),
            (
                json!({"state_id": "s3", "type": "json", "value": "{", "timestamp": "t", "ttl": ttl}),
                "s3: value: Bad JSON value",
            ),
            (
                json!({"state_id": "s4", "type": "json", "value": "1", "timestamp": "t"}),
                "s4: Bad state item: Missing keys: ttl",
            ),
            (
                json!({"state_id": "s5", "type": "gzip", "value": "1", "timestamp": "t", "ttl": ttl}),
                "s5: Unknown state type: gzip",
            ),
        ];
        for (item, want) in cases {
            let id = item["state_id"].as_str().unwrap_or_default().to_string();
            let item = item.as_object().cloned().unwrap_or_default();
            assert!(store.tables.put("r", Table::State, &item).await.is_ok());
            let got = read(&store.tables, &kms, "r", &id).await;
            let got = got.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(got.starts_with(want), "{got}");
        }
    }

    #[tokio::test]
    async fn writes_refuse_reserved_ids_and_oversized_secrets() {
        let (_dir, store, kms) = local_store().await;
        let reserved = put("LavaX", StateType::Json, json!(1));
        let reserved = write(&store.tables, &kms, "r", &reserved).await;
        assert_eq!(reserved, Err(StateError::Reserved));
        let big = json!("x".repeat(MAX_PLAINTEXT));
        let err = write(&store.tables, &kms, "r", &put("s", StateType::Secure, big)).await;
        assert!(matches!(err, Err(StateError::BadValue(_))), "{err:?}");
        let marker = json!({"a": [{"$binary": "AAEC"}]});
        let err = write(&store.tables, &kms, "r", &put("s", StateType::Raw, marker)).await;
        assert!(matches!(err, Err(StateError::BadValue(_))), "{err:?}");
    }
}
