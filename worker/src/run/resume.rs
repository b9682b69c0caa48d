//! A planned retry waiting in a run's log. An attempt that fails with
//! iterations left records `retrying` and, with `RETRY_MODE=delayed`,
//! returns its message to the queue for the iteration delay; the delivery
//! that finds that entry last goes on with the same run: the next
//! iteration, the run's original start, no second `starting`.

use chrono::{DateTime, FixedOffset};
use lava_common::timestamp;
use serde_json::Value;

use super::record::INTERRUPTED;

/// Where a run with a planned retry goes on.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Resume {
    /// The iteration to run next.
    pub(super) iteration: i64,
    /// The time of the run's `starting` entry.
    pub(super) ts_start: DateTime<FixedOffset>,
    /// The time of the `retrying` entry: the next iteration is due the
    /// iteration delay after it.
    pub(super) retried_at: DateTime<FixedOffset>,
}

/// The planned retry `log` ends with, if it does: its last entry is a
/// `retrying` that is an attempt's outcome (not a worker's shutdown).
pub(super) fn pending(log: &[Value]) -> Option<Resume> {
    fn status(e: &Value) -> &str {
        e.get("status").and_then(Value::as_str).unwrap_or_default()
    }
    let time = |e: &Value| {
        e.get("ts_event")
            .and_then(Value::as_str)
            .and_then(timestamp::parse_lenient)
    };
    let last = log.last()?;
    if status(last) != "retrying" || last.get("info").and_then(Value::as_str) == Some(INTERRUPTED) {
        return None;
    }
    let start = log.iter().rposition(|e| status(e) == "starting")?;
    let attempts = log[start..]
        .iter()
        .filter(|e| status(e) == "running")
        .count();
    Some(Resume {
        iteration: i64::try_from(attempts).unwrap_or(i64::MAX - 1) + 1,
        ts_start: time(&log[start])?,
        retried_at: time(last)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(status: &str, ts: &str, info: Value) -> Value {
        json!({"status": status, "ts_event": ts, "info": info})
    }

    #[test]
    fn a_planned_retry_goes_on_with_the_next_iteration() {
        let failure = json!({"error": "exit 1", "error_data": null});
        let log = vec![
            entry("starting", "2026-12-07T10:00:00+00:00", Value::Null),
            entry("running", "2026-12-07T10:00:01+00:00", json!("Iteration 1")),
            entry("retrying", "2026-12-07T10:00:02+00:00", failure.clone()),
            entry("running", "2026-12-07T10:01:02+00:00", json!("Iteration 2")),
            entry("retrying", "2026-12-07T10:01:03+00:00", failure.clone()),
        ];
        let resume = pending(&log).unwrap_or_else(|| panic!("no retry found"));
        assert_eq!(resume.iteration, 3);
        assert_eq!(
            timestamp::isoformat(&resume.ts_start),
            "2026-12-07T10:00:00+00:00"
        );
        assert_eq!(
            timestamp::isoformat(&resume.retried_at),
            "2026-12-07T10:01:03+00:00"
        );
        // Only the attempts since the run's last start count.
        let mut again = log.clone();
        again.insert(
            3,
            entry("starting", "2026-12-07T10:01:00+00:00", Value::Null),
        );
        assert_eq!(pending(&again).map(|r| r.iteration), Some(2));
    }

    #[test]
    fn nothing_else_is_a_planned_retry() {
        let start = entry("starting", "2026-12-07T10:00:00+00:00", Value::Null);
        let running = entry("running", "2026-12-07T10:00:01+00:00", json!("Iteration 1"));
        let handed_on = entry("retrying", "2026-12-07T10:00:02+00:00", json!(INTERRUPTED));
        assert_eq!(pending(&[]), None);
        assert_eq!(pending(&[start.clone(), running.clone()]), None);
        assert_eq!(pending(&[start, running, handed_on]), None);
    }
}
