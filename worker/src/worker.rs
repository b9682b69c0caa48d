//! The worker's shared state: the services its runs use, its queue, its
//! identity and the runs in progress, built once at start-up.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lava_common::store::{Queue, QueueRef};
use tokio_util::sync::CancellationToken;

use crate::clients::ActionClients;
use crate::events::Identity;
use crate::services::Services;

/// Settings of one worker process that runs read (its flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// `--threads`: job slots.
    pub threads: usize,
    /// `--retries`: discard a message received more than this + 1 times (negative: never).
    pub retries: i64,
    /// Planned retries return their message to the queue for the iteration
    /// delay (`RETRY_MODE=delayed`, and not `--batch`, which ends once the
    /// queue is empty: a batch worker waits in place).
    pub delayed_retries: bool,
}

/// Everything a run needs from its worker.
pub struct Worker {
    /// What job types and actions may use.
    pub services: Services,
    /// The clients actions send to.
    pub clients: ActionClients,
    /// The queue seam.
    pub queues: Arc<dyn Queue>,
    /// The queue this worker polls.
    pub queue: QueueRef,
    /// The queue's visibility timeout in seconds.
    pub queue_visibility: u32,
    /// Who writes events and holds leases.
    pub identity: Arc<Identity>,
    /// `<TMPDIR>/<realm>/<worker>.<pid>`: parent of every job dir.
    pub work_dir: PathBuf,
    /// Run settings from the flags.
    pub options: Options,
    /// Every configuration item that is set, `NAME=value`, for the status log.
    pub config_dump: Vec<String>,
    /// Runs in progress in this process, by run id.
    pub active: ActiveRuns,
    /// Set when the worker stops polling (a drain, or `--batch` at an
    /// empty queue): a run that has not started yet is handed back rather
    /// than waited for.
    pub stopping: CancellationToken,
}

/// The receipt of a message being run: replaced when the same message is
/// received again while its run goes on (the older receipt is then stale
/// for SQS), so the keep-alive and the final delete use the newest.
#[derive(Debug)]
pub struct Receipt {
    message_id: String,
    current: Mutex<String>,
    /// Until when the message is surely invisible: its receive (or last
    /// visibility change) plus the timeout it was given.
    invisible_until: Mutex<Instant>,
    /// A little after its receive.
    received: Instant,
}

impl Receipt {
    /// The newest receipt handle.
    pub fn current(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Records a visibility timeout of `secs` given at `from` (a receive,
    /// or a visibility change sent at that instant).
    pub fn invisible_from(&self, from: Instant, secs: u32) {
        *self
            .invisible_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            from + Duration::from_secs(u64::from(secs));
    }

    /// The longest visibility timeout the message can still be given: SQS
    /// keeps a message invisible for at most 12 hours after its receive.
    pub fn longest_invisibility(&self) -> Duration {
        // A minute short of it: the receive was a little before `received`.
        Duration::from_secs(12 * 3600 - 60).saturating_sub(self.received.elapsed())
    }

    /// How long the message surely stays invisible from now.
    pub fn invisible_for(&self) -> Duration {
        self.invisible_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .saturating_duration_since(Instant::now())
    }
}

/// Runs in progress in this worker process: a second copy of a run reaching
/// the worker that runs it is left alone (its lease is this process's).
#[derive(Debug, Default)]
pub struct ActiveRuns(Mutex<HashMap<String, Arc<Receipt>>>);

/// What [`ActiveRuns::enter`] found.
pub enum Entered {
    /// The run was not in progress here; it is now, until the guard drops.
    New(ActiveGuard),
    /// The same message is already being run here; its receipt was updated.
    SameMessage,
    /// Another copy (another message) of the run is being run here.
    OtherCopy,
}

/// Marks a run as in progress here while it lives.
pub struct ActiveGuard {
    runs: Arc<Worker>,
    run_id: String,
    /// The message's receipt, kept up to date.
    pub receipt: Arc<Receipt>,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.runs.active.lock().remove(&self.run_id);
    }
}

impl ActiveRuns {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Receipt>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a received message's run, unless it is already in progress here.
    pub fn enter(w: &Arc<Worker>, run_id: &str, message_id: &str, receipt: &str) -> Entered {
        let mut runs = w.active.lock();
        if let Some(running) = runs.get(run_id) {
            if running.message_id == message_id {
                *running
                    .current
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = receipt.to_string();
                running.invisible_from(Instant::now(), w.queue_visibility);
                return Entered::SameMessage;
            }
            return Entered::OtherCopy;
        }
        // Received a moment ago, invisible for the queue's timeout since.
        let entry = Arc::new(Receipt {
            message_id: message_id.to_string(),
            current: Mutex::new(receipt.to_string()),
            invisible_until: Mutex::new(
                Instant::now() + Duration::from_secs(u64::from(w.queue_visibility)),
            ),
            received: Instant::now(),
        });
        runs.insert(run_id.to_string(), Arc::clone(&entry));
        Entered::New(ActiveGuard {
            runs: Arc::clone(w),
            run_id: run_id.to_string(),
            receipt: entry,
        })
    }

    /// The run ids in progress, sorted.
    pub fn run_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// How many runs are in progress.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// The worker directory name: `<worker>.<pid>`, replacing a suffix the way
/// Python's `Path.with_suffix` does (`core.v2` → `core.<pid>`), as the
/// original does.
pub fn work_dir_name(worker: &str, pid: u32) -> String {
    match worker.rfind('.') {
        Some(i) if i > 0 && i + 1 < worker.len() => format!("{}.{pid}", &worker[..i]),
        _ => format!("{worker}.{pid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_dir_names() {
        assert_eq!(work_dir_name("core", 42), "core.42");
        assert_eq!(work_dir_name("core.v2", 42), "core.42");
        assert_eq!(work_dir_name("core-a", 7), "core-a.7");
    }
}
