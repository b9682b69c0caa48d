//! `lava-dispatch`: the flags of the original `lava-dispatcher` and the run
//! that sends one message per job id. stdout carries one run id per dispatched job; logs go to stderr.

use std::path::Path;
use std::sync::Arc;

use clap::{ArgAction, Parser};
use lava_common::cli::CommonArgs;
use lava_common::config::Config;
use lava_common::dispatch::{self, DispatchRequest, Dispatcher, dotted};
use lava_common::names;
use lava_common::settings;
use lava_common::store::{Backend, BackendSpec};
use serde_json::Map;
use tokio::sync::Semaphore;

settings! {
    /// What `lava-dispatch` reads from the configuration.
    struct DispatchSettings {
        /// The suppression file of `--check-dispatch`.
        no_dispatch: Option<String> = "NO_DISPATCH",
        /// Largest `--delay`, minutes.
        sqs_max_delay_mins: i64 = "SQS_MAX_DELAY_MINS",
    }
}

/// Exit status: every job dispatched, or dispatch suppressed.
pub const EXIT_OK: u8 = 0;
/// Exit status: at least one job could not be dispatched.
pub const EXIT_FAILED: u8 = 1;
/// Exit status: bad usage (options, realm, delay).
pub const EXIT_USAGE: u8 = 2;

/// The default `--tag`: the original's command name.
pub const TAG: &str = "lava-dispatcher";

/// How many dispatches run at once when several job ids are given.
const CONCURRENCY: usize = 16;

