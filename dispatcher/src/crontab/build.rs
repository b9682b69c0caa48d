//! Building lava's crontab block from job items, pure: env lines, then one
//! line per active schedule entry. Bad entries and jobs are skipped and
//! reported; the rest builds (one bad line would make cron refuse the
//! whole crontab).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use lava_common::names;
use lava_common::spec::Item;
use serde_json::Value;

use super::CrontabError;
use super::expr::Cache;
use super::render::{self, MAX_COMMAND};
use super::schedule;
use super::zone::Zone;

/// What goes into the block besides the jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The realm (`LAVA_REALM=` line).
    pub realm: String,
    /// The dispatcher program the lines call.
    pub dispatcher_path: String,
    /// Env lines (`CRON_TZ`, `PATH`, …); `LAVA_REALM` is always set to the realm.
    pub env: BTreeMap<String, String>,
    /// Extra dispatcher arguments, before the job id.
    pub args: Vec<String>,
    /// The storage backend (`aws`, `local:<DIR>`); other than `aws` it
    /// gets a `LAVA_BACKEND=` line.
    pub backend: String,
    /// The time entries are checked against (their `from`/`to`).
    pub now: DateTime<Utc>,
    /// Replace a block that names another realm.
    pub force: bool,
}

/// A built block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The block, markers included, every line ending in `\n`.
    pub block: String,
    /// How many schedule lines it has.
    pub lines: usize,
    /// What was left out, in job order.
    pub skipped: Vec<Skipped>,
}

/// A job or schedule entry left out of the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The job id (`""` if the item has none).
    pub job_id: String,
    /// The 1-based schedule entry, or `None` when the whole job is skipped.
    pub entry: Option<usize>,
    /// The entry as written, or the job's offending value.
    pub text: String,
    /// Why.
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.entry {
            Some(k) => write!(
                f,
                "Job {:?}: Bad schedule entry {k} {:?}: {}",
                self.job_id, self.text, self.reason
            ),
            None => write!(f, "Job {:?}: {}", self.job_id, self.reason),
        }
    }
}

/// The env lines: `options.env` with `LAVA_REALM` (and `LAVA_BACKEND` for
/// a backend other than aws) set, sorted by name.
fn env_lines(options: &Options) -> Result<Vec<String>, CrontabError> {
    let mut env = options.env.clone();
    env.insert("LAVA_REALM".into(), options.realm.clone());
    if options.backend.trim() != "aws" {
        env.insert("LAVA_BACKEND".into(), options.backend.trim().to_string());
    }
    env.iter()
        .map(|(name, value)| {
            render::check_env(name, value).map_err(CrontabError::BadEnv)?;
            Ok(render::env_line(name, value))
        })
        .collect()
}

