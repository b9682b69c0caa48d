//! `lava-state`: put and get state items from a shell — what payloads run
//! (`lava-state put sid -p lines=$(wc -l < f)`, the publisher being the job
//! from `LAVA_JOB_ID`, the realm `LAVA_REALM`) and what people run. The
//! flags are the original's; the items are the state manager's
//! ([`lava_common::state`]), on either backend.
//!
//! Exit status: 0 done; 1 any error, printed as `lava-state: <message>`;
//! 2 bad usage (clap's own errors, no realm, a reserved `lava…` state id, a
//! `-p` without `=`) or an interrupt.

use clap::{ArgAction, Parser, Subcommand};
use lava_common::cli::CommonArgs;
use lava_common::config::Config;
use lava_common::render::{Context, Renderer};
use lava_common::settings;
use lava_common::spec::{Realm, StateType};
use lava_common::state::{self, StateWrite};
use lava_common::store::{BackendSpec, Connector, Key, Seams, Table, Tables};
use lava_common::units;
use serde_json::{Map, Value};

settings! {
    /// What `lava-state` reads from the configuration.
    struct StateSettings {
        /// The `--ttl` when none (or 0) is given.
        state_ttl: std::time::Duration = "STATE_TTL",
        /// The longest `--ttl`; longer ones are cut to it.
        state_max_ttl: std::time::Duration = "STATE_MAX_TTL",
    }
}

/// The default `--tag`, and the prefix of error messages.
pub const TAG: &str = "lava-state";
/// Exit status: done.
pub const EXIT_OK: u8 = 0;
/// Exit status: an error.
pub const EXIT_ERROR: u8 = 1;
/// Exit status: bad usage, or interrupted.
pub const EXIT_USAGE: u8 = 2;

/// The default `--publisher` outside a job.
const CLI_PUBLISHER: &str = "lava-state CLI";

/// Manipulate lava state items.
#[derive(Debug, Parser)]
#[command(
    name = "lava-state",
    version,
    disable_version_flag = true,
    mut_arg("tag", |a| a.default_value(TAG)),
    after_help = "Durations: a number of seconds, or a number with s, m, h, d or w (10m, 2h, 1d).\n\
                  Exit status: 0 done, 1 error, 2 bad usage or interrupt."
)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// No colour in terminal logs (logs are never coloured; accepted for compatibility).
    #[arg(long = "no-colour", visible_alias = "no-color")]
    pub no_colour: bool,
    /// Print the version and exit.
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,
    /// The flags every lava command takes.
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `lava-state` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add or replace a state item.
    Put(Put),
    /// Print a state item's value through a Jinja template.
    Get(Get),
}

/// `lava-state put`.
#[derive(Debug, clap::Args)]
pub struct Put {
    /// State ID (not beginning with "lava").
    pub state_id: String,
    /// Add KEY=VALUE to the item's value, a map of strings. Repeatable.
    #[arg(
        short = 'p',
        long = "param",
        value_name = "KEY=VALUE",
        conflicts_with = "value"
    )]
    pub params: Vec<String>,
    /// The value: this string. With neither -p nor -v the value is null.
    #[arg(short = 'v', long)]
    pub value: Option<String>,
    /// The KMS key of a secure item: key ARN or alias/<name> (default alias/lava-<realm>-sys).
    #[arg(long)]
    pub kms_key: Option<String>,
    /// Who publishes the item (default: the job in LAVA_JOB_ID, else "lava-state CLI").
    #[arg(long, env = "LAVA_JOB_ID", default_value = CLI_PUBLISHER)]
    pub publisher: String,
    /// Time to live, a duration (default STATE_TTL; at most STATE_MAX_TTL; 0 is the default).
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
    /// How the value is stored.
    #[arg(
        long = "type",
        value_name = "STATE_TYPE",
        default_value = "json",
        value_parser = StateType::NAMES
    )]
    pub state_type: String,
}

