//! The three storage seams lava runs on — tables, queue, objects — as small
//! traits (plus the event bus of the `event` action, the secrets that
//! connections name and the keys of secure state), and the choice of the
//! engine that implements each. Everything above the seams is written once
//! for every engine.

pub mod aws;
mod backend;
pub mod engine;
mod files;
pub mod item;
pub mod kms;
pub mod local;
pub mod secrets;

pub use backend::{Backend, BackendSpec};
pub use engine::{Connector, Engine, Seams, connect_bus, connect_secrets};
pub use kms::Kms;
pub use secrets::{ParameterCache, SecretValue, Secrets};

use std::path::Path;

use async_trait::async_trait;

use crate::names;
use crate::spec::Item;

/// A storage call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The table does not exist (for a realm table: no such realm here).
    #[error("table {0} not found")]
    TableNotFound(String),
    /// The queue does not exist.
    #[error("queue {0} not found")]
    QueueNotFound(String),
    /// The object does not exist.
    #[error("object {0} not found")]
    ObjectNotFound(String),
    /// The SSM parameter or Secrets Manager secret does not exist.
    #[error("{0}: not found")]
    SecretNotFound(String),
    /// A conditional write did not hold.
    #[error("condition failed: {0}")]
    ConditionFailed(String),
    /// A URL or argument the backend cannot use.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The service could not be reached or refused our credentials.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The service answered with an error.
    #[error("{0}")]
    Service(String),
}

/// The tables of a realm (and the global realms table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// `lava.realms` (global).
    Realms,
    /// `lava.<realm>.jobs`.
    Jobs,
    /// `lava.<realm>.connections`.
    Connections,
    /// `lava.<realm>.events`.
    Events,
    /// `lava.<realm>.s3triggers`.
    S3Triggers,
    /// `lava.<realm>.state`.
    State,
}

impl Table {
    /// The five per-realm tables.
    pub const REALM_TABLES: [Table; 5] = [
        Table::Jobs,
        Table::Connections,
        Table::Events,
        Table::S3Triggers,
        Table::State,
    ];

    /// The table's name for `realm` (the realms table ignores it).
    pub fn name(self, realm: &str) -> String {
        match self {
            Table::Realms => names::REALMS_TABLE.to_string(),
            Table::Jobs => names::table_name(realm, "jobs"),
            Table::Connections => names::table_name(realm, "connections"),
            Table::Events => names::table_name(realm, "events"),
            Table::S3Triggers => names::table_name(realm, "s3triggers"),
            Table::State => names::table_name(realm, "state"),
        }
    }

    /// Partition key and optional sort key names (all strings).
    pub fn key_schema(self) -> (&'static str, Option<&'static str>) {
        match self {
            Table::Realms => ("realm", None),
            Table::Jobs => ("job_id", None),
            Table::Connections => ("conn_id", None),
            Table::Events => ("job_id", Some("run_id")),
            Table::S3Triggers => ("trigger_id", None),
            Table::State => ("state_id", None),
        }
    }
}

/// A secondary index lava queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// Jobs by `dispatcher` (GSI `dispatcher-index`, sort `job_id`).
    JobsByDispatcher,
    /// Events by `tu_event` (LSI `job_id-tu_event-index`).
    EventsByTime,
    /// Triggers by `bucket` and `prefix` (GSI `s3trigger-index`).
    TriggersByPrefix,
}

impl Index {
    /// The index name, its table, and its partition and sort keys.
    pub fn schema(self) -> (&'static str, Table, &'static str, &'static str) {
        match self {
            Index::JobsByDispatcher => ("dispatcher-index", Table::Jobs, "dispatcher", "job_id"),
            Index::EventsByTime => ("job_id-tu_event-index", Table::Events, "job_id", "tu_event"),
            Index::TriggersByPrefix => ("s3trigger-index", Table::S3Triggers, "bucket", "prefix"),
        }
    }
}

