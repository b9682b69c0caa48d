//! Bringing the crontab in line with the jobs table: list the jobs of each
//! dispatcher through the `dispatcher-index` GSI, build the block, merge it
//! into the current crontab and install the result only when it changed.

use std::collections::BTreeMap;

use lava_common::spec::Item;
use lava_common::store::{Index, Key, Table, Tables};
use serde_json::{Map, Value};

use super::CrontabError;
use super::build::{Options, Skipped, build};
use super::diff;
use super::install::CrontabCommand;
use super::merge;

/// Where the lines come from: dispatcher names, env and extra arguments,
/// as flags or a `lavasched` job's parameters give them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// Dispatcher names (sorted, without duplicates).
    pub dispatchers: Vec<String>,
    /// Env lines.
    pub env: BTreeMap<String, String>,
    /// Extra dispatcher arguments.
    pub args: Vec<String>,
}

/// The result of a sync (or of a dry run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Whether the crontab differs (and, for a sync, was installed).
    pub changed: bool,
    /// The crontab before.
    pub old: String,
    /// The crontab after.
    pub new: String,
    /// Jobs and entries left out.
    pub skipped: Vec<Skipped>,
    /// How many schedule lines the block has.
    pub lines: usize,
}

impl SyncOutcome {
    /// Unified diff old → new, 1 line of context (difflib format); empty
    /// when unchanged. Computed on demand: `show` does not need it.
    pub fn diff(&self) -> Vec<String> {
        if self.changed {
            diff::unified(&self.old, &self.new, 1)
        } else {
            Vec::new()
        }
    }
}

/// An env value as the original prints it: text as is, integers, `True`/`False`.
fn env_text(name: &str, value: &Value) -> Result<String, CrontabError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(true) => Ok("True".into()),
        Value::Bool(false) => Ok("False".into()),
        other => Err(CrontabError::BadJob(format!(
            "parameters.env.{name} must be text, a number or a boolean, not {other}"
        ))),
    }
}

/// The sources named by a `lavasched` job's parameters: `dispatcher`
/// (text or list of text, required), `env` (map), `args` (list of text).
pub fn sources_from_parameters(parameters: &Map<String, Value>) -> Result<Sources, CrontabError> {
    let bad = |m: String| CrontabError::BadJob(m);
    let mut dispatchers = match parameters.get("dispatcher") {
        Some(Value::String(d)) => vec![d.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|d| {
                d.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(format!("parameters.dispatcher: {d} is not text")))
            })
            .collect::<Result<_, _>>()?,
        None => return Err(bad("parameters.dispatcher is required".into())),
        Some(other) => {
            return Err(bad(format!(
                "parameters.dispatcher: {other} is not text or a list"
            )));
        }
    };
    dispatchers.sort();
    dispatchers.dedup();
    let env = match parameters.get("env") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| Ok((k.clone(), env_text(k, v)?)))
            .collect::<Result<_, CrontabError>>()?,
        Some(other) => return Err(bad(format!("parameters.env: {other} is not a map"))),
    };
    let args = match parameters.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|a| {
                a.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(format!("parameters.args: {a} is not text")))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(bad(format!("parameters.args: {other} is not a list"))),
    };
    Ok(Sources {
        dispatchers,
        env,
        args,
    })
}

/// The sources of the `lavasched` job `job_id` in `realm`.
pub async fn sources_from_job(
    tables: &dyn Tables,
    realm: &str,
    job_id: &str,
) -> Result<Sources, CrontabError> {
    let item = tables
        .get(realm, Table::Jobs, &Key::new(job_id), false)
        .await?
        .ok_or_else(|| CrontabError::BadJob(format!("no job {job_id:?} in realm {realm}")))?;
    let parameters = match item.get("parameters") {
        Some(Value::Object(p)) => p.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(other) => {
            return Err(CrontabError::BadJob(format!(
                "job {job_id:?}: parameters: {other} is not a map"
            )));
        }
    };
    sources_from_parameters(&parameters)
        .map_err(|e| CrontabError::BadJob(format!("job {job_id:?}: {e}")))
}

