//! A run's history: one item of `lava.<realm>.events` per (job, run), with an
//! append-only `log` of event entries.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Status of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not run: disabled.
    Skipped,
    /// The run started.
    Starting,
    /// Refused before running.
    Rejected,
    /// `event_log` recorded.
    Logging,
    /// An attempt is running.
    Running,
    /// An attempt failed; another follows.
    Retrying,
    /// The run failed.
    Failed,
    /// The run succeeded.
    Complete,
    /// A post-job action failed.
    ActionFailed,
}

impl Status {
    /// True for statuses that end a run: a copy of its message received later
    /// is deleted, not run again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Complete | Status::Failed | Status::Rejected | Status::Skipped
        )
    }

    /// The names of the final statuses, as stored.
    pub const FINAL_NAMES: [&'static str; 4] = ["complete", "failed", "rejected", "skipped"];
}

/// One entry of an events item's `log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// Event time, local with offset, whole seconds.
    pub ts_event: String,
    /// Same instant, naive UTC `YYYY-MM-DDTHH:MM:SS`.
    pub tu_event: String,
    /// The event's status.
    pub status: Status,
    /// NULL, a string or a map, depending on the status.
    #[serde(default)]
    pub info: Value,
}

impl LogEntry {
    /// True when `entry`, a raw `log` element, is an entry with a final status.
    pub fn is_final_value(entry: &Value) -> bool {
        LogEntry::deserialize(entry).is_ok_and(|e| e.status.is_final())
    }
}

/// The attributes of an events item that every event write sets besides
/// the keys and the `log` entry: the latest event's status and times, and
/// who wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventHeader {
    /// Dispatch time from the message.
    pub ts_dispatch: String,
    /// Status of the latest event.
    pub status: Status,
    /// Latest event time.
    pub ts_event: String,
    /// Latest event time, naive UTC.
    pub tu_event: String,
    /// Expiry, epoch seconds; absent when the events TTL is off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    /// Worker name (null when empty).
    pub worker: Option<String>,
    /// EC2 instance id, or NULL off EC2.
    pub worker_id: Option<String>,
    /// Host name (null when empty).
    pub hostname: Option<String>,
    /// EC2 instance id (only on EC2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
}

/// An events-table item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Key.
    pub job_id: String,
    /// Key: the run's UUID.
    pub run_id: String,
    /// Status of the latest event.
    pub status: Status,
    /// Dispatch time from the message.
    pub ts_dispatch: String,
    /// Latest event time.
    pub ts_event: String,
    /// Latest event time, naive UTC.
    pub tu_event: String,
    /// Expiry, epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    /// Worker name.
    pub worker: String,
    /// EC2 instance id, or NULL off EC2.
    pub worker_id: Option<String>,
    /// EC2 instance id (only on EC2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Host name.
    pub hostname: String,
    /// Every event of the run, in order.
    pub log: Vec<LogEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spec_example_parses() {
        let item = json!({
          "job_id": "demo/list-s3", "run_id": "0f6c4d7e-5a0b-4a53-9a0e-1f7d2c9b8e11",
          "status": "complete", "ts_dispatch": "2024-05-01T12:00:00+10:00",
          "ts_event": "2024-05-01T12:00:07+10:00", "tu_event": "2024-05-01T02:00:07", "ttl": 1714701607,
          "worker": "core", "worker_id": null, "hostname": "h",
          "log": [{"ts_event": "2024-05-01T12:00:02+10:00", "tu_event": "2024-05-01T02:00:02", "status": "starting", "info": null},
                  {"ts_event": "2024-05-01T12:00:07+10:00", "tu_event": "2024-05-01T02:00:07", "status": "action_failed", "info": "x"}]
        });
        let rec: EventRecord = serde_json::from_value(item.clone()).expect("parses");
        assert_eq!(rec.log[1].status, Status::ActionFailed);
        assert!(!Status::ActionFailed.is_final() && Status::Rejected.is_final());
        for name in Status::FINAL_NAMES {
            let status: Status = serde_json::from_value(Value::String(name.into()))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(status.is_final(), "{name}");
        }
        assert_eq!(serde_json::to_value(&rec).ok(), Some(item));
    }
}