/// Send dispatch messages for lava jobs to their worker queues.
#[derive(Debug, Parser)]
#[command(
    name = "lava-dispatch",
    version,
    disable_version_flag = true,
    mut_arg("tag", |a| a.default_value(TAG))
)]
pub struct Args {
    /// Jobs to dispatch; each gets its own run id.
    #[arg(required = true, value_name = "JOB_ID")]
    pub job_ids: Vec<String>,
    /// Worker fleet; looked up in the jobs table when absent.
    ///
    /// Not read from LAVA_WORKER: a payload inherits its worker's name there,
    /// and the jobs it dispatches belong to their own workers.
    #[arg(short, long)]
    pub worker: Option<String>,
    /// Queue name (default lava-<realm>-<worker>).
    ///
    /// Not read from LAVA_QUEUE, which a worker's environment may hold.
    #[arg(short, long)]
    pub queue: Option<String>,
    /// Delay before the run may start: a duration, 0 to SQS_MAX_DELAY_MINS minutes.
    #[arg(short, long, default_value = "0")]
    pub delay: String,
    /// A parameter NAME=VALUE; dotted names build maps. Repeatable.
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// A global NAME=VALUE; dotted names build maps. Repeatable.
    #[arg(short = 'g', long = "global", value_name = "NAME=VALUE")]
    pub globals: Vec<String>,
    /// Dispatch nothing if the suppression file (NO_DISPATCH) exists.
    #[arg(long, action = ArgAction::Count)]
    pub check_dispatch: u8,
    /// No colour in terminal logs (logs are never coloured; accepted for compatibility).
    #[arg(short = 'c', long = "no-colour", visible_alias = "no-color")]
    pub no_colour: bool,
    /// Print the version and exit.
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,
    /// The flags every lava command takes.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// A usage problem: reported on stderr whatever the log settings, then exit 2.
fn usage(message: impl std::fmt::Display) -> u8 {
    eprintln!("lava-dispatch: {message}");
    EXIT_USAGE
}

/// Runs `lava-dispatch` and returns its exit status.
pub async fn run(args: Args) -> u8 {
    if let Err(e) = args.common.init_logging() {
        eprintln!("lava-dispatch: {e}");
        return EXIT_USAGE;
    }
    // lava-dispatch reads no realm record: its settings come from the
    // environment and the defaults. A bad value is a usage error (exit 2).
    let settings = match DispatchSettings::load(&Config::from_env(&Map::new())) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let Some(realm) = args.common.realm().map(str::to_string) else {
        return usage("Lava realm must be specified");
    };
    if let Err(e) = names::check_realm(&realm) {
        return usage(e);
    }
    if let Some(worker) = &args.worker
        && let Err(e) = names::check_worker(&realm, worker)
    {
        return usage(e);
    }
    if args.check_dispatch > 0 {
        let file = settings.no_dispatch.unwrap_or_default();
        if !file.is_empty() && Path::new(&file).exists() {
            tracing::warn!("Dispatch suppressed by presence of {file}");
            return EXIT_OK;
        }
    }
    let max_mins = u32::try_from(settings.sqs_max_delay_mins).unwrap_or(0);
    let delay_secs = match dispatch::delay_seconds(&args.delay, max_mins) {
        Ok(d) => d,
        Err(e) => return usage(format!("Bad -d, --delay value: {e}")),
    };
    let parameters = match dotted::build(&args.params) {
        Ok(p) => p,
        Err(e) => return usage(format!("Bad -p, --param args: {e}")),
    };
    let globals = match dotted::build(&args.globals) {
        Ok(g) => g,
        Err(e) => return usage(format!("Bad -g, --global args: {e}")),
    };
    let spec = match BackendSpec::parse(&args.common.backend) {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let backend = match Backend::connect(&spec, args.common.profile.as_deref()).await {
        Ok(b) => b,
        Err(e) => return usage(e),
    };
    let dispatcher = Arc::new(Dispatcher::new(backend, &realm));
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    let mut handles = Vec::with_capacity(args.job_ids.len());
    for job_id in &args.job_ids {
        let request = DispatchRequest {
            job_id: job_id.clone(),
            worker: args.worker.clone(),
            parameters: parameters.clone(),
            globals: globals.clone(),
            delay_secs,
            queue: args.queue.clone(),
            run_id: None,
        };
        let dispatcher = Arc::clone(&dispatcher);
        let limit = Arc::clone(&limit);
        handles.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await;
            dispatcher.dispatch(&request).await
        }));
    }
    let mut status = EXIT_OK;
    for (job_id, handle) in args.job_ids.iter().zip(handles) {
        match handle.await {
            Ok(Ok(sent)) => {
                let run_id = &sent.message.run_id;
                println!("{run_id}");
                tracing::info!(event_type = "dispatch", job_id = %job_id, run_id = %run_id, "{job_id}@{realm} dispatched ({run_id})");
            }
            Ok(Err(e)) => {
                tracing::error!(event_type = "dispatch", job_id = %job_id, "{job_id}@{realm} dispatch failed - {}", e.failure);
                status = EXIT_FAILED;
            }
            Err(e) => {
                tracing::error!(event_type = "dispatch", job_id = %job_id, "{job_id}@{realm} dispatch failed - internal error: {e}");
                status = EXIT_FAILED;
            }
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    #[test]
    fn cli_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults() {
        // As if no LAVA_* variable were set.
        let cmd = Args::command().mut_args(|a| a.env(None));
        let matches = cmd
            .try_get_matches_from(["lava-dispatch", "j"])
            .unwrap_or_else(|e| panic!("{e}"));
        let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| panic!("{e}"));
        let log = args.common.log_options();
        assert_eq!(log.tag, "lava-dispatcher");
        assert_eq!(log.level, "info");
        assert_eq!(args.common.backend, "aws");
        assert_eq!(args.common.realm(), None);
    }

    #[test]
    fn reads_only_variables_payloads_may_pass_on() {
        let cmd = Args::command();
        let mut read: Vec<_> = cmd.get_arguments().filter_map(|a| a.get_env()).collect();
        read.sort();
        assert_eq!(read, ["LAVA_BACKEND", "LAVA_LOGLEVEL", "LAVA_REALM"]);
    }
}
