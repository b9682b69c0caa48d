//! A run's lease as its writers see it: who holds it, how long a renewal
//! lasts, and whether it has been lost. The run module takes and renews the
//! lease; the events writer makes each append conditional on holding it, so
//! a worker that lost its run can no longer write to it.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The lease one run holds.
#[derive(Debug)]
pub struct LeaseHold {
    /// The lease owner id (this worker process).
    pub owner: String,
    /// How long one renewal lasts.
    pub span: Duration,
    lost: CancellationToken,
}

impl LeaseHold {
    /// A lease just taken by `owner` for `span`.
    pub fn new(owner: &str, span: Duration) -> Self {
        Self {
            owner: owner.to_string(),
            span,
            lost: CancellationToken::new(),
        }
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
