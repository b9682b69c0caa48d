//! Admission of a received message: its identity (job, run, realm), copies
//! of a run already in progress here, duplicates of a finished run, the
//! run's lease, the message and job checks, and the merge of the dispatch's
//! parameters and globals over the job's. What is admitted is a [`Run`]
//! with its events writer; everything else ends here, recorded as
//! `rejected` when the run can be named.

use std::sync::Arc;
use std::time::Duration;

use lava_common::dispatch::{DispatchMessage, Failure as LookupFailure};
use lava_common::spec::{Enabled, JobSpec, Status};
use lava_common::store::{Received, StoreError};
use lava_common::{timestamp, units};
use serde_json::{Map, Value};

use super::augmented::Run;
use super::record::{INTERRUPTED, reject};
use super::sequence::Begin;
use super::{End, lease, resume};
use crate::events::{Mark, Overflow, RunEvents, same_entry};
use crate::process::Interrupt;
use crate::worker::{ActiveGuard, ActiveRuns, Entered, Receipt, Worker};

/// A run ready for its run sequence.
pub(super) struct Admitted {
    /// The run.
    pub(super) run: Run,
    /// Its events writer, with the keep-alive attached.
    pub(super) events: RunEvents,
    /// The run's own interrupt: the worker's, and the loss of its lease.
    pub(super) cancel: Interrupt,
    /// How its sequence begins.
    pub(super) begin: Begin,
}

