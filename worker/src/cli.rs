//! `lava-worker` flags: the original's (spec/worker.md §2) plus the settings
//! DECISIONS.md 3 adds, each also readable from a `LAVA_*` variable so a
//! systemd environment file can set them.

use clap::{ArgAction, Parser};

/// Run lava jobs from a worker fleet's queue.
#[derive(Debug, Clone, Parser)]
#[command(name = "lava-worker", version, disable_version_flag = true)]
pub struct Args {
    /// Lava realm.
    #[arg(short, long, env = "LAVA_REALM")]
    pub realm: Option<String>,
    /// Worker fleet name.
    #[arg(short, long, env = "LAVA_WORKER")]
    pub worker: Option<String>,
    /// Jobs run at once.
    #[arg(short, long, env = "LAVA_THREADS", default_value_t = 5)]
    pub threads: usize,
    /// Heartbeat period in seconds (0 off, else at least 30).
    #[arg(short = 'b', long, env = "LAVA_HEARTBEAT", default_value_t = 0)]
    pub heartbeat: u64,
    /// Seconds to sleep after an empty poll (not in batch mode).
    #[arg(
        short,
        long,
        env = "LAVA_SLEEP",
        default_value_t = 10,
        allow_negative_numbers = true
    )]
    pub sleep: i64,
    /// Long-poll wait in seconds (0-20).
    #[arg(long, env = "LAVA_WAIT", default_value_t = 10)]
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
    /// AWS profile.
    #[arg(long)]
    pub profile: Option<String>,
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
    /// Storage backend: aws, or local:<DIR>.
    #[arg(long, env = "LAVA_BACKEND", default_value = "aws")]
    pub backend: String,
    /// Log level: debug, info, warning, error, critical.
    #[arg(short, long, env = "LAVA_LEVEL", default_value = "info")]
    pub level: String,
    /// Log one JSON object per line.
    #[arg(long, env = "LAVA_LOG_JSON")]
    pub log_json: bool,
    /// Log to this file instead of stderr.
    #[arg(long, env = "LAVA_LOG")]
    pub log: Option<String>,
    /// Log tag.
    #[arg(long, env = "LAVA_TAG", default_value = "lava-worker")]
    pub tag: String,
    /// No colour (logs are never coloured; accepted for compatibility).
    #[arg(short = 'c', long = "no-colour", visible_alias = "no-color")]
    pub no_colour: bool,
    /// Print the version and exit.
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Args::command().debug_assert();
    }
}
