//! Job types: one file each behind the [`JobType`] trait, listed in one
//! [`registry`]. A job type gets a narrow [`JobContext`] (its run's data, the
//! worker's services, the interrupt) and returns an [`Outcome`]. What several
//! types share lives beside them: the parameter-key check ([`ParamKeys`]),
//! the program runner for `cmd`/`exe`/`pkg` (`program`) and the payload
//! download (`payload`), and the in-process children of the orchestration
//! types ([`Children`], with `orchestration` helpers).

mod children;
mod context;
mod foreach_values;
mod orchestration;
mod outcome;
mod params;
mod payload;
mod program;
pub mod registry;
mod sql_run;

use async_trait::async_trait;

pub use children::{ChildEnd, Children};
pub use context::{JobContext, RunView};
pub use outcome::{Failure, Outcome};
pub use params::ParamKeys;
pub use registry::Lookup;

/// One job type.
#[async_trait]
pub trait JobType: Send + Sync {
    /// The type's name, as a job's `type` field gives it.
    fn name(&self) -> &'static str;

    /// The parameter keys it takes, checked before [`JobType::run`];
    /// `None` when it takes any (as `log`).
    fn parameters(&self) -> Option<ParamKeys>;

    /// Runs one attempt.
    async fn run(&self, job: &JobContext<'_>) -> Outcome;
}

/// Declares the job type modules and lists their types in `TYPES`.
macro_rules! job_types {
    ($($module:ident :: $job_type:ident),* $(,)?) => {
        $(mod $module;)*
        /// Every job type this worker runs, in lookup order.
        static TYPES: &[&dyn JobType] = &[$(&$module::$job_type),*];
    };
}

// The registry: the one list of the job types this worker runs. A new job
// type is one file under `jobs/` and one line here.
job_types! {
    cmd::Cmd,
    exe::Exe,
    pkg::Pkg,
    log::Log,
    lavasched::Lavasched,
    sql::Sql,
    sqli::Sqli,
    sqlc::Sqlc,
    chain::Chain,
    dag::Dag,
    dispatch::Dispatch,
    foreach::Foreach,
}

/// Runs one attempt of a job of a known type: the parameter check, then the type.
pub async fn attempt(job_type: &dyn JobType, job: &JobContext<'_>) -> Outcome {
    if let Some(keys) = job_type.parameters()
        && let Err(failure) = keys.check(job.params())
    {
        return Outcome::Failed(failure);
    }
    // Recorded as it ended, even when an interrupt came meanwhile: only a
    // payload actually stopped makes the attempt `Interrupted`.
    job_type.run(job).await
}
