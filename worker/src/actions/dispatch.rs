//! The `dispatch` action: dispatches another job through the one dispatch
//! routine, with this run as its parent in `globals.lava`.

use async_trait::async_trait;
use lava_common::dispatch::DispatchRequest;
use lava_common::{run_id, timestamp, units};
use serde_json::{Map, Value};

use super::{Action, ActionContext, ActionKeys};

/// `dispatch`.
pub(super) struct Dispatch;

#[async_trait]
impl Action for Dispatch {
    fn name(&self) -> &'static str {
        "dispatch"
    }

    fn keys(&self) -> ActionKeys {
        ActionKeys {
            required: &["job_id"],
            allowed: None,
        }
    }

    async fn run(&self, a: &mut ActionContext<'_>) -> Result<(), String> {
        let target = a
            .render(&units::show(a.field("job_id")))
            .await
            .map_err(|e| format!("Cannot render target job_id - {e}"))?;
        let renderer = &a.services.renderer;
        let parameters = match a.fields.get("parameters") {
            None | Some(Value::Null) => Map::new(),
            Some(p) => match renderer.render_json_text_async(p, &a.ctx).await {
                Ok(Value::Object(m)) => m,
                Ok(_) => return Err("parameters must be a dict".into()),
                Err(e) => return Err(format!("Cannot render parameters - {e}")),
            },
        };
        let delay_secs = delay(a, a.fields.get("delay"))?;
        // The parent's identity travels in globals.lava.
        let start = timestamp::isoformat(a.run.ts_start());
        let ustart = timestamp::utc_isoformat(a.run.ts_start());
        let job_id = a.run.job_id().to_string();
        let mut lava = Map::new();
        if let Some(Value::Object(globals_lava)) = a.run.globals_mut().get_mut("lava") {
            globals_lava.insert("parent_job_id".into(), Value::String(job_id));
            globals_lava.insert("parent_start".into(), Value::String(start));
            globals_lava.insert("parent_ustart".into(), Value::String(ustart));
            lava.clone_from(globals_lava);
        }
        // The child's run id is derived from where this action stands, so
        // repeating the action cannot start a second child. `on_retry` runs
        // once per retried iteration, each its own.
        let (list, index) = a.place;
        let list = match lava.get("iteration").filter(|_| list == "on_retry") {
            Some(n) => format!("{list}:{}", units::show(n)),
            None => list.to_string(),
        };
        let run_id = run_id::derived(
            "dispatch-action",
            &[a.run.run_id(), &list, &index.to_string()],
        );
        let request = DispatchRequest {
            job_id: target.clone(),
            parameters,
            globals: a.run.globals_mut().clone(),
            delay_secs,
            run_id: Some(run_id),
            ..DispatchRequest::default()
        };
        let sent = a
            .services
            .dispatcher
            .dispatch(&request)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(job_id = %a.run.job_id(), run_id = %a.run.run_id(),
            "dispatched {target} ({})", sent.message.run_id);
        Ok(())
    }
}

/// A `delay` field: truncated seconds within 0 … `SQS_MAX_DELAY_MINS`.
pub(super) fn delay(a: &ActionContext<'_>, value: Option<&Value>) -> Result<u32, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(0);
    };
    let max_mins = a.services.settings.sqs_max_delay_mins;
    let secs = units::duration_value(value).map_err(|e| format!("Bad delay: {e}"))?;
    if secs < 0.0 || secs > (max_mins * 60) as f64 {
        return Err(format!(
            "Bad delay: {}: Must be between 0 and {max_mins} minutes",
            units::show(value)
        ));
    }
    Ok(secs as u32)
}
