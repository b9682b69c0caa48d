//! The `slack` action: one message through a `slack` connection's webhook,
//! in the action's style (else the connection's, else `block`) and colour
//! (else the connection's, else `#bbbbbb`).

use async_trait::async_trait;
use lava_common::connection::SlackStyle;
use lava_common::units;
use serde_json::Value;

use super::bound::bounded;
use super::{Action, ActionContext, ActionKeys};
use crate::slack::{self, SlackMessage};

/// `slack`.
pub(super) struct Slack;

#[async_trait]
impl Action for Slack {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn keys(&self) -> ActionKeys {
        ActionKeys {
            required: &["slack_conn", "message"],
            allowed: Some(&["from", "subject", "colour", "style", "preamble"]),
        }
    }

    async fn run(&self, a: &mut ActionContext<'_>) -> Result<(), String> {
        let from = optional_rendered(a, "from").await?;
        let subject = optional_rendered(a, "subject").await?;
        let message = a
            .render(&units::show(a.field("message")))
            .await
            .map_err(|e| format!("Bad message: {e}"))?;
        let conn_id = units::show(a.field("slack_conn"));
        let style = match plain(a, "style")? {
            None => None,
            Some(s) => Some(
                SlackStyle::parse(&s).ok_or_else(|| format!("Bad slack message style: {s}"))?,
            ),
        };
        let m = SlackMessage {
            message,
            subject,
            from,
            style,
            colour: plain(a, "colour")?,
            preamble: plain(a, "preamble")?,
        };
        let connections = &a.services.connections;
        bounded(async {
            let record = connections
                .get(&conn_id)
                .await
                .map_err(|e| e.to_string())?;
            let conn = connections
                .slack(&record)
                .await
                .map_err(|e| e.to_string())?;
            slack::send(&conn, &m).await
        })
        .await
    }
}

/// A rendered optional field.
async fn optional_rendered(a: &ActionContext<'_>, key: &str) -> Result<Option<String>, String> {
    match a.fields.get(key) {
        None => Ok(None),
        Some(_) => a.rendered(key, String::new()).await.map(Some),
    }
}

/// An optional field that is not rendered.
fn plain(a: &ActionContext<'_>, key: &str) -> Result<Option<String>, String> {
    match a.fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("Bad {key}: {other} is not a string")),
    }
}
