//! The `chain` job type: child jobs run one after another in-process,
//! under the chain's run id. `start` runs the chain from one of its jobs;
//! a child matching a `can_fail` glob may fail without stopping the chain.

use async_trait::async_trait;
use serde_json::Value;

use super::orchestration::{CanFail, ChildResults, job_list, job_prefix, text_param};
use super::{ChildEnd, Failure, JobContext, JobType, Outcome, ParamKeys};

/// `chain`.
pub(super) struct Chain;

#[async_trait]
impl JobType for Chain {
    fn name(&self) -> &'static str {
        "chain"
    }

    fn parameters(&self) -> Option<ParamKeys> {
        Some(ParamKeys {
            required: &[],
            allowed: &["job_prefix", "start", "can_fail"],
        })
    }

    async fn run(&self, job: &JobContext<'_>) -> Outcome {
        match run(job).await {
            Ok(Some(result)) => Outcome::Success(result),
            Ok(None) => Outcome::Interrupted,
            Err(failure) => Outcome::Failed(failure),
        }
    }
}

/// The result, or `None` when a child was interrupted.
async fn run(job: &JobContext<'_>) -> Result<Option<Value>, Failure> {
    let params = job.params();
    let prefix = job_prefix(params);
    let mut list = job_list(job.run.job.payload(), &prefix)
        .ok_or_else(|| Failure::new("Bad payload: must be string or list"))?;
    if let Some(start) = text_param(params, "start").filter(|s| !s.is_empty()) {
        let start = format!("{prefix}{start}");
        let Some(at) = list.iter().position(|id| *id == start) else {
            return Err(Failure::new(format!(
                "Requested start job {start} is not present in the chain"
            )));
        };
        list.drain(..at);
    }
    if list.is_empty() {
        return Err(Failure::new("Job chain is empty"));
    }
    let can_fail = CanFail::from_params(params)?;
    let mut results = ChildResults::default();
    let mut seen = Vec::new();
    for child_id in list {
        // A resumed chain skips what it completed before; an id named
        // twice runs twice.
        let first = !seen.contains(&child_id);
        seen.push(child_id.clone());
        if first && job.children.completed(&child_id).await {
            tracing::info!(event_type = "job", "{child_id}: completed earlier in this run - skipped");
            results.jobs.push(child_id);
            continue;
        }
        let child = match job.children.read(&child_id).await {
            Ok(child) => child,
            Err(e) => {
                results.failed_jobs.push(child_id.clone());
                let failure = if e.starts_with("Worker mismatch") {
                    let text = format!("Job {child_id}: {e}");
                    results.failure(text.clone(), text)
                } else {
                    results.failure(format!("{child_id}: {e}"), format!("Job {child_id} failed: {e}"))
                };
                return Err(failure);
            }
        };
        match job.children.run(child, Default::default(), None).await {
            ChildEnd::Done => results.jobs.push(child_id),
            ChildEnd::Interrupted => return Ok(None),
            ChildEnd::Failed(e) => {
                results.failed_jobs.push(child_id.clone());
                if can_fail.matches(&child_id) {
                    tracing::warn!(event_type = "job", "Job {child_id}: {e} (permitted to fail)");
                    continue;
                }
                let text = format!("Job {child_id}: {e}");
                return Err(results.failure(text.clone(), text));
            }
        }
    }
    Ok(Some(results.value()))
}
