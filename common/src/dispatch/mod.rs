//! Dispatch: the one routine every producer (CLI, cron, actions, job types)
//! calls to put a run on a worker fleet's queue.

pub mod dotted;
pub mod message;

pub use message::{DispatchMessage, MessageError};

use std::collections::HashMap;

use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::names;
use crate::spec::{JobSpec, SpecError};
use crate::store::{Backend, Key, QueueRef, StoreError, Table};
use crate::units;

/// What to dispatch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DispatchRequest {
    /// The job to run.
    pub job_id: String,
    /// The worker fleet; looked up in the jobs table when `None`.
    pub worker: Option<String>,
    /// Parameters merged over the job's on the worker.
    pub parameters: Map<String, Value>,
    /// Globals merged over the job's on the worker.
    pub globals: Map<String, Value>,
    /// Seconds the message stays invisible (0–900).
    pub delay_secs: u32,
    /// Queue name override (default `lava-<realm>-<worker>`).
    pub queue: Option<String>,
    /// The run id, when it must not be a fresh one (see [`crate::run_id`]).
    pub run_id: Option<String>,
}

/// A dispatched run.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatched {
    /// The message as sent; its `run_id` identifies the run.
    pub message: DispatchMessage,
    /// The queue it went to.
    pub queue: String,
}

/// Why one job could not be dispatched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The job item is missing or invalid.
    #[error("{0}")]
    Job(#[from] SpecError),
    /// The realm has no jobs table on this backend.
    #[error("No such realm: {realm} (table {table} not found)")]
    NoSuchRealm {
        /// The realm.
        realm: String,
        /// The missing table.
        table: String,
    },
    /// The queue does not exist.
    #[error("queue {0} not found")]
    QueueNotFound(String),
    /// Any other storage failure.
    #[error("{0}")]
    Store(StoreError),
}

/// A failed dispatch, naming the job and realm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Cannot dispatch {job_id}@{realm} - {failure}")]
pub struct DispatchError {
    /// The job.
    pub job_id: String,
    /// The realm.
    pub realm: String,
    /// What went wrong.
    pub failure: Failure,
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::QueueNotFound(q) => Failure::QueueNotFound(q),
            other => Failure::Store(other),
        }
    }
}

/// A delay outside the allowed range or not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value} (must be a duration from 0 to {max_secs} seconds)")]
pub struct DelayError {
    /// The value given.
    pub value: String,
    /// The largest allowed delay in seconds.
    pub max_secs: u32,
}

/// Reads a dispatch delay: a duration rounded to whole seconds (halves to
/// even, as Python's `round`), within `0..=max_mins` minutes.
pub fn delay_seconds(text: &str, max_mins: u32) -> Result<u32, DelayError> {
    let max_secs = max_mins.saturating_mul(60);
    let bad = || DelayError {
        value: text.to_string(),
        max_secs,
    };
    let secs = units::parse_duration(text)
        .map_err(|_| bad())?
        .round_ties_even();
    if secs < 0.0 || secs > f64::from(max_secs) {
        return Err(bad());
    }
    Ok(secs as u32)
}

/// Sends dispatch messages for one realm, resolving each queue once.
#[derive(Debug)]
pub struct Dispatcher {
    realm: String,
    backend: Backend,
    queues: Mutex<HashMap<String, QueueRef>>,
}

impl Dispatcher {
    /// A dispatcher for `realm` on `backend`.
    pub fn new(backend: Backend, realm: &str) -> Self {
        Self {
            realm: realm.to_string(),
            backend,
            queues: Mutex::new(HashMap::new()),
        }
    }

    /// The realm it dispatches to.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Reads and validates a job of this realm (`enabled` is not checked).
    pub async fn lookup_job(&self, job_id: &str) -> Result<JobSpec, Failure> {
        let item = self
            .backend
            .tables
            .get(&self.realm, Table::Jobs, &Key::new(job_id), false)
            .await
            .map_err(|e| match e {
                StoreError::TableNotFound(table) => Failure::NoSuchRealm {
                    realm: self.realm.clone(),
                    table,
                },
                other => other.into(),
            })?
            .ok_or(SpecError::NotFound { kind: "job" })?;
        Ok(JobSpec::from_item(item)?)
    }

    async fn queue(&self, name: &str) -> Result<QueueRef, Failure> {
        let mut cache = self.queues.lock().await;
        if let Some(q) = cache.get(name) {
            return Ok(q.clone());
        }
        let q = self.backend.queue.resolve(name).await?;
        cache.insert(name.to_string(), q.clone());
        Ok(q)
    }

    /// Dispatches one run: looks the worker up if not given, builds the
    /// message, resolves the queue and sends it.
    pub async fn dispatch(&self, request: &DispatchRequest) -> Result<Dispatched, DispatchError> {
        self.try_dispatch(request)
            .await
            .map_err(|failure| DispatchError {
                job_id: request.job_id.clone(),
                realm: self.realm.clone(),
                failure,
            })
    }

    async fn try_dispatch(&self, request: &DispatchRequest) -> Result<Dispatched, Failure> {
        let worker = match &request.worker {
            Some(w) => w.clone(),
            None => self.lookup_job(&request.job_id).await?.worker().to_string(),
        };
        let queue_name = request
            .queue
            .clone()
            .unwrap_or_else(|| names::queue_name(&self.realm, &worker));
        let queue = self.queue(&queue_name).await?;
        let mut message = DispatchMessage::new(
            &self.realm,
            &worker,
            &request.job_id,
            request.parameters.clone(),
            request.globals.clone(),
        );
        if let Some(run_id) = &request.run_id {
            message.run_id.clone_from(run_id);
        }
        self.backend
            .queue
            .send(&queue, &message.to_body(), request.delay_secs)
            .await?;
        tracing::debug!(job_id = %request.job_id, run_id = %message.run_id, queue = %queue_name, "sent");
        Ok(Dispatched {
            message,
            queue: queue_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays() {
        assert_eq!(delay_seconds("0", 15), Ok(0));
        assert_eq!(delay_seconds("15m", 15), Ok(900));
        assert_eq!(delay_seconds("2.5", 15), Ok(2));
        assert_eq!(delay_seconds("3.5s", 15), Ok(4));
        assert_eq!(delay_seconds("1.4m", 15), Ok(84));
        for bad in ["16m", "901", "-1", "soon", "1h"] {
            assert!(delay_seconds(bad, 15).is_err(), "{bad}");
        }
        assert_eq!(delay_seconds("20m", 30), Ok(1200));
        assert_eq!(
            delay_seconds("16m", 15)
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("16m (must be a duration from 0 to 900 seconds)")
        );
    }
}
