//! One run's lifecycle, in one place (spec/worker.md §5–§7, DECISIONS.md 6,
//! 31): identify the message, skip duplicates, take the run's lease, check
//! the message and the job, augment the job, then the run sequence — enable
//! checks, limits, state, `event_log`, attempts, events and post-job actions.
//! The message is deleted only after the run's final event is written.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use lava_common::dispatch::{DispatchMessage, Failure as LookupFailure};
use lava_common::render::Context;
use lava_common::spec::{Enabled, JobSpec, Status};
use lava_common::store::{Key, Lease, Received, StoreError, Table};
use lava_common::{state, timestamp, units};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::actions::{self, ActionList};
use crate::events::{Keepalive, Overflow, RunEvents, log_of};
use crate::handlers::{self, Outcome};
use crate::process::Interrupt;
use crate::worker::{ActiveGuard, ActiveRuns, Entered, Receipt, Worker};

/// What becomes of a message after its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The run is recorded (or the message is unusable): delete it.
    Delete,
    /// Leave it invisible; it comes back after the visibility timeout.
    Keep,
    /// Make it visible again now, for another worker (interrupted by shutdown).
    Release,
}

/// A job being run: the validated job with the worker's additions.
pub struct Run {
    /// The job as read and validated.
    pub job: JobSpec,
    /// The run id from the message.
    pub run_id: String,
    /// Dispatch time from the message.
    pub ts_dispatch: DateTime<FixedOffset>,
    /// Time of the `starting` event.
    pub ts_start: DateTime<FixedOffset>,
    /// Job parameters with the message's merged over them.
    pub parameters: Map<String, Value>,
    /// Job globals with the message's merged over them, `lava` completed.
    pub globals: Map<String, Value>,
    /// The job's state map, defaults replaced by current values.
    pub state: Map<String, Value>,
    /// `<s3_temp>/<job_id>/<run_id>`.
    pub s3tmp: String,
    /// The run's private directory.
    pub job_dir: PathBuf,
}

impl Run {
    /// The job id.
    pub fn job_id(&self) -> &str {
        self.job.job_id()
    }

    /// The augmented job as Jinja sees it (spec/worker.md §6.1).
    pub fn job_value(&self, realm: &str) -> Value {
        let mut item = self.job.item().clone();
        item.insert("realm".into(), Value::String(realm.to_string()));
        item.insert("run_id".into(), Value::String(self.run_id.clone()));
        item.insert(
            "ts_dispatch".into(),
            Value::String(timestamp::isoformat(&self.ts_dispatch)),
        );
        item.insert(
            "ts_start".into(),
            Value::String(timestamp::isoformat(&self.ts_start)),
        );
        item.insert(
            "ts_ustart".into(),
            Value::String(timestamp::utc_isoformat(&self.ts_start)),
        );
        item.insert("parameters".into(), Value::Object(self.parameters.clone()));
        item.insert("globals".into(), Value::Object(self.globals.clone()));
        item.insert("state".into(), Value::Object(self.state.clone()));
        Value::Object(item)
    }

    /// The base render context (spec/worker.md §6.3).
    pub fn context(&self, worker: &Worker) -> Context {
        let job = self.job_value(&worker.realm_name);
        Context::for_job(
            &job,
            &Value::Object(worker.realm.item().clone()),
            &self.ts_start,
        )
    }
}

/// Handles one received message from start to end, deleting or releasing it.
pub async fn handle(worker: Arc<Worker>, msg: Received, cancel: Interrupt) {
    // Every line logged about this message carries its job and run ids
    // (recorded once known). An error-level span is never filtered out.
    let span = tracing::error_span!(
        "run",
        job_id = tracing::field::Empty,
        run_id = tracing::field::Empty
    );
    handle_in_span(worker, msg, cancel).instrument(span).await;
}

