//! The `pkg` job type: download bundles, unpack each (tar or zip, within
//! `PKG_UNPACK_TIMEOUT`) into its own directory and run the entry point
//! there, with the directory first on `PYTHONPATH`.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::payload::{download, payload_url};
use super::program::{
    Common, Program, helper_vars, program_result, random_suffix, shell_words,
};
use super::{Failure, JobContext, JobType, Outcome, ParamKeys};
use crate::process::{self, Ended, ProcessSpec};
use crate::conn::Helpers;
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
    let helpers = job.connection_helpers().await?;
    let ran = run_with(job, &c, &items, &entry_point, &args, &helpers).await;
    helpers.remove().await;
    ran
}

/// Downloads, unpacks and runs the bundles with the connection helpers made.
async fn run_with(
    job: &JobContext<'_>,
    c: &Common,
    items: &[String],
    entry_point: &str,
    args: &[String],
    helpers: &Helpers,
) -> Result<Value, Failure> {
    let settings = &job.services.settings;
    let mut extra = vec![("LAVA_S3_PAYLOAD", payload_url(job, &items[0]))];
    extra.extend(helper_vars(helpers));
    let base_env = job.environment(c, &extra).await?;
    let bundles = download(job, items, &settings.pkg_max_payload_size).await?;
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
        let program = dir.join(entry_point);
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
                stdin: None,
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

/// How a bundle is unpacked, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Archive {
    Zip,
    Tar,
}

impl Archive {
    fn of(name: &str) -> Option<Self> {
        if name.ends_with(".zip") {
            Some(Self::Zip)
        } else if name.ends_with(".tar") || name.contains(".tar.") {
            Some(Self::Tar)
        } else {
            None
        }
    }

    /// The command that lists the archive with each member's size.
    fn list(self, file: &str) -> Vec<String> {
        match self {
            Self::Zip => vec!["unzip".into(), "-Zt".into(), file.into()],
            Self::Tar => ["tar", "-t", "-v", "--numeric-owner", "-f", file]
                .map(String::from)
                .to_vec(),
        }
    }

    /// The command that unpacks the archive into `target`.
    fn unpack(self, file: &str, target: &str) -> Vec<String> {
        match self {
            Self::Zip => ["unzip", "-o", "-qq", "-d", target, file]
                .map(String::from)
                .to_vec(),
            // Owners are never restored (the worker may run as root); modes
            // are kept under the umask, so scripts stay executable.
            Self::Tar => [
                "tar",
                "-x",
                "--no-same-owner",
                "--no-same-permissions",
                "-C",
                target,
                "-f",
                file,
            ]
            .map(String::from)
            .to_vec(),
        }
    }

    /// The total unpacked size from the listing, read line by line:
    /// unzip's summary line (`4 files, 10300 bytes uncompressed, …`), or
    /// the sum of tar's size column (devices, whose column is
    /// `major,minor`, count nothing).
    fn unpacked_size(self, listing: impl BufRead) -> Option<u64> {
        let mut total = 0_u64;
        for line in listing.split(b'\n') {
            let line = line.ok()?;
            let line = String::from_utf8_lossy(&line);
            match self {
                Self::Zip => {
                    let size = line
                        .split_once(" files, ")
                        .or_else(|| line.split_once(" file, "))
                        .and_then(|(_, rest)| rest.split_once(" bytes uncompressed"))
                        .and_then(|(size, _)| size.trim().parse().ok());
                    if size.is_some() {
                        return size;
                    }
                }
                Self::Tar => {
                    let size = line.split_whitespace().nth(2).and_then(|s| s.parse().ok());
                    total = total.saturating_add(size.unwrap_or(0));
                }
            }
        }
        (self == Self::Tar).then_some(total)
    }
}