/// Admits a message, or says what becomes of it. `active` receives the
/// guard that marks the run as in progress here.
pub(super) async fn admit(
    w: &Arc<Worker>,
    msg: &Received,
    active: &mut Option<ActiveGuard>,
    cancel: &Interrupt,
) -> Result<Admitted, End> {
    let (job_id, run_id) = identify(w, msg)?;

    // A copy of a run in progress here is left alone (the same message,
    // received again, only refreshes the receipt the run uses).
    let receipt = match ActiveRuns::enter(w, &run_id, &msg.message_id, &msg.receipt) {
        Entered::New(guard) => Arc::clone(&active.insert(guard).receipt),
        Entered::SameMessage => {
            tracing::info!(
                "Job {job_id} ({run_id}): received again while it runs here - receipt refreshed"
            );
            return Err(End::Keep);
        }
        Entered::OtherCopy => {
            tracing::info!("Job {job_id} ({run_id}): another copy runs here - left alone");
            return Err(End::Keep);
        }
    };

    // Before the lease: reading the job, then taking the lease, which
    // returns the run's log (duplicates of a finished run end here). A
    // passing AWS failure is tried again here, the message kept invisible
    // meanwhile: it is no attempt of the run.
    let persist = Persist {
        w,
        receipt: &receipt,
        cancel,
    };
    let lookup = persist
        .call("read the job", || async {
            match w.services.dispatcher.lookup_job(&job_id).await {
                Err(LookupFailure::Store(e)) => Err(e),
                Err(LookupFailure::NoSuchRealm { table, .. }) => {
                    Err(StoreError::TableNotFound(table))
                }
                other => Ok(other),
            }
        })
        .await?;

    let realm_name = &w.services.realm_name;
    let parsed = DispatchMessage::parse(&msg.body);
    let ts_dispatch = parsed
        .as_ref()
        .ok()
        .and_then(DispatchMessage::timestamp)
        .unwrap_or_else(timestamp::now_local);
    let s3tmp = format!("{}/{job_id}/{run_id}", w.services.realm.s3_temp());
    let hold = lease::hold(w);
    let mut events = RunEvents::new(
        Arc::clone(&w.services.tables),
        realm_name,
        &job_id,
        &run_id,
        &ts_dispatch,
        Arc::clone(&w.identity),
        w.services.settings.event_ttl,
        &[],
        Overflow {
            objects: Arc::clone(&w.services.objects),
            s3tmp: s3tmp.clone(),
            kms_key: w.services.realm.s3_key().map(str::to_string),
        },
        Some(Arc::clone(&hold)),
    );
    let prefix = format!("Job {job_id} ({run_id})");
    let checked = check(w, &job_id, &run_id, parsed, lookup);

    // A run that passes every check that needs no log starts in the write
    // that takes its lease (one request less per run). A run that will be
    // rejected or skipped, or a message received before (its run may be
    // over its retry budget, which only the log tells), takes the lease
    // alone, and its entry follows.
    let starting = match &checked {
        Ok(c) if c.job.enabled() != Enabled::Static(false) && msg.receive_count <= 1 => {
            match events.prepare(Status::Starting, Value::Null, Mark::Entry) {
                Ok(prepared) => Some(prepared),
                Err(e) => {
                    tracing::error!("{prefix}: cannot prepare the start: {e}");
                    None
                }
            }
        }
        _ => None,
    };
    let first = starting.as_ref().map(|(write, _)| write);
    let log = match persist
        .call("take the run's lease", || {
            lease::take(w, &job_id, &run_id, &hold, first)
        })
        .await?
    {
        lease::Taken::Run(log) => log,
        lease::Taken::Finished => {
            tracing::info!("Job {job_id} ({run_id}): already finished - duplicate deleted");
            return Err(End::Delete);
        }
        lease::Taken::Held => {
            tracing::info!("Job {job_id} ({run_id}): running on another worker - left alone");
            return Err(End::Keep);
        }
    };
    events.adopt(&log);
    let run_cancel = cancel.child();
    if let Some(keepalive) = lease::spawn_keepalive(
        Arc::clone(w),
        Some(Arc::clone(&receipt)),
        job_id.clone(),
        run_id.clone(),
        hold,
        run_cancel.clone(),
    ) {
        events.set_keepalive(keepalive);
    }
    // The retry budget counts the run's unfinished attempts, not deliveries.
    let unfinished = unfinished_attempts(&log);
    if w.options.retries >= 0 && unfinished > w.options.retries {
        let text = format!(
            "{prefix}: Retry limit exceeded - deleted on cycle {}",
            msg.receive_count
        );
        return Err(reject(&mut events, &text).await);
    }
    let Checked {
        job,
        parameters,
        globals,
    } = match checked {
        Ok(c) => c,
        Err(text) => return Err(reject(&mut events, &text).await),
    };
    let max_tries = job.field("max_tries").and_then(Value::as_i64).unwrap_or(0);
    if max_tries > 0 && unfinished >= max_tries {
        return Err(reject(&mut events, &format!("{prefix}: max_tries exceeded")).await);
    }

    // A run that ran here before under a worker that is gone may have left
    // processes behind (no worker of this one's descends from them).
    if unfinished > 0 {
        let killed = crate::process::kill_leftovers_of(&run_id).await;
        if killed > 0 {
            tracing::warn!("{prefix}: killed {killed} process(es) left by an earlier attempt");
        }
    }

    // `starting` went with the lease when the log ends with it.
    let started = starting
        .filter(|(write, _)| log.last().is_some_and(|e| same_entry(e, &write.entry)))
        .map(|(_, at)| at);
    let begin = match (resume::pending(&log), started) {
        (Some(resume), _) => Begin::Resumed(resume),
        (None, Some(at)) => Begin::Started(at),
        (None, None) => Begin::Fresh,
    };
    let run = Run {
        s3tmp,
        job_dir: w.work_dir.join(&run_id),
        cleanup: true,
        job,
        run_id,
        ts_dispatch,
        ts_start: started.unwrap_or(ts_dispatch),
        parameters,
        globals,
        state: Map::new(),
        delayed_retries: w.options.delayed_retries,
    };
    Ok(Admitted {
        run,
        events,
        cancel: run_cancel,
        begin,
    })
}

/// A run's job with the dispatch's parameters and globals merged over its own.
struct Checked {
    job: JobSpec,
    parameters: Map<String, Value>,
    globals: Map<String, Value>,
}

