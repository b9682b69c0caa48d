//! Clients of the services that post-job actions send to, built once at
//! start-up and shared by every run: the event bus, the queues of `sqs`
//! actions, SNS, SES and the email settings. A new action that needs a new
//! service adds its client here, not to the storage backend. On the local
//! backend, events go to `<DIR>/events.jsonl`, `sqs` messages to the local
//! queues; SNS and SES are not available there (those actions fail).

use std::sync::Arc;

use lava_common::store::{EventBus, Queue};

use crate::ses::Ses;
use crate::settings::MailSettings;
use crate::sns::Topics;

/// The action clients of a worker process.
pub struct ActionClients {
    /// Events of the `event` action (EventBridge, or `<DIR>/events.jsonl`
    /// on the local backend).
    pub bus: Arc<dyn EventBus>,
    /// Queues of the `sqs` action (the backend's queues).
    pub queue: Arc<dyn Queue>,
    /// Topics of the `sns` action.
    pub topics: Topics,
    /// SES, for the `email` action.
    pub ses: Ses,
    /// Email settings (`SES_*`, `EMAIL_MAX_*`).
    pub mail: MailSettings,
}
