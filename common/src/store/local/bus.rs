//! The event-bus seam on the local backend: each event is appended as one
//! JSON line to `<DIR>/events.jsonl`, in the shape
//! EventBridge delivers to its targets.

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::store::{BusEvent, EventBus, StoreError};

/// `<DIR>/events.jsonl`.
#[derive(Debug, Clone)]
pub struct LocalBus {
    path: PathBuf,
}

impl LocalBus {
    /// The bus of the local backend rooted at `dir`.
    pub fn new(dir: &std::path::Path) -> Self {
        Self {
            path: dir.join("events.jsonl"),
        }
    }
}

#[async_trait]
impl EventBus for LocalBus {
    async fn put(&self, event: &BusEvent) -> Result<(), StoreError> {
        let detail: Value = serde_json::from_str(&event.detail)
            .map_err(|e| StoreError::BadRequest(format!("event detail is not JSON: {e}")))?;
        let mut line = Map::new();
        line.insert("id".into(), Value::String(uuid::Uuid::new_v4().to_string()));
        line.insert(
            "time".into(),
            Value::String(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        );
        line.insert(
            "detail-type".into(),
            Value::String(event.detail_type.clone()),
        );
        line.insert("source".into(), Value::String(event.source.clone()));
        line.insert(
            "resources".into(),
            Value::Array(event.resources.iter().cloned().map(Value::String).collect()),
        );
        line.insert(
            "event-bus".into(),
            event.bus.clone().map_or(Value::Null, Value::String),
        );
        line.insert("detail".into(), detail);
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            // One write on an O_APPEND file: lines from several processes do not interleave.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("event bus: {e}")))?
    }
}
