//! The `log` job type: logs the augmented job as indented JSON with sorted
//! keys and succeeds (spec/job-types.md §11). Parameters are not checked.

use serde_json::{Map, Value};

use super::{Job, Outcome};

pub(super) fn run(job: &Job<'_>) -> Outcome {
    let value = job.run.job_value(&job.w.realm_name);
    let text = serde_json::to_string_pretty(&sorted(value)).unwrap_or_default();
    tracing::info!(event_type = "job", "{text}");
    let mut result = Map::new();
    result.insert("exit_status".into(), Value::from(0));
    Outcome::Success(Value::Object(result))
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
