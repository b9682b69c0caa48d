//! Writing a run's events: one append per event to the run's events item,
//! in order, retried, never appended twice (DECISIONS.md 5, 42), with the
//! worker's identity and the TTL (spec/worker.md §8).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use lava_common::spec::{Item, Status};
use lava_common::store::{EventWrite, Key, StoreError, Table, Tables};
use lava_common::timestamp;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

/// Who writes events: the same for every run of a worker process.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Worker fleet name.
    pub worker: String,
    /// EC2 instance id, when on EC2.
    pub instance_id: Option<String>,
    /// Host name.
    pub hostname: String,
    /// Lease owner id of this process (host, pid and a random part).
    pub lease_owner: String,
}

impl Identity {
    /// The identity of this process.
    pub fn detect(worker: &str) -> Self {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        // On Nitro EC2 instances the board asset tag is the instance id: no
        // metadata call needed, and nothing to probe off EC2.
        let instance_id = std::fs::read_to_string("/sys/devices/virtual/dmi/id/board_asset_tag")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| s.starts_with("i-"));
        let lease_owner = format!(
            "{hostname}:{}:{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            worker: worker.to_string(),
            instance_id,
            hostname,
            lease_owner,
        }
    }
}

/// How many times an event write is tried before giving up.
const WRITE_ATTEMPTS: u32 = 5;

/// The events of one run.
pub struct RunEvents {
    tables: Arc<dyn Tables>,
    realm: String,
    job_id: String,
    run_id: String,
    ts_dispatch: String,
    identity: Arc<Identity>,
    ttl_secs: Option<f64>,
    next_index: usize,
    keepalive: Option<Keepalive>,
}

/// A run's keep-alive task (see `run::spawn_keepalive`).
pub struct Keepalive {
    /// Stops it.
    pub token: CancellationToken,
    /// The task.
    pub task: tokio::task::JoinHandle<()>,
}

impl Keepalive {
    /// Stops it and waits until its last call has returned, so no lease
    /// renewal can land after the final event removed the lease.
    pub async fn stop(self) {
        self.token.cancel();
        let _ = self.task.await;
    }
}

impl RunEvents {
    /// The writer for a run whose events item already holds `log_len` entries.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tables: Arc<dyn Tables>,
        realm: &str,
        job_id: &str,
        run_id: &str,
        ts_dispatch: &DateTime<FixedOffset>,
        identity: Arc<Identity>,
        ttl_secs: Option<f64>,
        log_len: usize,
    ) -> Self {
        Self {
            tables,
            realm: realm.to_string(),
            job_id: job_id.to_string(),
            run_id: run_id.to_string(),
            ts_dispatch: timestamp::isoformat(ts_dispatch),
            identity,
            ttl_secs,
            next_index: log_len,
            keepalive: None,
        }
    }

    /// Attaches the run's keep-alive: the last event stops it first.
    pub fn set_keepalive(&mut self, keepalive: Keepalive) {
        self.keepalive = Some(keepalive);
    }

    /// Stops the keep-alive, if it still runs.
    pub async fn stop_keepalive(&mut self) {
        if let Some(keepalive) = self.keepalive.take() {
            keepalive.stop().await;
        }
    }

    /// Writes one event; returns its time. `last` also releases the run's lease.
    pub async fn write(
        &mut self,
        status: Status,
        info: Value,
        last: bool,
    ) -> Result<DateTime<FixedOffset>, StoreError> {
        if last {
            self.stop_keepalive().await;
        }
        let now = timestamp::now_local();
        let ts_event = timestamp::isoformat(&now);
        let tu_event = timestamp::naive_utc(&now);
        let status_text = serde_json::to_value(status).unwrap_or(Value::Null);
        let mut set = Map::new();
        set.insert(
            "ts_dispatch".into(),
            Value::String(self.ts_dispatch.clone()),
        );
        set.insert("status".into(), status_text.clone());
        set.insert("ts_event".into(), Value::String(ts_event.clone()));
        set.insert("tu_event".into(), Value::String(tu_event.clone()));
        if let Some(ttl) = self.ttl_secs {
            set.insert("ttl".into(), Value::from(now.timestamp() + ttl as i64));
        }
        set.insert("worker".into(), null_if_empty(&self.identity.worker));
        set.insert(
            "worker_id".into(),
            self.identity
                .instance_id
                .clone()
                .map_or(Value::Null, Value::String),
        );
        set.insert("hostname".into(), null_if_empty(&self.identity.hostname));
        if let Some(id) = &self.identity.instance_id {
            set.insert("instance_id".into(), Value::String(id.clone()));
        }
        let mut entry = Map::new();
        entry.insert("ts_event".into(), Value::String(ts_event));
        entry.insert("tu_event".into(), Value::String(tu_event));
        entry.insert("status".into(), status_text);
        entry.insert("info".into(), info);
        let mut write = EventWrite {
            job_id: self.job_id.clone(),
            run_id: self.run_id.clone(),
            set,
            entry,
            index: self.next_index,
            release_lease: last,
        };
        let mut delay = Duration::from_millis(250);
        let mut last_error = StoreError::Service("no attempt".into());
        for attempt in 1..=WRITE_ATTEMPTS {
            match self.tables.append_event(&self.realm, &write).await {
                Ok(()) => {
                    self.next_index = write.index + 1;
                    return Ok(now);
                }
                Err(StoreError::ConditionFailed(_)) => match self.log().await {
                    // A retried write whose first reply was lost: it is there.
                    Ok(log)
                        if log
                            .get(write.index)
                            .is_some_and(|e| same_entry(e, &write.entry)) =>
                    {
                        self.next_index = write.index + 1;
                        return Ok(now);
                    }
                    Ok(log) => {
                        tracing::warn!(
                            "events log holds {} entries, expected {}; appending after them",
                            log.len(),
                            write.index
                        );
                        write.index = log.len();
                        last_error = StoreError::ConditionFailed("log length changed".into());
                    }
                    Err(e) => last_error = e,
                },
                Err(e) => {
                    tracing::warn!(attempt, "event write failed: {e}");
                    last_error = e;
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(8));
        }
        Err(last_error)
    }

    async fn log(&self) -> Result<Vec<Value>, StoreError> {
        let item = self
            .tables
            .get(
                &self.realm,
                Table::Events,
                &Key::with_sort(&self.job_id, &self.run_id),
                true,
            )
            .await?;
        Ok(log_of(item.as_ref()))
    }
}

/// The `log` list of an events item (empty when absent).
pub fn log_of(item: Option<&Item>) -> Vec<Value> {
    item.and_then(|i| i.get("log"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn same_entry(found: &Value, entry: &Item) -> bool {
    found.get("status") == entry.get("status") && found.get("ts_event") == entry.get("ts_event")
}

fn null_if_empty(text: &str) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        Value::String(text.to_string())
    }
}
