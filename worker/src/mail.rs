//! Email through an `email`/`ses` connection: the message (MIME, with
//! attachments within the `EMAIL_MAX_*` limits) and its sending by SES
//! `SendRawEmail` or SMTP (STARTTLS when the connection's `tls` is set,
//! login when it has a `user`). The SMTP password never appears in an
//! error or a log line.

use std::time::Duration;

use lava_common::connection::{EmailConn, EmailTransport};
use lava_common::store::Objects;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, Mailboxes, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::ses::Ses;
use crate::settings::MailSettings;

/// How long connecting to an SMTP server, and each of its replies, may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// One message to send through a connection.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    /// Subject (required).
    pub subject: String,
    /// Body (required); HTML when it starts with `<html` or `<!DOCTYPE html`.
    pub body: String,
    /// To.
    pub to: Vec<String>,
    /// Cc.
    pub cc: Vec<String>,
    /// Bcc: envelope only, never a header.
    pub bcc: Vec<String>,
    /// Sender; else the connection's `from` (and for SES, `SES_FROM`).
    pub from: Option<String>,
    /// Reply-To; else the connection's `reply_to`.
    pub reply_to: Vec<String>,
    /// Attachments: local paths or object URLs (`s3://…`, `file://…`).
    pub attachments: Vec<String>,
}

/// Whether a connection's message body is HTML: it starts (after
/// whitespace) with `<html` or `<!DOCTYPE html`, in any case.
pub fn is_html(body: &str) -> bool {
    let head: String = body.trim_start().chars().take(14).collect();
    let head = head.to_ascii_lowercase();
    head.starts_with("<html") || head.starts_with("<!doctype html")
}

/// The MIME type of an attachment, from its file name (compressed or
/// unknown: `application/octet-stream`).
fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" | "text" => "text/plain",
        "csv" => "text/csv",
        "htm" | "html" => "text/html",
        "css" => "text/css",
        "md" => "text/markdown",
        "json" => "application/json",
        "xml" => "application/xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "yaml" | "yml" => "application/yaml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _ => "application/octet-stream",
    }
}

/// Parses addresses (`a@b.c` or `Name <a@b.c>`).
fn mailboxes(addresses: &[String]) -> Result<Vec<Mailbox>, String> {
    addresses
        .iter()
        .map(|a| {
            a.trim()
                .parse::<Mailbox>()
                .map_err(|_| format!("Bad email address: {a}"))
        })
        .collect()
}

/// The message as sent: its bytes and envelope recipients.
struct Built {
    bytes: Vec<u8>,
    sender: Address,
    recipients: Vec<Address>,
}

/// Reads one attachment (at most `max` bytes).
async fn attachment(objects: &dyn Objects, source: &str, max: u64) -> Result<Vec<u8>, String> {
    if source.contains("://") {
        let data = objects
            .get(source)
            .await
            .map_err(|e| format!("Attachment {source}: {e}"))?;
        if data.len() as u64 > max {
            return Err(format!("Attachment {source} exceeds {max} bytes"));
        }
        return Ok(data);
    }
    let meta = tokio::fs::metadata(source)
        .await
        .map_err(|e| format!("Attachment {source}: {e}"))?;
    if meta.len() > max {
        return Err(format!("Attachment {source} exceeds {max} bytes"));
    }
    tokio::fs::read(source)
        .await
        .map_err(|e| format!("Attachment {source}: {e}"))
}

