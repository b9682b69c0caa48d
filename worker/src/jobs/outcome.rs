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
    /// The payload was stopped by an interrupt (the worker's shutdown, or
    /// the loss of the run's lease): the attempt did not end by itself.
    pub stopped: bool,
}

impl Failure {
    /// A failure with a message and no data.
    pub fn new(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            data: None,
            stopped: false,
        }
    }

    /// The attempt's payload was stopped by an interrupt.
    pub fn stopped() -> Self {
        Self {
            stopped: true,
            ..Self::new("stopped by an interrupt")
        }
    }

    /// A failure with a message and data.
    pub fn with_data(error: impl Into<String>, data: Value) -> Self {
        Self {
            error: error.into(),
            data: Some(data),
            stopped: false,
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
    /// An interrupt (the worker's shutdown, or the loss of the run's
    /// lease) stopped the attempt's payload.
    Interrupted,
}

impl From<Result<Value, Failure>> for Outcome {
    fn from(result: Result<Value, Failure>) -> Self {
        match result {
            Ok(value) => Outcome::Success(value),
            Err(failure) if failure.stopped => Outcome::Interrupted,
            Err(failure) => Outcome::Failed(failure),
        }
    }
}
