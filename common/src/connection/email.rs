//! The `email` connector (subtypes `ses` and `smtp`) and the deprecated
//! `ses` type, as the `email` action and `lava-email` use them: the checked
//! record, with the SMTP password read from SSM (never cached, never shown).

use serde_json::Value;

use super::{ConnError, ConnType, Connections, Record};

/// Fields an `email`/`ses` record may have besides the common ones.
const ALLOWED: &[&str] = &[
    "from",
    "region",
    "return_path",
    "reply_to",
    "subtype",
    "user",
    "host",
    "password",
    "port",
    "tls",
    "configuration_set",
];

/// How an email connection sends.
#[derive(Clone, PartialEq)]
pub enum EmailTransport {
    /// SES `SendRawEmail`.
    Ses {
        /// `region`, if set (else `SES_REGION`).
        region: Option<String>,
        /// `configuration_set`, if set (else `SES_CONFIGURATION_SET`).
        configuration_set: Option<String>,
    },
    /// An SMTP server.
    Smtp {
        /// `host`.
        host: String,
        /// `port` (465 with `tls`, else 25).
        port: u16,
        /// Issue STARTTLS after EHLO.
        tls: bool,
        /// Login user and password (read from the SSM parameter `password`).
        login: Option<(String, String)>,
    },
}

impl std::fmt::Debug for EmailTransport {
    /// Never shows the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ses {
                region,
                configuration_set,
            } => f
                .debug_struct("Ses")
                .field("region", region)
                .field("configuration_set", configuration_set)
                .finish(),
            Self::Smtp {
                host,
                port,
                tls,
                login,
            } => f
                .debug_struct("Smtp")
                .field("host", host)
                .field("port", port)
                .field("tls", tls)
                .field("user", &login.as_ref().map(|(u, _)| u))
                .finish(),
        }
    }
}

/// A usable email connection.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailConn {
    /// The connection id.
    pub conn_id: String,
    /// Default sender (`from`).
    pub from: Option<String>,
    /// Default Reply-To addresses (`reply_to`).
    pub reply_to: Vec<String>,
    /// How it sends.
    pub transport: EmailTransport,
}

/// A string field, if present and not empty.
fn text(record: &Record, field: &str) -> Result<Option<String>, ConnError> {
    match record.item().get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ConnError::field(record.id(), field, "must be a string")),
    }
}

/// A boolean as the original parses it (`true`/`yes`/`on`/`1` and their
/// opposites, any case; JSON booleans and numbers too).
fn flag(record: &Record, field: &str) -> Result<bool, ConnError> {
    match record.item().get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) => Ok(n.as_f64().is_some_and(|f| f != 0.0)),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" | "t" | "y" => Ok(true),
            "false" | "no" | "off" | "0" | "f" | "n" | "" => Ok(false),
            other => Err(ConnError::field(
                record.id(),
                field,
                format!("bad boolean: {other}"),
            )),
        },
        Some(_) => Err(ConnError::field(record.id(), field, "must be a boolean")),
    }
}

/// A string or a list of strings.
pub fn addresses(value: Option<&Value>) -> Result<Vec<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(format!("Email address entries must be strings: {other}")),
            })
            .collect(),
        Some(other) => Err(format!(
            "Email addresses must be a string or list of strings: {other}"
        )),
    }
}

/// Checks an `email` or `ses` record and reads its SMTP password.
pub(super) async fn resolve(c: &Connections, record: &Record) -> Result<EmailConn, ConnError> {
    let id = record.id();
    if record.conn_type != ConnType::Email {
        return Err(ConnError::other(
            id,
            format!(
                "Must be of type \"email\" or \"ses\" not \"{}\"",
                record.connection.conn_type().to_ascii_lowercase()
            ),
        ));
    }
    record.allow_only(ALLOWED)?;
    let reply_to = addresses(record.item().get("reply_to"))
        .map_err(|e| ConnError::field(id, "reply_to", e))?;
    let kind = record.connection.conn_type().to_ascii_lowercase();
    let subtype = match kind.as_str() {
        "ses" => "ses".to_string(),
        _ => text(record, "subtype")?.unwrap_or_else(|| "ses".into()),
    };
    let transport = match subtype.as_str() {
        "ses" => EmailTransport::Ses {
            region: text(record, "region")?,
            configuration_set: text(record, "configuration_set")?,
        },
        "smtp" => {
            let host = text(record, "host")?.ok_or_else(|| ConnError::BadRecord {
                id: id.to_string(),
                reason: "Bad connection record: Missing keys: host".into(),
            })?;
            let tls = flag(record, "tls")?;
            let port = match record.item().get("port") {
                None | Some(Value::Null) => {
                    if tls {
                        465
                    } else {
                        25
                    }
                }
                Some(v) => crate::units::show(v)
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| ConnError::field(id, "port", "must be a port number"))?,
            };
            let login = match text(record, "user")? {
                None => None,
                Some(user) => {
                    if text(record, "password")?.is_none() {
                        return Err(ConnError::other(
                            id,
                            "password is required if user is specified",
                        ));
                    }
                    // The SMTP password bypasses the cache, as the original.
                    let name = text(record, "password")?.unwrap_or_default();
                    Some((user, c.parameter(id, "password", &name, false).await?))
                }
            };
            EmailTransport::Smtp {
                host,
                port,
                tls,
                login,
            }
        }
        other => {
            return Err(ConnError::other(
                id,
                format!("No email handler for type/subtype {kind}/{other}"),
            ));
        }
    };
    Ok(EmailConn {
        conn_id: id.to_string(),
        from: text(record, "from")?,
        reply_to,
        transport,
    })
}
