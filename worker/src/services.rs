//! What job types and actions may use from their worker, built once at
//! start-up: the realm, the renderer, object and table storage, the keys of
//! secure state, the dispatch routine, connection lookup and the typed
//! settings. Nothing of the poll loop, the queue or the run lifecycle is here.

use std::sync::Arc;

use lava_common::connection::Connections;
use lava_common::dispatch::Dispatcher;
use lava_common::render::Renderer;
use lava_common::spec::Realm;
use lava_common::store::{BackendSpec, Kms, Objects, Tables};

use crate::settings::WorkerSettings;

/// Shared by every run of a worker process.
pub struct Services {
    /// Realm name.
    pub realm_name: String,
    /// Worker fleet name.
    pub worker_name: String,
    /// The realm record, read at start-up.
    pub realm: Realm,
    /// Jinja.
    pub renderer: Renderer,
    /// Realm tables (jobs, state, …).
    pub tables: Arc<dyn Tables>,
    /// Payloads and outputs.
    pub objects: Arc<dyn Objects>,
    /// Keys of secure state (KMS, or the local backend's key files).
    pub kms: Arc<dyn Kms>,
    /// The dispatch routine (job lookups, dispatch actions and jobs).
    pub dispatcher: Dispatcher,
    /// Connection lookup, with the secrets and AWS credentials caches.
    pub connections: Connections,
    /// The worker's settings.
    pub settings: WorkerSettings,
    /// Which backend (`aws`, `local:<DIR>`), as `--backend` gave it.
    pub backend_spec: BackendSpec,
    /// `--dev`: payload output to the worker's own stdout/stderr, nothing uploaded.
    pub dev: bool,
}
