//! The `log` job type: logs the augmented job as indented JSON with sorted
//! keys and succeeds. It takes any parameters.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{JobContext, JobType, Outcome, ParamKeys};

/// `log`.
pub(super) struct Log;

#[async_trait]
impl JobType for Log {
    fn name(&self) -> &'static str {
        "log"
    }

    fn parameters(&self) -> Option<ParamKeys> {
        None
    }

    async fn run(&self, job: &JobContext<'_>) -> Outcome {
        let text =
            serde_json::to_string_pretty(&sorted(job.run.job_value.clone())).unwrap_or_default();
        tracing::info!(event_type = "job", "{text}");
        let mut result = Map::new();
        result.insert("exit_status".into(), Value::from(0));
        Outcome::Success(Value::Object(result))
    }
}

fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(list) => Value::Array(list.into_iter().map(sorted).collect()),
        other => other,
    }
}
