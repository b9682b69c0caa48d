//! Publishing to SNS topics (the `sns` action), or to the local backend's
//! [`Outbox`].

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sns::config::timeout::TimeoutConfig;
use serde_json::{Map, Value};

use crate::outbox::Outbox;

/// How long one attempt of an SNS or SES call may take.
pub(crate) const ATTEMPT: Duration = Duration::from_secs(10);

/// Timeouts of the notification clients: connect and each attempt.
pub(crate) fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(ATTEMPT)
        .build()
}

/// Where `sns` messages go.
#[derive(Debug, Clone)]
pub enum Topics {
    /// SNS.
    Aws(aws_sdk_sns::Client),
    /// `<DIR>/notifications.jsonl`.
    Local(Outbox),
}

impl Topics {
    /// An SNS client from the SDK configuration.
    pub fn aws(config: &SdkConfig) -> Self {
        Self::Aws(aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(config)
                .timeout_config(timeouts())
                .build(),
        ))
    }

    /// Publishes one message.
    pub async fn publish(
        &self,
        topic: &str,
        subject: Option<&str>,
        message: &str,
    ) -> Result<(), String> {
        match self {
            Self::Aws(client) => client
                .publish()
                .topic_arn(topic)
                .message(message)
                .set_subject(subject.map(str::to_string))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_error(&e)),
            Self::Local(outbox) => {
                let mut record = Map::new();
                record.insert("topic".into(), Value::String(topic.into()));
                record.insert(
                    "subject".into(),
                    subject.map_or(Value::Null, |s| Value::String(s.into())),
                );
                record.insert("message".into(), Value::String(message.into()));
                outbox.append("sns", record).await
            }
        }
    }
}

/// An AWS error as text: the service's message when it gave one.
pub(crate) fn sdk_error<E>(e: &E) -> String
where
    E: aws_sdk_sns::error::ProvideErrorMetadata + std::error::Error,
{
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (None, Some(message)) => message.to_string(),
        _ => aws_sdk_sns::error::DisplayErrorContext(e).to_string(),
    }
}