async fn handle_in_span(worker: Arc<Worker>, msg: Received, cancel: Interrupt) {
    let mut active = None;
    let end = run_message(&worker, &msg, &mut active, &cancel).await;
    let receipt = active.as_ref().map_or_else(
        || msg.receipt.clone(),
        |a: &ActiveGuard| a.receipt.current(),
    );
    let queue = &worker.queue;
    let result = match end {
        End::Delete => worker.backend.queue.delete(queue, &receipt).await,
        End::Release => {
            worker
                .backend
                .queue
                .change_visibility(queue, &receipt, 0)
                .await
        }
        End::Keep => Ok(()),
    };
    if let Err(e) = result {
        tracing::error!(message_id = %msg.message_id, "cannot {end:?} message: {e}");
    }
    drop(active);
}

/// Steps 1–9 of spec/worker.md §5 with the lease of DECISIONS.md 31, then the run.
async fn run_message(
    w: &Arc<Worker>,
    msg: &Received,
    active: &mut Option<ActiveGuard>,
    cancel: &Interrupt,
) -> End {
    let Ok(Value::Object(body)) = serde_json::from_str::<Value>(&msg.body) else {
        tracing::error!(message_id = %msg.message_id, "Malformed dispatch message: not a JSON object - deleted");
        return End::Delete;
    };
    let Some(job_id) = body
        .get("job_id")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        tracing::error!(message_id = %msg.message_id, "Malformed dispatch message: Missing keys: job_id - deleted");
        return End::Delete;
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
            return End::Delete;
        }
    };
    let realm = body
        .get("realm")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if realm != w.realm_name {
        tracing::error!(
            "Bad dispatch for job {job_id} ({run_id}): Realm mismatch: Expected {} but got {realm} - deleted",
            w.realm_name
        );
        return End::Delete;
    }

    // A copy of a run in progress here is left alone (the same message,
    // received again, only refreshes the receipt the run uses).
    match ActiveRuns::enter(w, &run_id, &msg.message_id, &msg.receipt) {
        Entered::New(guard) => *active = Some(guard),
        Entered::SameMessage => {
            tracing::info!(
                "Job {job_id} ({run_id}): received again while it runs here - receipt refreshed"
            );
            return End::Keep;
        }
        Entered::OtherCopy => {
            tracing::info!("Job {job_id} ({run_id}): another copy runs here - left alone");
            return End::Keep;
        }
    }

    // Duplicate copies and redeliveries: the events item decides.
    let tables = &w.backend.tables;
    let item = match tables
        .get(
            &w.realm_name,
            Table::Events,
            &Key::with_sort(&job_id, &run_id),
            true,
        )
        .await
    {
        Ok(item) => item,
        Err(e) => {
            tracing::warn!("cannot read the run's events: {e}; retrying later");
            return End::Keep;
        }
    };
    let log = log_of(item.as_ref());
    if log.iter().any(is_final_entry) {
        tracing::info!("Job {job_id} ({run_id}): already finished - duplicate deleted");
        return End::Delete;
    }
    match renew_lease(w, &job_id, &run_id).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!("Job {job_id} ({run_id}): running on another worker - left alone");
            return End::Keep;
        }
        Err(e) => {
            tracing::warn!("cannot take the run's lease: {e}; retrying later");
            return End::Keep;
        }
    }

    let parsed = DispatchMessage::parse(&msg.body);
    let ts_dispatch = parsed
        .as_ref()
        .ok()
        .and_then(DispatchMessage::timestamp)
        .unwrap_or_else(timestamp::now_local);
    let mut events = RunEvents::new(
        Arc::clone(tables),
        &w.realm_name,
        &job_id,
        &run_id,
        &ts_dispatch,
        Arc::clone(&w.identity),
        w.options.event_ttl,
        &log,
        Overflow {
            objects: Arc::clone(&w.backend.objects),
            s3tmp: run_s3tmp(w, &job_id, &run_id),
            kms_key: w.realm.s3_key().map(str::to_string),
        },
    );
    let prefix = format!("Job {job_id} ({run_id})");
    let message = match parsed {
        Ok(m) => m,
        Err(e) => {
            return reject(
                &mut events,
                &format!("Bad dispatch for job {job_id} ({run_id}): {e}"),
            )
            .await;
        }
    };
    if message.worker != w.worker_name {
        let text = format!(
            "Bad dispatch for job {job_id} ({run_id}): Worker mismatch: Expected {} but got {}",
            w.worker_name, message.worker
        );
        return reject(&mut events, &text).await;
    }
    if w.options.retries >= 0 && i64::from(msg.receive_count) > w.options.retries + 1 {
        let text = format!(
            "{prefix}: Retry limit exceeded - deleted on cycle {}",
            msg.receive_count
        );
        return reject(&mut events, &text).await;
    }
    let job = match w.dispatcher.lookup_job(&job_id).await {
        Ok(job) => job,
        Err(LookupFailure::Job(e)) => return reject(&mut events, &format!("{prefix}: {e}")).await,
        Err(e) => {
            tracing::warn!("{prefix}: cannot read the job: {e}; retrying later");
            return End::Keep;
        }
    };
    for warning in &job.warnings {
        tracing::warn!("{prefix}: {warning}");
    }
    if job.worker() != w.worker_name {
        let text = format!(
            "{prefix}: Worker mismatch: Expected {} but got {}",
            w.worker_name,
            job.worker()
        );
        return reject(&mut events, &text).await;
    }
    let max_tries = job.field("max_tries").and_then(Value::as_i64).unwrap_or(0);
    if max_tries > 0 && i64::from(msg.receive_count) > max_tries {
        return reject(&mut events, &format!("{prefix}: max_tries exceeded")).await;
    }
    let mut parameters = job.parameters().clone();
    parameters.extend(message.parameters.clone().unwrap_or_default());
    let mut globals = job.globals().clone();
    globals.extend(message.globals.clone().unwrap_or_default());
    if let Err(text) = check_lava_times(&globals) {
        return reject(&mut events, &format!("{prefix}: {text}")).await;
    }

    let receipt = active.as_ref().map(|a| Arc::clone(&a.receipt));
    if let Some(keepalive) = spawn_keepalive(Arc::clone(w), receipt, job_id.clone(), run_id.clone())
    {
        events.set_keepalive(keepalive);
    }
    let run = Run {
        s3tmp: run_s3tmp(w, &job_id, &run_id),
        job_dir: w.work_dir.join(&run_id),
        job,
        run_id,
        ts_dispatch,
        ts_start: ts_dispatch,
        parameters,
        globals,
        state: Map::new(),
    };
    let end = run_job(w, run, &mut events, cancel).await;
    events.stop_keepalive().await;
    end
}

