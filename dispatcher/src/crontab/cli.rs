//! The `lava-crontab` command line: `sync`, `show`, `diff` and `next`.
//! stdout carries what was asked for (a crontab, a
//! diff, fire times); logs and reports of skipped entries go to stderr.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use lava_common::cli::CommonArgs;
use lava_common::config::Config;
use lava_common::names;
use lava_common::spec::{Item, Realm};
use lava_common::store::{Backend, BackendSpec, Key, Table, Tables};
use serde_json::{Map, Value};

use super::zone::{self, Zone};
use super::{
    CrontabCommand, CrontabError, CrontabSettings, Options, Sources, SyncOutcome, apply, load_jobs,
    prepare, schedule, slim, sources_from_job,
};

/// Exit status: done, nothing skipped.
pub const EXIT_OK: u8 = 0;
/// Exit status: an entry or job was skipped, or something failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status: bad usage.
pub const EXIT_USAGE: u8 = 2;

/// Keep this account's crontab in line with the lava jobs table.
#[derive(Debug, Parser)]
#[command(name = "lava-crontab", version)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install lava's block of schedule lines into this account's crontab
    /// (nothing is written when it is unchanged).
    Sync(BuildArgs),
    /// Print the whole crontab that `sync` would install.
    Show(BuildArgs),
    /// Print a unified diff from the current crontab to what `sync` would install.
    Diff(BuildArgs),
    /// Print the next fire times of each active schedule entry of a job.
    Next(NextArgs),
}

/// Flags of `sync`, `show` and `diff`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Schedules: five cron fields (digits, * , - / and month or day names) \
or @yearly @annually @monthly @weekly @daily @midnight @hourly @reboot. \
The crontab program is $LAVA_CRONTAB_CMD (default crontab)."
)]
pub struct BuildArgs {
    /// A dispatcher whose jobs are scheduled here. Repeatable.
    #[arg(long = "dispatcher", value_name = "NAME", conflicts_with = "job")]
    pub dispatchers: Vec<String>,
    /// An env line for the block (CRON_TZ, PATH, …). Repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE", conflicts_with = "job")]
    pub env: Vec<String>,
    /// An extra lava-dispatch argument, put before the job id. Repeatable.
    #[arg(
        long = "arg",
        value_name = "ARG",
        allow_hyphen_values = true,
        conflicts_with = "job"
    )]
    pub args: Vec<String>,
    /// Take dispatchers, env and args from the parameters of this lavasched job.
    #[arg(long, value_name = "JOB_ID")]
    pub job: Option<String>,
    /// Read job items from this file (JSON lines) instead of the jobs table.
    #[arg(long, value_name = "FILE")]
    pub jobs_file: Option<PathBuf>,
    /// Replace a lava block that belongs to another realm.
    #[arg(long)]
    pub force: bool,
    /// Common flags.
    #[command(flatten)]
    pub common: Common,
}

/// Flags of `next`.
#[derive(Debug, clap::Args)]
pub struct NextArgs {
    /// The job.
    #[arg(value_name = "JOB_ID")]
    pub job_id: String,
    /// How many fire times per entry.
    #[arg(short = 'n', long = "count", default_value_t = 5)]
    pub count: usize,
    /// An env line (CRON_TZ chooses the zone; default the host zone). Repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Common flags.
    #[command(flatten)]
    pub common: Common,
}

/// The default `--tag`.
pub const TAG: &str = "lava-crontab";

/// Flags every subcommand takes: those of every lava command, and `--now`.
#[derive(Debug, clap::Args)]
#[command(mut_arg("tag", |a| a.default_value(TAG)))]
pub struct Common {
    /// The flags every lava command takes.
    #[command(flatten)]
    pub lava: CommonArgs,
    /// The time to check `from`/`to` windows against and count fire times
    /// from (ISO 8601; for tests).
    #[arg(long, hide = true)]
    pub now: Option<String>,
}

