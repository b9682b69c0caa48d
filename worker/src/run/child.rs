//! In-process child runs of `chain`, `dag` and `foreach`: a child job read
//! with the normal checks goes through the one run sequence under its
//! parent's run id, with its own events item `(child job_id, run_id)`,
//! state, `event_log`, iterations and actions. It works in the parent's job
//! directory (never removing it), gets no dispatch parameters, and takes no
//! lease of its own: it runs under its parent's, which the parent's
//! keep-alive renews meanwhile, and stops with its parent on an interrupt.
//!
//! A resumed run (the next delivery of a run interrupted by a drain, or a
//! crash) skips the children that completed under its run id since its
//! last failed attempt; `foreach` keeps its progress in the parent's own
//! events log.

use std::sync::Arc;

use async_trait::async_trait;
use lava_common::spec::{JobSpec, Status};
use lava_common::store::{Key, Table};
use lava_common::timestamp;
use serde_json::{Map, Value};
use tokio::sync::{Mutex, OnceCell};

use super::augmented::Run;
use super::record::INTERRUPTED;
use super::sequence;
use crate::events::{Mark, Overflow, RunEvents, log_of};
use crate::jobs::{ChildEnd, Children};
use crate::process::Interrupt;
use crate::worker::Worker;

/// The children of one attempt of a parent run.
pub(super) struct ChildRuns<'a> {
    w: &'a Arc<Worker>,
    parent: &'a Run,
    parent_events: Mutex<&'a mut RunEvents>,
    cancel: &'a Interrupt,
    parent_log: OnceCell<Vec<Value>>,
}

impl<'a> ChildRuns<'a> {
    /// The children of the attempt of `parent` now starting.
    pub(super) fn new(
        w: &'a Arc<Worker>,
        parent: &'a Run,
        parent_events: &'a mut RunEvents,
        cancel: &'a Interrupt,
    ) -> Self {
        Self {
            w,
            parent,
            parent_events: Mutex::new(parent_events),
            cancel,
            parent_log: OnceCell::new(),
        }
    }

    /// The parent's events log as it stood when first asked for.
    async fn parent_log(&self) -> &[Value] {
        self.parent_log
            .get_or_init(|| async {
                self.events_log(self.parent.job_id())
                    .await
                    .unwrap_or_default()
            })
            .await
    }

    async fn events_log(&self, job_id: &str) -> Option<Vec<Value>> {
        let services = &self.w.services;
        let key = Key::with_sort(job_id, &self.parent.run_id);
        match services
            .tables
            .get(&services.realm_name, Table::Events, &key, true)
            .await
        {
            Ok(item) => Some(log_of(item.as_ref())),
            Err(e) => {
                tracing::warn!(
                    "cannot read the events of {job_id} ({}): {e}",
                    self.parent.run_id
                );
                None
            }
        }
    }

    /// Whether this is not the first attempt of the run, and the
    /// `tu_event` of the parent's last failed attempt (progress before it
    /// does not count).
    async fn resumption(&self) -> (bool, String) {
        let log = self.parent_log().await;
        let attempts = log.iter().filter(|e| status_of(e) == "running").count();
        let since = log
            .iter()
            .rev()
            .find(|e| {
                status_of(e) == "retrying"
                    && e.get("info").and_then(Value::as_str) != Some(INTERRUPTED)
            })
            .and_then(|e| e.get("tu_event").and_then(Value::as_str))
            .unwrap_or_default()
            .to_string();
        (attempts > 1, since)
    }

    /// The child's globals: its own, the parent's over them, `extra` over
    /// both; `globals.lava` names the parent and keeps the master.
    fn globals(
        &self,
        job: &JobSpec,
        extra: Map<String, Value>,
        foreach_index: Option<usize>,
    ) -> Map<String, Value> {
        let parent = self.parent;
        let mut globals = job.globals().clone();
        globals.extend(parent.globals.clone());
        globals.extend(extra);
        let lava = globals
            .entry("lava")
            .or_insert_with(|| Value::Object(Map::new()));
        if !lava.is_object() {
            *lava = Value::Object(Map::new());
        }
        if let Value::Object(lava) = lava {
            // The parent's attempt number is no child's.
            lava.remove("iteration");
            lava.insert(
                "parent_job_id".into(),
                Value::String(parent.job_id().to_string()),
            );
            lava.insert(
                "parent_start".into(),
                Value::String(timestamp::isoformat(&parent.ts_start)),
            );
            lava.insert(
                "parent_ustart".into(),
                Value::String(timestamp::utc_isoformat(&parent.ts_start)),
            );
            if let Some(i) = foreach_index {
                lava.insert("foreach_index".into(), Value::from(i));
            }
        }
        globals
    }
}

