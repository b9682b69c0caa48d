//! What a job type sees of its run: the run's own data ([`RunView`]), the
//! worker's [`Services`], the render context, the interrupt and the run's
//! in-process children. Job types
//! get this narrow context, never the worker.

use std::path::Path;

use lava_common::render::Context;
use lava_common::spec::JobSpec;
use serde_json::{Map, Value};

use super::children::Children;
use crate::process::Interrupt;
use crate::services::Services;

/// One run's data, as its job type sees it.
pub struct RunView<'a> {
    /// The job as read and validated.
    pub job: &'a JobSpec,
    /// The run id.
    pub run_id: &'a str,
    /// Job parameters with the dispatch's merged over them.
    pub parameters: &'a Map<String, Value>,
    /// `<s3_temp>/<job_id>/<run_id>`.
    pub s3tmp: &'a str,
    /// The run's private directory.
    pub job_dir: &'a Path,
    /// The augmented job, as Jinja sees it as `job`.
    pub job_value: Value,
}

impl RunView<'_> {
    /// The job id.
    pub fn job_id(&self) -> &str {
        self.job.job_id()
    }
}

/// What a job type works with during one attempt.
pub struct JobContext<'a> {
    /// The run.
    pub run: RunView<'a>,
    /// The worker's services.
    pub services: &'a Services,
    /// Set when the worker shuts down.
    pub cancel: &'a Interrupt,
    /// The base render context of the run.
    pub ctx: Context,
    /// The run's in-process children (`chain`, `dag`, `foreach`).
    pub children: &'a dyn Children,
}

impl JobContext<'_> {
    /// The run's parameters.
    pub fn params(&self) -> &Map<String, Value> {
        self.run.parameters
    }
}
