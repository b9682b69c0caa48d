//! `lava-worker` flags: the original's, plus `--drain-timeout` and the flags
//! every lava command takes ([`CommonArgs`]).
//!
//! Under systemd the worker has no arguments (`lava-worker@.service`): its
//! settings come from `LAVA_*` variables in its environment files. Only the
//! worker reads those variables — its own flags (`LAVA_WORKER`,
//! `LAVA_THREADS`, …) and, for the common log flags, `LAVA_LOG`,
//! `LAVA_LOG_JSON`, `LAVA_TAG` and the old `LAVA_LEVEL` — because payloads
//! inherit the worker's environment and the other lava commands they may
//! run must not act on the worker's settings.

use clap::{ArgAction, Parser};
use lava_common::cli::{self, CommonArgs};

/// The default `--tag`.
pub const TAG: &str = "lava-worker";

/// The worker's older name for `LAVA_LOGLEVEL`, read when neither
/// `--level` nor `LAVA_LOGLEVEL` gives a level.
pub const LEVEL_FALLBACK_ENV: &str = "LAVA_LEVEL";

/// Run lava jobs from a worker fleet's queue.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "lava-worker",
    version,
    disable_version_flag = true,
    mut_arg("tag", |a| a.default_value(TAG).env("LAVA_TAG")),
    mut_arg("log", |a| a.env("LAVA_LOG")),
    mut_arg("log_json", |a| a.env("LAVA_LOG_JSON")),
    // No clap default: `Args::resolve` applies LAVA_LEVEL, then info.
    mut_arg("level", |a| a.default_value(None).help(
        "Log level: debug, info, warning, error, critical (default info; \
         LAVA_LEVEL is read when neither --level nor LAVA_LOGLEVEL is set)"
    ))
)]
pub struct Args {
    /// Worker fleet name.
    #[arg(short, long, env = "LAVA_WORKER")]
    pub worker: Option<String>,
    /// Jobs run at once.
    #[arg(short, long, env = "LAVA_THREADS", default_value_t = 5)]
    pub threads: usize,
    /// Heartbeat period in seconds (0 off, else at least 30).
    #[arg(short = 'b', long, env = "LAVA_HEARTBEAT", default_value_t = 0)]
    pub heartbeat: u64,
    /// Seconds to sleep after an empty poll (not in batch mode; 0 polls again at once).
    ///
    /// The long poll (--wait) already waits for messages, so by default
    /// there is no sleep: a 20 s poll always open makes three requests per
    /// idle minute, as the original's 10 s poll and 10 s sleep did.
    #[arg(
        short,
        long,
        env = "LAVA_SLEEP",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub sleep: i64,
    /// Long-poll wait in seconds (0-20).
    #[arg(long, env = "LAVA_WAIT", default_value_t = 20)]
    pub wait: u32,
    /// Discard messages received more than retries+1 times (negative: never).
    #[arg(
        long,
        env = "LAVA_RETRIES",
        default_value_t = 2,
        allow_negative_numbers = true
    )]
    pub retries: i64,
    /// Allow running as root.
    #[arg(long)]
    pub root: bool,
    /// Exit when the queue is empty (after running what was received).
    #[arg(long, conflicts_with = "daemon")]
    pub batch: bool,
    /// Daemonise (not supported: run under systemd instead).
    #[arg(short, long)]
    pub daemon: bool,
    /// Dev mode: payload output goes to the worker's stdout/stderr, nothing is uploaded.
    #[arg(long)]
    pub dev: bool,
    /// At start-up, dispatch this worker's enabled lavasched jobs.
    #[arg(short, long, env = "LAVA_JUMP_START")]
    pub jump_start: bool,
    /// Queue name (default lava-<realm>-<worker>).
    #[arg(short, long)]
    pub queue: Option<String>,
    /// How long a drain waits for running jobs (duration).
    #[arg(long)]
    pub drain_timeout: Option<String>,
    /// No colour (logs are never coloured; accepted for compatibility).
    #[arg(short = 'c', long = "no-colour", visible_alias = "no-color")]
    pub no_colour: bool,
    /// Print the version and exit.
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,
    /// The flags every lava command takes.
    #[command(flatten)]
    pub common: CommonArgs,
}

impl Args {
    /// Parses the command line and applies the `LAVA_LEVEL` fallback.
    pub fn parse_resolved() -> Self {
        Self::parse().resolve(std::env::var(LEVEL_FALLBACK_ENV).ok().as_deref())
    }

    /// Fills in the log level: `--level`, else `LAVA_LOGLEVEL`, else
    /// `level_fallback` (the value of `LAVA_LEVEL`), else info.
    pub fn resolve(mut self, level_fallback: Option<&str>) -> Self {
        let level = cli::resolve_level(self.common.level.as_deref(), level_fallback);
        self.common.level = Some(level);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    /// Parses `argv` as if no `LAVA_*` variable were set.
    fn parse(argv: &[&str]) -> Args {
        let cmd = Args::command().mut_args(|a| a.env(None));
        let matches = cmd
            .try_get_matches_from(argv)
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        Args::from_arg_matches(&matches).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn cli_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let args = parse(&["lava-worker"]);
        assert_eq!((args.wait, args.sleep), (20, 0), "a long poll, no sleep");
        assert_eq!((args.threads, args.retries, args.heartbeat), (5, 2, 0));
        assert_eq!(args.common.level, None, "left to resolve");
        let log = args.resolve(None).common.log_options();
        assert_eq!(
            (log.level.as_str(), log.tag.as_str()),
            ("info", "lava-worker")
        );
        assert!(!log.json && log.target.is_none());
    }

    #[test]
    fn level_falls_back_to_lava_level() {
        // LAVA_LOGLEVEL (or --level) first, then LAVA_LEVEL, then info.
        let args = parse(&["lava-worker", "--level", "error"]);
        assert_eq!(
            args.resolve(Some("debug")).common.log_options().level,
            "error"
        );
        let args = parse(&["lava-worker"]);
        assert_eq!(
            args.resolve(Some("debug")).common.log_options().level,
            "debug"
        );
        let args = parse(&["lava-worker", "-s", "-1", "--wait", "0"]);
        assert_eq!((args.sleep, args.wait), (-1, 0));
    }

    #[test]
    fn the_variables_each_flag_reads() {
        let cmd = Args::command();
        let mut read: Vec<(&str, String)> = cmd
            .get_arguments()
            .filter_map(|a| Some((a.get_id().as_str(), a.get_env()?.to_string_lossy().into())))
            .collect();
        let expected = [
            ("worker", "LAVA_WORKER"),
            ("threads", "LAVA_THREADS"),
            ("heartbeat", "LAVA_HEARTBEAT"),
            ("sleep", "LAVA_SLEEP"),
            ("wait", "LAVA_WAIT"),
            ("retries", "LAVA_RETRIES"),
            ("jump_start", "LAVA_JUMP_START"),
            ("realm", "LAVA_REALM"),
            ("backend", "LAVA_BACKEND"),
            ("level", "LAVA_LOGLEVEL"),
            ("log_json", "LAVA_LOG_JSON"),
            ("log", "LAVA_LOG"),
            ("tag", "LAVA_TAG"),
        ];
        let mut expected: Vec<(&str, String)> = expected
            .iter()
            .map(|(id, var)| (*id, var.to_string()))
            .collect();
        read.sort();
        expected.sort();
        assert_eq!(read, expected);
    }
}
