//! The `sns` action: one message to an SNS topic (the local backend has
//! none: the action fails with "sns: not available on the local backend").
//! Only the topic, the message and the subject are sent.

use async_trait::async_trait;
use lava_common::dispatch::message::python_json;
use serde_json::Value;

use super::bound::bounded;
use super::{Action, ActionContext, ActionKeys};

/// SNS subjects are cut to this many characters after rendering.
const MAX_SUBJECT: usize = 100;

/// `sns`.
pub(super) struct Sns;

#[async_trait]
impl Action for Sns {
    fn name(&self) -> &'static str {
        "sns"
    }

    fn keys(&self) -> ActionKeys {
        ActionKeys {
            required: &["topic", "message"],
            allowed: None,
        }
    }

    async fn run(&self, a: &mut ActionContext<'_>) -> Result<(), String> {
        let Value::String(topic) = a.field("topic") else {
            return Err(format!("Bad topic: {} is not a string", a.field("topic")));
        };
        let message = a
            .render(&message_text(a.field("message")))
            .await
            .map_err(|e| format!("Bad message: {e}"))?;
        let subject = match a.fields.get("subject") {
            None | Some(Value::Null) => None,
            Some(_) => Some(
                a.rendered("subject", String::new())
                    .await?
                    .chars()
                    .take(MAX_SUBJECT)
                    .collect::<String>(),
            ),
        };
        bounded(
            a.clients
                .topics
                .publish(topic, subject.as_deref(), &message),
        )
        .await
    }
}

/// A `message` field as its template: a string as it is, anything else
/// JSON-encoded as Python's `json.dumps` does.
pub(super) fn message_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => python_json(other),
    }
}