/// The key of one item: partition value and, for the events table, sort value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Partition key value.
    pub pk: String,
    /// Sort key value, for tables that have one.
    pub sk: Option<String>,
}

impl Key {
    /// A partition-only key.
    pub fn new(pk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: None,
        }
    }

    /// A partition + sort key.
    pub fn with_sort(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: Some(sk.into()),
        }
    }
}

/// One event appended to a run's events item.
#[derive(Debug, Clone, PartialEq)]
pub struct EventWrite {
    /// Key: the job.
    pub job_id: String,
    /// Key: the run.
    pub run_id: String,
    /// Top-level attributes to set (`status`, `ts_event`, `tu_event`,
    /// `ts_dispatch`, `ttl`, `worker`, `worker_id`, `hostname`, …).
    pub set: Item,
    /// The `log` entry: `{ts_event, tu_event, status, info}`.
    pub entry: Item,
    /// The entry's position: the append only happens while `log` holds
    /// exactly this many entries, so a write retried after a lost reply
    /// cannot append the same entry twice.
    pub index: usize,
    /// The lease owner the writer must be: the append only happens while
    /// the item's lease names it. `None`: no fence (an entry after the
    /// final one, or a run that takes no lease).
    pub holder: Option<String>,
    /// Remove the run's lease in the same write (the final event, or an
    /// interrupted run handing itself on).
    pub release_lease: bool,
    /// The run's final entry: also sets [`FINAL_STATUS`], after which no
    /// lease can be taken on the run again.
    pub finishes: bool,
}

/// Attribute of an events item set by the run's final entry (its status):
/// the top-level `status` cannot tell a finished run, since an
/// `action_failed` entry after the final one overwrites it.
pub const FINAL_STATUS: &str = "final_status";

/// A run's lease, kept in the events item: a run whose message arrives
/// twice (a retried send, a lost delete reply) runs on one worker only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The worker process that holds it.
    pub owner: String,
    /// Epoch seconds after which it may be taken over.
    pub expires: i64,
}

/// The tables seam: items are JSON maps; numbers keep integer form.
#[async_trait]
pub trait Tables: Send + Sync {
    /// Reads one item; `None` if absent.
    async fn get(
        &self,
        realm: &str,
        table: Table,
        key: &Key,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError>;
    /// Writes (replaces) one item.
    async fn put(&self, realm: &str, table: Table, item: &Item) -> Result<(), StoreError>;
    /// Deletes one item (absent is fine).
    async fn delete(&self, realm: &str, table: Table, key: &Key) -> Result<(), StoreError>;
    /// Every item of a table, all pages.
    async fn scan(&self, realm: &str, table: Table) -> Result<Vec<Item>, StoreError>;
    /// Items of an index with partition value `pk` (and sort value `sk` if given), all pages.
    async fn query(
        &self,
        realm: &str,
        index: Index,
        pk: &str,
        sk: Option<&str>,
    ) -> Result<Vec<Item>, StoreError>;
    /// Appends one event to a run's events item, creating the item if
    /// needed. [`StoreError::ConditionFailed`] when `log` does not hold
    /// exactly `write.index` entries (the caller reads back to see whether
    /// an earlier, lost-reply attempt already appended it).
    async fn append_event(&self, realm: &str, write: &EventWrite) -> Result<(), StoreError>;
    /// Takes the lease of a run when the run has no final entry
    /// ([`FINAL_STATUS`]) and there is no lease, it has expired by `now`, or
    /// `lease.owner` already holds it. Returns the events item as written,
    /// or `None` when the condition did not hold (the caller reads the item
    /// to learn why).
    ///
    /// `first`, when given, is appended to the log in the same write (the
    /// run's `starting`; only its `set` and `entry` are used), which saves
    /// a request per run. The lease is then taken only on a run with no
    /// log yet (a run with entries is taken plainly, so its taker reads the
    /// log before adding to it), when the lease is absent or
    /// expired, never again by its holder (even expired), and not when the item's `status`
    /// is a final one (a run finished by a worker that sets no
    /// [`FINAL_STATUS`]): a write retried after a lost reply cannot append
    /// the entry twice, and the caller that finds the lease its own after a
    /// refusal knows its entry landed.
    async fn acquire_lease(
        &self,
        realm: &str,
        job_id: &str,
        run_id: &str,
        lease: &Lease,
        now: i64,
        first: Option<&EventWrite>,
    ) -> Result<Option<Item>, StoreError>;
    /// Renews a lease `lease.owner` holds, and sets the item's `ttl` when
    /// given; `false` when it no longer holds it (released, or taken over).
    /// One attempt, not retried inside: the caller retries within the
    /// lease's span (renewing is idempotent).
    async fn renew_lease(
        &self,
        realm: &str,
        job_id: &str,
        run_id: &str,
        lease: &Lease,
        ttl: Option<i64>,
    ) -> Result<bool, StoreError>;
    /// Creates the realms table if absent and the realm's five tables with
    /// their keys, indexes and TTL attributes.
    async fn create_realm_tables(&self, realm: &str) -> Result<(), StoreError>;
}

/// A resolved queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRef {
    /// Queue name.
    pub name: String,
    /// Backend address of the queue (the SQS URL).
    pub url: String,
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The message body.
    pub body: String,
    /// Handle for delete and visibility changes.
    pub receipt: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
    /// The backend's message id.
    pub message_id: String,
}

