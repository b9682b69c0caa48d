//! Running programs for `cmd`, `exe` and `pkg`: their common parameters
//! (`jinja`, `timeout`, `env`, `args`, `vars`), rendering of words and
//! environment, the payload environment, output capture, the `STDERR_SIZE`
//! excerpt and the upload of non-empty output.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use lava_common::connection::generic::python_text;
use lava_common::render::Context;
use lava_common::store::{BackendSpec, StoreError};
use lava_common::units;
use serde_json::{Map, Value};

use super::{Failure, JobContext};
use crate::capture;
use crate::conn::{self, Helpers, RunInfo};
use crate::process::{self, Ended, ProcessSpec};

/// How many times an output upload is tried.
const UPLOAD_ATTEMPTS: u32 = 5;

/// The parameter keys every program-running type allows.
pub(super) const COMMON_KEYS: [&str; 5] = ["args", "env", "jinja", "timeout", "vars"];

/// Checked common parameters of the program-running types.
pub(super) struct Common {
    pub(super) jinja: bool,
    pub(super) timeout: Duration,
    pub(super) env: Map<String, Value>,
    pub(super) args: Vec<String>,
    pub(super) ctx: Context,
}

/// One program run: where its output goes and how it is named.
pub(super) struct Program<'p> {
    pub(super) argv: Vec<String>,
    pub(super) env: BTreeMap<String, String>,
    pub(super) cwd: &'p Path,
    /// Local capture files `<stem>.stdout` / `<stem>.stderr`.
    pub(super) capture_stem: PathBuf,
    /// Upload URLs: `<prefix>stdout` / `<prefix>stderr`.
    pub(super) upload_prefix: String,
    /// The `payload` text of its output entry.
    pub(super) payload: String,
    pub(super) timeout: Duration,
    /// A file for stdin (`sqlc`); `None`: `/dev/null`.
    pub(super) stdin: Option<PathBuf>,
}

/// How a program run ended, with its `output` entry.
pub(super) struct Ran {
    status: i32,
    pub(super) entry: Value,
    /// "Timed out after … seconds" when it was killed.
    timeout_error: Option<String>,
    /// The `STDERR_SIZE` excerpt of its stderr.
    stderr: Option<String>,
}

/// A failed program run: exit status, message, and the `error_data.error`
/// value — `None` (no key) for a timeout, else the stderr excerpt or null.
pub(super) type Failed = (i32, String, Option<Value>);

impl Ran {
    /// The failure message and data of a failed run, or `None` on success.
    pub(super) fn failure(&self) -> Option<Failed> {
        if let Some(message) = &self.timeout_error {
            return Some((self.status, message.clone(), None));
        }
        // A non-zero exit always has `error`, null when stderr is empty (the
        // original: `return_info['error'] = … or None`).
        (self.status != 0).then(|| {
            (
                self.status,
                format!("Failed with exit status {}", self.status),
                Some(self.stderr.clone().map_or(Value::Null, Value::String)),
            )
        })
    }
}

/// A `jinja` parameter's truth, as Python's `bool()` gives it.
fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
    }
}

