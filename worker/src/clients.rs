//! Clients of the services that post-job actions send to (the event bus
//! today), built once at start-up and shared by every run. A new action that
//! needs a new service adds its client here, not to the storage backend.

use std::sync::Arc;

use lava_common::store::EventBus;

/// The action clients of a worker process.
pub struct ActionClients {
    /// Events of the `event` action (EventBridge, or `<DIR>/events.jsonl`
    /// on the local backend).
    pub bus: Arc<dyn EventBus>,
}