/// `lava-state get`.
#[derive(Debug, clap::Args)]
pub struct Get {
    /// Print an empty value for a missing item instead of failing.
    #[arg(short = 'i', long)]
    pub ignore_missing: bool,
    /// State ID.
    pub state_id: String,
    /// Jinja template rendered with the value as `state` and `s`.
    #[arg(default_value = "{{ state }}")]
    pub template: String,
}

/// Why `lava-state` stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Bad usage: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Anything else: exit 1.
    #[error("{0}")]
    Error(String),
}

impl Failure {
    /// The exit status.
    pub fn status(&self) -> u8 {
        match self {
            Failure::Usage(_) => EXIT_USAGE,
            Failure::Error(_) => EXIT_ERROR,
        }
    }
}

fn error(e: impl std::fmt::Display) -> Failure {
    Failure::Error(e.to_string())
}

/// Runs `lava-state`; what `get` prints goes to stdout.
pub async fn run(args: Args) -> Result<(), Failure> {
    args.common
        .init_logging()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let Some(realm) = args.common.realm().map(str::to_string) else {
        return Err(Failure::Usage(
            "Lava realm must be specified via -r, --realm or LAVA_REALM environment variable."
                .into(),
        ));
    };
    let state_id = match &args.command {
        Command::Put(put) => &put.state_id,
        Command::Get(get) => &get.state_id,
    };
    if state::is_reserved(state_id) {
        return Err(Failure::Usage(format!(
            "Bad state_id: {state_id}: Values beginning with \"lava\" are reserved"
        )));
    }
    let spec =
        BackendSpec::parse(&args.common.backend).map_err(|e| Failure::Usage(e.to_string()))?;
    let seams = Seams::from(&spec);
    let connector = Connector::new(args.common.profile.as_deref());
    match args.command {
        Command::Put(put) => {
            let ttl = match put.ttl.as_deref() {
                None => None,
                Some(text) => Some(
                    units::parse_duration(text)
                        .map_err(|e| Failure::Error(format!("Bad --ttl: {text}: {e}")))?,
                ),
            };
            let value = value_of(&put)?;
            let state_type = state::state_type(&put.state_type).map_err(error)?;
            let tables = connector.tables(&seams.tables).await.map_err(error)?;
            let settings = StateSettings::load(&Config::from_env(
                &realm_config(tables.as_ref(), &realm).await,
            ))
            .map_err(error)?;
            let write = StateWrite {
                state_id: put.state_id,
                value,
                state_type,
                ttl_secs: state::ttl_seconds(
                    ttl,
                    settings.state_ttl.as_secs_f64(),
                    settings.state_max_ttl.as_secs_f64(),
                ),
                publisher: put.publisher,
                kms_key: put.kms_key,
            };
            let kms = connector.kms(&seams.kms).await;
            state::write(tables.as_ref(), kms.as_ref(), &realm, &write)
                .await
                .map_err(error)?;
            tracing::debug!("Put state item for state_id {}", write.state_id);
        }
        Command::Get(get) => {
            let tables = connector.tables(&seams.tables).await.map_err(error)?;
            let kms = connector.kms(&seams.kms).await;
            let value = match state::read(tables.as_ref(), kms.as_ref(), &realm, &get.state_id)
                .await
                .map_err(error)?
            {
                Some(v) => v,
                None if get.ignore_missing => Value::String(String::new()),
                None => return Err(error(format!("{}: No such state_id", get.state_id))),
            };
            let ctx = Context::new().var("state", &value).var("s", &value);
            let text = Renderer::new()
                .render_str(&get.template, &ctx)
                .map_err(error)?;
            println!("{text}");
        }
    }
    Ok(())
}

/// The value `put` stores: the `-p` pairs as a map of strings (the last of
/// a key wins), the `-v` string, or null.
fn value_of(put: &Put) -> Result<Value, Failure> {
    if let Some(v) = &put.value {
        return Ok(Value::String(v.clone()));
    }
    if put.params.is_empty() {
        return Ok(Value::Null);
    }
    let mut map = Map::new();
    for pair in &put.params {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(Failure::Usage(format!(
                "argument -p/--param: bad KEY=VALUE: {pair:?}"
            )));
        };
        map.insert(key.to_string(), Value::String(value.to_string()));
    }
    Ok(Value::Object(map))
}