/// A run's `s3tmp`: `<s3_temp>/<job_id>/<run_id>`.
fn run_s3tmp(w: &Worker, job_id: &str, run_id: &str) -> String {
    format!("{}/{job_id}/{run_id}", w.realm.s3_temp())
}

fn is_final_entry(entry: &Value) -> bool {
    entry
        .get("status")
        .cloned()
        .and_then(|s| serde_json::from_value::<Status>(s).ok())
        .is_some_and(Status::is_final)
}

/// Parses `globals.lava.{master,parent}_{start,ustart}` strictly (spec/dispatch.md §5).
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

async fn renew_lease(w: &Worker, job_id: &str, run_id: &str) -> Result<bool, StoreError> {
    let now = Utc::now().timestamp();
    let lease = Lease {
        owner: w.identity.lease_owner.clone(),
        expires: now + i64::try_from(lease_span(w)).unwrap_or(i64::MAX / 2),
    };
    // Expiries are whole seconds: a lease is over from its expiry second on
    // (the store takes it when `expires < now`). Without this a copy coming
    // back exactly when its dead holder's lease ends would find it held and
    // be left alone for another queue timeout.
    w.backend
        .tables
        .acquire_lease(&w.realm_name, job_id, run_id, &lease, now + 1)
        .await
}

