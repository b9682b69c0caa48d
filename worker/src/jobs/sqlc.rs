//! The `sqlc` job type: each payload file is rendered whole (so
//! `{% include %}` of a sibling payload file works) and fed on stdin to the
//! database's own client through the connection's CLI helper (`psql` with
//! `ON_ERROR_STOP`, `mysql`, `sqlite3`), with a time limit per file. The
//! client decides success; the first failing file stops the run. The child
//! gets the worker's environment plus `LAVA_REALM` and `PGAPPNAME` only.

use std::collections::BTreeMap;

use async_trait::async_trait;
use lava_common::connection::app_name;
use serde_json::{Value, json};

use super::payload::download;
use super::program::{Program, program_result};
use super::sql_run::payload_files;
use super::{Failure, JobContext, JobType, Outcome, ParamKeys};
use crate::conn::{self, RunInfo};

/// `sqlc`.
pub(super) struct Sqlc;

#[async_trait]
impl JobType for Sqlc {
    fn name(&self) -> &'static str {
        "sqlc"
    }

    fn parameters(&self) -> Option<ParamKeys> {
        Some(ParamKeys {
            required: &["conn_id"],
            allowed: &["args", "jinja", "timeout", "vars"],
        })
    }

    async fn run(&self, job: &JobContext<'_>) -> Outcome {
        run(job).await.into()
    }
}

async fn run(job: &JobContext<'_>) -> Result<Value, Failure> {
    let s = job.services;
    let c = job.common(s.settings.sqlc_timeout)?;
    let conn_id = match job.params().get("conn_id") {
        Some(Value::String(id)) => id.clone(),
        Some(other) => other.to_string(),
        None => return Err(Failure::new("Bad job parameters: Missing keys: conn_id")),
    };
    let items = payload_files(job.run.job.payload())?;
    let template = s.settings.conn_app_name.as_deref();
    let run_info = RunInfo {
        job_dir: job.run.job_dir,
        realm: &s.realm_name,
        job_id: job.run.job_id(),
        app_name_template: template,
    };
    let (helper_dir, helper) = conn::create_for(&s.connections, &conn_id, &run_info)
        .await
        .map_err(|e| Failure::new(e.to_string()))?;
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    for name in ["JOURNAL_STREAM", crate::notify::NOTIFY_SOCKET] {
        env.remove(name);
    }
    env.insert("LAVA_REALM".into(), s.realm_name.clone());
    if let Some(name) =
        template.and_then(|t| app_name(t, &s.realm_name, job.run.job_id(), &conn_id))
    {
        env.insert("PGAPPNAME".into(), name);
    }
    let ran = run_files(job, &c, &items, &helper, env).await;
    if let Err(e) = crate::workdir::remove_tree(&helper_dir).await {
        tracing::warn!("cannot remove {}: {e}", helper_dir.display());
    }
    ran
}

async fn run_files(
    job: &JobContext<'_>,
    c: &super::program::Common,
    items: &[String],
    helper: &std::path::Path,
    env: BTreeMap<String, String>,
) -> Result<Value, Failure> {
    let files = download(job, items, &job.services.settings.sqlc_max_payload_size).await?;
    let mut output = Vec::new();
    for file in files.into_iter().flatten() {
        let base = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if c.jinja {
            let (path, ctx) = (file.clone(), c.ctx.clone());
            let rendered = job
                .services
                .renderer
                .off_runtime(move |r| r.render_file(&path, &ctx))
                .await
                .and_then(|r| r);
            let text = match rendered {
                Ok(text) => text,
                Err(e) => {
                    return Err(Failure::with_data(
                        "Failed with exit status 1",
                        json!({"exit_status": 1, "output": output,
                               "error": format!("Jinja2 render failed on {base}: {e}")}),
                    ));
                }
            };
            tokio::fs::write(&file, text)
                .await
                .map_err(|e| Failure::new(format!("Cannot write {}: {e}", file.display())))?;
        }
        let mut argv = vec![helper.display().to_string()];
        argv.extend(c.args.iter().cloned());
        let ran = job
            .run_program(Program {
                argv,
                env: env.clone(),
                cwd: job.run.job_dir,
                capture_stem: job.run.job_dir.join(&base),
                upload_prefix: format!("{}/{base}.", job.run.s3tmp),
                payload: base,
                timeout: c.timeout,
                stdin: Some(file.clone()),
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
