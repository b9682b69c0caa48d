//! A run's lease and keep-alive. The lease (an attribute of the run's events
//! item) says which worker process runs it; the keep-alive renews the lease
//! and the message's visibility while the run goes on, so a second copy of
//! the message is left alone and a dead worker's run comes back.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lava_common::store::{Lease, StoreError};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::events::Keepalive;
use crate::worker::{Receipt, Worker};

/// Takes or renews the run's lease; `false` when another process holds it.
pub(super) async fn renew(w: &Worker, job_id: &str, run_id: &str) -> Result<bool, StoreError> {
    let now = Utc::now().timestamp();
    let lease = Lease {
        owner: w.identity.lease_owner.clone(),
        expires: now + i64::try_from(span(w)).unwrap_or(i64::MAX / 2),
    };
    // Expiries are whole seconds: a lease is over from its expiry second on
    // (the store takes it when `expires < now`). Without this a copy coming
    // back exactly when its dead holder's lease ends would find it held and
    // be left alone for another queue timeout.
    w.services
        .tables
        .acquire_lease(&w.services.realm_name, job_id, run_id, &lease, now + 1)
        .await
}

/// Keeps a running message invisible and its lease alive. The lease is
/// renewed before the visibility, so a run whose worker died has its lease
/// expire no later than its message comes back. `None` when the keep-alive
/// is off.
pub(super) fn spawn_keepalive(
    w: Arc<Worker>,
    receipt: Option<Arc<Receipt>>,
    job_id: String,
    run_id: String,
) -> Option<Keepalive> {
    let period = w.services.settings.visibility_keepalive;
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
            if let Err(e) = renew(&w, &job_id, &run_id).await {
                tracing::warn!("cannot renew the run's lease: {e}");
            }
            if stop.is_cancelled() {
                return;
            }
            let wanted = span(&w).max(u64::from(w.queue_visibility));
            let left = limit.saturating_sub(started.elapsed()).as_secs();
            let secs = u32::try_from(wanted.min(left)).unwrap_or(u32::MAX);
            if secs == 0 {
                // Past SQS's 12 h: the message comes back and is left alone
                // while the lease holds (0 would make it visible at once).
                continue;
            }
            if let Err(e) = w
                .queues
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
pub(super) fn span(w: &Worker) -> u64 {
    let period = w.services.settings.visibility_keepalive;
    if period.is_zero() {
        u64::from(w.queue_visibility)
    } else {
        (3.0 * period.as_secs_f64()).ceil() as u64
    }
}
