//! The time bound of actions that call services outside lava (SNS, SQS,
//! SES, SMTP, Slack): a service that does not answer fails the action, and
//! never holds the run (or the deletion of its message) for longer.

use std::future::Future;
use std::time::Duration;

/// The longest a notification action may take.
pub(super) const LIMIT: Duration = Duration::from_secs(60);

/// Runs `work`, failing it when it takes longer than [`LIMIT`].
pub(super) async fn bounded<F>(work: F) -> Result<(), String>
where
    F: Future<Output = Result<(), String>>,
{
    tokio::time::timeout(LIMIT, work)
        .await
        .unwrap_or_else(|_| Err(format!("did not finish within {} s", LIMIT.as_secs())))
}