/// The checks of a message and its job that need no events log, in the
/// original's order; `Err` is the rejection's text.
fn check(
    w: &Worker,
    job_id: &str,
    run_id: &str,
    parsed: Result<DispatchMessage, impl std::fmt::Display>,
    lookup: Result<JobSpec, LookupFailure>,
) -> Result<Checked, String> {
    let prefix = format!("Job {job_id} ({run_id})");
    let message = parsed.map_err(|e| format!("Bad dispatch for job {job_id} ({run_id}): {e}"))?;
    let worker_name = &w.services.worker_name;
    if &message.worker != worker_name {
        return Err(format!(
            "Bad dispatch for job {job_id} ({run_id}): Worker mismatch: Expected {worker_name} but got {}",
            message.worker
        ));
    }
    let job = lookup.map_err(|e| format!("{prefix}: {e}"))?;
    for warning in &job.warnings {
        tracing::warn!("{prefix}: {warning}");
    }
    if job.worker() != worker_name {
        return Err(format!(
            "{prefix}: Worker mismatch: Expected {worker_name} but got {}",
            job.worker()
        ));
    }
    let mut parameters = job.parameters().clone();
    parameters.extend(message.parameters.clone().unwrap_or_default());
    let mut globals = job.globals().clone();
    globals.extend(message.globals.clone().unwrap_or_default());
    check_lava_times(&globals).map_err(|text| format!("{prefix}: {text}"))?;
    Ok(Checked {
        job,
        parameters,
        globals,
    })
}

/// The attempts of a run that started their payload (a `running` entry)
/// and ended with no outcome entry after it: a crash, a lost lease, an
/// interrupt (its hand-over entry is no outcome). Planned retries
/// (`iteration_limit`) end with a `retrying` entry and do not count.
pub(super) fn unfinished_attempts(log: &[Value]) -> i64 {
    let mut unfinished = 0;
    let mut open = false;
    for entry in log {
        let status = entry
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match status {
            "running" => {
                unfinished += i64::from(open);
                open = true;
            }
            "retrying" if entry.get("info").and_then(Value::as_str) == Some(INTERRUPTED) => {}
            "retrying" | "complete" | "failed" | "rejected" | "skipped" => open = false,
            _ => {}
        }
    }
    unfinished + i64::from(open)
}

/// Calls made before the run's lease: tried again with backoff on a
/// passing failure while the message is kept invisible, until the worker
/// stops polling.
struct Persist<'a> {
    w: &'a Worker,
    receipt: &'a Receipt,
    cancel: &'a Interrupt,
}

impl Persist<'_> {
    async fn call<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T, End>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut delay = Duration::from_millis(250);
        loop {
            let error = match call().await {
                Ok(value) => return Ok(value),
                Err(e @ StoreError::BadRequest(_)) => {
                    // It can never succeed: no event can be written either.
                    tracing::error!("cannot {what}: {e} - message deleted");
                    return Err(End::Delete);
                }
                Err(e) => e,
            };
            if self.cancel.is_interrupted() || self.w.stopping.is_cancelled() {
                tracing::warn!("cannot {what}: {error}; the worker stops: left for another");
                return Err(End::Release);
            }
            tracing::warn!("cannot {what}: {error}; trying again in {delay:?}");
            let secs = lease::invisible_secs(self.w);
            let sent = std::time::Instant::now();
            match self
                .w
                .queues
                .change_visibility(&self.w.queue, &self.receipt.current(), secs)
                .await
            {
                Ok(()) => self.receipt.invisible_from(sent, secs),
                Err(e) => tracing::warn!("cannot extend the message's visibility: {e}"),
            }
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.cancel.interrupted() => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }
}

