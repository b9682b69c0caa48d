//! How one attempt of a job ended: the one outcome type every job type
//! returns, and the failure value job code passes around with `?`.

use std::time::Duration;

use serde_json::Value;

/// A failed attempt: the message (`error` of the event) and the job type's
/// data (`error_data`), if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The message.
    pub error: String,
    /// The data.
    pub data: Option<Value>,
}

impl Failure {
    /// A failure with a message and no data.
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            data: None,
        }
    }

    /// A failure with a message and data.
    pub fn with_data(error: impl Into<String>, data: Value) -> Self {
        Self {
            error: error.into(),
            data: Some(data),
        }
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The job type's result map.
    Success(Value),
    /// The attempt failed; the run retries it while `iteration_limit` allows.
    Failed(Failure),
    /// The attempt failed and asks to be retried after `delay` rather than
    /// after the job's `iteration_delay` (still within `iteration_limit`).
    RetryLater {
        /// Why the attempt failed.
        failure: Failure,
        /// How long to wait before the next attempt.
        delay: Duration,
    },
    /// The worker's shutdown stopped the attempt.
    Interrupted,
}

impl From<Result<Value, Failure>> for Outcome {
    fn from(result: Result<Value, Failure>) -> Self {
        match result {
            Ok(value) => Outcome::Success(value),
            Err(failure) => Outcome::Failed(failure),
        }
    }
}