/// The queue seam.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Looks a queue up by name ([`StoreError::QueueNotFound`] if absent).
    async fn resolve(&self, name: &str) -> Result<QueueRef, StoreError>;
    /// Sends a body, invisible for `delay_secs` (0–900). Returns the message id.
    async fn send(
        &self,
        queue: &QueueRef,
        body: &str,
        delay_secs: u32,
    ) -> Result<String, StoreError>;
    /// Sends a body with the FIFO queue ids (`group_id`, `dedup_id`) that
    /// are given; queues without FIFO ordering ignore them.
    async fn send_fifo(
        &self,
        queue: &QueueRef,
        body: &str,
        delay_secs: u32,
        group_id: Option<&str>,
        dedup_id: Option<&str>,
    ) -> Result<String, StoreError> {
        let _ = (group_id, dedup_id);
        self.send(queue, body, delay_secs).await
    }
    /// Receives up to `max` messages, waiting up to `wait_secs` for one.
    async fn receive(
        &self,
        queue: &QueueRef,
        max: u32,
        wait_secs: u32,
    ) -> Result<Vec<Received>, StoreError>;
    /// Sets a received message's visibility timeout from now.
    async fn change_visibility(
        &self,
        queue: &QueueRef,
        receipt: &str,
        secs: u32,
    ) -> Result<(), StoreError>;
    /// Deletes a received message.
    async fn delete(&self, queue: &QueueRef, receipt: &str) -> Result<(), StoreError>;
    /// The queue's default visibility timeout in seconds.
    async fn visibility_timeout(&self, queue: &QueueRef) -> Result<u32, StoreError>;
    /// Creates a queue (or returns the existing one) with a visibility timeout.
    async fn create(&self, name: &str, visibility_secs: u32) -> Result<QueueRef, StoreError>;
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its full URL.
    pub url: String,
    /// Size in bytes.
    pub size: u64,
}

/// One object of a recursive listing ([`Objects::list_all`]), with what
/// S3's `ListObjectsV2` tells of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Its key in the bucket.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, ISO 8601 in UTC with its offset.
    pub last_modified: Option<String>,
    /// The entity tag, quotes included as S3 gives it.
    pub etag: Option<String>,
    /// The storage class.
    pub storage_class: Option<String>,
}

