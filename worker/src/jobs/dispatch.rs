//! The `dispatch` job type: dispatches other jobs through the one dispatch
//! routine, each a run of its own on its worker's queue, with this run as
//! their parent in `globals.lava`. Each target's run id is derived from
//! this run and the target's place in the payload, so a retried dispatch
//! job cannot start a target twice.

use async_trait::async_trait;
use lava_common::dispatch::DispatchRequest;
use lava_common::{run_id, timestamp, units};
use serde_json::{Map, Value};

use super::orchestration::{job_list, job_prefix};
use super::{Failure, JobContext, JobType, Outcome, ParamKeys};

/// `dispatch`.
pub(super) struct Dispatch;

#[async_trait]
impl JobType for Dispatch {
    fn name(&self) -> &'static str {
        "dispatch"
    }

    fn parameters(&self) -> Option<ParamKeys> {
        Some(ParamKeys {
            required: &[],
            allowed: &["parameters", "delay", "jinja", "job_prefix"],
        })
    }

    async fn run(&self, job: &JobContext<'_>) -> Outcome {
        run(job).await.into()
    }
}

async fn run(job: &JobContext<'_>) -> Result<Value, Failure> {
    let params = job.params();
    let jinja = match params.get("jinja") {
        None | Some(Value::Null) => true,
        Some(v) => units::bool_value(v).map_err(|e| Failure::new(format!("Bad jinja: {e}")))?,
    };
    let parameters = match params.get("parameters") {
        None | Some(Value::Null) => Map::new(),
        Some(p) if jinja && !is_empty(p) => {
            match job
                .services
                .renderer
                .render_json_text_async(p, &job.ctx)
                .await
            {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err(Failure::new("parameters must be a dict")),
                Err(e) => return Err(Failure::new(format!("Cannot render parameters - {e}"))),
            }
        }
        Some(Value::Object(m)) => m.clone(),
        Some(p) if is_empty(p) => Map::new(),
        Some(_) => return Err(Failure::new("parameters must be a dict")),
    };
    let delay = delay(job, params.get("delay"))?;
    let targets = job_list(job.run.job.payload(), &job_prefix(params)).ok_or_else(|| {
        Failure::new("Payload must be comma separated list or real list of job IDs")
    })?;

    // This run is the targets' parent.
    let mut globals = match job.run.job_value.get("globals") {
        Some(Value::Object(g)) => g.clone(),
        _ => Map::new(),
    };
    let start = job
        .run
        .job_value
        .get("ts_start")
        .and_then(Value::as_str)
        .and_then(timestamp::parse_strict);
    if let (Some(Value::Object(lava)), Some(start)) = (globals.get_mut("lava"), start) {
        lava.insert(
            "parent_job_id".into(),
            Value::String(job.run.job_id().to_string()),
        );
        lava.insert(
            "parent_start".into(),
            Value::String(timestamp::isoformat(&start)),
        );
        lava.insert(
            "parent_ustart".into(),
            Value::String(timestamp::utc_isoformat(&start)),
        );
    }

    let mut jobs = Vec::new();
    let failed = |jobs: &[String], error: String| {
        let mut data = Map::new();
        data.insert("exit_status".into(), Value::from(1));
        data.insert("jobs".into(), Value::from(jobs.to_vec()));
        data.insert("error".into(), Value::String(error.clone()));
        Failure::with_data(error, Value::Object(data))
    };
    for (index, target) in targets.iter().enumerate() {
        jobs.push(target.clone());
        if target == job.run.job_id() {
            return Err(failed(
                &jobs,
                format!("{target}: Circular dispatch not permitted"),
            ));
        }
        let request = DispatchRequest {
            job_id: target.clone(),
            parameters: parameters.clone(),
            globals: globals.clone(),
            delay_secs: delay,
            run_id: Some(run_id::derived(
                "dispatch-job",
                &[job.run.run_id, &index.to_string(), target],
            )),
            ..DispatchRequest::default()
        };
        match job.services.dispatcher.dispatch(&request).await {
            Ok(sent) => tracing::info!(
                event_type = "job",
                "dispatched {target} ({}) with delay {delay}s",
                sent.message.run_id
            ),
            Err(e) => return Err(failed(&jobs, format!("{target}: {e}"))),
        }
    }
    let mut result = Map::new();
    result.insert("exit_status".into(), Value::from(0));
    result.insert("jobs".into(), Value::from(jobs));
    Ok(Value::Object(result))
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::String(s) => s.is_empty(),
        Value::Null | Value::Bool(false) => true,
        _ => false,
    }
}

/// The `delay` parameter: truncated seconds within 0 … `SQS_MAX_DELAY_MINS`.
fn delay(job: &JobContext<'_>, value: Option<&Value>) -> Result<u32, Failure> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(0);
    };
    let max_mins = job.services.settings.sqs_max_delay_mins;
    let shown = units::show(value);
    let secs = units::duration_value(value)
        .map_err(|e| Failure::new(format!("Bad delay: {shown}: {e}")))?;
    let secs = secs.trunc();
    if secs < 0.0 || secs > (max_mins * 60) as f64 {
        return Err(Failure::new(format!(
            "Bad delay: {shown}: must be between 0 and {max_mins} minutes"
        )));
    }
    Ok(secs as u32)
}
