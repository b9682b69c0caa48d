//! One run's lifecycle, in one place: [`admission`] of the message (its
//! identity, duplicates, the lease, the message and job checks), the run
//! [`sequence`] (enable checks, limits, state, `event_log`), the
//! [`attempts`] with their events and post-job actions, and the
//! [`lease`] keep-alive, and the in-process [`child`] runs of `chain`, `dag`
//! and `foreach` through the same sequence. The message is deleted only after the run's final
//! event is written ([`record`]).

mod admission;
mod attempts;
mod augmented;
mod child;
mod lease;
mod record;
mod resume;
mod sequence;

use std::sync::Arc;
use std::time::Duration;

use lava_common::store::Received;
use tracing::Instrument;

use crate::process::Interrupt;
use crate::worker::{ActiveGuard, Worker};

/// What becomes of a message after its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The run is recorded (or the message is unusable): delete it.
    Delete,
    /// Leave it invisible; it comes back after the visibility timeout.
    Keep,
    /// A passing AWS failure before the run started: make it visible again
    /// once a lease this worker may have taken has expired, not after the
    /// queue's whole visibility timeout (an hour by default).
    Retry,
    /// Make it visible again now, for another worker (interrupted by shutdown).
    Release,
    /// Make it visible again after this long: the run's next iteration
    /// (a planned retry) is due then.
    Later(Duration),
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
    let end = match admission::admit(&worker, &msg, &mut active, &cancel).await {
        Ok(admission::Admitted {
            run,
            mut events,
            cancel,
            begin,
        }) => {
            let end = sequence::run(&worker, run, &mut events, &cancel, begin).await;
            events.stop_keepalive().await;
            end
        }
        Err(end) => end,
    };
    let receipt = active.as_ref().map_or_else(
        || msg.receipt.clone(),
        |a: &ActiveGuard| a.receipt.current(),
    );
    let queue = &worker.queue;
    let result = match end {
        End::Delete => worker.queues.delete(queue, &receipt).await,
        End::Release => worker.queues.change_visibility(queue, &receipt, 0).await,
        End::Retry => {
            let secs = u32::try_from(lease::span(&worker).as_secs().max(1)).unwrap_or(u32::MAX);
            worker.queues.change_visibility(queue, &receipt, secs).await
        }
        End::Later(wait) => {
            // Whole seconds, rounded up, within SQS's limits; a message
            // that comes back before its retry is due is put back.
            let longest = active
                .as_ref()
                .map_or(Duration::ZERO, |a| a.receipt.longest_invisibility());
            let secs = wait.min(longest).as_secs_f64().ceil() as u32;
            worker.queues.change_visibility(queue, &receipt, secs).await
        }
        End::Keep => Ok(()),
    };
    if let Err(e) = result {
        tracing::error!(message_id = %msg.message_id, "cannot {end:?} message: {e}");
    }
    drop(active);
}
