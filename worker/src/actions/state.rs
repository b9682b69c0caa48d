//! The `state` action: writes a state item (`json`, `raw`, or `secure`
//! under `kms_key`) with a TTL capped by `STATE_MAX_TTL`; a `ttl` of zero
//! means `STATE_TTL`.

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
        // The original's order of checks: id, reserved id, publisher, value, type.
        if state::is_reserved(&state_id) {
            return Err(state::StateError::Reserved.to_string());
        }
        let publisher_template = a
            .fields
            .get("publisher")
            .map_or_else(|| "{{ job.job_id }}".to_string(), units::show);
        let publisher = a
            .render(&publisher_template)
            .await
            .map_err(|e| format!("Bad publisher: {e}"))?;
        let value = a
            .services
            .renderer
            .render_json_text_async(a.field("value"), &a.ctx)
            .await
            .map_err(|e| format!("Bad value: {e}"))?;
        let state_type = a
            .fields
            .get("type")
            .map_or_else(|| "json".to_string(), units::show);
        let state_type = state::state_type(&state_type).map_err(|e| e.to_string())?;
        let settings = &a.services.settings;
        let ttl = match a.fields.get("ttl") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(units::duration_value(v).map_err(|e| format!("Bad ttl: {e}"))?),
        };
        let write = StateWrite {
            state_id,
            value,
            state_type,
            ttl_secs: state::ttl_seconds(
                ttl,
                settings.state_ttl.as_secs_f64(),
                settings.state_max_ttl.as_secs_f64(),
            ),
            publisher,
            kms_key: a
                .fields
                .get("kms_key")
                .filter(|k| !k.is_null())
                .map(units::show),
        };
        let services = a.services;
        state::write(
            services.tables.as_ref(),
            services.kms.as_ref(),
            &services.realm_name,
            &write,
        )
        .await
        .map_err(|e| e.to_string())?;
        tracing::debug!(job_id = %a.run.job_id(), run_id = %a.run.run_id(),
            "state {} written", write.state_id);
        Ok(())
    }
}
