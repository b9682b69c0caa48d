//! The `Run` type: one admitted run's job with the worker's additions — the
//! merged parameters and globals, state, times, temp areas — and how Jinja,
//! job types and actions see it.

use std::path::PathBuf;

use chrono::{DateTime, FixedOffset};
use lava_common::render::Context;
use lava_common::spec::{Item, JobSpec};
use lava_common::timestamp;
use serde_json::{Map, Value};

use crate::actions::RunTarget;
use crate::jobs::RunView;
use crate::services::Services;

/// A job being run: the validated job with the worker's additions.
pub(super) struct Run {
    /// The job as read and validated.
    pub(super) job: JobSpec,
    /// The run id from the message.
    pub(super) run_id: String,
    /// Dispatch time from the message.
    pub(super) ts_dispatch: DateTime<FixedOffset>,
    /// Time of the `starting` event.
    pub(super) ts_start: DateTime<FixedOffset>,
    /// Job parameters with the message's merged over them.
    pub(super) parameters: Map<String, Value>,
    /// Job globals with the message's merged over them, `lava` completed.
    pub(super) globals: Map<String, Value>,
    /// The job's state map, defaults replaced by current values.
    pub(super) state: Map<String, Value>,
    /// `<s3_temp>/<job_id>/<run_id>`.
    pub s3tmp: String,
    /// The run's private directory (an in-process child shares its parent's).
    pub(super) job_dir: PathBuf,
    /// The run creates its directory and removes it at the end; off for an
    /// in-process child, which works in its parent's.
    pub(super) cleanup: bool,
    /// Whether a failed attempt with iterations left returns the run's
    /// message to the queue for the iteration delay (`RETRY_MODE=delayed`),
    /// rather than wait in its job slot. Only a run of its own message can.
    pub(super) delayed_retries: bool,
}

impl Run {
    /// The job id.
    pub(super) fn job_id(&self) -> &str {
        self.job.job_id()
    }

    /// "Job <job_id> (<run_id>)", the prefix of the run's log lines.
    pub(super) fn prefix(&self) -> String {
        format!("Job {} ({})", self.job_id(), self.run_id)
    }

    /// The augmented job as Jinja sees it: the job item with `realm`,
    /// `run_id`, the times, and the merged `parameters`, `globals` and `state`.
    pub(super) fn job_value(&self, realm: &str) -> Value {
        let mut item = self.job.item().clone();
        item.insert("realm".into(), Value::String(realm.to_string()));
        item.insert("run_id".into(), Value::String(self.run_id.clone()));
        item.insert(
            "ts_dispatch".into(),
            Value::String(timestamp::isoformat(&self.ts_dispatch)),
        );
        item.insert(
            "ts_start".into(),
            Value::String(timestamp::isoformat(&self.ts_start)),
        );
        item.insert(
            "ts_ustart".into(),
            Value::String(timestamp::utc_isoformat(&self.ts_start)),
        );
        item.insert("parameters".into(), Value::Object(self.parameters.clone()));
        item.insert("globals".into(), Value::Object(self.globals.clone()));
        item.insert("state".into(), Value::Object(self.state.clone()));
        Value::Object(item)
    }

    /// The base render context: `job`, `realm`, the times and the helpers.
    pub(super) fn context(&self, services: &Services) -> Context {
        let job = self.job_value(&services.realm_name);
        Context::for_job(
            &job,
            &Value::Object(services.realm.item().clone()),
            &self.ts_start,
        )
    }

    /// What the job type sees of this run.
    pub(super) fn view(&self, services: &Services) -> RunView<'_> {
        RunView {
            job: &self.job,
            run_id: &self.run_id,
            parameters: &self.parameters,
            s3tmp: &self.s3tmp,
            job_dir: &self.job_dir,
            job_value: self.job_value(&services.realm_name),
        }
    }
}

impl RunTarget for Run {
    fn job_id(&self) -> &str {
        self.job.job_id()
    }

    fn run_id(&self) -> &str {
        &self.run_id
    }

    fn job_item(&self) -> &Item {
        self.job.item()
    }

    fn ts_start(&self) -> &DateTime<FixedOffset> {
        &self.ts_start
    }

    fn globals_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.globals
    }

    fn context(&self, services: &Services) -> Context {
        Run::context(self, services)
    }
}
