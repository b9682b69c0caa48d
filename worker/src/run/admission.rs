//! Admission of a received message: its identity (job, run, realm), copies
//! of a run already in progress here, duplicates of a finished run, the
//! run's lease, the message and job checks, and the merge of the dispatch's
//! parameters and globals over the job's. What is admitted is a [`Run`]
//! with its events writer; everything else ends here, recorded as
//! `rejected` when the run can be named.

use std::sync::Arc;

use lava_common::dispatch::{DispatchMessage, Failure as LookupFailure};
use lava_common::spec::LogEntry;
use lava_common::store::{Key, Received, Table};
use lava_common::{timestamp, units};
use serde_json::{Map, Value};

use super::augmented::Run;
use super::record::reject;
use super::{End, lease};
use crate::events::{Overflow, RunEvents, log_of};
use crate::worker::{ActiveGuard, ActiveRuns, Entered, Worker};

/// A run ready for its run sequence.
pub(super) struct Admitted {
    /// The run.
    pub(super) run: Run,
    /// Its events writer, with the keep-alive attached.
    pub(super) events: RunEvents,
}

/// Admits a message, or says what becomes of it. `active` receives the
/// guard that marks the run as in progress here.
pub(super) async fn admit(
    w: &Arc<Worker>,
    msg: &Received,
    active: &mut Option<ActiveGuard>,
) -> Result<Admitted, End> {
    let (job_id, run_id) = identify(w, msg)?;

    // A copy of a run in progress here is left alone (the same message,
    // received again, only refreshes the receipt the run uses).
    match ActiveRuns::enter(w, &run_id, &msg.message_id, &msg.receipt) {
        Entered::New(guard) => *active = Some(guard),
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
    }

    // Duplicate copies and redeliveries: the events item decides.
    let realm_name = &w.services.realm_name;
    let item = match w
        .services
        .tables
        .get(
            realm_name,
            Table::Events,
            &Key::with_sort(&job_id, &run_id),
            true,
        )
        .await
    {
        Ok(item) => item,
        Err(e) => {
            tracing::warn!("cannot read the run's events: {e}; retrying later");
            return Err(End::Retry);
        }
    };
    let log = log_of(item.as_ref());
    if log.iter().any(LogEntry::is_final_value) {
        tracing::info!("Job {job_id} ({run_id}): already finished - duplicate deleted");
        return Err(End::Delete);
    }
    match lease::renew(w, &job_id, &run_id).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!("Job {job_id} ({run_id}): running on another worker - left alone");
            return Err(End::Keep);
        }
        Err(e) => {
            tracing::warn!("cannot take the run's lease: {e}; retrying later");
            return Err(End::Retry);
        }
    }

    let parsed = DispatchMessage::parse(&msg.body);
    let ts_dispatch = parsed
        .as_ref()
        .ok()
        .and_then(DispatchMessage::timestamp)
        .unwrap_or_else(timestamp::now_local);
    let s3tmp = format!("{}/{job_id}/{run_id}", w.services.realm.s3_temp());
    let mut events = RunEvents::new(
        Arc::clone(&w.services.tables),
        realm_name,
        &job_id,
        &run_id,
        &ts_dispatch,
        Arc::clone(&w.identity),
        w.services.settings.event_ttl,
        &log,
        Overflow {
            objects: Arc::clone(&w.services.objects),
            s3tmp: s3tmp.clone(),
            kms_key: w.services.realm.s3_key().map(str::to_string),
        },
    );
    let prefix = format!("Job {job_id} ({run_id})");
    let message = match parsed {
        Ok(m) => m,
        Err(e) => {
            let text = format!("Bad dispatch for job {job_id} ({run_id}): {e}");
            return Err(reject(&mut events, &text).await);
        }
    };
    let worker_name = &w.services.worker_name;
    if &message.worker != worker_name {
        let text = format!(
            "Bad dispatch for job {job_id} ({run_id}): Worker mismatch: Expected {worker_name} but got {}",
            message.worker
        );
        return Err(reject(&mut events, &text).await);
    }
    if w.options.retries >= 0 && i64::from(msg.receive_count) > w.options.retries + 1 {
        let text = format!(
            "{prefix}: Retry limit exceeded - deleted on cycle {}",
            msg.receive_count
        );
        return Err(reject(&mut events, &text).await);
    }
    let job = match w.services.dispatcher.lookup_job(&job_id).await {
        Ok(job) => job,
        Err(LookupFailure::Job(e)) => {
            return Err(reject(&mut events, &format!("{prefix}: {e}")).await);
        }
        Err(e) => {
            tracing::warn!("{prefix}: cannot read the job: {e}; retrying later");
            return Err(End::Retry);
        }
    };
    for warning in &job.warnings {
        tracing::warn!("{prefix}: {warning}");
    }
    if job.worker() != worker_name {
        let text = format!(
            "{prefix}: Worker mismatch: Expected {worker_name} but got {}",
            job.worker()
        );
        return Err(reject(&mut events, &text).await);
    }
    let max_tries = job.field("max_tries").and_then(Value::as_i64).unwrap_or(0);
    if max_tries > 0 && i64::from(msg.receive_count) > max_tries {
        return Err(reject(&mut events, &format!("{prefix}: max_tries exceeded")).await);
    }
    let mut parameters = job.parameters().clone();
    parameters.extend(message.parameters.clone().unwrap_or_default());
    let mut globals = job.globals().clone();
    globals.extend(message.globals.clone().unwrap_or_default());
    if let Err(text) = check_lava_times(&globals) {
        return Err(reject(&mut events, &format!("{prefix}: {text}")).await);
    }

    let receipt = active.as_ref().map(|a| Arc::clone(&a.receipt));
    if let Some(keepalive) =
        lease::spawn_keepalive(Arc::clone(w), receipt, job_id.clone(), run_id.clone())
    {
        events.set_keepalive(keepalive);
    }
    let run = Run {
        s3tmp,
        job_dir: w.work_dir.join(&run_id),
        job,
        run_id,
        ts_dispatch,
        ts_start: ts_dispatch,
        parameters,
        globals,
        state: Map::new(),
    };
    Ok(Admitted { run, events })
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
