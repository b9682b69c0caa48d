//! Writing a run's events: one append per event to the run's events item,
//! in order, retried, never appended twice (each append is conditional on
//! the `log` length the writer expects) and, while the run holds a lease,
//! only while it holds it, with the worker's identity and the TTL. Entries
//! and item attributes come from the typed model ([`LogEntry`],
//! [`EventHeader`]). An entry that would take the item past
//! its size limit is shrunk and kept whole in the run's temp area
//! ([`crate::event_size`]); the original loses such an event.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use lava_common::spec::{EventHeader, Item, LogEntry, Status};
use lava_common::store::{EventWrite, Key, Lease, Objects, StoreError, Table, Tables};
use lava_common::timestamp;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::event_size::{self, json_size, map_size};
use crate::fence::LeaseHold;

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

/// Where the full copy of a shrunk entry goes.
pub struct Overflow {
    /// Object storage.
    pub objects: Arc<dyn Objects>,
    /// The run's `s3tmp` (`<s3_temp>/<job_id>/<run_id>`).
    pub s3tmp: String,
    /// The realm's KMS key for objects, if any.
    pub kms_key: Option<String>,
}

/// How many times an event write is tried before giving up, when no
/// keep-alive tells whether the run still holds its lease.
const WRITE_ATTEMPTS: u32 = 5;

/// What an entry does to the run besides adding to its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Nothing: an entry on the way.
    Entry,
    /// The final entry: releases the lease and marks the run finished.
    Final,
    /// Hands the unfinished run on: releases the lease only.
    HandOver,
}

/// Why an event could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The run's lease was lost: another worker may own the run now.
    #[error("the run's lease was lost")]
    LeaseLost,
    /// Somebody else appended to the run's log while this worker held it.
    #[error("the events log holds entries this worker did not write")]
    Foreign,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The events of one run.
pub struct RunEvents {
    tables: Arc<dyn Tables>,
    realm: String,
    job_id: String,
    run_id: String,
    ts_dispatch: String,
    identity: Arc<Identity>,
    ttl: Option<Duration>,
    next_index: usize,
    /// What the item's `log` takes, by [`json_size`].
    log_bytes: usize,
    overflow: Overflow,
    /// The run's lease while it holds one (until its final entry).
    hold: Option<Arc<LeaseHold>>,
    keepalive: Option<Keepalive>,
    /// The run's final entry once written here: its status and info.
    ended: Option<(Status, Value)>,
}

