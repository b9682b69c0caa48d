//! The local backend (`local:<DIR>`): one SQLite file
//! `<DIR>/lava.db` holds every realm's tables and every queue; objects are
//! files under `<DIR>/objects/<bucket>/<key>`, addressed by `file://` URLs.
//! Several processes may share the directory: the database runs in WAL mode
//! with a busy timeout and claims messages in `BEGIN IMMEDIATE` transactions.
//!
//! Semantics follow the AWS backend: strongly consistent reads, TTL
//! (items of the events and state tables whose `ttl` is in the past read as
//! absent and are deleted opportunistically), the same
//! conditional event appends and leases, and SQS-like queues (delay,
//! per-queue visibility timeout, receive counts, receipts invalidated on
//! redelivery, long polls).

mod bus;
mod db;
mod objects;
mod queue;
mod secrets;
mod tables;

use std::path::Path;
use std::sync::Arc;

pub use bus::LocalBus;
pub use objects::LocalObjects;
pub use queue::LocalQueue;
pub use secrets::LocalSecrets;
pub use tables::LocalTables;

use super::StoreError;
use db::Db;

/// The three seams of one local backend directory.
#[derive(Debug, Clone)]
pub struct LocalStore {
    /// Realm tables.
    pub tables: LocalTables,
    /// Queues.
    pub queue: LocalQueue,
    /// Objects under `<DIR>/objects`.
    pub objects: LocalObjects,
}

/// Opens (creating if needed) the local backend rooted at `dir`: creates the
/// directory (like `mkdir -p`), opens or creates `<DIR>/lava.db` and migrates
/// an older schema. A path that cannot be created or written, a file that is
/// not a lava database, or a schema newer than this lava gives
/// [`StoreError::BadRequest`] naming the path; nothing is ever deleted or
/// overwritten.
pub async fn open(dir: &Path) -> Result<LocalStore, StoreError> {
    let dir = dir.to_path_buf();
    let db = tokio::task::spawn_blocking(move || Db::open(&dir))
        .await
        .map_err(|e| StoreError::Service(format!("local backend: opening failed: {e}")))??;
    let db = Arc::new(db);
    Ok(LocalStore {
        tables: LocalTables::new(Arc::clone(&db)),
        queue: LocalQueue::new(Arc::clone(&db)),
        objects: LocalObjects::new(db.dir()),
    })
}