/// Builds the block for `jobs` (items with `job_id`, `worker` and
/// `schedule`, in the order their lines should appear). Fails only on
/// problems that concern every line: the realm, env, dispatcher or args.
pub fn build(jobs: &[Item], options: &Options) -> Result<Built, CrontabError> {
    names::check_realm(&options.realm).map_err(|e| CrontabError::BadEnv(e.to_string()))?;
    let env = env_lines(options)?;
    let zone = Zone::from_env(&options.env).map_err(CrontabError::BadEnv)?;
    if options.dispatcher_path.is_empty() {
        return Err(CrontabError::BadArg("the dispatcher path is empty".into()));
    }
    render::check_token(&options.dispatcher_path)
        .map_err(|e| CrontabError::BadArg(format!("dispatcher path: {e}")))?;
    let args: Vec<String> = options
        .args
        .iter()
        .filter(|a| *a != "--check-dispatch")
        .cloned()
        .collect();
    for arg in &args {
        render::check_token(arg).map_err(|e| CrontabError::BadArg(format!("argument: {e}")))?;
    }

    let mut lines = Vec::new();
    let mut skipped = Vec::new();
    let mut cache = Cache::default();
    for job in jobs {
        let schedule = job.get("schedule").unwrap_or(&Value::Null);
        if schedule.is_null() {
            continue;
        }
        let job_id = job.get("job_id").and_then(Value::as_str);
        let worker = job.get("worker").and_then(Value::as_str);
        let (Some(job_id), Some(worker)) = (job_id, worker) else {
            let mut missing: Vec<&str> = Vec::new();
            if job_id.is_none() {
                missing.push("job_id");
            }
            if worker.is_none() {
                missing.push("worker");
            }
            skipped.push(Skipped {
                job_id: job_id.unwrap_or_default().to_string(),
                entry: None,
                text: Value::Object(job.clone()).to_string(),
                reason: format!(
                    "Bad job record: Missing or non-text keys: {}",
                    missing.join(", ")
                ),
            });
            continue;
        };
        let bad_token = render::check_token(job_id)
            .map_err(|e| format!("bad job id: {e}"))
            .and_then(|()| render::check_token(worker).map_err(|e| format!("bad worker: {e}")));
        if let Err(reason) = bad_token {
            skipped.push(Skipped {
                job_id: job_id.to_string(),
                entry: None,
                text: job_id.to_string(),
                reason,
            });
            continue;
        }
        let (good, bad) = schedule::entries(schedule, zone, &mut cache);
        let mut problems: Vec<(usize, String, String)> = bad
            .into_iter()
            .map(|b| (b.number, b.text, b.reason))
            .collect();
        let command = render::command(&options.dispatcher_path, worker, &args, job_id);
        for entry in good {
            if !entry.window.is_active(options.now) {
                continue;
            }
            if command.len() > MAX_COMMAND {
                problems.push((
                    entry.number,
                    entry.expr.text().to_string(),
                    format!(
                        "the command is {} bytes; cron keeps at most {MAX_COMMAND}",
                        command.len()
                    ),
                ));
                continue;
            }
            lines.push(format!("{} {command}", entry.expr.text()));
        }
        problems.sort_by_key(|p| p.0);
        skipped.extend(problems.into_iter().map(|(entry, text, reason)| Skipped {
            job_id: job_id.to_string(),
            entry: Some(entry),
            text,
            reason,
        }));
    }
    Ok(Built {
        block: render::block(&env, &lines),
        lines: lines.len(),
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn options() -> Options {
        Options {
            realm: "prod".into(),
            dispatcher_path: "/usr/bin/lava-dispatch".into(),
            env: BTreeMap::new(),
            args: Vec::new(),
            backend: "aws".into(),
            now: DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
            force: false,
        }
    }

    fn jobs(items: &[Value]) -> Vec<Item> {
        items
            .iter()
            .filter_map(|v| v.as_object().cloned())
            .collect()
    }

    #[test]
    fn spec_example_block() {
        let mut o = options();
        o.dispatcher_path = "/usr/local/bin/lava-dispatcher".into();
        o.env = BTreeMap::from([
            ("PATH".into(), "/usr/local/bin:/bin:/usr/bin".into()),
            ("CRON_TZ".into(), "Australia/Sydney".into()),
            ("LAVA_REALM".into(), "ignored".into()),
        ]);
        o.args = vec!["--check-dispatch".into()];
        let built = build(
            &jobs(&[
                json!({"job_id": "lava/sched-syd", "worker": "core", "schedule": "0-59/15 * * * *"}),
                json!({"job_id": "etl/load-sales", "worker": "core", "schedule": "30 2 * * *"}),
                json!({"job_id": "no/schedule", "worker": "core"}),
            ]),
            &o,
        );
        let want = "\
#### Lava Schedules Start ####
CRON_TZ=Australia/Sydney
LAVA_REALM=prod
PATH=/usr/local/bin:/bin:/usr/bin
0-59/15 * * * * /usr/local/bin/lava-dispatcher --worker core --check-dispatch --level warning -- lava/sched-syd >/dev/null
30 2 * * * /usr/local/bin/lava-dispatcher --worker core --check-dispatch --level warning -- etl/load-sales >/dev/null
#### Lava Schedules End ####
";
        assert_eq!(
            built.map(|b| (b.block, b.lines, b.skipped)),
            Ok((want.to_string(), 2, vec![]))
        );
    }

    #[test]
    fn backend_line_and_bad_env() {
        let mut o = options();
        o.backend = "local:/var/lib/lava".into();
        let built = build(&[], &o).map(|b| b.block).unwrap_or_default();
        assert!(
            built.contains("\nLAVA_BACKEND=local:/var/lib/lava\nLAVA_REALM=prod\n"),
            "{built}"
        );
        o.env.insert("X".into(), "a\nb".into());
        assert!(matches!(build(&[], &o), Err(CrontabError::BadEnv(_))));
        let mut o = options();
        o.env.insert("CRON_TZ".into(), "Nowhere/Land".into());
        assert!(matches!(build(&[], &o), Err(CrontabError::BadEnv(_))));
        let mut o = options();
        o.args = vec!["x\ny".into()];
        assert!(matches!(build(&[], &o), Err(CrontabError::BadArg(_))));
        let mut o = options();
        o.realm = "a\nb".into();
        assert!(build(&[], &o).is_err());
    }

    #[test]
    fn bad_jobs_and_entries_are_reported() {
        let built = build(
            &jobs(&[
                json!({"job_id": "a", "worker": "core", "schedule": ["61 * * * *", "0 1 * * *"]}),
                json!({"job_id": "b\nc", "worker": "core", "schedule": "@daily"}),
                json!({"worker": "core", "schedule": "@daily"}),
                json!({"job_id": "d", "worker": "core", "schedule": {"crontab": "@daily", "to:": "x"}}),
                json!({"job_id": "e", "worker": "core", "schedule": "@hourly"}),
            ]),
            &options(),
        );
        let Ok(built) = built else {
            panic!("{built:?}");
        };
        assert_eq!(built.lines, 2);
        assert!(built.block.contains("\n0 1 * * * /usr/bin/lava-dispatch --worker core --check-dispatch --level warning -- a >/dev/null\n"));
        assert!(built.block.contains("\n@hourly "));
        let shown: Vec<String> = built.skipped.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown[0],
            r#"Job "a": Bad schedule entry 1 "61 * * * *": minute 61 out of range 0-59"#
        );
        assert!(
            shown[1].starts_with(r#"Job "b\nc": bad job id: control character '\n'"#),
            "{}",
            shown[1]
        );
        assert!(
            shown[2].contains("Missing or non-text keys: job_id"),
            "{}",
            shown[2]
        );
        assert_eq!(
            shown[3],
            r#"Job "d": Bad schedule entry 1 "{\"crontab\":\"@daily\",\"to:\":\"x\"}": Unexpected keys: to:"#
        );
        assert_eq!(shown.len(), 4);
    }

    #[test]
    fn long_commands_are_refused() {
        let id = "x".repeat(MAX_COMMAND);
        let built = build(
            &jobs(&[json!({"job_id": id, "worker": "w", "schedule": "@daily"})]),
            &options(),
        );
        assert!(built.is_ok_and(|b| b.lines == 0 && b.skipped.len() == 1));
    }
}
