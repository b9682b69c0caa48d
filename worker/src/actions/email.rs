//! The `email` action: through an `email`/`ses` connection when
//! `email_conn` is given (attachments allowed), else through SES
//! `SendEmail` with the sender from the action, `SES_FROM`, or
//! `lava.<realm>@<first verified SES domain>`. The local backend has no
//! SES: mail through it fails the action ("email: not available on the
//! local backend"); SMTP connections work as anywhere.

use async_trait::async_trait;
use lava_common::connection::email::addresses;
use lava_common::units;
use serde_json::Value;

use super::bound::bounded;
use super::{Action, ActionContext, ActionKeys};
use crate::mail::{self, Outgoing};
use crate::ses::SimpleEmail;

/// `email`.
pub(super) struct Email;

#[async_trait]
impl Action for Email {
    fn name(&self) -> &'static str {
        "email"
    }

    fn keys(&self) -> ActionKeys {
        ActionKeys {
            required: &["to", "subject", "message"],
            allowed: Some(&["from", "region", "email_conn", "attachments"]),
        }
    }

    async fn run(&self, a: &mut ActionContext<'_>) -> Result<(), String> {
        let to = addresses(Some(a.field("to"))).map_err(|e| format!("Bad to: {e}"))?;
        let subject = a
            .render(&units::show(a.field("subject")))
            .await
            .map_err(|e| format!("Bad subject: {e}"))?;
        let message = a
            .render(&units::show(a.field("message")))
            .await
            .map_err(|e| format!("Bad message: {e}"))?;
        let from = text_field(a, "from")?;
        if let Some(conn_id) = text_field(a, "email_conn")?.filter(|c| !c.is_empty()) {
            return through_connection(a, &conn_id, to, subject, message, from).await;
        }
        if matches!(a.fields.get("attachments"), Some(Value::Array(l)) if !l.is_empty()) {
            return Err("email_conn must be specified to enable attachments".into());
        }
        let settings = &a.clients.mail;
        let region = text_field(a, "region")?.unwrap_or_else(|| settings.ses_region.clone());
        let ses = &a.clients.ses;
        bounded(async {
            let sender = match from.or_else(|| settings.ses_from.clone()) {
                Some(sender) if !sender.is_empty() => sender,
                _ => match ses.first_domain(&region).await? {
                    Some(domain) => format!("lava.{}@{domain}", a.services.realm_name),
                    None => return Err("No verified SES domains".into()),
                },
            };
            let head: String = message.chars().take(6).collect();
            let mail = SimpleEmail {
                from: &sender,
                to: &to,
                subject: &subject,
                body: &message,
                html: head.to_uppercase() == "<HTML>",
            };
            ses.send_simple(&region, &mail).await
        })
        .await
    }
}

/// An optional string field (not rendered).
fn text_field(a: &ActionContext<'_>, key: &str) -> Result<Option<String>, String> {
    match a.fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("Bad {key}: {other} is not a string")),
    }
}

/// Sends through connection `conn_id`, with the rendered attachments.
async fn through_connection(
    a: &ActionContext<'_>,
    conn_id: &str,
    to: Vec<String>,
    subject: String,
    message: String,
    from: Option<String>,
) -> Result<(), String> {
    let mut attachments = Vec::new();
    match a.fields.get("attachments") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                attachments.push(
                    a.render(&units::show(item))
                        .await
                        .map_err(|e| format!("Bad attachments: {e}"))?,
                );
            }
        }
        Some(_) => return Err("attachments must be a list".into()),
    }
    let connections = &a.services.connections;
    let outgoing = Outgoing {
        subject,
        body: message,
        to,
        from,
        attachments,
        ..Outgoing::default()
    };
    bounded(async {
        let record = connections
            .get(conn_id)
            .await
            .map_err(|e| e.to_string())?;
        let conn = connections
            .email(&record)
            .await
            .map_err(|e| e.to_string())?;
        mail::send(
            &conn,
            &outgoing,
            &a.clients.mail,
            a.services.objects.as_ref(),
            &a.clients.ses,
        )
        .await
    })
    .await
}
