//! The `sql` job type: SQL files from the payload location, run in-process
//! on the `conn_id` database (see `sql_run`).

use async_trait::async_trait;
use serde_json::Value;

use super::payload::download;
use super::sql_run::{SQL_KEYS, Source, payload_files};
use super::{Failure, JobContext, JobType, Outcome, ParamKeys};

/// `sql`.
pub(super) struct Sql;

#[async_trait]
impl JobType for Sql {
    fn name(&self) -> &'static str {
        "sql"
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
    let items = payload_files(job.run.job.payload())?;
    let files = download(job, &items, &job.services.settings.sql_max_payload_size).await?;
    let mut sources = Vec::new();
    for path in files.into_iter().flatten() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| Failure::new(format!("{name}: cannot read: {e}")))?;
        sources.push(Source { name, text });
    }
    job.run_sql(&p, sources).await
}