/// A failure, classified by exit status.
enum Failure {
    Usage(String),
    Failed(String),
}

impl From<CrontabError> for Failure {
    fn from(e: CrontabError) -> Self {
        Self::Failed(e.to_string())
    }
}

/// Runs `lava-crontab` and returns its exit status.
pub async fn run(args: Args) -> u8 {
    let common = match &args.command {
        Command::Sync(b) | Command::Show(b) | Command::Diff(b) => &b.common,
        Command::Next(n) => &n.common,
    };
    if let Err(e) = common.lava.init_logging() {
        eprintln!("lava-crontab: {e}");
        return EXIT_USAGE;
    }
    let result = match &args.command {
        Command::Sync(b) => build_command(b, Mode::Sync).await,
        Command::Show(b) => build_command(b, Mode::Show).await,
        Command::Diff(b) => build_command(b, Mode::Diff).await,
        Command::Next(n) => next_command(n).await,
    };
    match result {
        Ok(status) => status,
        Err(Failure::Usage(message)) => {
            eprintln!("lava-crontab: {message}");
            EXIT_USAGE
        }
        Err(Failure::Failed(message)) => {
            tracing::error!("{message}");
            EXIT_FAILED
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Sync,
    Show,
    Diff,
}

fn realm_of(common: &Common) -> Result<String, Failure> {
    let realm = common.lava.realm().map(str::to_string).ok_or_else(|| {
        Failure::Usage("Lava realm must be specified (--realm or LAVA_REALM)".into())
    })?;
    names::check_realm(&realm).map_err(|e| Failure::Usage(e.to_string()))?;
    Ok(realm)
}

async fn connect(common: &Common) -> Result<Backend, Failure> {
    let spec =
        BackendSpec::parse(&common.lava.backend).map_err(|e| Failure::Usage(e.to_string()))?;
    Backend::connect(&spec, common.lava.profile.as_deref())
        .await
        .map_err(|e| Failure::Usage(e.to_string()))
}

/// `NAME=VALUE` flags as a map (the last of a name wins).
fn parse_env(pairs: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    pairs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| Failure::Usage(format!("bad --env {pair:?}: use NAME=VALUE")))
        })
        .collect()
}

/// `--now`, or the current time.
fn now_of(common: &Common, zone: Zone) -> Result<DateTime<Utc>, Failure> {
    match &common.now {
        None => Ok(Utc::now()),
        Some(text) => zone::parse_datetime(text, zone)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| Failure::Usage(format!("bad --now: {e}"))),
    }
}

/// The realm's `config` map; empty when the realm item cannot be read
/// (an unknown realm shows up when the jobs table is read).
async fn realm_config(tables: &dyn Tables, realm: &str) -> Map<String, Value> {
    match tables
        .get(realm, Table::Realms, &Key::new(realm), false)
        .await
    {
        Ok(Some(item)) => Realm::from_item(item)
            .map(|r| r.config())
            .unwrap_or_default(),
        Ok(None) => Map::new(),
        Err(e) => {
            tracing::debug!("Cannot read realm {realm}: {e}");
            Map::new()
        }
    }
}

/// Job items from a JSON-lines file, read a line at a time and cut down by
/// [`slim`]: those of `dispatchers` (sorted names, each's jobs by
/// `job_id`, as the index gives them), or all in file order.
fn jobs_from_file(path: &Path, dispatchers: &[String]) -> Result<Vec<Item>, CrontabError> {
    use std::io::BufRead;

    let cannot_read =
        |e: std::io::Error| CrontabError::JobsFile(format!("cannot read {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(cannot_read)?;
    let reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut all = Vec::new();
    let mut groups: Vec<Vec<Item>> = vec![Vec::new(); dispatchers.len()];
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(cannot_read)?;
        if line.trim().is_empty() {
            continue;
        }
        let item = match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(item)) => item,
            Ok(_) => {
                return Err(CrontabError::JobsFile(format!(
                    "{} line {}: not a JSON object",
                    path.display(),
                    i + 1
                )));
            }
            Err(e) => {
                return Err(CrontabError::JobsFile(format!(
                    "{} line {}: {e}",
                    path.display(),
                    i + 1
                )));
            }
        };
        if dispatchers.is_empty() {
            all.push(slim(item));
        } else if let Some(at) = item
            .get("dispatcher")
            .and_then(Value::as_str)
            .and_then(|d| dispatchers.iter().position(|name| name == d))
        {
            groups[at].push(slim(item));
        }
    }
    if dispatchers.is_empty() {
        return Ok(all);
    }
    let job_id = |item: &Item| -> String {
        item.get("job_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    for group in &mut groups {
        group.sort_by_cached_key(job_id);
    }
    Ok(groups.into_iter().flatten().collect())
}

