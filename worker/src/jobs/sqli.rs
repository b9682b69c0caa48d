//! The `sqli` job type: SQL inline in the payload (a string or a list of
//! strings), run in-process on the `conn_id` database (see `sql_run`); a
//! text's outputs and result key are named by its index (`0`, `1`, …).

use async_trait::async_trait;
use serde_json::Value;

use super::sql_run::{SQL_KEYS, Source, string_list};
use super::{Failure, JobContext, JobType, Outcome, ParamKeys};

/// `sqli`.
pub(super) struct Sqli;

#[async_trait]
impl JobType for Sqli {
    fn name(&self) -> &'static str {
        "sqli"
    }

    fn parameters(&self) -> Option<ParamKeys> {
        Some(ParamKeys {
            required: &["conn_id"],
            allowed: &SQL_KEYS,
        })
    }

    async fn run(&self, job: &JobContext<'_>) -> Outcome {
        run(job).await.into()
    }
}

async fn run(job: &JobContext<'_>) -> Result<Value, Failure> {
    let p = job.sql_params()?;
    let texts: Vec<String> = match job.run.job.payload() {
        Value::String(s) => vec![s.clone()],
        Value::Array(list) => string_list(list)?,
        _ => return Err(Failure::new("Bad payload: must be string or list of strings")),
    };
    let sources = texts
        .into_iter()
        .enumerate()
        .map(|(n, text)| Source {
            name: n.to_string(),
            text,
        })
        .collect();
    job.run_sql(&p, sources).await
}
