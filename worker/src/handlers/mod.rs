//! Job types: one module each behind [`run`], plus what they share —
//! parameter checks, rendering of words and environment, the payload
//! environment, output capture and upload (spec/job-types.md §1).

mod cmd;
mod exe;
mod lavasched;
mod log;
mod payload;
mod pkg;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lava_common::render::Context;
use lava_common::store::StoreError;
use lava_common::units;
use serde_json::{Map, Value};

use crate::process::{self, Ended, Interrupt, ProcessSpec};
use crate::run::Run;
use crate::worker::Worker;

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The handler's result map.
    Success(Value),
    /// An error message and the handler's data, if any.
    Failure {
        /// The message (`result.error`).
        error: String,
        /// The data (`result.error_data`).
        data: Option<Value>,
    },
}

impl Outcome {
    fn fail(error: impl Into<String>) -> Self {
        Outcome::Failure {
            error: error.into(),
            data: None,
        }
    }
}

/// How many times an output upload is tried.
const UPLOAD_ATTEMPTS: u32 = 5;

/// Job types this worker runs.
const KNOWN: &[&str] = &["cmd", "exe", "pkg", "log", "lavasched"];

/// True when `job_type` has a handler here.
pub fn is_known(job_type: &str) -> bool {
    KNOWN.contains(&job_type)
}

/// Runs one attempt of a job.
pub async fn run(w: &Arc<Worker>, run: &Run, cancel: &Interrupt) -> Outcome {
    let job = Job {
        w,
        run,
        cancel,
        ctx: run.context(w),
    };
    let outcome = match run.job.job_type() {
        "cmd" => cmd::run(&job).await,
        "exe" => exe::run(&job).await,
        "pkg" => pkg::run(&job).await,
        "log" => Ok(log::run(&job)),
        "lavasched" => lavasched::run(&job).await,
        other => Err(Outcome::fail(format!("{other}: Unknown job type"))),
    };
    outcome.unwrap_or_else(|failure| failure)
}

/// What a handler works with.
struct Job<'a> {
    w: &'a Arc<Worker>,
    run: &'a Run,
    cancel: &'a Interrupt,
    ctx: Context,
}

/// Checked common parameters of the program-running types.
struct Common {
    jinja: bool,
    timeout: Duration,
    env: Map<String, Value>,
    args: Vec<String>,
    ctx: Context,
}

/// One program run: where its output goes and how it is named.
struct Program<'p> {
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    cwd: &'p Path,
    /// Local capture files `<stem>.stdout` / `<stem>.stderr`.
    capture_stem: PathBuf,
    /// Upload URLs: `<prefix>stdout` / `<prefix>stderr`.
    upload_prefix: String,
    /// The `payload` text of its output entry.
    payload: String,
    timeout: Duration,
}

/// How a program run ended, with its `output` entry.
struct Ran {
    status: i32,
    entry: Value,
    /// "Timed out after … seconds" when it was killed.
    timeout_error: Option<String>,
    /// The `STDERR_SIZE` excerpt of its stderr.
    stderr: Option<String>,
}

/// A failed program run: exit status, message, and the `error_data.error`
/// value — `None` (no key) for a timeout, else the stderr excerpt or null.
type Failed = (i32, String, Option<Value>);

impl Ran {
    /// The failure message and data of a failed run, or `None` on success.
    fn failure(&self) -> Option<Failed> {
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

impl Job<'_> {
    fn params(&self) -> &Map<String, Value> {
        &self.run.parameters
    }

    /// "Bad job parameters: Missing keys / Unexpected keys" (spec/job-types.md §1.2).
    fn check_params(&self, required: &[&str], allowed: &[&str]) -> Result<(), Outcome> {
        let params = self.params();
        let mut missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|k| !params.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            missing.sort_unstable();
            return Err(Outcome::fail(format!(
                "Bad job parameters: Missing keys: {}",
                missing.join(", ")
            )));
        }
        let mut unexpected: Vec<&str> = params
            .keys()
            .map(String::as_str)
            .filter(|k| !required.contains(k) && !allowed.contains(k))
            .collect();
        if !unexpected.is_empty() {
            unexpected.sort_unstable();
            return Err(Outcome::fail(format!(
                "Bad job parameters: Unexpected keys: {}",
                unexpected.join(", ")
            )));
        }
        Ok(())
    }

