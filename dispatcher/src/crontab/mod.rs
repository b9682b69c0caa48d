//! `lava-crontab` and the library the `lavasched` job type calls: the
//! crontab lines that make cron run `lava-dispatch` for every scheduled job
//! of a dispatcher.
//!
//! The pure part — [`build`] (jobs → block), [`merge::merge`] (block →
//! crontab), [`diff::unified`] — is separate from the effects: reading the
//! jobs table ([`load_jobs`]) and the crontab program ([`CrontabCommand`]).
//! [`sync`] puts them together.

pub mod cli;
pub mod diff;
pub mod expr;
pub mod merge;
pub mod render;
pub mod schedule;
pub mod zone;

mod build;
mod install;
mod sync;

pub use build::{Built, Options, Skipped, build};
pub use install::{CRONTAB_CMD_ENV, CrontabCommand};
pub use sync::{
    BUILD_KEYS, Sources, SyncOutcome, apply, load_jobs, prepare, slim, sources_from_job,
    sources_from_parameters, sync,
};

use lava_common::settings;
use lava_common::store::StoreError;

settings! {
    /// What building a crontab reads from the configuration.
    pub struct CrontabSettings {
        /// The program the crontab lines call; `None` or empty: the
        /// `lava-dispatch` beside this program.
        dispatcher: Option<String> = "DISPATCHER",
    }
}

/// The program the crontab lines call: the configured `DISPATCHER`
/// (`LAVA_DISPATCHER`, then the realm's `config`) when set and not empty,
/// else the `lava-dispatch` beside the running program (`lava-crontab` or
/// `lava-worker`; packages install both in `/usr/bin`).
pub fn dispatcher_path(configured: Option<&str>) -> String {
    let configured = configured.filter(|d| !d.is_empty()).map(str::to_string);
    configured.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("lava-dispatch")))
            .map_or_else(|| "lava-dispatch".to_string(), |p| p.display().to_string())
    })
}

/// Why a crontab could not be built or installed. Bad jobs and schedule
/// entries are not errors: they are [`Skipped`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrontabError {
    /// An env line (or the realm, or `CRON_TZ`) that cannot be written.
    #[error("{0}")]
    BadEnv(String),
    /// The dispatcher path or an extra argument cannot be written.
    #[error("{0}")]
    BadArg(String),
    /// The `lavasched` job, or a job read for `next`, is missing or malformed.
    #[error("{0}")]
    BadJob(String),
    /// The current crontab has a start marker and no end marker.
    #[error(
        "the crontab has a \"{}\" line and no \"{}\" line: fix it by hand; nothing was installed",
        render::START,
        render::END
    )]
    NoEndMarker,
    /// The current crontab's lava block belongs to another realm.
    #[error(
        "the crontab's lava block is for realm {found}: one realm per host (use --force to replace it)"
    )]
    OtherRealm {
        /// The realm its `LAVA_REALM=` line names.
        found: String,
    },
    /// The crontab program failed.
    #[error("could not {what} with {program}: {reason}")]
    Command {
        /// The program.
        program: String,
        /// What it was asked to do.
        what: String,
        /// How it failed.
        reason: String,
    },
    /// A file of jobs could not be read.
    #[error("{0}")]
    JobsFile(String),
    /// Reading the tables failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
