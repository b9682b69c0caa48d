//! `lava-realm`: create a realm on a backend, import or export its realm,
//! job, connection and s3trigger items as JSON or YAML, so a realm's
//! configuration can live in version control, and manage the secrets its
//! connections name (SSM parameters, Secrets Manager secrets; files under
//! `<DIR>/secrets` on the local backend).

use std::io::Read;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use lava_common::cli::CommonArgs;
use lava_common::document::RealmDocument;
use lava_common::provision::{self, RealmSetup};
use lava_common::store::{Backend, BackendSpec, Index, Key, Secrets, Table, connect_secrets};

/// The default `--tag`.
pub const TAG: &str = "lava-realm";

/// Create lava realms and manage their configuration as code.
#[derive(Debug, Parser)]
#[command(
    name = "lava-realm",
    version,
    mut_arg("tag", |a| a.default_value(TAG)),
    mut_arg("realm", |a| a.help("Realm name (letters, digits, _); required"))
)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// The flags every lava command takes (before or after the subcommand).
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `lava-realm` subcommands. Each works on the realm given by `-r`/`--realm`
/// (or `LAVA_REALM`).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the realm's tables, one queue per worker, the bucket and the realm item.
    Create {
        /// A worker fleet to create a queue for. Repeatable.
        #[arg(short, long = "worker")]
        workers: Vec<String>,
        /// Bucket for payloads and outputs (default lava-<realm>).
        #[arg(long)]
        bucket: Option<String>,
        /// KMS key for uploads (default: SSE AES256).
        #[arg(long)]
        s3_key: Option<String>,
        /// Queue visibility timeout in seconds.
        #[arg(long, default_value_t = 3600)]
        visibility: u32,
    },
    /// Load items from JSON or YAML files (`-` for stdin). All are validated before any is written.
    Import {
        /// Files holding a document, a list of items or one item.
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Print the events items of a job's runs (one run with --run), oldest first.
    Events {
        /// The job.
        #[arg(short, long)]
        job: String,
        /// One run id.
        #[arg(long)]
        run: Option<String>,
    },
    /// Print the realm item, jobs, connections and s3triggers.
    Export {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
    /// Manage the secrets connections name: SSM parameters, or Secrets
    /// Manager secrets with --secrets-manager (on the local backend, files
    /// under <DIR>/secrets and <DIR>/secrets/sm).
    #[command(subcommand)]
    Secret(SecretCommand),
}

/// `lava-realm secret` subcommands.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a secret. The value is read from stdin (one trailing newline
    /// dropped), never from the command line, where `ps` would show it.
    /// SSM parameters are written as SecureString.
    Put {
        /// Full SSM parameter name (e.g. /lava/<realm>/db-password) or Secrets Manager id.
        name: String,
        /// A Secrets Manager secret instead of an SSM parameter.
        #[arg(long)]
        secrets_manager: bool,
        /// KMS key for an SSM SecureString (default: the account's SSM key).
        #[arg(long)]
        kms_key: Option<String>,
    },
    /// Print a secret's value.
    Get {
        /// Full SSM parameter name or Secrets Manager id.
        name: String,
        /// A Secrets Manager secret instead of an SSM parameter.
        #[arg(long)]
        secrets_manager: bool,
    },
    /// List secret names, one a line.
    List {
        /// Only names starting with this (default /lava/<realm>/).
        prefix: Option<String>,
        /// Secrets Manager secrets instead of SSM parameters.
        #[arg(long)]
        secrets_manager: bool,
    },
}

/// A usage problem clap cannot see (a missing realm): exit status 2, as
/// for clap's own usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(String);

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Pretty JSON.
    Json,
    /// YAML.
    Yaml,
}