/// A run's keep-alive task (started by the run module's lease keeping).
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
    /// The writer for a run whose events item already holds `log`; `hold`
    /// is the lease the run holds, if it takes one.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tables: Arc<dyn Tables>,
        realm: &str,
        job_id: &str,
        run_id: &str,
        ts_dispatch: &DateTime<FixedOffset>,
        identity: Arc<Identity>,
        ttl: Option<Duration>,
        log: &[Value],
        overflow: Overflow,
        hold: Option<Arc<LeaseHold>>,
    ) -> Self {
        Self {
            tables,
            realm: realm.to_string(),
            job_id: job_id.to_string(),
            run_id: run_id.to_string(),
            ts_dispatch: timestamp::isoformat(ts_dispatch),
            identity,
            ttl,
            next_index: log.len(),
            log_bytes: log.iter().map(json_size).sum(),
            overflow,
            hold,
            keepalive: None,
            ended: None,
        }
    }

    /// The status and info of the run's final entry, once this writer has
    /// written it (how a parent learns how its in-process child ended).
    pub fn ended(&self) -> Option<&(Status, Value)> {
        self.ended.as_ref()
    }

    /// True once the run's lease is known lost.
    pub fn lease_lost(&self) -> bool {
        self.hold.as_ref().is_some_and(|h| h.is_lost())
    }

    /// Attaches the run's keep-alive: the entry that releases the lease
    /// stops it once written.
    pub fn set_keepalive(&mut self, keepalive: Keepalive) {
        self.keepalive = Some(keepalive);
    }

    /// Gives the run's lease up with no entry (a planned retry that came
    /// back before it was due): the keep-alive stops and the lease is
    /// renewed as expired, so the delivery due next takes it at once.
    /// Returns how long until another worker can take it: zero, or the
    /// lease's span when it could not be given up.
    pub async fn release_lease(&mut self) -> Duration {
        self.stop_keepalive().await;
        let Some(hold) = self.hold.take() else {
            return Duration::ZERO;
        };
        let lease = Lease {
            owner: hold.owner.clone(),
            expires: chrono::Utc::now().timestamp() - 1,
        };
        match self
            .tables
            .renew_lease(&self.realm, &self.job_id, &self.run_id, &lease, None)
            .await
        {
            Ok(_) => Duration::ZERO,
            Err(e) => {
                tracing::warn!("cannot give the run's lease up: {e}; it expires in its time");
                hold.span
            }
        }
    }

    /// Stops the keep-alive, if it still runs.
    pub async fn stop_keepalive(&mut self) {
        if let Some(keepalive) = self.keepalive.take() {
            keepalive.stop().await;
        }
    }

    /// Writes one event; returns its time. While the run holds its lease
    /// and a keep-alive renews it, a write is retried until it lands or the
    /// lease is lost; otherwise a few times.
    pub async fn write(
        &mut self,
        status: Status,
        info: Value,
        mark: Mark,
    ) -> Result<DateTime<FixedOffset>, WriteError> {
        let final_info = (mark == Mark::Final).then(|| info.clone());
        let (mut write, now) = self.prepare(status, info, mark)?;
        let result = self.append(&mut write).await;
        if let (Ok(()), Some(info)) = (&result, final_info) {
            self.ended = Some((status, info));
        }
        if result.is_ok() && mark != Mark::Entry {
            // The lease is gone: later entries (`action_failed`) are not fenced.
            self.stop_keepalive().await;
            self.hold = None;
        }
        result.map(|()| now)
    }

    /// The write of one event, at the time it returns, for [`RunEvents::write`]
    /// or for the lease taking that appends the run's `starting`.
    pub fn prepare(
        &self,
        status: Status,
        info: Value,
        mark: Mark,
    ) -> Result<(EventWrite, DateTime<FixedOffset>), WriteError> {
        let now = timestamp::now_local();
        let ts_event = timestamp::isoformat(&now);
        let tu_event = timestamp::naive_utc(&now);
        // While the run holds its lease, the item outlives the lease too:
        // an EVENT_TTL shorter than the run cannot expire it mid-run.
        let hold_span = match (&self.hold, mark) {
            (Some(hold), Mark::Entry) => hold.span,
            _ => Duration::ZERO,
        };
        let header = EventHeader {
            ts_dispatch: self.ts_dispatch.clone(),
            status,
            ts_event: ts_event.clone(),
            tu_event: tu_event.clone(),
            ttl: self.ttl.map(|ttl| {
                now.timestamp().saturating_add(
                    i64::try_from(ttl.saturating_add(hold_span).as_secs()).unwrap_or(i64::MAX),
                )
            }),
            worker: non_empty(&self.identity.worker),
            worker_id: self.identity.instance_id.clone(),
            hostname: non_empty(&self.identity.hostname),
            instance_id: self.identity.instance_id.clone(),
        };
        let entry = LogEntry {
            ts_event,
            tu_event,
            status,
            info,
        };
        let (Value::Object(set), Value::Object(entry)) = (
            serde_json::to_value(&header).unwrap_or(Value::Null),
            serde_json::to_value(&entry).unwrap_or(Value::Null),
        ) else {
            return Err(StoreError::BadRequest("event does not serialise".into()).into());
        };
        let write = EventWrite {
            job_id: self.job_id.clone(),
            run_id: self.run_id.clone(),
            set,
            entry,
            index: self.next_index,
            holder: self.hold.as_ref().map(|h| h.owner.clone()),
            release_lease: mark != Mark::Entry && self.hold.is_some(),
            finishes: mark == Mark::Final,
        };
        Ok((write, now))
    }

    /// Takes the run's log as the lease taking found (or wrote) it: the
    /// next entry goes after it.
    pub fn adopt(&mut self, log: &[Value]) {
        self.next_index = log.len();
        self.log_bytes = log.iter().map(json_size).sum();
    }

    async fn append(&mut self, write: &mut EventWrite) -> Result<(), WriteError> {
        let mut delay = Duration::from_millis(250);
        let mut attempt = 0;
        let mut unwatched = 0;
        loop {
            attempt += 1;
            self.fit(write).await;
            let error = match self.tables.append_event(&self.realm, write).await {
                Ok(()) => {
                    self.appended(write);
                    return Ok(());
                }
                Err(StoreError::ConditionFailed(_)) => match self.log_and_holder().await {
                    // A retried write whose first reply was lost: it is there.
                    Ok((log, _))
                        if log
                            .get(write.index)
                            .is_some_and(|e| same_entry(e, &write.entry)) =>
                    {
                        self.appended(write);
                        return Ok(());
                    }
                    Ok((_, holder)) if write.holder.is_some() && holder != write.holder => {
                        if let Some(hold) = &self.hold {
                            hold.set_lost();
                        }
                        return Err(WriteError::LeaseLost);
                    }
                    Ok(_) if write.holder.is_some() => return Err(WriteError::Foreign),
                    Ok((log, _)) => {
                        tracing::warn!(
                            "events log holds {} entries, expected {}; appending after them",
                            log.len(),
                            write.index
                        );
                        write.index = log.len();
                        self.log_bytes = log.iter().map(json_size).sum();
                        StoreError::ConditionFailed("log length changed".into())
                    }
                    Err(e) => e,
                },
                Err(e @ StoreError::BadRequest(_)) => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(attempt, "event write failed: {e}");
                    e
                }
            };
            // Kept trying while a keep-alive vouches for the lease (it
            // declares it lost when renewals fail for a lease span); then a
            // few more times, since only another worker taking the lease
            // makes the write impossible, and the write's condition tells.
            let watched = self.keepalive.is_some() && self.hold.is_some() && !self.lease_lost();
            if !watched {
                unwatched += 1;
                if unwatched >= WRITE_ATTEMPTS {
                    return Err(error.into());
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(4));
        }
    }

    fn appended(&mut self, write: &EventWrite) {
        self.next_index = write.index + 1;
        self.log_bytes += map_size(&write.entry);
    }

    /// Shrinks the entry's `info` when the entry would take the item past
    /// its limit, after storing the whole entry as `event-<n>.json` in the
    /// run's temp area. A failed upload is logged; the shrunk entry is
    /// written all the same.
    async fn fit(&self, write: &mut EventWrite) {
        let entry_size = map_size(&write.entry);
        let room = event_size::room_for_entry(self.log_bytes);
        if entry_size <= room {
            return;
        }
        let url = format!("{}/event-{}.json", self.overflow.s3tmp, write.index);
        let whole = serde_json::to_vec(&write.entry).unwrap_or_default();
        let record = match self
            .overflow
            .objects
            .put(&url, whole, self.overflow.kms_key.as_deref())
            .await
        {
            Ok(()) => Some(url.as_str()),
            Err(e) => {
                tracing::warn!("cannot store the whole event at {url}: {e}");
                None
            }
        };
        let info = write.entry.get("info").cloned().unwrap_or(Value::Null);
        let budget = room.saturating_sub(entry_size - json_size(&info));
        let shrunk = event_size::shrink(&info, budget, record);
        tracing::warn!(
            job_id = %self.job_id,
            run_id = %self.run_id,
            "event {} is {entry_size} bytes, more than the {room} left in the events item: \
             info shrunk to {} bytes{}",
            write.index,
            json_size(&shrunk),
            record.map(|u| format!(", whole entry at {u}")).unwrap_or_default()
        );
        write.entry.insert("info".into(), shrunk);
    }

    #[cfg(test)]
    async fn log(&self) -> Result<Vec<Value>, StoreError> {
        Ok(self.log_and_holder().await?.0)
    }

    /// The item's log and who holds its lease.
    async fn log_and_holder(&self) -> Result<(Vec<Value>, Option<String>), StoreError> {
        let item = self
            .tables
            .get(
                &self.realm,
                Table::Events,
                &Key::with_sort(&self.job_id, &self.run_id),
                true,
            )
            .await?;
        let holder = item
            .as_ref()
            .and_then(|i| i.get("lease"))
            .and_then(|l| l.get("owner"))
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok((log_of(item.as_ref()), holder))
    }
}

