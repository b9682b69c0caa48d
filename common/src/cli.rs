//! The flags every lava command takes — `--realm`, `--backend`,
//! `--profile`, `--level`, `--log`, `--log-json`, `--tag` — as one clap
//! struct each command flattens into its own, and the logging they set up.
//!
//! Environment: these flags read only `LAVA_REALM`, `LAVA_BACKEND` and
//! `LAVA_LOGLEVEL`. Payloads inherit their worker's environment and may run
//! lava commands themselves, so a common flag must not read a variable that
//! configures the worker and would redirect or reshape a nested command: the
//! worker sets `LAVA_REALM` to its own realm for payloads, and the backend
//! and log level carry over harmlessly. Commands add their own variables to
//! their own flags only (see `lava-worker`).
//!
//! Per-command differences stay in the command's definition: the `--tag`
//! default (`#[command(mut_arg("tag", |a| a.default_value(…)))]`), a
//! `--level` fallback variable (see [`resolve_level`]), and whether a realm
//! is required (each command checks `realm` itself).

use crate::logging::{self, LogError, LogOptions};

/// The `--level` used when neither the flag nor a variable gives one.
pub const DEFAULT_LEVEL: &str = "info";

/// The variable `--level` reads in every command.
pub const LEVEL_ENV: &str = "LAVA_LOGLEVEL";

/// The flags every lava command takes. Each is `global`, so a command with
/// subcommands may take them before or after the subcommand.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[command(next_help_heading = "Common options")]
pub struct CommonArgs {
    /// Lava realm.
    #[arg(short, long, global = true, env = "LAVA_REALM")]
    pub realm: Option<String>,
    /// Storage backend: aws, or local:<DIR>.
    #[arg(long, global = true, env = "LAVA_BACKEND", default_value = "aws")]
    pub backend: String,
    /// AWS profile.
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Log level: debug, info, warning, error, critical.
    #[arg(
        short,
        long,
        global = true,
        env = LEVEL_ENV,
        default_value = DEFAULT_LEVEL
    )]
    pub level: Option<String>,
    /// Log one JSON object per line.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// Log to this file instead of stderr.
    #[arg(long, global = true, value_name = "TARGET")]
    pub log: Option<String>,
    /// Log tag.
    #[arg(long, global = true, default_value = "lava")]
    pub tag: String,
}

/// The level to log at: `--level` or `LAVA_LOGLEVEL` (`given`, as clap
/// read them), else a command's own fallback variable, else
/// [`DEFAULT_LEVEL`]. A value that is set but empty is kept, and refused
/// as a bad level when logging starts.
pub fn resolve_level(given: Option<&str>, fallback: Option<&str>) -> String {
    given.or(fallback).unwrap_or(DEFAULT_LEVEL).to_string()
}

impl CommonArgs {
    /// The logging settings these flags give.
    pub fn log_options(&self) -> LogOptions {
        LogOptions {
            level: resolve_level(self.level.as_deref(), None),
            json: self.log_json,
            target: self.log.clone(),
            tag: self.tag.clone(),
        }
    }

    /// Starts logging as these flags say. Call once, early.
    pub fn init_logging(&self) -> Result<(), LogError> {
        logging::init(&self.log_options())
    }

    /// The realm when one is given and not empty.
    pub fn realm(&self) -> Option<&str> {
        self.realm.as_deref().filter(|r| !r.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    /// Parses `argv` as if no `LAVA_*` variable were set.
    fn parse<T: Parser>(argv: &[&str]) -> Result<T, clap::Error> {
        let cmd = T::command().mut_args(|a| a.env(None));
        T::from_arg_matches(&cmd.try_get_matches_from(argv)?)
    }

    #[derive(Debug, Parser)]
    #[command(name = "t", mut_arg("tag", |a| a.default_value("t-tag")))]
    struct Flat {
        #[command(flatten)]
        common: CommonArgs,
    }

    #[derive(Debug, Parser)]
    #[command(name = "s")]
    struct WithSub {
        #[command(flatten)]
        common: CommonArgs,
        #[command(subcommand)]
        sub: Sub,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Sub {
        Go,
    }

    #[test]
    fn definitions_are_consistent() {
        Flat::command().debug_assert();
        WithSub::command().debug_assert();
    }

    #[test]
    fn level_resolution() {
        assert_eq!(resolve_level(Some("debug"), Some("error")), "debug");
        assert_eq!(resolve_level(None, Some("error")), "error");
        assert_eq!(resolve_level(None, None), "info");
        assert_eq!(
            resolve_level(Some(""), Some("error")),
            "",
            "set but empty is kept"
        );
        assert_eq!(resolve_level(None, Some("")), "");
    }

    #[test]
    fn defaults_and_the_tag_a_command_chooses() {
        let flat = parse::<Flat>(&["t"]).unwrap_or_else(|e| panic!("{e}"));
        let common = &flat.common;
        assert_eq!(common.tag, "t-tag");
        assert_eq!(common.backend, "aws");
        let options = common.log_options();
        assert_eq!(options.tag, "t-tag");
        assert!(!options.json && options.target.is_none());
        assert_eq!(options.level, "info");
        let flat = parse::<Flat>(&["t", "-l", "error", "--tag", "x", "--log-json"])
            .unwrap_or_else(|e| panic!("{e}"));
        let options = flat.common.log_options();
        assert_eq!(
            (options.level.as_str(), options.tag.as_str()),
            ("error", "x")
        );
        assert!(options.json);
    }

    #[test]
    fn flags_go_before_or_after_a_subcommand() {
        for argv in [
            &["s", "-r", "r1", "--backend", "local:/x", "go"][..],
            &["s", "go", "-r", "r1", "--backend", "local:/x"],
        ] {
            let parsed = parse::<WithSub>(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            assert!(matches!(parsed.sub, Sub::Go));
            assert_eq!(parsed.common.realm(), Some("r1"), "{argv:?}");
            assert_eq!(parsed.common.backend, "local:/x", "{argv:?}");
        }
        let parsed = parse::<WithSub>(&["s", "go", "-r", ""]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.common.realm(), None, "an empty realm is no realm");
    }
}
