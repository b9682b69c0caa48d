//! The `cmd` job type: one program from the payload text, split into words
//! before each word is rendered (spec/job-types.md §3, spec/worker.md §12.3).

use serde_json::Value;

use super::{Job, Outcome, Program, program_result, random_suffix, shell_words};

pub(super) async fn run(job: &Job<'_>) -> Result<Outcome, Outcome> {
    job.check_params(&[], &["args", "env", "jinja", "timeout", "vars"])?;
    let payload = match job.run.job.payload() {
        Value::String(s) if !s.trim().is_empty() => s.clone(),
        _ => return Err(Outcome::fail("payload required")),
    };
    let c = job.common("CMD_TIMEOUT")?;
    let mut words = shell_words(&payload)?;
    words.extend(c.args.iter().cloned());
    let argv = job.render_words(words, &c)?;
    let env = job.environment(&c, &[])?;
    let dir = &job.run.job_dir;
    let ran = job
        .run_program(Program {
            argv,
            env,
            cwd: dir,
            capture_stem: dir.join(format!("tmp{}", random_suffix())),
            upload_prefix: format!("{}/", job.run.s3tmp),
            payload,
            timeout: c.timeout,
        })
        .await?;
    let failure = ran.failure();
    Ok(program_result(vec![ran.entry], failure))
}