async fn build_command(args: &BuildArgs, mode: Mode) -> Result<u8, Failure> {
    let common = &args.common;
    let realm = realm_of(common)?;
    // Usage errors in the flags come before any connection.
    let flag_sources = match &args.job {
        Some(_) => None,
        None => {
            let mut dispatchers = args.dispatchers.clone();
            dispatchers.sort();
            dispatchers.dedup();
            Some(Sources {
                dispatchers,
                env: parse_env(&args.env)?,
                args: args.args.clone(),
            })
        }
    };
    let from_table = args.jobs_file.is_none() || args.job.is_some();
    let backend = if from_table {
        Some(connect(common).await?)
    } else {
        None
    };
    let sources = match (flag_sources, &args.job, &backend) {
        (Some(sources), _, _) => sources,
        (None, Some(job), Some(backend)) => {
            sources_from_job(backend.tables.as_ref(), &realm, job).await?
        }
        (None, _, _) => Sources::default(),
    };
    if sources.dispatchers.is_empty() && args.jobs_file.is_none() {
        return Err(Failure::Usage(
            "give at least one --dispatcher, or --job <lavasched job id>".into(),
        ));
    }
    let config_map = match &backend {
        Some(b) => realm_config(b.tables.as_ref(), &realm).await,
        None => Map::new(),
    };
    let zone = Zone::from_env(&sources.env).map_err(Failure::Usage)?;
    let options = Options {
        realm: realm.clone(),
        dispatcher_path: super::dispatcher_path(
            CrontabSettings::load(&Config::from_env(&config_map))
                .map_err(|e| Failure::Usage(e.to_string()))?
                .dispatcher
                .as_deref(),
        ),
        env: sources.env.clone(),
        args: sources.args.clone(),
        backend: common.lava.backend.clone(),
        now: now_of(common, zone)?,
        force: args.force,
    };
    let jobs = match (&args.jobs_file, &backend) {
        (Some(file), _) => jobs_from_file(file, &sources.dispatchers)?,
        (None, Some(b)) => load_jobs(b.tables.as_ref(), &realm, &sources.dispatchers).await?,
        (None, None) => Vec::new(),
    };
    let crontab = CrontabCommand::from_env();
    let outcome = prepare(&jobs, &options, &crontab).await?;
    report(&outcome);
    match mode {
        Mode::Show => print!("{}", outcome.new),
        Mode::Diff => print!("{}", super::diff::to_text(&outcome.diff())),
        Mode::Sync => {
            apply(&outcome, &crontab).await?;
            if outcome.changed {
                tracing::info!(
                    "Crontab updated for realm {realm}: {} schedule lines.",
                    outcome.lines
                );
            } else {
                tracing::info!("Crontab unchanged for realm {realm}.");
            }
        }
    }
    Ok(if outcome.skipped.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

fn report(outcome: &SyncOutcome) {
    for skipped in &outcome.skipped {
        tracing::warn!("{skipped}");
    }
    if !outcome.skipped.is_empty() {
        tracing::warn!(
            "{} schedule entries or jobs skipped; the rest is in the crontab.",
            outcome.skipped.len()
        );
    }
}

async fn next_command(args: &NextArgs) -> Result<u8, Failure> {
    let common = &args.common;
    let realm = realm_of(common)?;
    let env = parse_env(&args.env)?;
    let zone = Zone::from_env(&env).map_err(Failure::Usage)?;
    let now = now_of(common, zone)?;
    let backend = connect(common).await?;
    let job = backend
        .tables
        .get(&realm, Table::Jobs, &Key::new(&args.job_id), false)
        .await
        .map_err(CrontabError::from)?
        .ok_or_else(|| Failure::Failed(format!("no job {:?} in realm {realm}", args.job_id)))?;
    let schedule = job.get("schedule").unwrap_or(&Value::Null);
    let (good, bad) = schedule::entries(schedule, zone, &mut Default::default());
    let mut out = String::new();
    for entry in &good {
        let text = entry.expr.text();
        let number = entry.number;
        if !entry.window.is_active(now) {
            out.push_str(&format!("# entry {number}: {text} (inactive now)\n"));
        } else if entry.expr.is_reboot() {
            out.push_str(&format!("# entry {number}: {text} (at boot only)\n"));
        } else {
            out.push_str(&format!("# entry {number}: {text}\n"));
            for t in entry.expr.next_times(now, zone, args.count) {
                out.push_str(&zone::format(&t));
                out.push('\n');
            }
        }
    }
    print!("{out}");
    for b in &bad {
        tracing::warn!(
            "Job {:?}: Bad schedule entry {} {:?}: {}",
            args.job_id,
            b.number,
            b.text,
            b.reason
        );
    }
    Ok(if bad.is_empty() { EXIT_OK } else { EXIT_FAILED })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn common_flags_and_defaults() {
        // As if no LAVA_* variable were set.
        let cmd = Args::command().mut_args(|a| a.env(None));
        for argv in [
            &["lava-crontab", "sync", "-r", "prod", "--dispatcher", "main"][..],
            &["lava-crontab", "next", "j", "-r", "prod"],
        ] {
            let matches = cmd
                .clone()
                .try_get_matches_from(argv)
                .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            let args = <Args as clap::FromArgMatches>::from_arg_matches(&matches)
                .unwrap_or_else(|e| panic!("{e}"));
            let (Command::Sync(BuildArgs { common, .. }) | Command::Next(NextArgs { common, .. })) =
                args.command
            else {
                panic!("{argv:?}");
            };
            assert_eq!(common.lava.realm(), Some("prod"));
            assert_eq!(common.lava.backend, "aws");
            let log = common.lava.log_options();
            assert_eq!(
                (log.level.as_str(), log.tag.as_str()),
                ("info", "lava-crontab")
            );
        }
    }

    #[test]
    fn reads_only_variables_payloads_may_pass_on() {
        for sub in ["sync", "show", "diff", "next"] {
            let mut cmd = Args::command();
            let sub = cmd
                .find_subcommand_mut(sub)
                .unwrap_or_else(|| panic!("{sub}"));
            let mut read: Vec<_> = sub.get_arguments().filter_map(|a| a.get_env()).collect();
            read.sort();
            assert_eq!(read, ["LAVA_BACKEND", "LAVA_LOGLEVEL", "LAVA_REALM"]);
        }
    }

    #[test]
    fn hyphen_values_in_args() {
        let args = Args::try_parse_from([
            "lava-crontab",
            "show",
            "--realm",
            "r",
            "--dispatcher",
            "d",
            "--arg",
            "--check-dispatch",
            "--arg=-d",
            "--arg",
            "5m",
        ]);
        let Ok(Args {
            command: Command::Show(b),
        }) = args
        else {
            panic!("{args:?}");
        };
        assert_eq!(b.args, ["--check-dispatch", "-d", "5m"]);
        assert!(
            Args::try_parse_from(["lava-crontab", "sync", "--job", "j", "--dispatcher", "d"])
                .is_err()
        );
    }
}
