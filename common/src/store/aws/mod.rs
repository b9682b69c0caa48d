//! The AWS backend: DynamoDB tables, SQS queues and S3 objects, with an SDK
//! configuration that honours `AWS_ENDPOINT_URL` (moto, LocalStack) and the
//! normal credential and region chains.

pub mod attr;
mod bus;
mod objects;
mod queue;
mod secrets;
mod tables;

pub use bus::AwsBus;
pub use objects::{AwsObjects, MIN_PART_SIZE, Multipart};
pub use queue::AwsQueue;
pub use secrets::AwsSecrets;
pub use tables::AwsTables;

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::Builder as HttpClientBuilder;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};

use super::StoreError;

/// Loads the SDK configuration: region, credentials and endpoint from the
/// environment, the shared config files (`profile` if given) or instance
/// metadata, exactly as the AWS CLI finds them.
pub async fn sdk_config(profile: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(p) = profile {
        loader = loader.profile_name(p);
    }
    if let Some(client) = http_client() {
        loader = loader.http_client(client);
    }
    loader.load().await
}

/// How long one attempt of a DynamoDB or EventBridge call may take. A
/// request whose reply never comes (a half-open connection, a lost reply on
/// a kept-alive socket) is abandoned and retried by the SDK instead of
/// holding a run for ever.
pub const QUICK_ATTEMPT: Duration = Duration::from_secs(10);

/// The same for SQS, whose receives wait up to 20 s for a message.
pub const SQS_ATTEMPT: Duration = Duration::from_secs(40);

/// Connecting gives up after this.
const CONNECT: Duration = Duration::from_secs(5);

/// Timeouts for a client: connect, and each attempt when `attempt` is set.
/// The S3 client gets none per attempt, as a body may be large: file
/// uploads set one per request, in proportion to the bytes it carries.
pub(crate) fn timeouts(attempt: Option<Duration>) -> TimeoutConfig {
    let builder = TimeoutConfig::builder().connect_timeout(CONNECT);
    match attempt {
        Some(limit) => builder.operation_attempt_timeout(limit).build(),
        None => builder.build(),
    }
}

/// CA bundles tried, in order, after `SSL_CERT_FILE` (Debian, then RHEL/Amazon Linux).
const CA_BUNDLES: [&str; 2] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// An HTTP client that is cheap to start, which matters for `lava-dispatch`
/// (cron starts one per schedule): plain HTTP when `AWS_ENDPOINT_URL` is an
/// `http://` URL (an emulator on loopback), else TLS trusting the system's
/// single CA bundle file instead of parsing every file under /etc/ssl/certs.
/// `None` falls back to the SDK's default client.
fn http_client() -> Option<SharedHttpClient> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    if endpoint.starts_with("http://") {
        return Some(HttpClientBuilder::new().build_http());
    }
    let from_env = std::env::var("SSL_CERT_FILE").ok();
    let bundle = from_env
        .iter()
        .map(String::as_str)
        .chain(CA_BUNDLES)
        .find_map(|path| std::fs::read(path).ok())?;
    let store = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(bundle);
    let context = TlsContext::builder().with_trust_store(store).build().ok()?;
    Some(
        HttpClientBuilder::new()
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(context)
            .build_https(),
    )
}

/// Maps an SDK failure to a [`StoreError`]; `not_found` names the resource
/// for codes that mean it does not exist.
pub(crate) fn store_error<E, R>(
    err: SdkError<E, R>,
    not_found: impl FnOnce(&str) -> Option<StoreError>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default().to_string();
            if let Some(mapped) = not_found(&code) {
                return mapped;
            }
            if code == "ConditionalCheckFailedException" {
                return StoreError::ConditionFailed(code);
            }
            let message = service.err().message().unwrap_or_default();
            // A request the service will never accept (a key over its size
            // limit, say): retrying cannot help.
            if code == "ValidationException" {
                return StoreError::BadRequest(format!("{code}: {message}"));
            }
            StoreError::Service(format!("{code}: {message}"))
        }
        _ => StoreError::Unavailable(DisplayErrorContext(&err).to_string()),
    }
}
