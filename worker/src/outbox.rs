//! The local backend's stand-in for SNS and SES: each notification the
//! `sns` and `email` actions would send through AWS is appended as one JSON
//! line to `<DIR>/notifications.jsonl`, so a local realm can be checked
//! without AWS.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// `<DIR>/notifications.jsonl`.
#[derive(Debug, Clone)]
pub struct Outbox {
    path: PathBuf,
}

impl Outbox {
    /// The outbox of the local backend rooted at `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join("notifications.jsonl"),
        }
    }

    /// Appends one record (`service` and `time` are added).
    pub async fn append(
        &self,
        service: &str,
        mut record: Map<String, Value>,
    ) -> Result<(), String> {
        record.insert("service".into(), Value::String(service.into()));
        record.insert(
            "time".into(),
            Value::String(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        );
        let mut line = Value::Object(record).to_string();
        line.push('\n');
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            // One write on an O_APPEND file: lines from several processes do not interleave.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| f.write_all(line.as_bytes()))
                .map_err(|e| format!("{}: {e}", path.display()))
        })
        .await
        .map_err(|e| format!("outbox: {e}"))?
    }
}
