//! The `slack` connector: an incoming-webhook URL (stored in the record, or
//! the name of an SSM parameter holding it) and message defaults. The URL
//! is a secret: it never appears in a log line, an error or `Debug` output.

use serde_json::Value;

use super::{ConnError, ConnType, Connections, Record};

/// The default sidebar colour of `attachment` messages.
pub const DEFAULT_COLOUR: &str = "#bbbbbb";

/// Fields a `slack` record may have besides the common ones.
const ALLOWED: &[&str] = &["webhook_url", "from", "style", "colour", "preamble"];

/// A message layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlackStyle {
    /// Sections with a header, the message and the event time.
    Block,
    /// A coloured attachment.
    Attachment,
    /// One line of text.
    Plain,
}

impl SlackStyle {
    /// `block`, `attachment` or `plain`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "block" => Some(Self::Block),
            "attachment" => Some(Self::Attachment),
            "plain" => Some(Self::Plain),
            _ => None,
        }
    }
}

/// A usable Slack connection.
#[derive(Clone, PartialEq)]
pub struct SlackConn {
    /// The connection id.
    pub conn_id: String,
    /// The webhook URL (secret).
    pub webhook_url: String,
    /// Sender label: `from`, else `lava@<realm>`.
    pub from: String,
    /// `style` (default `block`).
    pub style: SlackStyle,
    /// `colour` (default `#bbbbbb`).
    pub colour: String,
    /// `preamble`.
    pub preamble: Option<String>,
}

impl std::fmt::Debug for SlackConn {
    /// Never shows the webhook URL.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackConn")
            .field("conn_id", &self.conn_id)
            .field("from", &self.from)
            .field("style", &self.style)
            .field("colour", &self.colour)
            .field("preamble", &self.preamble)
            .finish_non_exhaustive()
    }
}

fn text(record: &Record, field: &str) -> Result<Option<String>, ConnError> {
    match record.item().get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ConnError::field(record.id(), field, "must be a string")),
    }
}

/// Checks a `slack` record; a `webhook_url` that is not an `https://` or
/// `http://` URL names the SSM parameter holding it.
pub(super) async fn resolve(c: &Connections, record: &Record) -> Result<SlackConn, ConnError> {
    let id = record.id();
    if record.conn_type != ConnType::Slack {
        return Err(ConnError::other(
            id,
            format!(
                "Must be of type \"slack\" not \"{}\"",
                record.connection.conn_type().to_ascii_lowercase()
            ),
        ));
    }
    record.allow_only(ALLOWED)?;
    let Some(url) = text(record, "webhook_url")? else {
        return Err(ConnError::other(id, "Missing keys: webhook_url"));
    };
    let webhook_url = if url.starts_with("https://") || url.starts_with("http://") {
        url
    } else {
        c.parameter(id, "webhook_url", &url, true).await?
    };
    let style_text = text(record, "style")?.unwrap_or_else(|| "block".into());
    let style = SlackStyle::parse(&style_text)
        .ok_or_else(|| ConnError::other(id, format!("Bad style {style_text}")))?;
    Ok(SlackConn {
        conn_id: id.to_string(),
        webhook_url,
        from: text(record, "from")?.unwrap_or_else(|| format!("lava@{}", c.realm())),
        style,
        colour: text(record, "colour")?.unwrap_or_else(|| DEFAULT_COLOUR.into()),
        preamble: text(record, "preamble")?,
    })
}