/// The message's job id, run id and realm; a message without them cannot
/// be recorded anywhere and is deleted with a log line.
fn identify(w: &Worker, msg: &Received) -> Result<(String, String), End> {
    let Ok(Value::Object(body)) = serde_json::from_str::<Value>(&msg.body) else {
        tracing::error!(message_id = %msg.message_id, "Malformed dispatch message: not a JSON object - deleted");
        return Err(End::Delete);
    };
    let Some(job_id) = body
        .get("job_id")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        tracing::error!(message_id = %msg.message_id, "Malformed dispatch message: Missing keys: job_id - deleted");
        return Err(End::Delete);
    };
    if let Err(why) = usable_key(&job_id) {
        tracing::error!(message_id = %msg.message_id, job_id = %job_id.escape_debug(),
            "Malformed dispatch message: job_id {why} - deleted");
        return Err(End::Delete);
    }
    tracing::Span::current().record("job_id", job_id.as_str());
    let run_id = match body
        .get("run_id")
        .and_then(Value::as_str)
        .map(uuid::Uuid::parse_str)
    {
        Some(Ok(id)) => {
            let id = id.hyphenated().to_string();
            tracing::Span::current().record("run_id", id.as_str());
            id
        }
        _ => {
            tracing::error!(
                "Malformed dispatch message for job {job_id}: bad or missing run_id - deleted"
            );
            return Err(End::Delete);
        }
    };
    let realm = body
        .get("realm")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if realm != w.services.realm_name {
        tracing::error!(
            "Bad dispatch for job {job_id} ({run_id}): Realm mismatch: Expected {} but got {realm} - deleted",
            w.services.realm_name
        );
        return Err(End::Delete);
    }
    Ok((job_id, run_id))
}

/// Why a job id can never be a key of the events and jobs tables
/// (DynamoDB refuses it for ever), if it cannot.
fn usable_key(job_id: &str) -> Result<(), &'static str> {
    if job_id.is_empty() {
        Err("is empty")
    } else if job_id.len() > 2048 {
        Err("is longer than 2048 bytes")
    } else if job_id.contains('\0') {
        Err("contains NUL")
    } else {
        Ok(())
    }
}

/// Parses `globals.lava.{master,parent}_{start,ustart}` strictly: a child
/// run's times come from its parent and must be real timestamps.
fn check_lava_times(globals: &Map<String, Value>) -> Result<(), String> {
    let Some(Value::Object(lava)) = globals.get("lava") else {
        return Ok(());
    };
    for name in [
        "master_start",
        "master_ustart",
        "parent_start",
        "parent_ustart",
    ] {
        match lava.get(name) {
            None => {}
            Some(Value::String(text)) if timestamp::parse_strict(text).is_some() => {}
            Some(other) => return Err(format!("{name}: Bad timestamp: {}", units::show(other))),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn log(entries: &[(&str, &str)]) -> Vec<Value> {
        entries
            .iter()
            .map(|(status, info)| json!({"status": status, "info": info}))
            .collect()
    }

    #[test]
    fn unfinished_attempts_count_starts_without_outcome() {
        assert_eq!(unfinished_attempts(&[]), 0);
        // A planned retry, then a crash in iteration 2.
        let crashed = log(&[
            ("starting", ""),
            ("running", "Iteration 1"),
            ("retrying", "boom"),
            ("running", "Iteration 2"),
        ]);
        assert_eq!(unfinished_attempts(&crashed), 1);
        // A delivery that never started its payload does not count.
        let mut more = crashed.clone();
        more.extend(log(&[("starting", "")]));
        assert_eq!(unfinished_attempts(&more), 1);
        // An interrupt's hand-over is no outcome; a second crash counts too.
        more.extend(log(&[
            ("running", "Iteration 1"),
            ("retrying", INTERRUPTED),
            ("starting", ""),
            ("running", "Iteration 1"),
        ]));
        assert_eq!(unfinished_attempts(&more), 3);
        let planned = log(&[
            ("starting", ""),
            ("running", "Iteration 1"),
            ("retrying", "boom"),
            ("running", "Iteration 2"),
            ("retrying", "boom"),
        ]);
        assert_eq!(unfinished_attempts(&planned), 0);
    }

    #[test]
    fn unusable_job_ids() {
        assert!(usable_key("etl/load").is_ok());
        assert_eq!(usable_key(""), Err("is empty"));
        assert_eq!(
            usable_key(&"x".repeat(2049)),
            Err("is longer than 2048 bytes")
        );
        assert!(usable_key(&"x".repeat(2048)).is_ok());
        assert_eq!(usable_key("a\0b"), Err("contains NUL"));
    }
}
