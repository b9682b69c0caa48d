//! A run's lease and keep-alive. The lease (an attribute of the run's events
//! item) says which worker process runs it, and is the fence of the run:
//! it cannot be taken once the run has a final entry, only its owner renews
//! it, and every entry the owner writes is conditional on holding it. The
//! keep-alive renews the lease and the message's visibility while the run
//! goes on, so a second copy of the message is left alone and a dead
//! worker's run comes back; when the lease is lost (a renewal refused, or
//! none succeeding within the lease's span) it stops the run's payload.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lava_common::spec::{Item, LogEntry};
use lava_common::store::{EventWrite, FINAL_STATUS, Key, Lease, StoreError, Table};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::events::{Keepalive, log_of};
use crate::fence::LeaseHold;
use crate::process::Interrupt;
use crate::worker::{Receipt, Worker};

/// What taking a run's lease found.
pub(super) enum Taken {
    /// The lease is this worker's; the run's log so far.
    Run(Vec<Value>),
    /// The run has its final entry: nothing to do.
    Finished,
    /// Another live worker holds it.
    Held,
}

/// Takes the run's lease for `hold`'s owner (one conditional write that
/// also returns the item, and appends `first`, the run's `starting`, when
/// given and the run has no log yet); when that is refused, reads the item
/// to tell why. The log returned ends with `first` when it was written.
pub(super) async fn take(
    w: &Worker,
    job_id: &str,
    run_id: &str,
    hold: &LeaseHold,
    first: Option<&EventWrite>,
) -> Result<Taken, StoreError> {
    let tables = &w.services.tables;
    let realm = &w.services.realm_name;
    // Twice more when the lease ended between the write and the read, or
    // when the run has a log already (its entry then follows the lease).
    let mut first = first;
    for _ in 0..3 {
        let (lease, now, until) = lease_from(&hold.owner, hold.span);
        // Expiries are whole seconds: a lease is over from its expiry second
        // on (the store takes it when `expires < now`). Without this a copy
        // coming back exactly when its dead holder's lease ends would find
        // it held and be left alone for another queue timeout.
        if let Some(item) = tables
            .acquire_lease(realm, job_id, run_id, &lease, now + 1, first)
            .await?
        {
            hold.held_until(until);
            return Ok(found(&item));
        }
        let item = tables
            .get(realm, Table::Events, &Key::with_sort(job_id, run_id), true)
            .await?;
        match refused_because(item.as_ref(), &hold.owner, now + 1) {
            // An earlier try of this taking landed (its reply was lost),
            // with its entry if it had one, at a time not known here: the
            // lease is taken again, without the entry, so its expiry is.
            Some(Taken::Run(_)) => {
                let (lease, now, until) = lease_from(&hold.owner, hold.span);
                if let Some(item) = tables
                    .acquire_lease(realm, job_id, run_id, &lease, now + 1, None)
                    .await?
                {
                    hold.held_until(until);
                    return Ok(found(&item));
                }
            }
            Some(taken) => return Ok(taken),
            None => first = None,
        }
    }
    Ok(Taken::Held)
}

/// What an events item holding this worker's lease says of the run.
fn found(item: &Item) -> Taken {
    let log = log_of(Some(item));
    // A run finished by a worker that marks no final status.
    if log.iter().any(LogEntry::is_final_value) {
        return Taken::Finished;
    }
    Taken::Run(log)
}

/// Why a lease was refused, from the item read after: `None` when nothing
/// stands in the way any more. A lease already `owner`'s is an earlier
/// try of this same taking whose reply was lost: it is taken.
fn refused_because(item: Option<&Item>, owner: &str, now: i64) -> Option<Taken> {
    let item = item?;
    if item.contains_key(FINAL_STATUS) || log_of(Some(item)).iter().any(LogEntry::is_final_value) {
        return Some(Taken::Finished);
    }
    let lease = item.get("lease")?;
    if lease.get("owner").and_then(Value::as_str) == Some(owner) {
        return Some(found(item));
    }
    let expires = lease.get("expires")?.as_f64()?;
    (expires >= now as f64).then_some(Taken::Held)
}