/// Keeps a running message invisible and its lease alive (DECISIONS.md 3, 31).
/// The lease is renewed before the visibility, so a run whose worker died
/// has its lease expire no later than its message comes back. `None` when
/// the keep-alive is off.
fn spawn_keepalive(
    w: Arc<Worker>,
    receipt: Option<Arc<Receipt>>,
    job_id: String,
    run_id: String,
) -> Option<Keepalive> {
    let period = w.options.keepalive;
    let receipt = receipt.filter(|_| !period.is_zero())?;
    let token = CancellationToken::new();
    let stop = token.clone();
    let task = async move {
        let started = tokio::time::Instant::now();
        // SQS's limit is 12 h after the receive, a little before this task started.
        let limit = Duration::from_secs(12 * 3600 - 60);
        // The first round at once: the message's visibility since its
        // receive is only the queue's timeout, which may be shorter than
        // the period.
        let mut first = true;
        loop {
            if !std::mem::take(&mut first) {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(period) => {}
                }
            }
            if let Err(e) = renew_lease(&w, &job_id, &run_id).await {
                tracing::warn!("cannot renew the run's lease: {e}");
            }
            if stop.is_cancelled() {
                return;
            }
            let wanted = lease_span(&w).max(u64::from(w.queue_visibility));
            let left = limit.saturating_sub(started.elapsed()).as_secs();
            let secs = u32::try_from(wanted.min(left)).unwrap_or(u32::MAX);
            if secs == 0 {
                // Past SQS's 12 h: the message comes back and is left alone
                // while the lease holds (0 would make it visible at once).
                continue;
            }
            if let Err(e) = w
                .backend
                .queue
                .change_visibility(&w.queue, &receipt.current(), secs)
                .await
            {
                tracing::warn!("cannot extend the message's visibility: {e}");
            }
        }
    };
    let task = tokio::spawn(task.instrument(tracing::Span::current()));
    Some(Keepalive { token, task })
}

/// Seconds a lease lasts: 3 × `VISIBILITY_KEEPALIVE`, or the queue's
/// visibility timeout when the keep-alive is off.
fn lease_span(w: &Worker) -> u64 {
    if w.options.keepalive.is_zero() {
        u64::from(w.queue_visibility)
    } else {
        (3.0 * w.options.keepalive.as_secs_f64()).ceil() as u64
    }
}

/// Writes a final `rejected` event; the message goes once it is recorded.
async fn reject(events: &mut RunEvents, text: &str) -> End {
    tracing::error!("{text}");
    final_event(events, Status::Rejected, Value::String(text.to_string())).await
}

async fn final_event(events: &mut RunEvents, status: Status, info: Value) -> End {
    match events.write(status, info, true).await {
        Ok(_) => End::Delete,
        Err(e) => {
            tracing::error!(
                "cannot record the run's final event ({status:?}): {e}; the message stays for another try"
            );
            End::Keep
        }
    }
}

