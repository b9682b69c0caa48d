//! The `cmd` job type: one program from the payload text, split into words
//! with shell rules before each word is rendered.

use async_trait::async_trait;
use serde_json::Value;

use super::program::{COMMON_KEYS, Program, program_result, random_suffix, shell_words};
use super::{Failure, JobContext, JobType, Outcome, ParamKeys};

/// `cmd`.
pub(super) struct Cmd;

#[async_trait]
impl JobType for Cmd {
    fn name(&self) -> &'static str {
        "cmd"
    }

    fn parameters(&self) -> Option<ParamKeys> {
        Some(ParamKeys {
            required: &[],
            allowed: &COMMON_KEYS,
        })
    }

    async fn run(&self, job: &JobContext<'_>) -> Outcome {
        run(job).await.into()
    }
}

async fn run(job: &JobContext<'_>) -> Result<Value, Failure> {
    let payload = match job.run.job.payload() {
        Value::String(s) if !s.trim().is_empty() => s.clone(),
        _ => return Err(Failure::new("payload required")),
    };
    let c = job.common(job.services.settings.cmd_timeout)?;
    let mut words = shell_words(&payload)?;
    words.extend(c.args.iter().cloned());
    let argv = job.render_words(words, &c).await?;
    let env = job.environment(&c, &[]).await?;
    let dir = job.run.job_dir;
    let ran = job
        .run_program(Program {
            argv,
            env,
            cwd: dir,
            capture_stem: dir.join(format!("tmp{}", random_suffix())),
            upload_prefix: format!("{}/", job.run.s3tmp),
            payload,
            timeout: c.timeout,
            stdin: None,
        })
        .await?;
    let failure = ran.failure();
    program_result(vec![ran.entry], failure)
}
