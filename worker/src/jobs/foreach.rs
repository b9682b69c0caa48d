//! The `foreach` job type: one child job run in-process once per value map
//! of a generator ([`foreach_values`](super::foreach_values)), each
//! iteration with the values in its globals and `globals.lava.foreach_index`.
//! Each finished index is recorded in the parent's events log (`logging`,
//! `{"foreach_index": i, "outcome": …}`), so a resumed run goes on after
//! the last one.

use async_trait::async_trait;
use lava_common::units;
use serde_json::{Map, Value};

use super::foreach_values;
use super::orchestration::int_param;
use super::{ChildEnd, Failure, JobContext, JobType, Outcome, ParamKeys};

/// `foreach`.
pub(super) struct Foreach;

#[async_trait]
impl JobType for Foreach {
    fn name(&self) -> &'static str {
        "foreach"
    }

    fn parameters(&self) -> Option<ParamKeys> {
        Some(ParamKeys {
            required: &["foreach"],
            allowed: &["can_fail", "limit", "jinja"],
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

fn flag(params: &Map<String, Value>, name: &str, default: bool) -> Result<bool, Failure> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => units::bool_value(v).map_err(|e| Failure::new(format!("Bad {name}: {e}"))),
    }
}

fn error_data(error: &str) -> Value {
    let mut map = Map::new();
    map.insert("exit_status".into(), Value::from(1));
    map.insert("error".into(), Value::String(error.to_string()));
    Value::Object(map)
}

/// The result, or `None` when an iteration was interrupted.
async fn run(job: &JobContext<'_>) -> Result<Option<Value>, Failure> {
    let params = job.params();
    let Value::String(child_id) = job.run.job.payload() else {
        return Err(Failure::new("Bad payload: must be string"));
    };
    let settings = &job.services.settings;
    let limit = int_param(params, "limit")?.unwrap_or(settings.foreach_limit);
    let max_limit = settings.foreach_max_limit;
    if limit > max_limit {
        return Err(Failure::new(format!(
            "foreach limit of {limit} exceeds realm limit of {max_limit}"
        )));
    }
    let child = match job.children.read(child_id).await {
        Ok(child) => child,
        Err(e) if e.starts_with("Worker mismatch") => {
            return Err(Failure::new(format!("Job {child_id}: {e}")));
        }
        Err(e) => {
            let error = format!("Job {child_id}: {e}");
            return Err(Failure::with_data(error.clone(), error_data(&error)));
        }
    };
    let jinja = flag(params, "jinja", true)?;
    let can_fail = flag(params, "can_fail", false)?;
    let generator = params.get("foreach").cloned().unwrap_or(Value::Null);
    let wanted = usize::try_from(limit.max(0)).unwrap_or(0).saturating_add(1);
    let values = foreach_values::generate(job, &generator, jinja, wanted).await?;
    if values.len() as i64 > limit {
        let error = format!("foreach value list exceeds limit of {limit}");
        return Err(Failure::with_data(error.clone(), error_data(&error)));
    }

    let mut completed = 0_u64;
    let mut failed: Vec<usize> = Vec::new();
    // A resumed run goes on after the last index it finished.
    let mut next = 0;
    for record in job.children.records().await {
        let Some(i) = record
            .get("foreach_index")
            .and_then(Value::as_u64)
            .and_then(|i| usize::try_from(i).ok())
        else {
            continue;
        };
        match record.get("outcome").and_then(Value::as_str) {
            Some("complete") => completed += 1,
            _ => failed.push(i),
        }
        next = next.max(i + 1);
    }
    if next > 0 {
        tracing::info!(event_type = "job", "foreach resumes at index {next}");
    }
    let result = |completed: u64, failed: &[usize]| {
        let mut map = Map::new();
        map.insert("exit_status".into(), Value::from(0));
        map.insert("limit".into(), Value::from(limit));
        map.insert("foreach_len".into(), Value::from(values.len()));
        map.insert("jobs_completed".into(), Value::from(completed));
        map.insert("failed_indexes".into(), Value::from(failed.to_vec()));
        map
    };
    for (i, iteration) in values.iter().enumerate().skip(next) {
        let end = job
            .children
            .run(child.clone(), iteration.clone(), Some(i))
            .await;
        let outcome = match &end {
            ChildEnd::Done => "complete",
            ChildEnd::Failed(_) => "failed",
            ChildEnd::Interrupted => return Ok(None),
        };
        let mut record = Map::new();
        record.insert("foreach_index".into(), Value::from(i));
        record.insert("outcome".into(), Value::String(outcome.into()));
        if let Err(e) = job.children.record(Value::Object(record)).await {
            tracing::warn!("cannot record foreach index {i}: {e}");
        }
        match end {
            ChildEnd::Done => completed += 1,
            ChildEnd::Failed(e) => {
                failed.push(i);
                if can_fail {
                    tracing::warn!(event_type = "job", "Job {child_id}: Index {i}: {e} (permitted to fail)");
                    continue;
                }
                let error = format!("Job {child_id}: Index {i}: {e}");
                let mut data = result(completed, &failed);
                data.insert("exit_status".into(), Value::from(1));
                data.insert("error".into(), Value::String(error.clone()));
                return Err(Failure::with_data(error, Value::Object(data)));
            }
            ChildEnd::Interrupted => return Ok(None),
        }
    }
    Ok(Some(Value::Object(result(completed, &failed))))
}
