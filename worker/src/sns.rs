//! Publishing to SNS topics (the `sns` action). The local backend has no
//! SNS: an `sns` action there fails with [`NOT_LOCAL`].

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sns::config::timeout::TimeoutConfig;

/// Why an `sns` or SES `email` action fails on the local backend.
pub(crate) const NOT_LOCAL: &str = "not available on the local backend";

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
    /// The local backend, which has none.
    Local,
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
            Self::Local => Err(NOT_LOCAL.into()),
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