/// A lease for `owner` lasting `span` from now, the time it was taken (whole
/// seconds) and the instant until which it is this worker's for sure. The
/// store keeps expiries in whole seconds and lets another worker take a
/// lease from its expiry second on, so the lease is sure until the start of
/// that second, less a margin for the clocks of two hosts differing.
fn lease_from(owner: &str, span: Duration) -> (Lease, i64, std::time::Instant) {
    let at = std::time::Instant::now();
    let now = Utc::now();
    let secs = now.timestamp();
    let lease = Lease {
        owner: owner.to_string(),
        expires: secs.saturating_add(i64::try_from(span.as_secs()).unwrap_or(i64::MAX / 2)),
    };
    let into_second = Duration::from_nanos(u64::from(now.timestamp_subsec_nanos()));
    let until = at + span.saturating_sub(into_second + CLOCK_MARGIN);
    (lease, secs, until)
}

/// How far two workers' clocks may differ, as the lease's sure time allows
/// for (hosts kept in step by NTP differ by milliseconds).
const CLOCK_MARGIN: Duration = Duration::from_millis(500);

/// Renews a lease `hold` names: `false` when its owner no longer holds it.
/// A renewal records on `hold` until when the lease is sure. The events
/// item's `ttl` (when the realm sets one) is pushed past the lease.
async fn renew(
    w: &Worker,
    job_id: &str,
    run_id: &str,
    hold: &LeaseHold,
) -> Result<bool, StoreError> {
    let (lease, _, until) = lease_from(&hold.owner, hold.span);
    let ttl = w.services.settings.event_ttl.map(|ttl| {
        lease
            .expires
            .saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2))
    });
    let renewed = w
        .services
        .tables
        .renew_lease(&w.services.realm_name, job_id, run_id, &lease, ttl)
        .await?;
    if renewed {
        hold.held_until(until);
    }
    Ok(renewed)
}

/// The lease one attempt of a run holds, as its writers see it: its owner
/// is this worker process and the attempt, so a lease this process held
/// for an earlier attempt of the same run is not taken for this one's.
pub(super) fn hold(w: &Worker) -> Arc<LeaseHold> {
    let attempt = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let owner = format!("{}:{attempt}", w.identity.lease_owner);
    Arc::new(LeaseHold::new(&owner, span(w)))
}

/// Keeps a running message invisible and its lease alive; when the lease is
/// lost, marks `hold` lost and stops the run's payload through `run_cancel`.
/// The lease is renewed before the visibility, so a run whose worker died
/// has its lease expire no later than its message comes back. `None` when
/// the keep-alive is off.
pub(super) fn spawn_keepalive(
    w: Arc<Worker>,
    receipt: Option<Arc<Receipt>>,
    job_id: String,
    run_id: String,
    hold: Arc<LeaseHold>,
    run_cancel: Interrupt,
) -> Option<Keepalive> {
    let period = w.services.settings.visibility_keepalive;
    let receipt = receipt.filter(|_| !period.is_zero())?;
    let token = CancellationToken::new();
    let stop = token.clone();
    let task = async move {
        let started = Instant::now();
        // SQS's limit is 12 h after the receive, a little before this task started.
        let limit = Duration::from_secs(12 * 3600 - 60);
        // The first round at once and without renewal (the lease was just
        // taken): the message's visibility since its receive is only the
        // queue's timeout, which may be shorter than the period.
        let mut first = true;
        loop {
            if !std::mem::take(&mut first) {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(period) => {}
                }
                // The lease counts as lost once it is no longer sure by
                // this worker's clock: its last taking or renewal that
                // succeeded, counted from before that request was sent,
                // less what the store's whole-second expiry and another
                // host's clock take off (the store's expiry is later).
                let deadline = hold
                    .sure_until()
                    .map_or_else(Instant::now, Instant::from_std);
                match keep(&w, &job_id, &run_id, &hold, deadline, &stop).await {
                    Kept::Renewed => {}
                    Kept::Stopped => return,
                    Kept::Lost(why) => {
                        tracing::error!("lost the run's lease ({why}): stopping its payload");
                        hold.set_lost();
                        run_cancel.kill_now();
                        return;
                    }
                }
            }
            if stop.is_cancelled() {
                return;
            }
            // Every request is billed: the visibility is only extended when
            // it could lapse before the next round has renewed the lease
            // (a round takes up to a lease span when renewals fail).
            if receipt.invisible_for() > period + hold.span {
                continue;
            }
            let left = limit.saturating_sub(started.elapsed()).as_secs();
            let secs = invisible_secs(&w).min(u32::try_from(left).unwrap_or(u32::MAX));
            if secs == 0 {
                // Past SQS's 12 h: the message comes back and is left alone
                // while the lease holds (0 would make it visible at once).
                continue;
            }
            let sent = std::time::Instant::now();
            match w
                .queues
                .change_visibility(&w.queue, &receipt.current(), secs)
                .await
            {
                Ok(()) => receipt.invisible_from(sent, secs),
                Err(e) => tracing::warn!("cannot extend the message's visibility: {e}"),
            }
        }
    };
    let task = tokio::spawn(task.instrument(tracing::Span::current()));
    Some(Keepalive { token, task })
}