/// The run sequence of spec/worker.md §7.
async fn run_job(w: &Arc<Worker>, mut run: Run, events: &mut RunEvents, cancel: &Interrupt) -> End {
    let prefix = format!("Job {} ({})", run.job_id(), run.run_id);
    if run.job.enabled() == Enabled::Static(false) {
        tracing::info!("{prefix}: not enabled (static)");
        return final_event(
            events,
            Status::Skipped,
            Value::String("Job not enabled (static)".into()),
        )
        .await;
    }
    match events.write(Status::Starting, Value::Null, false).await {
        Ok(t) => run.ts_start = t,
        Err(e) => {
            tracing::error!("{prefix}: cannot record the start: {e}");
            return End::Keep;
        }
    }
    tracing::info!(event_type = "job", "{prefix}: Starting");

    // Limits.
    if let Some(v) = run.job.field("max_run_delay").filter(|v| !v.is_null()) {
        let Ok(limit) = units::duration_value(v) else {
            return reject(events, &format!("Bad max_run_delay: {}", units::show(v))).await;
        };
        let delay = (run.ts_start - run.ts_dispatch).num_seconds() as f64;
        if delay > limit {
            return reject(
                events,
                &format!("dispatch is more than {} old", units::show(v)),
            )
            .await;
        }
    }
    let max_limit = w.config.int("ITERATION_MAX_LIMIT").unwrap_or(10);
    let limit = match run.job.field("iteration_limit") {
        None | Some(Value::Null) => 1,
        Some(v) => match v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        {
            Some(n) => n,
            None => {
                return reject(events, &format!("Bad iteration_limit: {}", units::show(v))).await;
            }
        },
    };
    if limit > max_limit {
        return reject(events, &format!("iteration_limit must be <= {max_limit}")).await;
    }
    if limit < 1 {
        return reject(events, "iteration_limit must be >= 1").await;
    }
    let max_delay = w
        .config
        .duration("ITERATION_MAX_DELAY")
        .ok()
        .flatten()
        .unwrap_or(300.0);
    let delay = match run.job.field("iteration_delay") {
        None | Some(Value::Null) => 0.0,
        Some(v) => match units::duration_value(v) {
            Ok(d) if d >= 0.0 => d,
            _ => return reject(events, &format!("Bad iteration_delay: {}", units::show(v))).await,
        },
    };
    if delay > max_delay {
        let text = w
            .config
            .string("ITERATION_MAX_DELAY")
            .ok()
            .flatten()
            .unwrap_or_default();
        return reject(events, &format!("iteration_delay must be <= {text}")).await;
    }

    complete_lava_globals(&mut run);

    // State expansion.
    let mut expanded = run.job.state().clone();
    for (state_id, value) in expanded.iter_mut() {
        match state::read(w.backend.tables.as_ref(), &w.realm_name, state_id).await {
            Ok(Some(current)) => *value = current,
            Ok(None) => {}
            Err(e) => return finish_failed(events, Value::String(format!("State: {e}"))).await,
        }
    }
    run.state = expanded;

    // event_log.
    if let Some(event_log) = run.job.field("event_log").cloned() {
        let ctx = run.context(w);
        let info = match w.renderer.render_json_text(&event_log, &ctx) {
            Ok(v) => v,
            Err(e) => Value::String(format!("Error: Bad event_log: {e}")),
        };
        if let Err(e) = events.write(Status::Logging, info, false).await {
            tracing::error!("{prefix}: cannot record event_log: {e}");
            return End::Keep;
        }
    }

    // Dynamic enable.
    if let Enabled::Template(template) = run.job.enabled() {
        let rendered = match w.renderer.render_str(&template, &run.context(w)) {
            Ok(r) => r,
            Err(e) => return reject(events, &format!("Bad enabled: {e}")).await,
        };
        if rendered.trim().to_lowercase() != "true" {
            let text = format!("Job not enabled (enabled=\"{}\")", rendered);
            return final_event(events, Status::Skipped, Value::String(text)).await;
        }
    }

    let job_type = run.job.job_type().to_string();
    if !handlers::is_known(&job_type) {
        return finish_failed(
            events,
            Value::String(format!("{job_type}: Unknown job type")),
        )
        .await;
    }
    match std::fs::create_dir(&run.job_dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return reject(
                events,
                "Job temp dir already exists - possible dispatch overlap",
            )
            .await;
        }
        Err(e) => {
            return finish_failed(events, Value::String(format!("Cannot create job dir: {e}")))
                .await;
        }
    }
    let end = attempts(w, &mut run, events, cancel, limit, delay).await;
    if let Err(e) = std::fs::remove_dir_all(&run.job_dir) {
        tracing::warn!("cannot remove {}: {e}", run.job_dir.display());
    }
    end
}

/// Writes a final `failed` event for a failure before the first attempt (no actions).
async fn finish_failed(events: &mut RunEvents, info: Value) -> End {
    tracing::error!("{}", units::show(&info));
    final_event(events, Status::Failed, info).await
}

/// `globals.lava` defaults for a stand-alone run (spec/worker.md §7 step 7).
fn complete_lava_globals(run: &mut Run) {
    let job_id = run.job_id().to_string();
    let start = timestamp::isoformat(&run.ts_start);
    let ustart = timestamp::utc_isoformat(&run.ts_start);
    let lava = run
        .globals
        .entry("lava")
        .or_insert_with(|| Value::Object(Map::new()));
    if !lava.is_object() {
        *lava = Value::Object(Map::new());
    }
    if let Value::Object(lava) = lava {
        for (key, value) in [
            ("master_job_id", &job_id),
            ("parent_job_id", &job_id),
            ("master_start", &start),
            ("parent_start", &start),
            ("master_ustart", &ustart),
            ("parent_ustart", &ustart),
        ] {
            lava.entry(key)
                .or_insert_with(|| Value::String(value.clone()));
        }
    }
}

