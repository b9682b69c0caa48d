//! The `state` action: writes a state item (`json` or `raw`) with a TTL
//! capped by `STATE_MAX_TTL`.

use async_trait::async_trait;
use lava_common::state::{self, StateWrite};
use lava_common::units;

use super::{Action, ActionContext, ActionKeys};

/// `state`.
pub(super) struct State;

#[async_trait]
impl Action for State {
    fn name(&self) -> &'static str {
        "state"
    }

    fn keys(&self) -> ActionKeys {
        ActionKeys {
            required: &["state_id", "value"],
            allowed: Some(&["type", "ttl", "publisher", "kms_key"]),
        }
    }

    async fn run(&self, a: &mut ActionContext<'_>) -> Result<(), String> {
        let state_id = a
            .render(&units::show(a.field("state_id")))
            .await
            .map_err(|e| format!("Bad state_id: {e}"))?;
        let value = a
            .services
            .renderer
            .render_json_text_async(a.field("value"), &a.ctx)
            .await
            .map_err(|e| format!("Bad value: {e}"))?;
        let publisher_template = a
            .fields
            .get("publisher")
            .map_or_else(|| "{{ job.job_id }}".to_string(), units::show);
        let publisher = a
            .render(&publisher_template)
            .await
            .map_err(|e| format!("Bad publisher: {e}"))?;
        let settings = &a.services.settings;
        let ttl = match a.fields.get("ttl") {
            None | Some(serde_json::Value::Null) => settings.state_ttl.as_secs_f64(),
            Some(v) => units::duration_value(v).map_err(|e| format!("Bad ttl: {e}"))?,
        };
        // Capped, never converted to a `Duration`: any number is a valid ttl.
        let ttl_secs = ttl.min(settings.state_max_ttl.as_secs_f64()) as i64;
        let write = StateWrite {
            state_id,
            value,
            state_type: a
                .fields
                .get("type")
                .map_or_else(|| "json".to_string(), units::show),
            ttl_secs,
            publisher,
        };
        state::write(a.services.tables.as_ref(), &a.services.realm_name, &write)
            .await
            .map_err(|e| e.to_string())?;
        tracing::debug!(job_id = %a.run.job_id(), run_id = %a.run.run_id(),
            "state {} written", write.state_id);
        Ok(())
    }
}