    /// `jinja`, `timeout`, `env`, `args` and `vars`, checked; the context gains `vars`.
    fn common(&self, timeout_config: &str) -> Result<Common, Outcome> {
        let params = self.params();
        let jinja = match params.get("jinja") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(m)) => !m.is_empty(),
        };
        let timeout = match params.get("timeout") {
            None | Some(Value::Null) => self
                .w
                .config
                .duration(timeout_config)
                .ok()
                .flatten()
                .unwrap_or(600.0),
            Some(v) => {
                units::duration_value(v).map_err(|e| Outcome::fail(format!("Bad timeout: {e}")))?
            }
        };
        let env = match params.get("env") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => return Err(Outcome::fail("env must be a map/dict")),
        };
        let args = match params.get("args") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list.iter().map(python_str).collect(),
            Some(_) => return Err(Outcome::fail("args must be a list")),
        };
        let vars = match params.get("vars") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(v @ Value::Object(_)) => v.clone(),
            Some(_) => return Err(Outcome::fail("vars must be a map/dict")),
        };
        let ctx = self.ctx.clone().vars(&vars);
        Ok(Common {
            jinja,
            timeout: Duration::from_secs_f64(timeout.max(0.0)),
            env,
            args,
            ctx,
        })
    }

    /// Renders each word separately when `jinja` is on ("Bad payload: …").
    fn render_words(&self, words: Vec<String>, c: &Common) -> Result<Vec<String>, Outcome> {
        if !c.jinja {
            return Ok(words);
        }
        words
            .iter()
            .map(|word| {
                self.w
                    .renderer
                    .render_str(word, &c.ctx)
                    .map_err(|e| Outcome::fail(format!("Bad payload: {e}")))
            })
            .collect()
    }

    /// The payload's environment (spec/worker.md §12.2), `extra` after the rendered `env`.
    fn environment(
        &self,
        c: &Common,
        extra: &[(&str, String)],
    ) -> Result<BTreeMap<String, String>, Outcome> {
        let mut env: BTreeMap<String, String> = std::env::vars().collect();
        // The worker's journald stream and systemd notification socket are
        // its own: a payload logs to its capture files (DECISIONS.md 10).
        for name in ["JOURNAL_STREAM", crate::notify::NOTIFY_SOCKET] {
            env.remove(name);
        }
        for (name, value) in &c.env {
            let Value::String(text) = value else {
                return Err(Outcome::fail(format!(
                    "Bad environment variable: {name}: {value} is not a string"
                )));
            };
            let text = if c.jinja {
                self.w
                    .renderer
                    .render_str(text, &c.ctx)
                    .map_err(|e| Outcome::fail(format!("Bad environment variable: {name}: {e}")))?
            } else {
                // DECISIONS.md 43: kept, unrendered (the original drops them).
                text.clone()
            };
            env.insert(name.clone(), text);
        }
        env.insert("LAVA_S3_TMP".into(), self.run.s3tmp.clone());
        for (name, value) in extra {
            env.insert((*name).to_string(), value.clone());
        }
        let w = self.w;
        env.insert("LAVA_REALM".into(), w.realm_name.clone());
        env.insert("LAVA_WORKER".into(), self.run.job.worker().to_string());
        env.insert("LAVA_OWNER".into(), self.run.job.owner().to_string());
        env.insert("LAVA_JOB_ID".into(), self.run.job_id().to_string());
        env.insert("LAVA_RUN_ID".into(), self.run.run_id.clone());
        env.insert(
            "LAVA_S3_KEY".into(),
            w.realm.s3_key().unwrap_or_default().to_string(),
        );
        if w.config.boolean("JOB_LOCAL_TMPDIR").unwrap_or(true) {
            let tmp = self
                .run
                .job_dir
                .join(format!(".lava.{}.tmp", random_suffix()));
            std::fs::create_dir_all(&tmp)
                .map_err(|e| Outcome::fail(format!("Cannot create {}: {e}", tmp.display())))?;
            env.insert("TMPDIR".into(), tmp.display().to_string());
        }
        Ok(env)
    }

    /// Runs one program and uploads its non-empty output.
    async fn run_program(&self, p: Program<'_>) -> Result<Ran, Outcome> {
        let dev = self.w.options.dev;
        let out_path = suffixed(&p.capture_stem, "stdout");
        let err_path = suffixed(&p.capture_stem, "stderr");
        let spec = ProcessSpec {
            argv: p.argv,
            env: p.env,
            cwd: p.cwd.to_path_buf(),
            capture: (!dev).then(|| (out_path.clone(), err_path.clone())),
            timeout: p.timeout,
            kill_grace: self.w.options.kill_grace,
        };
        let ended = process::run(&spec, self.cancel).await.map_err(|e| {
            Outcome::fail(format!(
                "Cannot run {}: {e}",
                spec.argv.first().cloned().unwrap_or_default()
            ))
        })?;
        let (status, timeout_error) = match ended {
            Ended::Exited(code) => (code, None),
            Ended::TimedOut | Ended::Interrupted => (
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
            let size = self.w.config.int("STDERR_SIZE").unwrap_or(2000);
            std::fs::read(&err_path)
                .ok()
                .and_then(|b| excerpt(&b, size))
        };
        Ok(Ran {
            status,
            entry: Value::Object(entry),
            timeout_error,
            stderr,
        })
    }

    async fn upload_if_not_empty(&self, path: &Path, url: &str) -> Result<bool, Outcome> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => {
                return Err(Outcome::fail(format!(
                    "Cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        if bytes.is_empty() {
            return Ok(false);
        }
        // Retried like event writes (DECISIONS.md 5): a passing S3 fault
        // must not fail a run whose payload succeeded.
        let mut delay = Duration::from_millis(250);
        let mut attempt = 1;
        loop {
            match self
                .w
                .backend
                .objects
                .put(url, bytes.clone(), self.w.realm.s3_key())
                .await
            {
                Ok(()) => return Ok(true),
                Err(e @ (StoreError::Unavailable(_) | StoreError::Service(_)))
                    if attempt < UPLOAD_ATTEMPTS =>
                {
                    tracing::warn!(attempt, "upload of {url} failed: {e}; retrying");
                }
                Err(e) => return Err(Outcome::fail(format!("Upload failed: {url} - {e}"))),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(8));
            attempt += 1;
        }
    }
}

/// `<stem>.<suffix>`, keeping any extension the stem has (`run.sh` → `run.sh.stdout`).
fn suffixed(stem: &Path, suffix: &str) -> PathBuf {
    let mut name = stem.as_os_str().to_os_string();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// Head or tail of `bytes` on a UTF-8 boundary, trimmed; `None` when empty
/// (`STDERR_SIZE`, DECISIONS.md 8).
fn excerpt(bytes: &[u8], size: i64) -> Option<String> {
    let n = usize::try_from(size.unsigned_abs())
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    // Only a character cut in two at the edge is dropped; invalid bytes
    // elsewhere are replaced, as `from_utf8_lossy` does.
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
fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// A parameter value as Python's `str()` prints it.
fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// The success result or failure of a list of program runs
/// (spec/job-types.md §3: `{exit_status, output: […]}`, plus `error` on failure).
fn program_result(output: Vec<Value>, failed: Option<Failed>) -> Outcome {
    let mut data = Map::new();
    match failed {
        None => {
            data.insert("exit_status".into(), Value::from(0));
            data.insert("output".into(), Value::Array(output));
            Outcome::Success(Value::Object(data))
        }
        Some((status, message, error)) => {
            data.insert("exit_status".into(), Value::from(status));
            data.insert("output".into(), Value::Array(output));
            if let Some(error) = error {
                data.insert("error".into(), error);
            }
            Outcome::Failure {
                error: message,
                data: Some(Value::Object(data)),
            }
        }
    }
}

/// Splits a payload into words with POSIX shell rules.
fn shell_words(text: &str) -> Result<Vec<String>, Outcome> {
    shlex::split(text)
        .ok_or_else(|| Outcome::fail(format!("Bad payload: cannot split {text:?} into words")))
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
    fn python_strings_and_paths() {
        assert_eq!(python_str(&serde_json::json!(5)), "5");
        assert_eq!(python_str(&serde_json::json!(true)), "True");
        assert_eq!(python_str(&serde_json::json!("x")), "x");
        assert_eq!(
            suffixed(Path::new("/j/run.sh"), "stdout"),
            PathBuf::from("/j/run.sh.stdout")
        );
        assert!(shell_words("echo 'a b' c").is_ok_and(|w| w == vec!["echo", "a b", "c"]));
        assert!(shell_words("echo 'a").is_err());
    }
}