/// Runs `lava-realm`.
pub async fn run(args: Args) -> Result<()> {
    let Some(realm) = args.common.realm().map(str::to_string) else {
        return Err(
            UsageError("Lava realm must be specified (-r/--realm or LAVA_REALM)".into()).into(),
        );
    };
    args.common.init_logging()?;
    let spec = BackendSpec::parse(&args.common.backend)?;
    if let Command::Secret(command) = args.command {
        let secrets = connect_secrets(&spec, args.common.profile.as_deref()).await;
        return secret(secrets.as_ref(), &realm, command).await;
    }
    let backend = Backend::connect(&spec, args.common.profile.as_deref()).await?;
    match args.command {
        Command::Create {
            workers,
            bucket,
            s3_key,
            visibility,
        } => {
            let setup = RealmSetup {
                workers,
                bucket,
                s3_key,
                visibility_secs: visibility,
                ..RealmSetup::new(&realm, &[])
            };
            let created = provision::create_realm(&backend, &setup)
                .await
                .with_context(|| format!("cannot create realm {realm}"))?;
            println!("{}", serde_json::to_string_pretty(created.item())?);
        }
        Command::Import { files } => {
            let mut doc = RealmDocument::default();
            for file in &files {
                let text = if file == "-" {
                    let mut text = String::new();
                    std::io::stdin().read_to_string(&mut text)?;
                    text
                } else {
                    std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?
                };
                doc.merge(RealmDocument::parse(&text, file)?);
            }
            if doc.realm.is_none()
                && doc.jobs.is_empty()
                && doc.connections.is_empty()
                && doc.s3triggers.is_empty()
            {
                bail!("nothing to import in {}", files.join(", "));
            }
            for warning in doc.load(&backend, &realm).await? {
                tracing::warn!("{warning}");
            }
            tracing::info!(
                "imported into realm {realm}: {} realm item, {} jobs, {} connections, {} s3triggers",
                usize::from(doc.realm.is_some()),
                doc.jobs.len(),
                doc.connections.len(),
                doc.s3triggers.len()
            );
        }
        Command::Events { job, run } => {
            let items = match run {
                Some(run_id) => backend
                    .tables
                    .get(&realm, Table::Events, &Key::with_sort(&job, &run_id), true)
                    .await?
                    .into_iter()
                    .collect(),
                None => {
                    backend
                        .tables
                        .query(&realm, Index::EventsByTime, &job, None)
                        .await?
                }
            };
            if items.is_empty() {
                bail!("no events for job {job} in realm {realm}");
            }
            let list: Vec<serde_json::Value> =
                items.into_iter().map(serde_json::Value::Object).collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        Command::Export { format } => {
            let doc = RealmDocument::export(&backend, &realm).await?;
            let value = doc.to_value();
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&value)?),
                Format::Yaml => print!("{}", serde_yaml_ng::to_string(&value)?),
            }
        }
        Command::Secret(_) => {}
    }
    Ok(())
}