/// The objects seam: payloads and outputs by URL (`s3://bucket/key` on AWS,
/// `file:///<DIR>/objects/<bucket>/<key>` on the local backend).
///
/// [`Objects::upload`] and [`Objects::download`] stream between a file and
/// the store and suit bodies of any size; [`Objects::put`] and
/// [`Objects::get`] hold the whole body in memory and are for small bodies
/// only (event records, state).
#[async_trait]
pub trait Objects: Send + Sync {
    /// The URL of a bucket's root on this backend, without a trailing `/`:
    /// `s3://<bucket>` or `file:///<DIR>/objects/<bucket>`. Object URLs are
    /// this root, `/` and the key.
    fn bucket_url(&self, bucket: &str) -> String;
    /// Stores a small object from memory; `kms_key` selects SSE-KMS, else
    /// SSE AES256. Use [`Objects::upload`] for anything that may be large.
    async fn put(&self, url: &str, body: Vec<u8>, kms_key: Option<&str>) -> Result<(), StoreError>;
    /// Reads a small object into memory. Use [`Objects::download`] for
    /// anything that may be large.
    async fn get(&self, url: &str) -> Result<Vec<u8>, StoreError>;
    /// Stores the file at `path` as the object `url`, streaming it (large
    /// files go up in parts); `kms_key` as for [`Objects::put`]. Returns the
    /// size stored. A file that cannot be read gives
    /// [`StoreError::BadRequest`] naming it; readers never see part of an
    /// object.
    async fn upload(
        &self,
        url: &str,
        path: &Path,
        kms_key: Option<&str>,
    ) -> Result<u64, StoreError>;
    /// Writes the object `url` to the file `path`, streaming it through a
    /// temporary file in the same directory that is renamed into place, so
    /// `path` is either the whole object or untouched. Returns the size
    /// written. A missing object gives [`StoreError::ObjectNotFound`] and
    /// leaves no file behind.
    async fn download(&self, url: &str, path: &Path) -> Result<u64, StoreError>;
    /// Objects whose URL starts with `prefix_url`, not descending past the next `/`.
    async fn list(&self, prefix_url: &str) -> Result<Vec<ObjectInfo>, StoreError>;
    /// Every object of `bucket` whose key starts with `prefix`, at any
    /// depth, in key order.
    async fn list_all(&self, bucket: &str, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError>;
    /// Creates the bucket (or directory) behind a URL if absent.
    async fn create_bucket(&self, url: &str) -> Result<(), StoreError>;
}

/// One event for an event bus (the `event` action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusEvent {
    /// `source`, e.g. `lava.<realm>`.
    pub source: String,
    /// `detail-type`, e.g. `Lava Job Action`.
    pub detail_type: String,
    /// The detail as JSON text.
    pub detail: String,
    /// Resource ARNs.
    pub resources: Vec<String>,
    /// Event bus name; `None` is the default bus.
    pub bus: Option<String>,
}

/// The event-bus seam: EventBridge on AWS, a JSON-lines file locally.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Puts one event.
    async fn put(&self, event: &BusEvent) -> Result<(), StoreError>;
}

/// Splits `s3://bucket/key` into bucket and key (key may be empty).
pub fn split_s3_url(url: &str) -> Result<(&str, &str), StoreError> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| StoreError::BadRequest(format!("not an s3:// URL: {url}")))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(StoreError::BadRequest(format!("no bucket in URL: {url}")));
    }
    Ok((bucket, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls() {
        assert_eq!(split_s3_url("s3://b/k/x"), Ok(("b", "k/x")));
        assert_eq!(split_s3_url("s3://b"), Ok(("b", "")));
        assert!(split_s3_url("s3:///k").is_err());
        assert!(split_s3_url("file:///tmp").is_err());
        assert_eq!(Table::Events.name("prod"), "lava.prod.events");
        assert_eq!(Table::Realms.name("prod"), "lava.realms");
    }
}
