//! The `sqs` action: one message to an SQS queue, named or given by URL
//! (on the local backend, to the local queue of that name).

use async_trait::async_trait;
use lava_common::store::QueueRef;
use serde_json::Value;

use super::bound::bounded;
use super::dispatch::delay;
use super::sns::message_text;
use super::{Action, ActionContext, ActionKeys};

/// `sqs`.
pub(super) struct Sqs;

#[async_trait]
impl Action for Sqs {
    fn name(&self) -> &'static str {
        "sqs"
    }

    fn keys(&self) -> ActionKeys {
        ActionKeys {
            required: &["queue", "message"],
            allowed: None,
        }
    }

    async fn run(&self, a: &mut ActionContext<'_>) -> Result<(), String> {
        let Value::String(queue) = a.field("queue") else {
            return Err(format!("Bad queue: {} is not a string", a.field("queue")));
        };
        let delay_secs = delay(a, a.fields.get("delay"))?;
        let body = a
            .render(&message_text(a.field("message")))
            .await
            .map_err(|e| format!("Bad message: {e}"))?;
        let queues = &a.clients.queue;
        let target = match queue_url(queue) {
            Some(url) => QueueRef {
                name: url.rsplit('/').next().unwrap_or_default().to_string(),
                url,
            },
            None => queues.resolve(queue).await.map_err(|e| e.to_string())?,
        };
        // Deduplication and group ids apply to FIFO queues only.
        let (mut group_id, mut dedup_id) = (None, None);
        if target.name.ends_with(".fifo") {
            if truthy(a.fields.get("dedup_id")) {
                dedup_id = Some(a.rendered("dedup_id", String::new()).await?);
            }
            if truthy(a.fields.get("group_id")) {
                group_id = Some(a.rendered("group_id", String::new()).await?);
            }
        }
        bounded(async {
            queues
                .send_fifo(
                    &target,
                    &body,
                    delay_secs,
                    group_id.as_deref(),
                    dedup_id.as_deref(),
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
    }
}

/// Whether an optional field is set to something (the original's
/// `action.get(key)` truthiness).
fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// The URL of a queue given as one: any value containing `.amazonaws.com/`
/// (`https://` added when it has no scheme), or a `http(s)://` URL.
fn queue_url(queue: &str) -> Option<String> {
    if queue.starts_with("https://") || queue.starts_with("http://") {
        Some(queue.to_string())
    } else if queue.contains(".amazonaws.com/") {
        Some(format!("https://{queue}"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_urls() {
        assert_eq!(queue_url("lava-r-q"), None);
        assert_eq!(
            queue_url("sqs.us-east-1.amazonaws.com/123/q").as_deref(),
            Some("https://sqs.us-east-1.amazonaws.com/123/q")
        );
        assert_eq!(
            queue_url("https://sqs.us-east-1.amazonaws.com/123/q").as_deref(),
            Some("https://sqs.us-east-1.amazonaws.com/123/q")
        );
        assert_eq!(
            queue_url("http://127.0.0.1:5000/123/q").as_deref(),
            Some("http://127.0.0.1:5000/123/q")
        );
    }
}