/// Runs a `lava-realm secret` subcommand.
async fn secret(secrets: &dyn Secrets, realm: &str, command: SecretCommand) -> Result<()> {
    match command {
        SecretCommand::Put {
            name,
            secrets_manager,
            kms_key,
        } => {
            let mut value = String::new();
            std::io::stdin()
                .read_to_string(&mut value)
                .context("cannot read the secret from stdin")?;
            if value.ends_with('\n') {
                value.pop();
            }
            if value.is_empty() {
                bail!("{name}: empty value on stdin: nothing stored");
            }
            if secrets_manager {
                secrets.put_secret(&name, &value).await
            } else {
                secrets
                    .put_parameter(&name, &value, kms_key.as_deref())
                    .await
            }
            .with_context(|| format!("cannot store {name}"))?;
            tracing::info!("stored {name}");
        }
        SecretCommand::Get {
            name,
            secrets_manager,
        } => {
            let value = if secrets_manager {
                match secrets.secret(&name).await? {
                    lava_common::store::SecretValue::Text(text) => text,
                    lava_common::store::SecretValue::Binary(_) => {
                        bail!("{name}: a binary secret")
                    }
                }
            } else {
                secrets.parameter(&name).await?
            };
            println!("{value}");
        }
        SecretCommand::List {
            prefix,
            secrets_manager,
        } => {
            let prefix = prefix.unwrap_or_else(|| format!("/lava/{realm}/"));
            let names = if secrets_manager {
                secrets.list_secrets(&prefix).await?
            } else {
                secrets.list_parameters(&prefix).await?
            };
            for name in names {
                println!("{name}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches};

    /// Parses `argv` as if no `LAVA_*` variable were set.
    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        let cmd = Args::command().mut_args(|a| a.env(None));
        Args::from_arg_matches(&cmd.try_get_matches_from(argv)?)
    }

    #[test]
    fn cli_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn common_flags_before_or_after_the_subcommand() {
        for argv in [
            &[
                "lava-realm",
                "create",
                "-r",
                "demo",
                "-w",
                "core",
                "--level",
                "warning",
            ][..],
            &[
                "lava-realm",
                "-r",
                "demo",
                "--level",
                "warning",
                "create",
                "-w",
                "core",
            ],
        ] {
            let args = parse(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            assert_eq!(args.common.realm(), Some("demo"));
            let log = args.common.log_options();
            assert_eq!(
                (log.level.as_str(), log.tag.as_str()),
                ("warning", "lava-realm")
            );
            let Command::Create { workers, .. } = args.command else {
                panic!("{argv:?}");
            };
            assert_eq!(workers, ["core"]);
        }
        let args = parse(&["lava-realm", "export", "--backend", "local:/x"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(args.common.backend, "local:/x");
        assert_eq!(args.common.realm(), None, "checked by run, exit 2");
    }

    #[test]
    fn secret_subcommands_take_names_never_values() {
        let args = parse(&["lava-realm", "-r", "demo", "secret", "put", "/lava/demo/pw"])
            .unwrap_or_else(|e| panic!("{e}"));
        let Command::Secret(SecretCommand::Put {
            name,
            secrets_manager,
            kms_key,
        }) = args.command
        else {
            panic!("{:?}", args.command);
        };
        assert_eq!(
            (name.as_str(), secrets_manager, kms_key),
            ("/lava/demo/pw", false, None)
        );
        // The value never comes from the command line.
        assert!(parse(&["lava-realm", "-r", "d", "secret", "put", "/n", "value"]).is_err());
        let args = parse(&[
            "lava-realm",
            "secret",
            "list",
            "--secrets-manager",
            "-r",
            "d",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            args.command,
            Command::Secret(SecretCommand::List {
                prefix: None,
                secrets_manager: true
            })
        ));
    }

    #[tokio::test]
    async fn local_secrets_round_trip_through_the_seam() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let spec = BackendSpec::Local(dir.path().to_path_buf());
        let secrets = connect_secrets(&spec, None).await;
        secrets
            .put_parameter("/lava/demo/pw", "v", None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let listed = secret(
            secrets.as_ref(),
            "demo",
            SecretCommand::List {
                prefix: None,
                secrets_manager: false,
            },
        )
        .await;
        assert!(listed.is_ok(), "{listed:?}");
        let missing = secret(
            secrets.as_ref(),
            "demo",
            SecretCommand::Get {
                name: "/lava/demo/none".into(),
                secrets_manager: false,
            },
        )
        .await;
        assert!(
            missing.is_err_and(|e| e.to_string().contains("/lava/demo/none")),
            "a missing secret names itself"
        );
    }

    #[tokio::test]
    async fn a_missing_realm_is_a_usage_error() {
        let args = parse(&["lava-realm", "export"]).unwrap_or_else(|e| panic!("{e}"));
        let err = run(args).await.err().unwrap_or_else(|| panic!("no error"));
        assert!(err.is::<UsageError>(), "{err}");
    }

    #[test]
    fn reads_only_variables_payloads_may_pass_on() {
        let cmd = Args::command();
        let mut read: Vec<_> = cmd.get_arguments().filter_map(|a| a.get_env()).collect();
        read.sort();
        assert_eq!(read, ["LAVA_BACKEND", "LAVA_LOGLEVEL", "LAVA_REALM"]);
    }
}
