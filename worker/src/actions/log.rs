//! The `log` action: logs its rendered `message`.

use async_trait::async_trait;
use serde_json::Value;

use super::{Action, ActionContext, ActionKeys};

/// `log`.
pub(super) struct Log;

#[async_trait]
impl Action for Log {
    fn name(&self) -> &'static str {
        "log"
    }

    fn keys(&self) -> ActionKeys {
        ActionKeys {
            required: &["message"],
            allowed: None,
        }
    }

    async fn run(&self, a: &mut ActionContext<'_>) -> Result<(), String> {
        let Value::String(message) = a.field("message") else {
            return Err("message must be a string".into());
        };
        let text = a.render(message).await?;
        tracing::info!(event_type = "job", job_id = %a.run.job_id(), run_id = %a.run.run_id(), "{text}");
        Ok(())
    }
}
