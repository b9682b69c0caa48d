//! Post-job actions (spec/actions-state.md §1–2): the list is the job's
//! `on_success`/`on_retry`/`on_fail` if the job has the key, else the
//! realm's; actions run in order and the first error stops the list.
//! Built: `log`, `dispatch`, `event`, `state`. Others fail with a clear message.

use std::sync::Arc;

use lava_common::dispatch::DispatchRequest;
use lava_common::render::Context;
use lava_common::state::{self, StateWrite};
use lava_common::store::BusEvent;
use lava_common::{timestamp, units};
use serde_json::{Map, Value};

use crate::run::Run;
use crate::worker::Worker;

/// Which list runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionList {
    /// After `complete`.
    OnSuccess,
    /// After `retrying`.
    OnRetry,
    /// After the final `failed`.
    OnFail,
}

impl ActionList {
    fn key(self) -> &'static str {
        match self {
            ActionList::OnSuccess => "on_success",
            ActionList::OnRetry => "on_retry",
            ActionList::OnFail => "on_fail",
        }
    }
}

/// Runs the selected list with `result` in the render context. The error
/// text is the `action_failed` info: "<K> action: <type>: <error>".
pub async fn run_list(
    w: &Arc<Worker>,
    run: &mut Run,
    list: ActionList,
    result: Value,
) -> Result<(), String> {
    let key = list.key();
    let actions = match run.job.field(key).or_else(|| w.realm.field(key)) {
        None => return Ok(()),
        Some(Value::Array(actions)) => actions.clone(),
        Some(_) => return Err(format!("{key}: action must be a list")),
    };
    for action in actions {
        let Value::Object(action) = action else {
            return Err(format!("{key} action: Missing keys: action"));
        };
        let Some(kind) = action.get("action").map(units::show) else {
            return Err(format!("{key} action: Missing keys: action"));
        };
        let ctx = run.context(w).result(&result);
        let outcome = match kind.as_str() {
            "log" => log(w, run, &action, &ctx),
            "dispatch" => dispatch(w, run, &action, &ctx).await,
            "state" => put_state(w, run, &action, &ctx).await,
            "event" => put_event(w, run, &action, &ctx, &result).await,
            "email" | "slack" | "sns" | "sqs" => {
                Err("not supported by this worker yet".to_string())
            }
            _ => Err("unknown action".to_string()),
        };
        outcome.map_err(|e| format!("{key} action: {kind}: {e}"))?;
    }
    Ok(())
}

fn required<'a>(action: &'a Map<String, Value>, keys: &[&str]) -> Result<Vec<&'a Value>, String> {
    let mut missing: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| !action.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        return Err(format!("Missing keys: {}", missing.join(", ")));
    }
    Ok(keys.iter().filter_map(|k| action.get(*k)).collect())
}

fn log(w: &Worker, run: &Run, action: &Map<String, Value>, ctx: &Context) -> Result<(), String> {
    let fields = required(action, &["message"])?;
    let Value::String(message) = fields[0] else {
        return Err("message must be a string".into());
    };
    let text = w
        .renderer
        .render_str(message, ctx)
        .map_err(|e| e.to_string())?;
    tracing::info!(event_type = "job", job_id = %run.job_id(), run_id = %run.run_id, "{text}");
    Ok(())
}

/// A `delay` field: truncated seconds within 0 … SQS_MAX_DELAY_MINS.
fn delay(w: &Worker, value: Option<&Value>) -> Result<u32, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(0);
    };
    let max_mins = w.config.int("SQS_MAX_DELAY_MINS").unwrap_or(15);
    let secs = units::duration_value(value).map_err(|e| format!("Bad delay: {e}"))?;
    if secs < 0.0 || secs > (max_mins * 60) as f64 {
        return Err(format!(
            "Bad delay: {}: Must be between 0 and {max_mins} minutes",
            units::show(value)
        ));
    }
    Ok(secs as u32)
}

async fn dispatch(
    w: &Worker,
    run: &mut Run,
    action: &Map<String, Value>,
    ctx: &Context,
) -> Result<(), String> {
    let fields = required(action, &["job_id"])?;
    let target = w
        .renderer
        .render_str(&units::show(fields[0]), ctx)
        .map_err(|e| format!("Cannot render target job_id - {e}"))?;
    let parameters = match action.get("parameters") {
        None | Some(Value::Null) => Map::new(),
        Some(p) => match w.renderer.render_json_text(p, ctx) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err("parameters must be a dict".into()),
            Err(e) => return Err(format!("Cannot render parameters - {e}")),
        },
    };
    let delay_secs = delay(w, action.get("delay"))?;
    // The parent's identity travels in globals.lava (spec/dispatch.md §5).
    let start = timestamp::isoformat(&run.ts_start);
    let ustart = timestamp::utc_isoformat(&run.ts_start);
    let job_id = run.job_id().to_string();
    if let Some(Value::Object(lava)) = run.globals.get_mut("lava") {
        lava.insert("parent_job_id".into(), Value::String(job_id));
        lava.insert("parent_start".into(), Value::String(start));
        lava.insert("parent_ustart".into(), Value::String(ustart));
    }
    let request = DispatchRequest {
        job_id: target.clone(),
        parameters,
        globals: run.globals.clone(),
        delay_secs,
        ..DispatchRequest::default()
    };
    let sent = w
        .dispatcher
        .dispatch(&request)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(job_id = %run.job_id(), run_id = %run.run_id, "dispatched {target} ({})", sent.message.run_id);
    Ok(())
}

