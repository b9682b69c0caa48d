//! The `exe` job type: download the executables named by the payload's
//! first word and run each with the rendered arguments.

use async_trait::async_trait;
use serde_json::Value;

use super::payload::{download, payload_url};
use super::program::Common;
use crate::conn::Helpers;
use super::program::{Program, helper_vars, program_result, shell_words};
use super::{Failure, JobContext, JobType, Outcome, ParamKeys};

/// `exe`.
pub(super) struct Exe;

#[async_trait]
impl JobType for Exe {
    fn name(&self) -> &'static str {
        "exe"
    }

    fn parameters(&self) -> Option<ParamKeys> {
        Some(ParamKeys {
            required: &[],
            allowed: &["args", "connections", "env", "jinja", "timeout", "vars"],
        })
    }

    async fn run(&self, job: &JobContext<'_>) -> Outcome {
        run(job).await.into()
    }
}

async fn run(job: &JobContext<'_>) -> Result<Value, Failure> {
    let Value::String(payload) = job.run.job.payload() else {
        return Err(Failure::new(
            "Only single string payloads are supported for exe jobs",
        ));
    };
    let settings = &job.services.settings;
    let c = job.common(settings.exe_timeout)?;
    let mut words = shell_words(payload)?;
    if words.is_empty() {
        return Err(Failure::new("payload required"));
    }
    let location = words.remove(0);
    words.extend(c.args.iter().cloned());
    let args = job.render_words(words, &c).await?;
    let helpers = job.connection_helpers().await?;
    let ran = run_with(job, &c, &location, &args, &helpers).await;
    helpers.remove().await;
    ran
}

/// Downloads and runs the executables with the connection helpers made.
async fn run_with(
    job: &JobContext<'_>,
    c: &Common,
    location: &str,
    args: &[String],
    helpers: &Helpers,
) -> Result<Value, Failure> {
    let settings = &job.services.settings;
    let mut extra = vec![("LAVA_S3_PAYLOAD", payload_url(job, location))];
    extra.extend(helper_vars(helpers));
    let env = job.environment(c, &extra).await?;
    let files = download(
        job,
        &[location.to_string()],
        &settings.exe_max_payload_size,
    )
    .await?;
    let mut output = Vec::new();
    for file in files.into_iter().flatten() {
        let basename = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut argv = vec![file.display().to_string()];
        argv.extend(args.iter().cloned());
        let ran = job
            .run_program(Program {
                argv,
                env: env.clone(),
                cwd: job.run.job_dir,
                capture_stem: job.run.job_dir.join(&basename),
                upload_prefix: format!("{}/{basename}.", job.run.s3tmp),
                payload: basename,
                timeout: c.timeout,
                stdin: None,
            })
            .await?;
        let failure = ran.failure();
        output.push(ran.entry);
        if failure.is_some() {
            return program_result(output, failure);
        }
    }
    program_result(output, None)
}