/// Unpacks by name: `*.zip` with unzip, `*.tar` and `*.tar.*` with tar,
/// after listing it: an archive that would unpack to more than
/// `PKG_MAX_UNPACKED_SIZE` is refused before anything is written.
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
    let Some(archive) = Archive::of(&name) else {
        return Err(Failure::new(format!("Don't know how to unpack {file}")));
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
    let step = |argv: Vec<String>, stem: &str| {
        let errors = dir.with_extension(format!("{stem}.err"));
        let spec = ProcessSpec {
            argv,
            env: env.clone(),
            cwd: job.run.job_dir.to_path_buf(),
            capture: Some((dir.with_extension(format!("{stem}.out")), errors.clone())),
            stdin: None,
            timeout,
            kill_grace: job.services.settings.kill_grace,
        };
        async move {
            match process::run(&spec, job.cancel).await {
                Ok(Ended::Exited(0)) => Ok(spec.capture.map(|(out, _)| out)),
                Ok(Ended::Exited(code)) => {
                    let text = tokio::fs::read_to_string(&errors)
                        .await
                        .unwrap_or_default();
                    Err(Some(format!("exit status {code}: {}", text.trim())))
                }
                Ok(Ended::Interrupted) => Err(None),
                Ok(Ended::TimedOut) => Err(Some(format!(
                    "timed out after {:?} seconds",
                    timeout.as_secs_f64()
                ))),
                Err(e) => Err(Some(e.to_string())),
            }
        }
    };
    let stopped_or = |e: Option<String>| e.map_or_else(Failure::stopped, failure);

    let listing = step(archive.list(&file), "list").await.map_err(stopped_or)?;
    // A listing may be long: read on a blocking thread.
    let size = tokio::task::spawn_blocking(move || match listing {
        Some(path) => std::fs::File::open(path)
            .map(|file| archive.unpacked_size(std::io::BufReader::new(file))),
        None => Ok(archive.unpacked_size(std::io::empty())),
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|read| read)
    .map_err(|e| failure(format!("cannot read its listing: {e}")))?;
    let limit = &job.services.settings.pkg_max_unpacked_size;
    match size {
        Some(size) if size > limit.value.0 => {
            return Err(failure(format!(
                "it unpacks to {size} bytes, more than PKG_MAX_UNPACKED_SIZE ({})",
                limit.text
            )));
        }
        Some(_) => {}
        None => return Err(failure("cannot tell its unpacked size from its listing".into())),
    }

    step(archive.unpack(&file, &target), "unpack")
        .await
        .map_err(stopped_or)?;
    // A walk of the whole unpacked tree: on a blocking thread.
    let root = dir.to_path_buf();
    tokio::task::spawn_blocking(move || drop_set_id_bits(&root))
        .await
        .map_err(std::io::Error::other)
        .and_then(|walked| walked)
        .map_err(|e| failure(format!("cannot clear setuid/setgid bits: {e}")))
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

    #[test]
    fn unpacked_sizes_from_listings() {
        let tar = b"-rw-r--r-- 0/0            5000 2026-12-07 18:43 a\n\
drwxr-xr-x 0/0               0 2026-12-07 18:43 d/\n\
-rw-r--r-- 0/0             300 2026-12-07 18:43 d/b c\n\
crw-r--r-- 0/0            1,3 2026-12-07 18:43 null\n\
lrwxrwxrwx 0/0               0 2026-12-07 18:43 l -> a\n";
        assert_eq!(Archive::Tar.unpacked_size(&tar[..]), Some(5300));
        assert_eq!(Archive::Tar.unpacked_size(&b""[..]), Some(0));
        let zip = b"4 files, 10300 bytes uncompressed, 51 bytes compressed:  99.5%\n";
        assert_eq!(Archive::Zip.unpacked_size(&zip[..]), Some(10300));
        let one = b"1 file, 7 bytes uncompressed, 7 bytes compressed:  0.0%\n";
        assert_eq!(Archive::Zip.unpacked_size(&one[..]), Some(7));
        assert_eq!(Archive::Zip.unpacked_size(&b"garbage\n"[..]), None);
        assert_eq!(Archive::of("b.tar.gz"), Some(Archive::Tar));
        assert_eq!(Archive::of("b.zip"), Some(Archive::Zip));
        assert_eq!(Archive::of("b.rar"), None);
    }
}
