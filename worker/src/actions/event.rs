//! The `event` action: one event on the realm's event bus (EventBridge, or
//! `<DIR>/events.jsonl` on the local backend).

use async_trait::async_trait;
use lava_common::store::BusEvent;
use lava_common::units;
use serde_json::{Map, Value};

use super::{Action, ActionContext, ActionKeys};

/// `event`.
pub(super) struct Event;

#[async_trait]
impl Action for Event {
    fn name(&self) -> &'static str {
        "event"
    }

    fn keys(&self) -> ActionKeys {
        ActionKeys {
            required: &[],
            allowed: Some(&["source", "detail_type", "detail", "resources", "event_bus"]),
        }
    }

    async fn run(&self, a: &mut ActionContext<'_>) -> Result<(), String> {
        let realm = &a.services.realm_name;
        let source = a.rendered("source", format!("lava.{realm}")).await?;
        let detail_type = a
            .rendered("detail_type", "Lava Job Action".into())
            .await?;
        let detail = detail(a).await?;
        let resources = match a.fields.get("resources") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let mut resources = Vec::with_capacity(items.len());
                for item in items {
                    resources.push(
                        a.render(&units::show(item))
                            .await
                            .map_err(|e| format!("Bad resources: {e}"))?,
                    );
                }
                resources
            }
            Some(_) => return Err("resources must be a list".into()),
        };
        let bus = match a.fields.get("event_bus") {
            None | Some(Value::Null) => None,
            Some(_) => Some(a.rendered("event_bus", String::new()).await?),
        };
        let event = BusEvent {
            source,
            detail_type,
            detail: detail.to_string(),
            resources,
            bus,
        };
        a.clients.bus.put(&event).await.map_err(|e| e.to_string())
    }
}

/// The `detail`: rendered text, a map of rendered strings, or by default the
/// run's identity and exit status.
async fn detail(a: &ActionContext<'_>) -> Result<Value, String> {
    match a.fields.get("detail") {
        None | Some(Value::Null) => {
            // The exit status falls back to `error_data.exit_status`, so
            // the default detail is useful in `on_fail` too (the original's
            // is null there).
            let exit_status = a
                .result
                .get("exit_status")
                .or_else(|| {
                    a.result
                        .get("error_data")
                        .and_then(|d| d.get("exit_status"))
                })
                .cloned()
                .unwrap_or(Value::Null);
            let mut map = Map::new();
            map.insert("realm".into(), Value::String(a.services.realm_name.clone()));
            map.insert(
                "worker".into(),
                Value::String(a.services.worker_name.clone()),
            );
            map.insert("job_id".into(), Value::String(a.run.job_id().to_string()));
            map.insert("run_id".into(), Value::String(a.run.run_id().to_string()));
            map.insert("exit_status".into(), exit_status);
            Ok(Value::Object(map))
        }
        Some(Value::String(text)) => Ok(Value::String(
            a.render(text)
                .await
                .map_err(|e| format!("Bad detail: {e}"))?,
        )),
        Some(Value::Object(map)) => {
            let mut out = Map::new();
            for (key, value) in map {
                let Value::String(text) = value else {
                    return Err(format!("Bad detail: {key}: values must be strings"));
                };
                let text = a
                    .render(text)
                    .await
                    .map_err(|e| format!("Bad detail: {key}: {e}"))?;
                out.insert(key.clone(), Value::String(text));
            }
            Ok(Value::Object(out))
        }
        Some(other) => Err(format!("Bad detail: {other}")),
    }
}
