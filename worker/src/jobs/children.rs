//! What the orchestration job types (`chain`, `dag`, `foreach`) ask of the
//! run module for their in-process children: reading a child job with the
//! normal checks, running it through the whole run sequence under the
//! parent's run id, and what a resumed run already did.

use async_trait::async_trait;
use lava_common::spec::JobSpec;
use serde_json::{Map, Value};

/// How an in-process child run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ChildEnd {
    /// It completed, or was skipped (a disabled child counts as a success).
    Done,
    /// It failed or was rejected: its error text.
    Failed(String),
    /// It was stopped by an interrupt (the worker's shutdown or the loss of
    /// the parent's lease): the parent stops too, and both resume on the
    /// next delivery of the run.
    Interrupted,
}

/// The in-process children of one attempt of a parent run.
#[async_trait]
pub trait Children: Send + Sync {
    /// Reads a child job from the jobs table: it must exist, be a valid job
    /// and belong to the parent's worker. `Err` is the reason ("No such
    /// job", "Worker mismatch: Expected X but got Y", …).
    async fn read(&self, job_id: &str) -> Result<JobSpec, String>;

    /// Runs a child through the whole run sequence (its own events item,
    /// state, `event_log`, iterations and actions) in the parent's job
    /// directory. Its globals are its own with the parent's over them,
    /// `extra` over both, and `globals.lava` naming the parent;
    /// `foreach_index`, when given, is set in `globals.lava`.
    async fn run(
        &self,
        job: JobSpec,
        extra: Map<String, Value>,
        foreach_index: Option<usize>,
    ) -> ChildEnd;

    /// True when this child already completed under the run id since the
    /// parent's last failed attempt: a resumed run skips it.
    async fn completed(&self, job_id: &str) -> bool;

    /// Appends a progress entry (`logging`) to the parent's events log.
    async fn record(&self, info: Value) -> Result<(), String>;

    /// The parent's progress entries since its last failed attempt, in order.
    async fn records(&self) -> Vec<Value>;
}
