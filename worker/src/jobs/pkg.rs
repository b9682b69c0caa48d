//! The `pkg` job type: download bundles, unpack each (tar or zip, within
//! `PKG_UNPACK_TIMEOUT`) into its own directory and run the entry point
//! there, with the directory first on `PYTHONPATH`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::payload::{download, payload_url};
use super::program::{Program, program_result, random_suffix, refuse_connections, shell_words};
use super::{Failure, JobContext, JobType, Outcome, ParamKeys};
use crate::process::{self, Ended, ProcessSpec};
use crate::workdir;

/// `pkg`.
pub(super) struct Pkg;

#[async_trait]
impl JobType for Pkg {
    fn name(&self) -> &'static str {
        "pkg"
    }

    fn parameters(&self) -> Option<ParamKeys> {
        Some(ParamKeys {
            required: &[],
            allowed: &[
                "command",
                "main",
                "args",
                "connections",
                "env",
                "jinja",
                "timeout",
                "vars",
            ],
        })
    }

    async fn run(&self, job: &JobContext<'_>) -> Outcome {
        run(job).await.into()
    }
}

async fn run(job: &JobContext<'_>) -> Result<Value, Failure> {
    let params = job.params();
    let command = match (params.get("command"), params.get("main")) {
        (Some(_), Some(_)) => {
            return Err(Failure::new(
                "Only one of \"command\" or \"main\" (deprecated) allowed",
            ));
        }
        (Some(Value::String(c)), None) | (None, Some(Value::String(c))) => c.clone(),
        _ => return Err(Failure::new("Bad job parameters: No command")),
    };
    refuse_connections(job)?;
    let items: Vec<String> = match job.run.job.payload() {
        Value::String(s) => vec![s.clone()],
        Value::Array(list) if list.iter().all(Value::is_string) && !list.is_empty() => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        other => return Err(Failure::new(format!("Bad payload: {other}"))),
    };
    let settings = &job.services.settings;
    let c = job.common(settings.pkg_timeout)?;
    let mut words = shell_words(&command)?;
    if words.is_empty() {
        return Err(Failure::new("Bad job parameters: No command"));
    }
    let entry_point = words.remove(0);
    // The entry point is a file of the bundle: never outside it.
    let inside = Path::new(&entry_point)
        .components()
        .all(|part| matches!(part, std::path::Component::Normal(_) | std::path::Component::CurDir));
    if !inside {
        return Err(Failure::new(format!(
            "Bad job parameters: command: entry point {entry_point} must be a relative path inside the bundle, without .."
        )));
    }
    words.extend(c.args.iter().cloned());
    let args = job.render_words(words, &c).await?;
    let base_env = job.environment(&c, &[("LAVA_S3_PAYLOAD", payload_url(job, &items[0]))])
        .await?;
    let bundles = download(job, &items, &settings.pkg_max_payload_size).await?;
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
            .map_err(|e| Failure::new(format!("Cannot create {}: {e}", dir.display())))?;
        unpack(job, &bundle, &dir, &base_env, settings.pkg_unpack_timeout).await?;
        let program = dir.join(&entry_point);
        let made_executable = std::fs::metadata(&program).and_then(|m| {
            let mut perms = m.permissions();
            perms.set_mode(perms.mode() | 0o100);
            std::fs::set_permissions(&program, perms)
        });
        if let Err(e) = made_executable {
            let _ = workdir::remove_tree(&dir).await;
            return Err(Failure::new(format!("{}: {e}", program.display())));
        }
        let mut env = base_env.clone();
        // The unpack directory comes first on PYTHONPATH, so a Python
        // bundle imports its own modules (the original leaves it off).
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
        let _ = workdir::remove_tree(&dir).await;
        let ran = ran?;
        let failure = ran.failure();
        output.push(ran.entry);
        if failure.is_some() {
            return program_result(output, failure);
        }
    }
    program_result(output, None)
}

/// Unpacks by name: `*.zip` with unzip, `*.tar` and `*.tar.*` with tar.
async fn unpack(
    job: &JobContext<'_>,
    bundle: &Path,
    dir: &Path,
    env: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<(), Failure> {
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
        // Owners are never restored (the worker may run as root); modes
        // are kept under the umask, so scripts stay executable.
        [
            "tar",
            "-x",
            "--no-same-owner",
            "--no-same-permissions",
            "-C",
            &target,
            "-f",
            &file,
        ]
        .map(String::from)
        .to_vec()
    } else {
        return Err(Failure::new(format!("Don't know how to unpack {file}")));
    };
    let errors = dir.with_extension("unpack.err");
    let spec = ProcessSpec {
        argv,
        env: env.clone(),
        cwd: job.run.job_dir.to_path_buf(),
        capture: Some((dir.with_extension("unpack.out"), errors.clone())),
        timeout,
        kill_grace: job.services.settings.kill_grace,
    };
    let failure = |reason: String| {
        let mut data = Map::new();
        data.insert("exit_status".into(), Value::from(1));
        data.insert("error".into(), Value::String(reason.clone()));
        Failure::with_data(
            format!("Cannot unpack {file} into {target}: {reason}"),
            Value::Object(data),
        )
    };
    match process::run(&spec, job.cancel).await {
        Ok(Ended::Exited(0)) => {
            // A walk of the whole unpacked tree: on a blocking thread.
            let root = dir.to_path_buf();
            tokio::task::spawn_blocking(move || drop_set_id_bits(&root))
                .await
                .map_err(std::io::Error::other)
                .and_then(|walked| walked)
                .map_err(|e| failure(format!("cannot clear setuid/setgid bits: {e}")))
        }
        Ok(Ended::Exited(code)) => {
            let text = tokio::fs::read_to_string(&errors)
                .await
                .unwrap_or_default();
            Err(failure(format!("exit status {code}: {}", text.trim())))
        }
        Ok(Ended::Interrupted) => Err(Failure::stopped()),
        Ok(Ended::TimedOut) => Err(failure(format!(
            "timed out after {:?} seconds",
            timeout.as_secs_f64()
        ))),
        Err(e) => Err(failure(e.to_string())),
    }
}

/// Clears the setuid and setgid bits of everything unpacked below `dir`
/// (symbolic links are not followed).
fn drop_set_id_bits(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            continue;
        }
        let path = entry.path();
        let mode = entry.metadata()?.permissions().mode();
        if mode & 0o6000 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & !0o6000))?;
        }
        if kind.is_dir() {
            drop_set_id_bits(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn setuid_and_setgid_bits_are_dropped_below_the_bundle() {
        let root = tempfile::tempdir().expect("tempdir");
        let sub = root.path().join("bin");
        std::fs::create_dir(&sub).expect("mkdir");
        let script = sub.join("run.sh");
        std::fs::write(&script, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o6755)).expect("chmod");
        drop_set_id_bits(root.path()).expect("walk");
        let mode = std::fs::metadata(&script).expect("meta").permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755, "executable kept, set-id bits gone");
    }
}