/// Rejects keys outside `known` ("Unexpected keys: …").
fn only_known(action: &Map<String, Value>, known: &[&str]) -> Result<(), String> {
    let mut unexpected: Vec<&str> = action
        .keys()
        .map(String::as_str)
        .filter(|k| !known.contains(k))
        .collect();
    if unexpected.is_empty() {
        return Ok(());
    }
    unexpected.sort_unstable();
    Err(format!("Unexpected keys: {}", unexpected.join(", ")))
}

/// Renders an optional string field, or gives the default.
fn rendered(
    w: &Worker,
    action: &Map<String, Value>,
    key: &str,
    default: String,
    ctx: &Context,
) -> Result<String, String> {
    match action.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::String(t)) => w
            .renderer
            .render_str(t, ctx)
            .map_err(|e| format!("Bad {key}: {e}")),
        Some(other) => Err(format!("Bad {key}: {other} is not a string")),
    }
}

/// The `event` action: one event on the realm's event bus (spec/actions-state.md §2.3).
async fn put_event(
    w: &Worker,
    run: &Run,
    action: &Map<String, Value>,
    ctx: &Context,
    result: &Value,
) -> Result<(), String> {
    only_known(
        action,
        &[
            "action",
            "source",
            "detail_type",
            "detail",
            "resources",
            "event_bus",
        ],
    )?;
    let source = rendered(w, action, "source", format!("lava.{}", w.realm_name), ctx)?;
    let detail_type = rendered(w, action, "detail_type", "Lava Job Action".into(), ctx)?;
    let detail = match action.get("detail") {
        None | Some(Value::Null) => {
            // DECISIONS.md 43: fall back to error_data.exit_status, so on_fail works too.
            let exit_status = result
                .get("exit_status")
                .or_else(|| result.get("error_data").and_then(|d| d.get("exit_status")))
                .cloned()
                .unwrap_or(Value::Null);
            let mut map = Map::new();
            map.insert("realm".into(), Value::String(w.realm_name.clone()));
            map.insert("worker".into(), Value::String(w.worker_name.clone()));
            map.insert("job_id".into(), Value::String(run.job_id().to_string()));
            map.insert("run_id".into(), Value::String(run.run_id.clone()));
            map.insert("exit_status".into(), exit_status);
            Value::Object(map)
        }
        Some(Value::String(text)) => Value::String(
            w.renderer
                .render_str(text, ctx)
                .map_err(|e| format!("Bad detail: {e}"))?,
        ),
        Some(Value::Object(map)) => {
            let mut out = Map::new();
            for (key, value) in map {
                let Value::String(text) = value else {
                    return Err(format!("Bad detail: {key}: values must be strings"));
                };
                let text = w
                    .renderer
                    .render_str(text, ctx)
                    .map_err(|e| format!("Bad detail: {key}: {e}"))?;
                out.insert(key.clone(), Value::String(text));
            }
            Value::Object(out)
        }
        Some(other) => return Err(format!("Bad detail: {other}")),
    };
    let resources = match action.get("resources") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                w.renderer
                    .render_str(&units::show(item), ctx)
                    .map_err(|e| format!("Bad resources: {e}"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("resources must be a list".into()),
    };
    let bus = match action.get("event_bus") {
        None | Some(Value::Null) => None,
        Some(_) => Some(rendered(w, action, "event_bus", String::new(), ctx)?),
    };
    let event = BusEvent {
        source,
        detail_type,
        detail: detail.to_string(),
        resources,
        bus,
    };
    w.backend.bus.put(&event).await.map_err(|e| e.to_string())
}

async fn put_state(
    w: &Worker,
    run: &Run,
    action: &Map<String, Value>,
    ctx: &Context,
) -> Result<(), String> {
    only_known(
        action,
        &[
            "action",
            "state_id",
            "value",
            "type",
            "ttl",
            "publisher",
            "kms_key",
        ],
    )?;
    let fields = required(action, &["state_id", "value"])?;
    let state_id = w
        .renderer
        .render_str(&units::show(fields[0]), ctx)
        .map_err(|e| format!("Bad state_id: {e}"))?;
    let value = w
        .renderer
        .render_json_text(fields[1], ctx)
        .map_err(|e| format!("Bad value: {e}"))?;
    let publisher_template = action
        .get("publisher")
        .map_or_else(|| "{{ job.job_id }}".to_string(), units::show);
    let publisher = w
        .renderer
        .render_str(&publisher_template, ctx)
        .map_err(|e| format!("Bad publisher: {e}"))?;
    let default_ttl = w
        .config
        .duration("STATE_TTL")
        .ok()
        .flatten()
        .unwrap_or(7.0 * 86_400.0);
    let max_ttl = w
        .config
        .duration("STATE_MAX_TTL")
        .ok()
        .flatten()
        .unwrap_or(366.0 * 86_400.0);
    let ttl = match action.get("ttl") {
        None | Some(Value::Null) => default_ttl,
        Some(v) => units::duration_value(v).map_err(|e| format!("Bad ttl: {e}"))?,
    };
    let write = StateWrite {
        state_id,
        value,
        state_type: action
            .get("type")
            .map_or_else(|| "json".to_string(), units::show),
        ttl_secs: ttl.min(max_ttl) as i64,
        publisher,
    };
    state::write(w.backend.tables.as_ref(), &w.realm_name, &write)
        .await
        .map_err(|e| e.to_string())?;
    tracing::debug!(job_id = %run.job_id(), run_id = %run.run_id, "state {} written", write.state_id);
    Ok(())
}
