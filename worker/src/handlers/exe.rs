//! The `exe` job type: download the executables named by the payload's
//! first word and run each with the rendered arguments (spec/job-types.md §4).

use serde_json::Value;

use super::payload::{download, payload_url};
use super::{Job, Outcome, Program, program_result, shell_words};

pub(super) async fn run(job: &Job<'_>) -> Result<Outcome, Outcome> {
    job.check_params(
        &[],
        &["args", "connections", "env", "jinja", "timeout", "vars"],
    )?;
    let Value::String(payload) = job.run.job.payload() else {
        return Err(Outcome::fail(
            "Only single string payloads are supported for exe jobs",
        ));
    };
    if job
        .params()
        .get("connections")
        .is_some_and(|c| c.as_object().is_some_and(|m| !m.is_empty()))
    {
        return Err(Outcome::fail(
            "connections are not supported by this worker yet",
        ));
    }
    let c = job.common("EXE_TIMEOUT")?;
    let mut words = shell_words(payload)?;
    if words.is_empty() {
        return Err(Outcome::fail("payload required"));
    }
    let location = words.remove(0);
    words.extend(c.args.iter().cloned());
    let args = job.render_words(words, &c)?;
    let env = job.environment(&c, &[("LAVA_S3_PAYLOAD", payload_url(job, &location))])?;
    let files = download(job, std::slice::from_ref(&location), "EXE_MAX_PAYLOAD_SIZE").await?;
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
                cwd: &job.run.job_dir,
                capture_stem: job.run.job_dir.join(&basename),
                upload_prefix: format!("{}/{basename}.", job.run.s3tmp),
                payload: basename,
                timeout: c.timeout,
            })
            .await?;
        let failure = ran.failure();
        output.push(ran.entry);
        if failure.is_some() {
            return Ok(program_result(output, failure));
        }
    }
    Ok(program_result(output, None))
}