#[async_trait]
impl Children for ChildRuns<'_> {
    async fn read(&self, job_id: &str) -> Result<JobSpec, String> {
        let services = &self.w.services;
        let job = services
            .dispatcher
            .lookup_job(job_id)
            .await
            .map_err(|e| e.to_string())?;
        for warning in &job.warnings {
            tracing::warn!("Job {job_id} ({}): {warning}", self.parent.run_id);
        }
        let worker = &services.worker_name;
        if job.worker() != worker {
            return Err(format!(
                "Worker mismatch: Expected {worker} but got {}",
                job.worker()
            ));
        }
        Ok(job)
    }

    async fn run(
        &self,
        job: JobSpec,
        extra: Map<String, Value>,
        foreach_index: Option<usize>,
    ) -> ChildEnd {
        let parent = self.parent;
        let services = &self.w.services;
        let job_id = job.job_id().to_string();
        let globals = self.globals(&job, extra, foreach_index);
        // The child's item may hold entries already (a resumed run, a
        // retried parent, the iterations of a `foreach`): the next entry
        // goes after them.
        let log = self.events_log(&job_id).await.unwrap_or_default();
        let s3tmp = format!("{}/{job_id}/{}", services.realm.s3_temp(), parent.run_id);
        let mut events = RunEvents::new(
            Arc::clone(&services.tables),
            &services.realm_name,
            &job_id,
            &parent.run_id,
            &parent.ts_dispatch,
            Arc::clone(&self.w.identity),
            services.settings.event_ttl,
            &log,
            Overflow {
                objects: Arc::clone(&services.objects),
                s3tmp: s3tmp.clone(),
                kms_key: services.realm.s3_key().map(str::to_string),
            },
            None,
        );
        let run = Run {
            parameters: job.parameters().clone(),
            job,
            run_id: parent.run_id.clone(),
            ts_dispatch: parent.ts_dispatch,
            ts_start: parent.ts_dispatch,
            globals,
            state: Map::new(),
            s3tmp,
            job_dir: parent.job_dir.clone(),
            cleanup: false,
            // A child's retries wait in place: the message is its parent's.
            delayed_retries: false,
        };
        let end = Box::pin(sequence::run(
            self.w,
            run,
            &mut events,
            self.cancel,
            sequence::Begin::Fresh,
        ))
        .await;
        match events.ended() {
            Some((Status::Complete | Status::Skipped, _)) => ChildEnd::Done,
            Some((_, info)) => ChildEnd::Failed(error_text(info)),
            None if end == super::End::Release || self.cancel.is_interrupted() => {
                ChildEnd::Interrupted
            }
            None => ChildEnd::Failed("its outcome could not be recorded".into()),
        }
    }

    async fn completed(&self, job_id: &str) -> bool {
        let (resumed, since) = self.resumption().await;
        if !resumed {
            return false;
        }
        let Some(log) = self.events_log(job_id).await else {
            return false;
        };
        log.iter()
            .rev()
            .find(|e| matches!(status_of(e), "complete" | "skipped" | "failed" | "rejected"))
            .is_some_and(|e| {
                matches!(status_of(e), "complete" | "skipped")
                    && e.get("tu_event")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        > since.as_str()
            })
    }

    async fn record(&self, info: Value) -> Result<(), String> {
        let mut events = self.parent_events.lock().await;
        events
            .write(Status::Logging, info, Mark::Entry)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn records(&self) -> Vec<Value> {
        let (resumed, since) = self.resumption().await;
        if !resumed {
            return Vec::new();
        }
        self.parent_log()
            .await
            .iter()
            .filter(|e| {
                status_of(e) == "logging"
                    && e.get("tu_event")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        > since.as_str()
            })
            .filter_map(|e| e.get("info").cloned())
            .collect()
    }
}

fn status_of(entry: &Value) -> &str {
    entry
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The error text of a child's final entry: `{error, …}` or a text.
fn error_text(info: &Value) -> String {
    match info {
        Value::String(s) => s.clone(),
        Value::Object(map) => match map.get("error") {
            Some(Value::String(s)) => s.clone(),
            _ => lava_common::units::show(info),
        },
        other => lava_common::units::show(other),
    }
}
