//! `lava-realm`: create a realm on a backend, and import or export its
//! realm, job, connection and s3trigger items as JSON or YAML (DECISIONS.md 21).

use std::io::Read;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use lava_common::document::RealmDocument;
use lava_common::logging::{self, LogOptions};
use lava_common::provision::{self, RealmSetup};
use lava_common::store::{Backend, BackendSpec, Index, Key, Table};

/// Create lava realms and manage their configuration as code.
#[derive(Debug, Parser)]
#[command(name = "lava-realm", version)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
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
        env = "LAVA_LOGLEVEL",
        default_value = "info"
    )]
    pub level: String,
}

/// `lava-realm` subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the realm's tables, one queue per worker, the bucket and the realm item.
    Create {
        /// Realm name (letters, digits, _).
        #[arg(short, long, env = "LAVA_REALM")]
        realm: String,
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
        /// Realm name.
        #[arg(short, long, env = "LAVA_REALM")]
        realm: String,
        /// Files holding a document, a list of items or one item.
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Print the events items of a job's runs (one run with --run), oldest first.
    Events {
        /// Realm name.
        #[arg(short, long, env = "LAVA_REALM")]
        realm: String,
        /// The job.
        #[arg(short, long)]
        job: String,
        /// One run id.
        #[arg(long)]
        run: Option<String>,
    },
    /// Print the realm item, jobs, connections and s3triggers.
    Export {
        /// Realm name.
        #[arg(short, long, env = "LAVA_REALM")]
        realm: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
}

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
    logging::init(&LogOptions {
        level: args.level.clone(),
        json: false,
        target: None,
        tag: "lava-realm".into(),
    })?;
    let spec = BackendSpec::parse(&args.backend)?;
    let backend = Backend::connect(&spec, args.profile.as_deref()).await?;
    match args.command {
        Command::Create {
            realm,
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
        Command::Import { realm, files } => {
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
        Command::Events { realm, job, run } => {
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
        Command::Export { realm, format } => {
            let doc = RealmDocument::export(&backend, &realm).await?;
            let value = doc.to_value();
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&value)?),
                Format::Yaml => print!("{}", serde_yaml_ng::to_string(&value)?),
            }
        }
    }
    Ok(())
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