impl JobContext<'_> {
    /// `jinja`, `timeout` (default `default_timeout`), `env`, `args` and
    /// `vars`, checked; the context gains `vars`. A timeout that is not a
    /// duration, or is longer than lava accepts, fails with "Bad timeout".
    pub(super) fn common(&self, default_timeout: Duration) -> Result<Common, Failure> {
        let params = self.params();
        let timeout = match params.get("timeout") {
            None | Some(Value::Null) => default_timeout,
            Some(v) => {
                units::duration_of(v).map_err(|e| Failure::new(format!("Bad timeout: {e}")))?
            }
        };
        let env = match params.get("env") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(Failure::new("env must be a map/dict")),
        };
        let args = match params.get("args") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list.iter().map(python_text).collect(),
            Some(_) => return Err(Failure::new("args must be a list")),
        };
        let vars = match params.get("vars") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => return Err(Failure::new("vars must be a map/dict")),
        };
        let ctx = self.ctx.clone().vars(&vars);
        Ok(Common {
            jinja: truthy(params.get("jinja")),
            timeout,
            env,
            args,
            ctx,
        })
    }

    /// Renders each word separately when `jinja` is on ("Bad payload: …"),
    /// off the async runtime's threads.
    pub(super) async fn render_words(
        &self,
        words: Vec<String>,
        c: &Common,
    ) -> Result<Vec<String>, Failure> {
        if !c.jinja {
            return Ok(words);
        }
        let ctx = c.ctx.clone();
        self.services
            .renderer
            .off_runtime(move |r| {
                words
                    .iter()
                    .map(|word| r.render_str(word, &ctx))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .and_then(|words| words)
            .map_err(|e| Failure::new(format!("Bad payload: {e}")))
    }

    /// The payload's environment: the worker's own, the rendered `env`
    /// (rendered off the async runtime's threads), then `extra`, then the
    /// `LAVA_*` variables of the run (`LAVA_BACKEND` among them, so that
    /// lava commands the payload runs use the worker's backend).
    pub(super) async fn environment(
        &self,
        c: &Common,
        extra: &[(&str, String)],
    ) -> Result<BTreeMap<String, String>, Failure> {
        let mut env: BTreeMap<String, String> = std::env::vars().collect();
        // The worker's journald stream and systemd notification socket are
        // its own: a payload logs to its capture files, and must not speak
        // for the worker to systemd.
        for name in ["JOURNAL_STREAM", crate::notify::NOTIFY_SOCKET] {
            env.remove(name);
        }
        for (name, value) in &c.env {
            let Value::String(text) = value else {
                return Err(Failure::new(format!(
                    "Bad environment variable: {name}: {value} is not a string"
                )));
            };
            let text = if c.jinja {
                self.services
                    .renderer
                    .render_str_async(text, &c.ctx)
                    .await
                    .map_err(|e| Failure::new(format!("Bad environment variable: {name}: {e}")))?
            } else {
                // Kept, unrendered (the original drops `env` when `jinja`
                // is off, which leaves a payload without its settings).
                text.clone()
            };
            env.insert(name.clone(), text);
        }
        env.insert("LAVA_S3_TMP".into(), self.run.s3tmp.to_string());
        for (name, value) in extra {
            env.insert((*name).to_string(), value.clone());
        }
        let s = self.services;
        env.insert("LAVA_REALM".into(), s.realm_name.clone());
        env.insert("LAVA_BACKEND".into(), payload_backend(&s.backend_spec));
        env.insert("LAVA_WORKER".into(), self.run.job.worker().to_string());
        env.insert("LAVA_OWNER".into(), self.run.job.owner().to_string());
        env.insert("LAVA_JOB_ID".into(), self.run.job_id().to_string());
        env.insert("LAVA_RUN_ID".into(), self.run.run_id.to_string());
        env.insert(
            "LAVA_S3_KEY".into(),
            s.realm.s3_key().unwrap_or_default().to_string(),
        );
        if s.settings.job_local_tmpdir {
            let tmp = self
                .run
                .job_dir
                .join(format!(".lava.{}.tmp", random_suffix()));
            std::fs::create_dir_all(&tmp)
                .map_err(|e| Failure::new(format!("Cannot create {}: {e}", tmp.display())))?;
            env.insert("TMPDIR".into(), tmp.display().to_string());
        }
        Ok(env)
    }

    /// Runs one program and uploads its non-empty output.
    pub(super) async fn run_program(&self, p: Program<'_>) -> Result<Ran, Failure> {
        let dev = self.services.dev;
        let out_path = suffixed(&p.capture_stem, "stdout");
        let err_path = suffixed(&p.capture_stem, "stderr");
        let spec = ProcessSpec {
            argv: p.argv,
            env: p.env,
            cwd: p.cwd.to_path_buf(),
            capture: (!dev).then(|| (out_path.clone(), err_path.clone())),
            stdin: p.stdin,
            timeout: p.timeout,
            kill_grace: self.services.settings.kill_grace,
        };
        let ended = process::run(&spec, self.cancel).await.map_err(|e| {
            Failure::new(format!(
                "Cannot run {}: {e}",
                spec.argv.first().cloned().unwrap_or_default()
            ))
        })?;
        let (status, timeout_error) = match ended {
            Ended::Exited(code) => (code, None),
            Ended::Interrupted => return Err(Failure::stopped()),
            Ended::TimedOut => (
                28,
                Some(format!(
                    "Timed out after {:?} seconds",
                    p.timeout.as_secs_f64()
                )),
            ),
        };
        let mut entry = Map::new();
        entry.insert("payload".into(), Value::String(p.payload));
        entry.insert("exit_status".into(), Value::from(status));
        if !dev {
            for (path, suffix) in [(&out_path, "stdout"), (&err_path, "stderr")] {
                let url = format!("{}{suffix}", p.upload_prefix);
                if self.upload_if_not_empty(path, &url).await? {
                    entry.insert(suffix.into(), Value::String(url));
                }
            }
        }
        let stderr = if dev || timeout_error.is_some() {
            None
        } else {
            // `STDERR_SIZE` may be large: read on a blocking thread.
            let size = self.services.settings.stderr_size;
            tokio::task::spawn_blocking(move || read_excerpt(&err_path, size))
                .await
                .ok()
                .flatten()
        };
        Ok(Ran {
            status,
            entry: Value::Object(entry),
            timeout_error,
            stderr,
        })
    }

    /// Uploads a capture file when it is not empty, reading the file that
    /// was checked (a regular file, no link) even if its name changes.
    async fn upload_if_not_empty(&self, path: &Path, url: &str) -> Result<bool, Failure> {
        let unreadable =
            |e: std::io::Error| Failure::new(format!("Cannot read {}: {e}", path.display()));
        let Some(file) = capture::open(path).map_err(unreadable)? else {
            return Ok(false);
        };
        if file.metadata().map_err(unreadable)?.len() == 0 {
            return Ok(false);
        }
        let source = capture::path_of(&file);
        self.upload_retried(&source, url).await?;
        Ok(true)
    }

    /// Uploads a file, retried like event writes: a passing S3 fault must
    /// not fail a run whose payload succeeded. Each try reads the file afresh.
    pub(super) async fn upload_retried(&self, source: &Path, url: &str) -> Result<(), Failure> {
        let mut delay = Duration::from_millis(250);
        let mut attempt = 1;
        loop {
            match self
                .services
                .objects
                .upload(url, source, self.services.realm.s3_key())
                .await
            {
                Ok(_) => return Ok(()),
                Err(e @ (StoreError::Unavailable(_) | StoreError::Service(_)))
                    if attempt < UPLOAD_ATTEMPTS =>
                {
                    tracing::warn!(attempt, "upload of {url} failed: {e}; retrying");
                }
                Err(e) => return Err(Failure::new(format!("Upload failed: {url} - {e}"))),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(8));
            attempt += 1;
        }
    }
}

impl JobContext<'_> {
    /// The connection helpers of the `connections` parameter (`exe`,
    /// `pkg`), made before any payload is downloaded. The caller removes
    /// them ([`Helpers::remove`]) when its programs have ended.
    pub(super) async fn connection_helpers(&self) -> Result<Helpers, Failure> {
        let s = self.services;
        let run = RunInfo {
            job_dir: self.run.job_dir,
            realm: &s.realm_name,
            job_id: self.run.job_id(),
            app_name_template: s.settings.conn_app_name.as_deref(),
        };
        conn::create(&s.connections, self.params().get("connections"), &run)
            .await
            .map_err(|e| Failure::new(e.to_string()))
    }
}

