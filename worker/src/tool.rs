//! What `lava-email` and `lava-slack` share: the realm from `-r` or
//! `LAVA_REALM`, the backend, the realm's configuration, connection lookup,
//! the SES client, reading the body, and the exit statuses (0 done, 1 an
//! error printed as `<prog>: <message>`, 2 bad usage or an interrupt).

use std::io::Read;
use std::process::ExitCode;
use std::sync::Arc;

use lava_common::cli::CommonArgs;
use lava_common::config::Config;
use lava_common::connection::{AwsResolver, AwsSettings, Connections};
use lava_common::spec::Realm;
use lava_common::store::{
    BackendSpec, Connector, Engine, Key, Objects, ParameterCache, Seams, Table,
};

use crate::ses::Ses;

/// Why a command stopped.
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
            Failure::Usage(_) => 2,
            Failure::Error(_) => 1,
        }
    }
}

/// An error (exit 1).
pub fn error(e: impl std::fmt::Display) -> Failure {
    Failure::Error(e.to_string())
}

/// Where a command works: its realm's connections, configuration, objects
/// and SES.
pub struct Setup {
    /// Connection lookup (no secrets cached: the command is short-lived).
    pub connections: Connections,
    /// The realm's configuration (`LAVA_<NAME>` → realm `config` → default).
    pub config: Config,
    /// Objects, for `s3://` attachments.
    pub objects: Arc<dyn Objects>,
    /// SES (none on the local backend).
    pub ses: Ses,
}

/// Starts logging and opens the realm named by the common flags.
pub async fn setup(common: &CommonArgs) -> Result<Setup, Failure> {
    common
        .init_logging()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let Some(realm) = common.realm().map(str::to_string) else {
        return Err(Failure::Usage(
            "Lava realm must be specified via -r, --realm or LAVA_REALM environment variable."
                .into(),
        ));
    };
    let spec = BackendSpec::parse(&common.backend).map_err(|e| Failure::Usage(e.to_string()))?;
    let seams = Seams::from(&spec);
    let connector = Connector::new(common.profile.as_deref());
    let tables = connector.tables(&seams.tables).await.map_err(error)?;
    let objects = connector.objects(&seams.objects).await.map_err(error)?;
    let realm_config = match tables
        .get(&realm, Table::Realms, &Key::new(&realm), false)
        .await
    {
        Ok(Some(item)) => Realm::from_item(item)
            .map(|r| r.config())
            .unwrap_or_default(),
        _ => serde_json::Map::new(),
    };
    let ses = match &seams.bus {
        Engine::Aws => Ses::Aws(Box::new(connector.aws_config().await.clone())),
        Engine::Local(_) => Ses::Local,
    };
    let parameters = ParameterCache::new(connector.secrets(&seams.secrets).await, None, 0);
    let connections = Connections::new(
        &realm,
        tables,
        parameters,
        AwsResolver::new(common.profile.as_deref(), AwsSettings::default()),
    );
    Ok(Setup {
        connections,
        config: Config::from_env(&realm_config),
        objects,
        ses,
    })
}

/// The body: the file named (`-` or none: stdin), at most `limit` bytes.
pub fn read_body(file: Option<&str>, limit: u64) -> Result<String, Failure> {
    let mut bytes = Vec::new();
    let read = match file {
        None | Some("-") => std::io::stdin().take(limit).read_to_end(&mut bytes),
        Some(path) => std::fs::File::open(path)
            .and_then(|f| f.take(limit).read_to_end(&mut bytes))
            .map_err(|e| std::io::Error::new(e.kind(), format!("{path}: {e}"))),
    };
    read.map_err(error)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Runs a command's future on a current-thread runtime; prints a failure as
/// `<tag>: <message>` and gives the exit status.
pub fn main<F>(tag: &str, work: F) -> ExitCode
where
    F: std::future::Future<Output = Result<(), Failure>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{tag}: cannot start: {e}");
            return ExitCode::from(70);
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = work => Some(outcome),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match outcome {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(failure)) => {
            eprintln!("{tag}: {failure}");
            ExitCode::from(failure.status())
        }
        None => {
            eprintln!("Interrupt");
            ExitCode::from(2)
        }
    }
}