/// The `log` list of an events item (empty when absent).
pub fn log_of(item: Option<&Item>) -> Vec<Value> {
    item.and_then(|i| i.get("log"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Whether `found`, an entry of a log, is the entry `entry` (its status
/// and time).
pub fn same_entry(found: &Value, entry: &Item) -> bool {
    found.get("status") == entry.get("status") && found.get("ts_event") == entry.get("ts_event")
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use lava_common::provision::{RealmSetup, create_realm};
    use lava_common::store::{Backend, BackendSpec};
    use serde_json::json;

    use super::*;

    /// Growth over several entries, on the local backend (which refuses an
    /// item over 400 KB as DynamoDB does): each entry that would pass the
    /// limit is shrunk and stored whole; the last ones keep only where the
    /// whole entry is.
    #[tokio::test]
    async fn growth_over_many_entries_stays_under_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = BackendSpec::parse(&format!("local:{}", dir.path().display())).expect("spec");
        let backend = Backend::connect(&spec, None).await.expect("backend");
        let realm = create_realm(&backend, &RealmSetup::new("sizes", &["core"]))
            .await
            .expect("realm");
        let s3tmp = format!("{}/j/r", realm.s3_temp());
        let mut events = RunEvents::new(
            Arc::clone(&backend.tables),
            "sizes",
            "j",
            "r",
            &timestamp::now_local(),
            Arc::new(Identity::detect("core")),
            None,
            &[],
            Overflow {
                objects: Arc::clone(&backend.objects),
                s3tmp: s3tmp.clone(),
                kms_key: None,
            },
            None,
        );
        let big = json!({"error": "boom", "error_data": {"exit_status": 1, "error": "x".repeat(150_000)}});
        events
            .write(Status::Starting, Value::Null, Mark::Entry)
            .await
            .expect("starting");
        for n in 1..=3 {
            events
                .write(Status::Retrying, big.clone(), Mark::Entry)
                .await
                .unwrap_or_else(|e| panic!("retrying {n}: {e}"));
        }
        events
            .write(Status::Failed, big.clone(), Mark::Final)
            .await
            .expect("failed");

        let log = events.log().await.expect("log");
        let statuses: Vec<&str> = log.iter().filter_map(|e| e["status"].as_str()).collect();
        assert_eq!(
            statuses,
            ["starting", "retrying", "retrying", "retrying", "failed"]
        );
        assert_eq!(log[1]["info"], big);
        assert_eq!(log[2]["info"], big);
        let third = &log[3]["info"];
        assert_eq!(third["truncated"], json!(true));
        assert_eq!(third["record"], json!(format!("{s3tmp}/event-3.json")));
        assert_eq!(third["error_data"]["exit_status"], json!(1));
        let cut = third["error_data"]["error"].as_str().unwrap_or_default();
        assert!(cut.len() > 30_000 && cut.len() < 50_000, "{}", cut.len());
        assert_eq!(
            log[4]["info"],
            json!({"truncated": true, "record": format!("{s3tmp}/event-4.json")})
        );
        let total: usize = log.iter().map(json_size).sum();
        assert!(total <= event_size::ITEM_LIMIT, "{total}");
        for (n, entry) in log.iter().enumerate().skip(3) {
            let url = format!("{s3tmp}/event-{n}.json");
            let whole: Value =
                serde_json::from_slice(&backend.objects.get(&url).await.expect("whole entry"))
                    .expect("json");
            assert_eq!(whole["info"], big, "{url}");
            assert_eq!(whole["ts_event"], entry["ts_event"], "{url}");
        }
    }
}