/// `LAVA_BACKEND` for a payload, so that lava commands it runs use the
/// worker's backend: a local backend's directory made absolute, as the
/// payload runs in its job directory.
fn payload_backend(spec: &BackendSpec) -> String {
    match spec {
        BackendSpec::Local(dir) => match std::path::absolute(dir) {
            Ok(abs) => BackendSpec::Local(abs).to_string(),
            Err(_) => spec.to_string(),
        },
        BackendSpec::Aws => spec.to_string(),
    }
}

/// The variables of connection helpers, as [`JobContext::environment`]'s `extra`.
pub(super) fn helper_vars(helpers: &Helpers) -> impl Iterator<Item = (&str, String)> {
    helpers.env.iter().map(|(k, v)| (k.as_str(), v.clone()))
}

/// `<stem>.<suffix>`, keeping any extension the stem has (`run.sh` → `run.sh.stdout`).
pub(super) fn suffixed(stem: &Path, suffix: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_os_string();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// The `STDERR_SIZE` excerpt of a capture file, reading only the bytes it
/// needs (the head, or the tail when `size` is negative).
fn read_excerpt(path: &Path, size: i64) -> Option<String> {
    let mut file = capture::open(path).ok()??;
    let len = file.metadata().ok()?.len();
    let want = size.unsigned_abs().min(len);
    if size < 0 {
        file.seek(SeekFrom::Start(len - want)).ok()?;
    }
    let mut bytes = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
    file.take(want).read_to_end(&mut bytes).ok()?;
    excerpt(&bytes, size)
}

/// Head or tail of `bytes` on a UTF-8 boundary, trimmed; `None` when empty.
/// A character cut in two at the edge is dropped; other bytes that are not
/// UTF-8 are replaced, as Python's `errors="replace"` does.
fn excerpt(bytes: &[u8], size: i64) -> Option<String> {
    let n = usize::try_from(size.unsigned_abs())
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    let text = if size > 0 {
        let head = &bytes[..n];
        let end = match std::str::from_utf8(head) {
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            _ => n,
        };
        String::from_utf8_lossy(&head[..end]).into_owned()
    } else if size < 0 {
        let tail = &bytes[bytes.len() - n..];
        let start = tail
            .iter()
            .take(3)
            .take_while(|b| (**b & 0xC0) == 0x80)
            .count();
        String::from_utf8_lossy(&tail[start..]).into_owned()
    } else {
        String::new()
    };
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// Eight random lower-case hex digits, as in the original's temp names.
pub(super) fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// The result of a list of program runs: `{exit_status, output: […]}`, plus
/// `error` (the stderr excerpt) in the failure's data.
pub(super) fn program_result(output: Vec<Value>, failed: Option<Failed>) -> Result<Value, Failure> {
    let mut data = Map::new();
    match failed {
        None => {
            data.insert("exit_status".into(), Value::from(0));
            data.insert("output".into(), Value::Array(output));
            Ok(Value::Object(data))
        }
        Some((status, message, error)) => {
            data.insert("exit_status".into(), Value::from(status));
            data.insert("output".into(), Value::Array(output));
            if let Some(error) = error {
                data.insert("error".into(), error);
            }
            Err(Failure::with_data(message, Value::Object(data)))
        }
    }
}

/// Splits a payload into words with POSIX shell rules.
pub(super) fn shell_words(text: &str) -> Result<Vec<String>, Failure> {
    shlex::split(text)
        .ok_or_else(|| Failure::new(format!("Bad payload: cannot split {text:?} into words")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_excerpts() {
        assert_eq!(excerpt(b"  hello world \n", 7).as_deref(), Some("hello"));
        assert_eq!(excerpt(b"hello world\n", -6).as_deref(), Some("world"));
        assert_eq!(excerpt(b"   \n", 100), None);
        assert_eq!(excerpt(b"abc", 0), None);
        // "é" is two bytes: never split.
        assert_eq!(excerpt("aé".as_bytes(), 2).as_deref(), Some("a"));
        assert_eq!(excerpt("éa".as_bytes(), -2).as_deref(), Some("a"));
        // Invalid bytes inside are replaced, not a reason to shorten.
        assert_eq!(excerpt(b"a\xffb", 3).as_deref(), Some("a\u{fffd}b"));
        assert_eq!(excerpt(b"a\xffb", -3).as_deref(), Some("a\u{fffd}b"));
        let binary = vec![0xff_u8; 1_000_000];
        assert_eq!(
            excerpt(&binary, 600_000).map(|t| t.chars().count()),
            Some(600_000)
        );
    }

    #[test]
    fn excerpts_read_only_their_end_of_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("err");
        std::fs::write(&path, format!("first {} last", "x".repeat(10_000))).expect("write");
        assert_eq!(read_excerpt(&path, 5).as_deref(), Some("first"));
        assert_eq!(read_excerpt(&path, -4).as_deref(), Some("last"));
        assert_eq!(read_excerpt(&path, 0), None);
        assert_eq!(read_excerpt(&dir.path().join("none"), 5), None);
    }

    #[test]
    fn payloads_get_the_backend_with_an_absolute_directory() {
        assert_eq!(payload_backend(&BackendSpec::Aws), "aws");
        assert_eq!(
            payload_backend(&BackendSpec::Local("/var/lib/lava".into())),
            "local:/var/lib/lava"
        );
        let relative = payload_backend(&BackendSpec::Local("data/lava".into()));
        let cwd = std::env::current_dir().unwrap_or_default();
        assert_eq!(
            relative,
            format!("local:{}", cwd.join("data/lava").display())
        );
    }

    #[test]
    fn python_strings_and_paths() {
        assert_eq!(python_text(&serde_json::json!(5)), "5");
        assert_eq!(python_text(&serde_json::json!(true)), "True");
        assert_eq!(python_text(&serde_json::json!("x")), "x");
        assert_eq!(
            suffixed(Path::new("/j/run.sh"), "stdout"),
            PathBuf::from("/j/run.sh.stdout")
        );
        assert!(shell_words("echo 'a b' c").is_ok_and(|w| w == vec!["echo", "a b", "c"]));
        assert!(shell_words("echo 'a").is_err());
        assert!(truthy(None) && !truthy(Some(&serde_json::json!(0))));
    }
}
