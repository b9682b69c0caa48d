//! The `lavasched` job type: rebuilds this account's crontab so that cron
//! runs `lava-dispatch` for every scheduled job of the named dispatchers.
//! It calls the library behind `lava-crontab sync`: the crontab program is
//! `LAVA_CRONTAB_CMD` (default `crontab`), the lines call config
//! `DISPATCHER` (default: `lava-dispatch` beside this program). Bad schedule
//! entries are skipped; the rest is installed and the run fails naming them
//! (the original installs nothing, so one bad entry stops every schedule).

use async_trait::async_trait;
use chrono::Utc;
use lava_dispatcher::crontab::{
    self, CrontabCommand, Options, Skipped, SyncOutcome, load_jobs, prepare,
    sources_from_parameters,
};
use serde_json::{Map, Value};

use super::{Failure, JobContext, JobType, Outcome, ParamKeys};

/// How many skipped entries the error message names; `error_data.skipped`
/// lists them all.
const NAMED_IN_ERROR: usize = 10;

/// `lavasched`.
pub(super) struct Lavasched;

#[async_trait]
impl JobType for Lavasched {
    fn name(&self) -> &'static str {
        "lavasched"
    }

    fn parameters(&self) -> Option<ParamKeys> {
        Some(ParamKeys {
            required: &["dispatcher"],
            allowed: &["args", "env"],
        })
    }

    async fn run(&self, job: &JobContext<'_>) -> Outcome {
        run(job).await.into()
    }
}

async fn run(job: &JobContext<'_>) -> Result<Value, Failure> {
    let sources = sources_from_parameters(job.params())
        .map_err(|e| Failure::new(format!("Bad job parameters: {e}")))?;
    let s = job.services;
    let options = Options {
        realm: s.realm_name.clone(),
        dispatcher_path: crontab::dispatcher_path(s.settings.dispatcher.as_deref()),
        env: sources.env,
        args: sources.args,
        backend: s.backend_spec.to_string(),
        now: Utc::now(),
        force: false,
    };
    let jobs = load_jobs(s.tables.as_ref(), &s.realm_name, &sources.dispatchers)
        .await
        .map_err(|e| Failure::new(format!("Cannot read the scheduled jobs: {e}")))?;
    let command = CrontabCommand::from_env();
    let outcome = prepare(&jobs, &options, &command)
        .await
        .map_err(|e| Failure::new(e.to_string()))?;
    for skipped in &outcome.skipped {
        tracing::warn!(job_id = %job.run.job_id(), run_id = %job.run.run_id, "{skipped}");
    }
    let mut result = Map::new();
    result.insert("exit_status".into(), Value::from(0));
    if outcome.changed {
        install(job, &outcome, &command, &mut result).await?;
        tracing::info!(job_id = %job.run.job_id(), run_id = %job.run.run_id,
            "Crontab updated: {} schedule lines", outcome.lines);
    } else {
        tracing::debug!(job_id = %job.run.job_id(), run_id = %job.run.run_id,
            "Old and new crontabs are the same - nothing to do");
    }
    if outcome.skipped.is_empty() {
        Ok(Value::Object(result))
    } else {
        Err(skipped_failure(&outcome.skipped, result))
    }
}

/// Keeps both crontabs under the run's `s3tmp`, records the diff, installs
/// the new one.
async fn install(
    job: &JobContext<'_>,
    outcome: &SyncOutcome,
    command: &CrontabCommand,
    result: &mut Map<String, Value>,
) -> Result<(), Failure> {
    let objects = &job.services.objects;
    let kms = job.services.realm.s3_key();
    if !outcome.old.is_empty() {
        let url = format!("{}/crontab.old", job.run.s3tmp);
        if let Err(e) = objects
            .put(&url, outcome.old.clone().into_bytes(), kms)
            .await
        {
            result.insert("exit_status".into(), Value::from(2));
            return Err(Failure::with_data(
                format!("Could not copy old crontab to S3 - {e}"),
                Value::Object(result.clone()),
            ));
        }
        result.insert("crontab.old".into(), Value::String(url));
    }
    let url = format!("{}/crontab.new", job.run.s3tmp);
    if let Err(e) = objects
        .put(&url, outcome.new.clone().into_bytes(), kms)
        .await
    {
        result.insert("exit_status".into(), Value::from(2));
        return Err(Failure::with_data(
            format!("Could not copy new crontab to S3 - {e}"),
            Value::Object(result.clone()),
        ));
    }
    result.insert("crontab.new".into(), Value::String(url));
    result.insert(
        "crontab.diff".into(),
        Value::Array(outcome.diff().into_iter().map(Value::String).collect()),
    );
    crontab::apply(outcome, command).await.map_err(|e| {
        Failure::with_data(
            format!("Could not install new crontab - {e}"),
            Value::Object(result.clone()),
        )
    })
}

/// The failure of a run that installed everything but `skipped`: the
/// error names them (the first few), `error_data` is the result with every
/// one listed under `skipped`.
fn skipped_failure(skipped: &[Skipped], mut result: Map<String, Value>) -> Failure {
    let shown: Vec<String> = skipped.iter().map(ToString::to_string).collect();
    let mut error = format!(
        "Skipped {} bad schedule {} (the rest is installed): {}",
        skipped.len(),
        if skipped.len() == 1 {
            "entry"
        } else {
            "entries"
        },
        shown
            .iter()
            .take(NAMED_IN_ERROR)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ")
    );
    if shown.len() > NAMED_IN_ERROR {
        error.push_str(&format!("; and {} more", shown.len() - NAMED_IN_ERROR));
    }
    result.insert(
        "skipped".into(),
        Value::Array(shown.into_iter().map(Value::String).collect()),
    );
    Failure::with_data(error, Value::Object(result))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skipped(n: usize) -> Vec<Skipped> {
        (1..=n)
            .map(|i| Skipped {
                job_id: format!("j{i}"),
                entry: Some(1),
                text: "61 * * * *".into(),
                reason: "minute 61 out of range 0-59".into(),
            })
            .collect()
    }

    #[test]
    fn skipped_entries_are_named() {
        let Failure { error, data, .. } = skipped_failure(&skipped(1), Map::new());
        assert_eq!(
            error,
            r#"Skipped 1 bad schedule entry (the rest is installed): Job "j1": Bad schedule entry 1 "61 * * * *": minute 61 out of range 0-59"#
        );
        assert_eq!(
            data.as_ref()
                .and_then(|d| d["skipped"].as_array())
                .map(Vec::len),
            Some(1)
        );
        let Failure { error, data, .. } = skipped_failure(&skipped(12), Map::new());
        assert!(
            error.starts_with("Skipped 12 bad schedule entries"),
            "{error}"
        );
        assert!(error.ends_with("; and 2 more"), "{error}");
        assert!(error.contains(r#"Job "j10""#) && !error.contains(r#"Job "j11""#));
        assert_eq!(
            data.as_ref()
                .and_then(|d| d["skipped"].as_array())
                .map(Vec::len),
            Some(12)
        );
    }
}
