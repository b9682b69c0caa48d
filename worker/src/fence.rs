//! A run's lease as its writers see it: who holds it, how long a renewal
//! lasts, and whether it has been lost. The run module takes and renews the
//! lease; the events writer makes each append conditional on holding it, so
//! a worker that lost its run can no longer write to it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// The lease one run holds.
#[derive(Debug)]
pub struct LeaseHold {
    /// The lease owner id (this worker process).
    pub owner: String,
    /// How long one renewal lasts.
    pub span: Duration,
    lost: CancellationToken,
    /// Until when, on this host's monotonic clock, the last write that
    /// took or renewed the lease keeps it this worker's for sure.
    held_until: Mutex<Option<Instant>>,
}

impl LeaseHold {
    /// A lease just taken by `owner` for `span`.
    pub fn new(owner: &str, span: Duration) -> Self {
        Self {
            owner: owner.to_string(),
            span,
            lost: CancellationToken::new(),
            held_until: Mutex::new(None),
        }
    }

    /// Records a write that took or renewed the lease, sure until `until`.
    pub fn held_until(&self, until: Instant) {
        if let Ok(mut held) = self.held_until.lock() {
            *held = Some(until);
        }
    }

    /// Until when the lease is this worker's for sure (`None` before it is
    /// taken).
    pub fn sure_until(&self) -> Option<Instant> {
        self.held_until.lock().ok().and_then(|held| *held)
    }

    /// Marks the lease as lost: refused on renewal, or not renewed in time.
    pub fn set_lost(&self) {
        self.lost.cancel();
    }

    /// True once the lease is known lost.
    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }
}