/// Builds the message with the connection's defaults.
async fn build(
    conn: &EmailConn,
    mail: &Outgoing,
    from: Option<&str>,
    settings: &MailSettings,
    objects: &dyn Objects,
) -> Result<Built, String> {
    let Some(from) = from.filter(|f| !f.is_empty()) else {
        return Err("Email sender must be specified".into());
    };
    if mail.to.is_empty() && mail.cc.is_empty() {
        return Err("No recipients specified for email".into());
    }
    if mail.subject.is_empty() || mail.body.is_empty() {
        return Err("Cannot send email: subject and message must be specified".into());
    }
    let from = from
        .trim()
        .parse::<Mailbox>()
        .map_err(|_| format!("Bad email address: {from}"))?;
    let to = mailboxes(&mail.to)?;
    let cc = mailboxes(&mail.cc)?;
    let bcc = mailboxes(&mail.bcc)?;
    let reply_to = mailboxes(if mail.reply_to.is_empty() {
        &conn.reply_to
    } else {
        &mail.reply_to
    })?;
    let mut builder = lettre::Message::builder()
        .from(from.clone())
        .subject(mail.subject.clone())
        .date_now()
        .message_id(None)
        .user_agent(format!("lava/{}", env!("CARGO_PKG_VERSION")));
    if !to.is_empty() {
        builder = builder.mailbox(lettre::message::header::To::from(Mailboxes::from_iter(
            to.iter().cloned(),
        )));
    }
    if !cc.is_empty() {
        builder = builder.mailbox(lettre::message::header::Cc::from(Mailboxes::from_iter(
            cc.iter().cloned(),
        )));
    }
    if !reply_to.is_empty() {
        builder = builder.mailbox(lettre::message::header::ReplyTo::from(
            Mailboxes::from_iter(reply_to),
        ));
    }
    let body_type = if is_html(&mail.body) {
        ContentType::TEXT_HTML
    } else {
        ContentType::TEXT_PLAIN
    };
    let body = SinglePart::builder()
        .header(body_type)
        .header(lettre::message::header::ContentDisposition::inline())
        .body(mail.body.clone());
    let max_count = usize::try_from(settings.email_max_attachments).unwrap_or(0);
    if mail.attachments.len() > max_count {
        return Err(format!(
            "Too many email attachments (max {})",
            settings.email_max_attachments
        ));
    }
    let message = if mail.attachments.is_empty() {
        builder.singlepart(body)
    } else {
        let mut parts = MultiPart::mixed().singlepart(body);
        for source in &mail.attachments {
            let data = attachment(objects, source, settings.email_max_attachment_size.0).await?;
            let name = source.rsplit('/').next().unwrap_or(source).to_string();
            let kind = ContentType::parse(content_type(&name))
                .map_err(|e| format!("Attachment {source}: {e}"))?;
            parts = parts.singlepart(Attachment::new(name).body(data, kind));
        }
        builder.multipart(parts)
    }
    .map_err(|e| format!("Cannot build email: {e}"))?;
    let bytes = message.formatted();
    let max = settings.email_max_size.0;
    if bytes.len() as u64 > max {
        return Err(format!(
            "Email size {} bytes exceeds maximum allowed size of {max} bytes",
            bytes.len()
        ));
    }
    let recipients = to
        .iter()
        .chain(&cc)
        .chain(&bcc)
        .map(|m| m.email.clone())
        .collect();
    Ok(Built {
        bytes,
        sender: from.email,
        recipients,
    })
}

/// Sends `mail` through connection `conn`. Errors are the texts the
/// `email` action records after "email: "; none holds a secret.
pub async fn send(
    conn: &EmailConn,
    mail: &Outgoing,
    settings: &MailSettings,
    objects: &dyn Objects,
    ses: &Ses,
) -> Result<(), String> {
    let id = &conn.conn_id;
    match &conn.transport {
        EmailTransport::Ses {
            region,
            configuration_set,
        } => {
            let from = mail
                .from
                .as_deref()
                .or(conn.from.as_deref())
                .or(settings.ses_from.as_deref());
            let built = build(conn, mail, from, settings, objects).await?;
            let destinations: Vec<String> =
                built.recipients.iter().map(ToString::to_string).collect();
            let region = region.as_deref().unwrap_or(&settings.ses_region);
            let set = configuration_set
                .as_deref()
                .or(settings.ses_configuration_set.as_deref());
            ses.send_raw(region, &destinations, built.bytes, set)
                .await
                .map_err(|e| format!("{id}: {e}"))
        }
        EmailTransport::Smtp {
            host,
            port,
            tls,
            login,
        } => {
            let from = mail.from.as_deref().or(conn.from.as_deref());
            let built = build(conn, mail, from, settings, objects).await?;
            let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                .port(*port)
                .timeout(Some(SMTP_TIMEOUT));
            if *tls {
                let params =
                    TlsParameters::new(host.clone()).map_err(|e| format!("{id}: TLS: {e}"))?;
                transport = transport.tls(Tls::Required(params));
            }
            if let Some((user, password)) = login {
                transport = transport.credentials(Credentials::new(user.clone(), password.clone()));
            }
            let envelope = lettre::address::Envelope::new(Some(built.sender), built.recipients)
                .map_err(|e| format!("{id}: {e}"))?;
            let sent = tokio::time::timeout(
                SMTP_TIMEOUT * 3,
                transport.build().send_raw(&envelope, &built.bytes),
            )
            .await;
            match sent {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(scrub(
                    &format!("{id}: {e}"),
                    login.as_ref().map(|(_, p)| p.as_str()),
                )),
                Err(_) => Err(format!("{id}: SMTP server {host}:{port} timed out")),
            }
        }
    }
}

/// Removes a secret from a text (an SMTP error may quote a reply that
/// echoes what was sent).
pub fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret.filter(|s| s.len() >= 3) {
        Some(secret) => text.replace(secret, "********"),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_detected_by_its_start() {
        assert!(is_html("  <HTML><body>x</body></html>"));
        assert!(is_html("<!doctype html>\n<html>"));
        assert!(!is_html("hello <html>"));
        assert!(!is_html(""));
    }

    #[test]
    fn content_types_come_from_the_name() {
        assert_eq!(content_type("a/b/report.CSV"), "text/csv");
        assert_eq!(content_type("x.tar.gz"), "application/octet-stream");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }

    #[test]
    fn scrub_hides_the_secret() {
        assert_eq!(
            scrub("bad pw hunter2!", Some("hunter2")),
            "bad pw ********!"
        );
        assert_eq!(scrub("x", None), "x");
    }
}
