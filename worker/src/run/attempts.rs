//! The attempts of a run (`iteration_limit` of them at most): the `running`
//! event, the job type, then `complete`, `retrying` or `failed` with their
//! post-job actions, or the hand-over of an interrupted run.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use lava_common::spec::Status;
use serde_json::{Map, Value};

use super::End;
use super::augmented::Run;
use super::child::ChildRuns;
use super::record::{INTERRUPTED, final_event, lost};
use crate::actions::{self, ActionList};
use crate::events::{Mark, RunEvents};
use crate::jobs::{self, Failure, JobContext, JobType, Outcome};
use crate::process::Interrupt;
use crate::worker::Worker;

/// Runs the attempts `iterations` numbers (to the run's `iteration_limit`),
/// `delay` apart: waiting in place, or with the message back in the queue
/// (the run's next delivery goes on with the next iteration).
pub(super) async fn run(
    w: &Arc<Worker>,
    job_type: &dyn JobType,
    run: &mut Run,
    events: &mut RunEvents,
    cancel: &Interrupt,
    iterations: RangeInclusive<i64>,
    delay: Duration,
) -> End {
    let prefix = run.prefix();
    let limit = *iterations.end();
    for n in iterations {
        if events.lease_lost() {
            tracing::error!(
                event_type = "job",
                "{prefix}: not started: the run's lease was lost"
            );
            return End::Retry;
        }
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
                Mark::Entry,
            )
            .await
        {
            tracing::error!("{prefix}: cannot record iteration {n}: {e}");
            return lost(&e).unwrap_or(End::Retry);
        }
        // The entry may have landed after the lease was lost (its write was
        // retried meanwhile): the payload must not start then, since
        // another worker may be about to run it.
        if events.lease_lost() {
            tracing::error!(
                event_type = "job",
                "{prefix}: not started: the run's lease was lost"
            );
            return End::Retry;
        }
        tracing::info!(event_type = "job", "{prefix}: Running iteration {n}");
        let outcome = {
            let children = ChildRuns::new(w, run, events, cancel);
            let job = JobContext {
                run: run.view(&w.services),
                services: &w.services,
                cancel,
                ctx: run.context(&w.services),
                children: &children,
            };
            jobs::attempt(job_type, &job).await
        };
        let (failure, wait) = match outcome {
            Outcome::Interrupted if events.lease_lost() => {
                tracing::error!(
                    event_type = "job",
                    "{prefix}: stopped: the run's lease was lost"
                );
                return End::Retry;
            }
            Outcome::Interrupted => return interrupted(run, events).await,
            Outcome::Success(result) => {
                tracing::info!(event_type = "job", "{prefix}: Complete");
                let end = final_event(events, Status::Complete, complete_info(&result)).await;
                // Actions only once the outcome is recorded: a run whose
                // final entry could not be written is not over.
                if end == End::Delete {
                    run_actions(w, run, events, ActionList::OnSuccess, &result).await;
                }
                return end;
            }
            Outcome::Failed(failure) => (failure, delay),
            Outcome::RetryLater { failure, delay } => (failure, delay),
        };
        let info = failure_info(failure);
        if let Some(error) = info.get("error").and_then(Value::as_str) {
            tracing::error!(event_type = "job", "{prefix}: {error}");
        }
        if n < limit {
            // A wait in the queue frees the job slot: the entry releases
            // the lease, and whichever worker receives the message when it
            // is due goes on with the run.
            let queued = run.delayed_retries && !wait.is_zero();
            let mark = if queued { Mark::HandOver } else { Mark::Entry };
            if let Err(e) = events.write(Status::Retrying, info.clone(), mark).await {
                tracing::error!("{prefix}: cannot record the retry: {e}");
                return lost(&e).unwrap_or(End::Retry);
            }
            run_actions(w, run, events, ActionList::OnRetry, &info).await;
            if queued {
                tracing::info!(
                    "{prefix}: iteration {} is due in {wait:?}: message returned to the queue meanwhile",
                    n + 1
                );
                return End::Later(wait);
            }
            if !wait.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = cancel.interrupted() => {}
                }
            }
        } else {
            let end = final_event(events, Status::Failed, info.clone()).await;
            if end == End::Delete {
                run_actions(w, run, events, ActionList::OnFail, &info).await;
            }
            return end;
        }
    }
    End::Delete
}

/// The `retrying` / `failed` info: `{error, error_data}`.
fn failure_info(failure: Failure) -> Value {
    let mut info = Map::new();
    info.insert("error".into(), Value::String(failure.error));
    info.insert("error_data".into(), failure.data.unwrap_or(Value::Null));
    Value::Object(info)
}

/// Records a run stopped by the worker's shutdown and hands its message to
/// another worker at once: the run is not finished, so it must not wait for
/// the queue's visibility timeout.
async fn interrupted(run: &Run, events: &mut RunEvents) -> End {
    let info = Value::String(INTERRUPTED.into());
    let prefix = run.prefix();
    tracing::warn!(event_type = "job", "{prefix}: {INTERRUPTED}");
    // Releasing the lease lets another worker take the run at once.
    if let Err(e) = events.write(Status::Retrying, info, Mark::HandOver).await {
        tracing::error!("{prefix}: cannot record the interruption: {e}");
    }
    End::Release
}

/// The `complete` event's info: the job type's result with `error: null`
/// added. The original's `result.setdefault('error')` mutates the very dict
/// its asynchronous event writer is about to serialise, so the recorded
/// entry has the key; the `on_success` actions, run before it, see the
/// result without it.
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
    result: &Value,
) {
    if let Err(text) = actions::run_list(&w.services, &w.clients, run, list, result).await {
        tracing::error!("{text}");
        if let Err(e) = events
            .write(Status::ActionFailed, Value::String(text), Mark::Entry)
            .await
        {
            tracing::error!("cannot record action_failed: {e}");
        }
    }
}
