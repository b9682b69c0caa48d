//! The `pkg` job type: download bundles, unpack each (tar or zip, within
//! `PKG_UNPACK_TIMEOUT`) into its own directory and run the entry point
//! there (spec/job-types.md §5).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

use super::payload::{download, payload_url};
use super::{Job, Outcome, Program, program_result, random_suffix, shell_words};
use crate::process::{self, Ended, ProcessSpec};

pub(super) async fn run(job: &Job<'_>) -> Result<Outcome, Outcome> {
    job.check_params(
        &[],
        &[
            "command",
            "main",
            "args",
            "connections",
            "env",
            "jinja",
            "timeout",
            "vars",
        ],
    )?;
    let params = job.params();
    let command = match (params.get("command"), params.get("main")) {
        (Some(_), Some(_)) => {
            return Err(Outcome::fail(
                "Only one of \"command\" or \"main\" (deprecated) allowed",
            ));
        }
        (Some(Value::String(c)), None) | (None, Some(Value::String(c))) => c.clone(),
        _ => return Err(Outcome::fail("Bad job parameters: No command")),
    };
    if params
        .get("connections")
        .is_some_and(|c| c.as_object().is_some_and(|m| !m.is_empty()))
    {
        return Err(Outcome::fail(
            "connections are not supported by this worker yet",
        ));
    }
    let items: Vec<String> = match job.run.job.payload() {
        Value::String(s) => vec![s.clone()],
        Value::Array(list) if list.iter().all(Value::is_string) && !list.is_empty() => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        other => return Err(Outcome::fail(format!("Bad payload: {other}"))),
    };
    let c = job.common("PKG_TIMEOUT")?;
    let mut words = shell_words(&command)?;
    if words.is_empty() {
        return Err(Outcome::fail("Bad job parameters: No command"));
    }
    let entry_point = words.remove(0);
    words.extend(c.args.iter().cloned());
    let args = job.render_words(words, &c)?;
    let base_env = job.environment(&c, &[("LAVA_S3_PAYLOAD", payload_url(job, &items[0]))])?;
    let bundles = download(job, &items, "PKG_MAX_PAYLOAD_SIZE").await?;
    let unpack_timeout = job
        .w
        .config
        .duration("PKG_UNPACK_TIMEOUT")
        .ok()
        .flatten()
        .unwrap_or(30.0);
    let mut output = Vec::new();
    for (n, bundle) in bundles.into_iter().flatten().enumerate() {
        let basename = bundle
            .file_name()
            .map(|b| b.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = job
            .run
            .job_dir
            .join(format!("{}.{}.pkg", n + 1, random_suffix()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Outcome::fail(format!("Cannot create {}: {e}", dir.display())))?;
        unpack(
            job,
            &bundle,
            &dir,
            &base_env,
            Duration::from_secs_f64(unpack_timeout.max(0.0)),
        )
        .await?;
        let program = dir.join(&entry_point);
        let made_executable = std::fs::metadata(&program).and_then(|m| {
            let mut perms = m.permissions();
            perms.set_mode(perms.mode() | 0o100);
            std::fs::set_permissions(&program, perms)
        });
        if let Err(e) = made_executable {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(Outcome::fail(format!("{}: {e}", program.display())));
        }
        let mut env = base_env.clone();
        // DECISIONS.md 8: the unpack directory comes first on PYTHONPATH.
        let python_path = match env.get("PYTHONPATH").filter(|p| !p.is_empty()) {
            Some(old) => format!("{}:{old}", dir.display()),
            None => dir.display().to_string(),
        };
        env.insert("PYTHONPATH".into(), python_path);
        let mut argv = vec![program.display().to_string()];
        argv.extend(args.iter().cloned());
        let ran = job
            .run_program(Program {
                argv,
                env,
                cwd: &dir,
                capture_stem: dir.join(&basename),
                upload_prefix: format!("{}/{basename}.", job.run.s3tmp),
                payload: basename,
                timeout: c.timeout,
            })
            .await;
        let _ = std::fs::remove_dir_all(&dir);
        let ran = ran?;
        let failure = ran.failure();
        output.push(ran.entry);
        if failure.is_some() {
            return Ok(program_result(output, failure));
        }
    }
    Ok(program_result(output, None))
}

/// Unpacks by name: `*.zip` with unzip, `*.tar` and `*.tar.*` with tar.
async fn unpack(
    job: &Job<'_>,
    bundle: &Path,
    dir: &Path,
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<(), Outcome> {
    let name = bundle
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (file, target) = (bundle.display().to_string(), dir.display().to_string());
    let argv: Vec<String> = if name.ends_with(".zip") {
        ["unzip", "-o", "-qq", "-d", &target, &file]
            .map(String::from)
            .to_vec()
    } else if name.ends_with(".tar") || name.contains(".tar.") {
        ["tar", "-x", "-C", &target, "-f", &file]
            .map(String::from)
            .to_vec()
    } else {
        return Err(Outcome::fail(format!("Don't know how to unpack {file}")));
    };
    let errors = dir.with_extension("unpack.err");
    let spec = ProcessSpec {
        argv,
        env: env.clone(),
        cwd: job.run.job_dir.clone(),
        capture: Some((dir.with_extension("unpack.out"), errors.clone())),
        timeout,
        kill_grace: job.w.options.kill_grace,
    };
    let failure = |reason: String| {
        let mut data = Map::new();
        data.insert("exit_status".into(), Value::from(1));
        data.insert("error".into(), Value::String(reason.clone()));
        Outcome::Failure {
            error: format!("Cannot unpack {file} into {target}: {reason}"),
            data: Some(Value::Object(data)),
        }
    };
    match process::run(&spec, job.cancel).await {
        Ok(Ended::Exited(0)) => Ok(()),
        Ok(Ended::Exited(code)) => {
            let text = std::fs::read_to_string(&errors).unwrap_or_default();
            Err(failure(format!("exit status {code}: {}", text.trim())))
        }
        Ok(_) => Err(failure(format!(
            "timed out after {:?} seconds",
            timeout.as_secs_f64()
        ))),
        Err(e) => Err(failure(e.to_string())),
    }
}