/// Step 14: the attempts, their events and their actions.
async fn attempts(
    w: &Arc<Worker>,
    run: &mut Run,
    events: &mut RunEvents,
    cancel: &Interrupt,
    limit: i64,
    delay: f64,
) -> End {
    let prefix = format!("Job {} ({})", run.job_id(), run.run_id);
    for n in 1..=limit {
        if cancel.is_interrupted() {
            return interrupted(run, events).await;
        }
        if let Some(Value::Object(lava)) = run.globals.get_mut("lava") {
            lava.insert("iteration".into(), Value::from(n));
        }
        if let Err(e) = events
            .write(
                Status::Running,
                Value::String(format!("Iteration {n}")),
                false,
            )
            .await
        {
            tracing::error!("{prefix}: cannot record iteration {n}: {e}");
            return End::Keep;
        }
        tracing::info!(event_type = "job", "{prefix}: Running iteration {n}");
        let outcome = handlers::run(w, run, cancel).await;
        if cancel.is_interrupted() {
            return interrupted(run, events).await;
        }
        match outcome {
            Outcome::Success(result) => {
                tracing::info!(event_type = "job", "{prefix}: Complete");
                let end = final_event(events, Status::Complete, complete_info(&result)).await;
                run_actions(w, run, events, ActionList::OnSuccess, result).await;
                return end;
            }
            Outcome::Failure { error, data } => {
                let mut info = Map::new();
                info.insert("error".into(), Value::String(error.clone()));
                info.insert("error_data".into(), data.unwrap_or(Value::Null));
                let info = Value::Object(info);
                tracing::error!(event_type = "job", "{prefix}: {error}");
                if n < limit {
                    if let Err(e) = events.write(Status::Retrying, info.clone(), false).await {
                        tracing::error!("{prefix}: cannot record the retry: {e}");
                        return End::Keep;
                    }
                    run_actions(w, run, events, ActionList::OnRetry, info).await;
                    if delay > 0.0 {
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_secs_f64(delay)) => {}
                            () = cancel.interrupted() => {}
                        }
                    }
                } else {
                    let end = final_event(events, Status::Failed, info.clone()).await;
                    run_actions(w, run, events, ActionList::OnFail, info).await;
                    return end;
                }
            }
        }
    }
    End::Delete
}

/// Records a run stopped by the worker's shutdown and hands its message to
/// another worker (DECISIONS.md 1).
async fn interrupted(run: &Run, events: &mut RunEvents) -> End {
    let info = Value::String("Interrupted by worker shutdown".into());
    tracing::warn!(
        event_type = "job",
        "Job {} ({}): Interrupted by worker shutdown",
        run.job_id(),
        run.run_id
    );
    // Releasing the lease lets another worker take the run at once.
    if let Err(e) = events.write(Status::Retrying, info, true).await {
        tracing::error!(
            "Job {} ({}): cannot record the interruption: {e}",
            run.job_id(),
            run.run_id
        );
    }
    End::Release
}

/// The `complete` event's info: the handler result with `error: null` added.
/// The original's `result.setdefault('error')` mutates the very dict its
/// asynchronous event writer is about to serialise, so the recorded entry has
/// the key; the `on_success` actions, run before it, see the result without it.
fn complete_info(result: &Value) -> Value {
    let mut info = result.clone();
    if let Value::Object(map) = &mut info {
        map.entry("error").or_insert(Value::Null);
    }
    info
}

/// Runs a post-job action list; a failure is recorded as `action_failed`.
async fn run_actions(
    w: &Arc<Worker>,
    run: &mut Run,
    events: &mut RunEvents,
    list: ActionList,
    result: Value,
) {
    if let Err(text) = actions::run_list(w, run, list, result).await {
        tracing::error!("{text}");
        if let Err(e) = events
            .write(Status::ActionFailed, Value::String(text), false)
            .await
        {
            tracing::error!("cannot record action_failed: {e}");
        }
    }
}