/// What one round of renewal came to.
enum Kept {
    /// Renewed: the lease is sure for another span.
    Renewed,
    /// The keep-alive was stopped meanwhile.
    Stopped,
    /// The lease is lost, for this reason.
    Lost(String),
}

/// Renews the lease, trying again at once on failure, until `deadline`
/// (when the last renewal would lapse).
async fn keep(
    w: &Worker,
    job_id: &str,
    run_id: &str,
    hold: &LeaseHold,
    deadline: Instant,
    stop: &CancellationToken,
) -> Kept {
    // Each try may take a quarter of the span (at least a second): a
    // request that hangs is abandoned and tried again, so one silent
    // connection cannot cost the lease.
    let try_limit = (hold.span / 4).max(Duration::from_secs(1));
    let mut pause = Duration::from_millis(100);
    loop {
        let sent = Instant::now();
        if sent >= deadline {
            return Kept::Lost("not renewed within its span".into());
        }
        let until = (sent + try_limit).min(deadline);
        let result = tokio::select! {
            () = stop.cancelled() => return Kept::Stopped,
            r = tokio::time::timeout_at(until, renew(w, job_id, run_id, hold)) => r,
        };
        match result {
            Ok(Ok(true)) => return Kept::Renewed,
            // Refused after the final entry released it: the run is over.
            Ok(Ok(false)) if stop.is_cancelled() => return Kept::Stopped,
            Ok(Ok(false)) => return Kept::Lost("renewal refused".into()),
            Ok(Err(e)) => tracing::warn!("cannot renew the run's lease: {e}"),
            Err(_) => tracing::warn!("cannot renew the run's lease: no reply in {try_limit:?}"),
        }
        tokio::select! {
            () = stop.cancelled() => return Kept::Stopped,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// How long a lease lasts: 3 × `VISIBILITY_KEEPALIVE` and the [`SLACK`]
/// that its sure time loses, or the queue's visibility timeout when the
/// keep-alive is off.
pub(super) fn span(w: &Worker) -> Duration {
    let period = w.services.settings.visibility_keepalive;
    if period.is_zero() {
        Duration::from_secs(u64::from(w.queue_visibility))
    } else {
        Duration::from_secs((3.0 * period.as_secs_f64()).ceil() as u64) + SLACK
    }
}

/// What a lease's sure time loses to the store's whole-second expiry (up
/// to 1 s) and [`CLOCK_MARGIN`]: a lease still gets three renewal periods
/// before its holder counts it lost.
const SLACK: Duration = Duration::from_secs(2);

/// Seconds a message being dealt with is kept invisible: the lease's span,
/// or the queue's visibility timeout when that is longer.
pub(super) fn invisible_secs(w: &Worker) -> u32 {
    u32::try_from(span(w).as_secs())
        .unwrap_or(u32::MAX)
        .max(w.queue_visibility)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_sure_only_before_its_expiry_second_begins() {
        let span = Duration::from_secs(6);
        for _ in 0..20 {
            let (lease, secs, until) = lease_from("me", span);
            let (now, at) = (Utc::now(), std::time::Instant::now());
            assert_eq!(lease.expires, secs + 6);
            // Another worker may take the lease from its expiry second on.
            let takeable_in_ms = lease.expires * 1000 - now.timestamp_millis();
            let sure_for_ms =
                i64::try_from(until.saturating_duration_since(at).as_millis()).unwrap_or(i64::MAX);
            let margin_ms = i64::try_from(CLOCK_MARGIN.as_millis()).unwrap_or(0);
            assert!(
                sure_for_ms + margin_ms <= takeable_in_ms + 1,
                "sure for {sure_for_ms} ms, takeable in {takeable_in_ms} ms"
            );
            assert!(
                sure_for_ms >= 6000 - 1000 - margin_ms - 100,
                "{sure_for_ms}"
            );
            std::thread::sleep(Duration::from_millis(37));
        }
    }
}
