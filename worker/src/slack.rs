//! Slack messages through a `slack` connection's incoming webhook: the
//! three layouts (`block`, `attachment`, `plain`) and the POST (10 s
//! timeout). The webhook URL is a secret: errors name the connection,
//! never the URL.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lava_common::connection::{SlackConn, SlackStyle};
use serde_json::{Map, Value, json};

/// Longest subject, in characters.
pub const MAX_SUBJECT: usize = 250;
/// Longest message, in characters.
pub const MAX_MESSAGE: usize = 3000;
/// How long the POST may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// One message; unset fields fall back to the connection's.
#[derive(Debug, Clone, Default)]
pub struct SlackMessage {
    /// The text (cut to 3000 characters).
    pub message: String,
    /// Subject (cut to 250 characters).
    pub subject: Option<String>,
    /// Sender label.
    pub from: Option<String>,
    /// Layout.
    pub style: Option<SlackStyle>,
    /// Sidebar colour of `attachment` messages.
    pub colour: Option<String>,
    /// Text placed first (`<!here>`).
    pub preamble: Option<String>,
}

/// The first `n` characters of `text`.
fn cut(text: &str, n: usize) -> String {
    text.chars().take(n).collect()
}

/// A colour as Slack takes it: hex values get a leading `#` if they lack
/// one; names (`good`, `warning`, `danger`) stay as they are.
fn colour(text: &str) -> String {
    let hex = !text.is_empty() && text.chars().all(|c| c.is_ascii_hexdigit());
    if hex {
        format!("#{text}")
    } else {
        text.to_string()
    }
}

/// The JSON payload, at time `ts` (seconds since the epoch).
pub fn payload(conn: &SlackConn, m: &SlackMessage, ts: i64) -> Result<Value, String> {
    if m.message.is_empty() {
        return Err("Cannot send slack message: message must be specified".into());
    }
    let nonempty = |o: &Option<String>| o.clone().filter(|s| !s.is_empty());
    let style = m.style.unwrap_or(conn.style);
    let sender = nonempty(&m.from).unwrap_or_else(|| conn.from.clone());
    let preamble = nonempty(&m.preamble).or_else(|| conn.preamble.clone());
    let colour = colour(&nonempty(&m.colour).unwrap_or_else(|| conn.colour.clone()));
    let subject = nonempty(&m.subject).map(|s| cut(&s, MAX_SUBJECT));
    let message = cut(&m.message, MAX_MESSAGE);
    let sender = Some(sender).filter(|s| !s.is_empty());
    let plain: Vec<String> = [
        preamble.clone(),
        sender.as_ref().map(|s| format!("*{s}*:")),
        subject.as_ref().map(|s| format!("*{s}*:")),
        Some(message.clone()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let text = plain.join(" ");
    Ok(match style {
        SlackStyle::Plain => json!({ "text": text }),
        SlackStyle::Block => {
            let header: Vec<String> = [
                preamble,
                sender.as_ref().map(|s| format!("*From*: {s}")),
                subject.as_ref().map(|s| format!("*Subject*: {s}")),
            ]
            .into_iter()
            .flatten()
            .collect();
            json!({
                "text": text,
                "blocks": [
                    {"type": "section", "text": {"type": "mrkdwn", "text": header.join("\n")}},
                    {"type": "divider"},
                    {"type": "section", "text": {"type": "mrkdwn", "text": message}},
                    {"type": "context", "elements": [{"type": "mrkdwn",
                        "text": format!("Event time: <!date^{ts}^{{date_short_pretty}} at {{time}}| >")}]},
                ],
            })
        }
        SlackStyle::Attachment => {
            let mut attachment = Map::new();
            attachment.insert("fallback".into(), Value::String(message.clone()));
            attachment.insert(
                "author_name".into(),
                Value::String(sender.unwrap_or_else(|| conn.from.clone())),
            );
            attachment.insert("color".into(), Value::String(colour));
            attachment.insert("text".into(), Value::String(message));
            attachment.insert("footer".into(), Value::String("Event time".into()));
            attachment.insert("ts".into(), Value::from(ts));
            if let Some(subject) = subject {
                attachment.insert("title".into(), Value::String(subject));
            }
            let mut out = Map::new();
            out.insert(
                "attachments".into(),
                Value::Array(vec![Value::Object(attachment)]),
            );
            if let Some(preamble) = preamble {
                out.insert("text".into(), Value::String(preamble));
            }
            Value::Object(out)
        }
    })
}

/// Sends `m` through the connection's webhook.
pub async fn send(conn: &SlackConn, m: &SlackMessage) -> Result<(), String> {
    let body = payload(conn, m, chrono::Utc::now().timestamp())?;
    post(conn, body.to_string())
        .await
        .map_err(|e| format!("Connection {}: {e}", conn.conn_id))
}

/// POSTs JSON to the webhook; a non-2xx reply is "Slack response <code> - <text>".
async fn post(conn: &SlackConn, body: String) -> Result<(), String> {
    // The URL stays out of every error text.
    let uri: hyper::Uri = conn
        .webhook_url
        .parse()
        .map_err(|_| "webhook_url is not a valid URL".to_string())?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls_provider())
        .map_err(|e| format!("cannot load the trusted certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let request = hyper::Request::post(uri)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("cannot build the webhook request: {e}"))?;
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| format!("cannot reach the Slack webhook: {}", describe(&e)))?;
        let status = response.status();
        let text = response
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("Slack response {} - {text}", status.as_u16()))
        }
    };
    tokio::time::timeout(TIMEOUT, exchange).await.map_err(|_| {
        format!(
            "the Slack webhook did not answer within {} s",
            TIMEOUT.as_secs()
        )
    })?
}