/// The realm's `config` map, for `STATE_TTL` and `STATE_MAX_TTL`; empty
/// when the realm item cannot be read (the state table then says whether
/// the realm exists).
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    /// Parses `argv` as if no `LAVA_*` variable were set.
    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        let cmd = Args::command().mut_args(|a| a.env(None));
        let cmd = cmd.mut_subcommands(|s| s.mut_args(|a| a.env(None)));
        Args::from_arg_matches(&cmd.try_get_matches_from(argv)?)
    }

    #[test]
    fn cli_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn put_flags_and_defaults() {
        let args = parse(&[
            "lava-state",
            "-r",
            "prod",
            "put",
            "sid",
            "-p",
            "a=1",
            "-p",
            "b=x=y",
        ]);
        let args = args.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(args.common.log_options().tag, "lava-state");
        let Command::Put(put) = args.command else {
            panic!("not put")
        };
        assert_eq!(put.publisher, "lava-state CLI");
        assert_eq!(put.state_type, "json");
        assert_eq!(
            value_of(&put),
            Ok(serde_json::json!({"a": "1", "b": "x=y"}))
        );
        let put = parse(&[
            "lava-state",
            "put",
            "sid",
            "-v",
            "2024-05-01",
            "--type",
            "secure",
        ]);
        let Ok(Args {
            command: Command::Put(put),
            ..
        }) = put
        else {
            panic!("{put:?}")
        };
        assert_eq!(value_of(&put), Ok(Value::String("2024-05-01".into())));
        let none = parse(&["lava-state", "put", "sid"]);
        let Ok(Args {
            command: Command::Put(none),
            ..
        }) = none
        else {
            panic!("{none:?}")
        };
        assert_eq!(value_of(&none), Ok(Value::Null));
        let bad = parse(&["lava-state", "put", "sid", "-p", "novalue"]);
        let Ok(Args {
            command: Command::Put(bad),
            ..
        }) = bad
        else {
            panic!("{bad:?}")
        };
        assert!(matches!(value_of(&bad), Err(Failure::Usage(_))));
    }

    #[test]
    fn usage_errors() {
        for argv in [
            &["lava-state", "put", "sid", "-p", "a=1", "-v", "x"][..],
            &["lava-state", "put", "sid", "--type", "yaml"],
            &["lava-state", "get"],
            &["lava-state"],
        ] {
            let err = parse(argv).err();
            assert_eq!(err.map(|e| e.exit_code()), Some(2), "{argv:?}");
        }
        let version = parse(&["lava-state", "-v"]).err().map(|e| e.kind());
        assert_eq!(version, Some(clap::error::ErrorKind::DisplayVersion));
    }

    #[test]
    fn reads_only_the_variables_the_spec_names() {
        let cmd = Args::command();
        let mut read: Vec<String> = cmd
            .get_arguments()
            .chain(cmd.get_subcommands().flat_map(|s| s.get_arguments()))
            .filter_map(|a| a.get_env())
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        read.sort();
        read.dedup();
        assert_eq!(
            read,
            ["LAVA_BACKEND", "LAVA_JOB_ID", "LAVA_LOGLEVEL", "LAVA_REALM"]
        );
    }

    #[tokio::test]
    async fn reserved_ids_and_a_missing_realm_are_usage_errors() {
        for argv in [
            &["lava-state", "-r", "r", "put", "lava-x", "-v", "1"][..],
            &["lava-state", "-r", "r", "get", "LAVA"],
            &["lava-state", "put", "sid"],
        ] {
            let args = parse(argv).unwrap_or_else(|e| panic!("{e}"));
            let status = run(args).await.err().map(|f| f.status());
            assert_eq!(status, Some(EXIT_USAGE), "{argv:?}");
        }
    }
}