/// The keys of a job item the block is built from.
pub const BUILD_KEYS: &[&str] = &["job_id", "worker", "schedule"];

/// A job item cut down to [`BUILD_KEYS`], so that many jobs take little memory.
pub fn slim(mut item: Item) -> Item {
    BUILD_KEYS
        .iter()
        .filter_map(|k| item.remove(*k).map(|v| ((*k).to_string(), v)))
        .collect()
}

/// The scheduled jobs of each dispatcher (in sorted name order; each
/// dispatcher's jobs in index order, by `job_id`), all pages, each cut
/// down by [`slim`].
pub async fn load_jobs(
    tables: &dyn Tables,
    realm: &str,
    dispatchers: &[String],
) -> Result<Vec<Item>, CrontabError> {
    let mut names: Vec<&String> = dispatchers.iter().collect();
    names.sort();
    names.dedup();
    let mut jobs = Vec::new();
    for name in names {
        let items = tables
            .query(realm, Index::JobsByDispatcher, name, None)
            .await?;
        tracing::debug!(dispatcher = %name, jobs = items.len(), "Read the jobs of dispatcher {name}.");
        jobs.extend(items.into_iter().map(slim));
    }
    Ok(jobs)
}

/// Builds the block for `jobs` and merges it into the current crontab,
/// installing nothing.
pub async fn prepare(
    jobs: &[Item],
    options: &Options,
    crontab: &CrontabCommand,
) -> Result<SyncOutcome, CrontabError> {
    let built = build(jobs, options)?;
    let old = crontab.read().await?;
    let new = merge::merge(&old, &built.block, &options.realm, options.force)?;
    drop(built.block);
    Ok(SyncOutcome {
        changed: new != old,
        old,
        new,
        skipped: built.skipped,
        lines: built.lines,
    })
}

/// Installs a prepared outcome if it changed.
pub async fn apply(outcome: &SyncOutcome, crontab: &CrontabCommand) -> Result<(), CrontabError> {
    if outcome.changed {
        crontab.install(&outcome.new).await?;
    }
    Ok(())
}

/// Reads the jobs of `dispatchers`, builds and merges the block, and
/// installs the crontab if it changed.
pub async fn sync(
    tables: &dyn Tables,
    dispatchers: &[String],
    options: &Options,
    crontab: &CrontabCommand,
) -> Result<SyncOutcome, CrontabError> {
    let jobs = load_jobs(tables, &options.realm, dispatchers).await?;
    let outcome = prepare(&jobs, options, crontab).await?;
    apply(&outcome, crontab).await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Result<Sources, CrontabError> {
        sources_from_parameters(v.as_object().unwrap_or(&Map::new()))
    }

    #[test]
    fn lavasched_parameters() {
        let s = params(json!({
            "dispatcher": ["b", "a", "b"],
            "env": {"PATH": "/bin", "N": 5, "T": true, "F": false},
            "args": ["--check-dispatch", "-d", "5m"]
        }));
        let Ok(s) = s else {
            panic!("{s:?}");
        };
        assert_eq!(s.dispatchers, ["a", "b"]);
        assert_eq!(
            s.env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
            ["F=False", "N=5", "PATH=/bin", "T=True"]
        );
        assert_eq!(s.args, ["--check-dispatch", "-d", "5m"]);
        assert_eq!(
            params(json!({"dispatcher": "main"})).map(|s| s.dispatchers),
            Ok(vec!["main".to_string()])
        );
        for bad in [
            json!({}),
            json!({"dispatcher": 5}),
            json!({"dispatcher": ["a", 1]}),
            json!({"dispatcher": "a", "args": [1]}),
            json!({"dispatcher": "a", "args": "x"}),
            json!({"dispatcher": "a", "env": []}),
            json!({"dispatcher": "a", "env": {"X": {"y": 1}}}),
        ] {
            assert!(params(bad.clone()).is_err(), "{bad}");
        }
    }
}