/// The TLS provider the AWS SDK's client uses too.
fn rustls_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

/// The cause of a client error, without the URL.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = e.to_string();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(style: SlackStyle) -> SlackConn {
        SlackConn {
            conn_id: "c".into(),
            webhook_url: "https://hooks.example/x".into(),
            from: "lava@r".into(),
            style,
            colour: "#bbbbbb".into(),
            preamble: None,
        }
    }

    #[test]
    fn plain_joins_the_parts_that_are_there() {
        let m = SlackMessage {
            message: "hello".into(),
            ..SlackMessage::default()
        };
        assert_eq!(
            payload(&conn(SlackStyle::Plain), &m, 1),
            Ok(json!({"text": "*lava@r*: hello"}))
        );
        let m = SlackMessage {
            message: "x".repeat(3100),
            subject: Some("s".repeat(300)),
            preamble: Some("<!here>".into()),
            ..SlackMessage::default()
        };
        let text = payload(&conn(SlackStyle::Plain), &m, 1)
            .map(|v| v["text"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default();
        let want = format!(
            "<!here> *lava@r*: *{}*: {}",
            "s".repeat(250),
            "x".repeat(3000)
        );
        assert_eq!(text, want);
    }

    #[test]
    fn attachment_colours_and_title() {
        let mut m = SlackMessage {
            message: "m".into(),
            style: Some(SlackStyle::Attachment),
            ..SlackMessage::default()
        };
        let v = payload(&conn(SlackStyle::Block), &m, 42).unwrap_or_default();
        assert_eq!(
            v,
            json!({"attachments": [{"fallback": "m", "author_name": "lava@r", "color": "#bbbbbb",
                                    "text": "m", "footer": "Event time", "ts": 42}]})
        );
        m.colour = Some("danger".into());
        m.subject = Some("t".into());
        m.preamble = Some("<!channel>".into());
        let v = payload(&conn(SlackStyle::Block), &m, 42).unwrap_or_default();
        assert_eq!(v["attachments"][0]["color"], json!("danger"));
        assert_eq!(v["attachments"][0]["title"], json!("t"));
        assert_eq!(v["text"], json!("<!channel>"));
        m.colour = Some("ABC123".into());
        let v = payload(&conn(SlackStyle::Block), &m, 42).unwrap_or_default();
        assert_eq!(v["attachments"][0]["color"], json!("#ABC123"));
    }

    #[test]
    fn block_has_header_divider_message_and_time() {
        let m = SlackMessage {
            message: "body".into(),
            subject: Some("subj".into()),
            ..SlackMessage::default()
        };
        let v = payload(&conn(SlackStyle::Block), &m, 7).unwrap_or_default();
        assert_eq!(v["text"], json!("*lava@r*: *subj*: body"));
        assert_eq!(
            v["blocks"],
            json!([
                {"type": "section", "text": {"type": "mrkdwn", "text": "*From*: lava@r\n*Subject*: subj"}},
                {"type": "divider"},
                {"type": "section", "text": {"type": "mrkdwn", "text": "body"}},
                {"type": "context", "elements": [{"type": "mrkdwn",
                    "text": "Event time: <!date^7^{date_short_pretty} at {time}| >"}]},
            ])
        );
        let empty = SlackMessage::default();
        assert!(payload(&conn(SlackStyle::Block), &empty, 7).is_err());
    }
}
