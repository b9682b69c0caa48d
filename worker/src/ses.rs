//! Sending email through SES (API v1: `SendEmail`, `SendRawEmail`,
//! `ListIdentities`, in the region each call names). The local backend has
//! no SES: mail through it fails with [`NOT_LOCAL`] (SMTP works there).

use crate::sns::{NOT_LOCAL, sdk_error, timeouts};
use aws_config::SdkConfig;
use aws_sdk_ses::config::Region;
use aws_sdk_ses::primitives::Blob;
use aws_sdk_ses::types::{Body, Content, Destination, IdentityType, Message, RawMessage};

/// A plain `SendEmail` message.
#[derive(Debug, Clone)]
pub struct SimpleEmail<'a> {
    /// The sender.
    pub from: &'a str,
    /// The recipients.
    pub to: &'a [String],
    /// The subject.
    pub subject: &'a str,
    /// The body.
    pub body: &'a str,
    /// Whether the body is HTML.
    pub html: bool,
}

/// Where SES mail goes.
#[derive(Debug, Clone)]
pub enum Ses {
    /// SES, with a client per call in the call's region.
    Aws(Box<SdkConfig>),
    /// The local backend, which has none.
    Local,
}

impl Ses {
    fn client(config: &SdkConfig, region: &str) -> aws_sdk_ses::Client {
        aws_sdk_ses::Client::from_conf(
            aws_sdk_ses::config::Builder::from(config)
                .region(Region::new(region.to_string()))
                .timeout_config(timeouts())
                .build(),
        )
    }

    /// The first verified domain identity of `region`, if any.
    pub async fn first_domain(&self, region: &str) -> Result<Option<String>, String> {
        match self {
            Self::Aws(config) => {
                let out = Self::client(config, region)
                    .list_identities()
                    .identity_type(IdentityType::Domain)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&e))?;
                Ok(out.identities().first().cloned())
            }
            Self::Local => Err(NOT_LOCAL.into()),
        }
    }

    /// `SendEmail` with UTF-8 charset.
    pub async fn send_simple(&self, region: &str, mail: &SimpleEmail<'_>) -> Result<(), String> {
        match self {
            Self::Aws(config) => {
                let content = |text: &str| {
                    Content::builder()
                        .data(text)
                        .charset("UTF-8")
                        .build()
                        .map_err(|e| e.to_string())
                };
                let body = if mail.html {
                    Body::builder().html(content(mail.body)?).build()
                } else {
                    Body::builder().text(content(mail.body)?).build()
                };
                let message = Message::builder()
                    .subject(content(mail.subject)?)
                    .body(body)
                    .build();
                Self::client(config, region)
                    .send_email()
                    .source(mail.from)
                    .destination(
                        Destination::builder()
                            .set_to_addresses(Some(mail.to.to_vec()))
                            .build(),
                    )
                    .message(message)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_error(&e))
            }
            Self::Local => Err(NOT_LOCAL.into()),
        }
    }

    /// `SendRawEmail` to `destinations`, with a configuration set if given.
    pub async fn send_raw(
        &self,
        region: &str,
        destinations: &[String],
        raw: Vec<u8>,
        configuration_set: Option<&str>,
    ) -> Result<(), String> {
        match self {
            Self::Aws(config) => {
                let raw = RawMessage::builder()
                    .data(Blob::new(raw))
                    .build()
                    .map_err(|e| e.to_string())?;
                Self::client(config, region)
                    .send_raw_email()
                    .set_destinations(Some(destinations.to_vec()))
                    .raw_message(raw)
                    .set_configuration_set_name(configuration_set.map(str::to_string))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_error(&e))
            }
            Self::Local => Err(NOT_LOCAL.into()),
        }
    }
}
