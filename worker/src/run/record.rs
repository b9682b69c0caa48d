//! How a run ends in its events item: the final event (`rejected`,
//! `skipped`, `failed`, `complete`), written before the message may go.

use lava_common::spec::Status;
use lava_common::units;
use serde_json::Value;

use super::End;
use crate::events::{Mark, RunEvents, WriteError};

/// The `retrying` info of a run handed on by the worker's shutdown (no
/// outcome of its attempt: it counts against the retry budget).
pub(super) const INTERRUPTED: &str = "Interrupted by worker shutdown";

/// Writes a final `rejected` event; the message goes once it is recorded.
pub(super) async fn reject(events: &mut RunEvents, text: &str) -> End {
    tracing::error!("{text}");
    final_event(events, Status::Rejected, Value::String(text.to_string())).await
}

/// Writes a final event: the message is deleted once it is recorded, and
/// kept for another try when it cannot be.
pub(super) async fn final_event(events: &mut RunEvents, status: Status, info: Value) -> End {
    match events.write(status, info, Mark::Final).await {
        Ok(_) => End::Delete,
        Err(e) => lost(&e).unwrap_or_else(|| {
            tracing::error!(
                "cannot record the run's final event ({status:?}): {e}; the message comes back for another try"
            );
            End::Retry
        }),
    }
}

/// What becomes of the message when the run's lease was lost or another
/// writer took its log: this worker leaves the run, and its copy of the
/// message comes back once a lease would have expired (whoever holds the
/// run then finishes it; a copy of a finished run is deleted).
pub(super) fn lost(e: &WriteError) -> Option<End> {
    match e {
        WriteError::LeaseLost | WriteError::Foreign => {
            tracing::error!("{e}: this worker leaves the run");
            Some(End::Retry)
        }
        WriteError::Store(_) => None,
    }
}

/// Writes a final `failed` event for a failure before the first attempt (no actions).
pub(super) async fn fail_early(events: &mut RunEvents, info: Value) -> End {
    tracing::error!("{}", units::show(&info));
    final_event(events, Status::Failed, info).await
}
