//! Choosing a backend (`--backend` / `LAVA_BACKEND`) and holding its seams.

use std::path::PathBuf;
use std::sync::Arc;

use super::engine::{Connector, Seams};
use super::{Objects, Queue, StoreError, Tables};

/// Which backend a process runs on, as given by `--backend` or
/// `LAVA_BACKEND`; `aws` is the default so existing realms and cron lines
/// keep working. Each value puts every seam on one engine ([`Seams::from`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendSpec {
    /// DynamoDB, SQS and S3: the default.
    Aws,
    /// The embedded backend rooted at a directory.
    Local(PathBuf),
}

impl BackendSpec {
    /// Reads `aws` or `local:<DIR>`.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        match text.trim() {
            "aws" => Ok(Self::Aws),
            other => match other.strip_prefix("local:") {
                Some(dir) if !dir.is_empty() => Ok(Self::Local(PathBuf::from(dir))),
                _ => Err(StoreError::BadRequest(format!(
                    "unknown backend {other:?}: use aws or local:<DIR>"
                ))),
            },
        }
    }
}

impl std::fmt::Display for BackendSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Aws => f.write_str("aws"),
            Self::Local(dir) => write!(f, "local:{}", dir.display()),
        }
    }
}

/// The seams of one backend.
#[derive(Clone)]
pub struct Backend {
    /// Realm tables.
    pub tables: Arc<dyn Tables>,
    /// Dispatch queues.
    pub queue: Arc<dyn Queue>,
    /// Payloads and outputs.
    pub objects: Arc<dyn Objects>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").finish_non_exhaustive()
    }
}

impl Backend {
    /// Connects to a backend. For AWS nothing is sent yet: clients connect on
    /// first use. The local backend opens (creating or migrating) `<DIR>/lava.db`.
    pub async fn connect(spec: &BackendSpec, profile: Option<&str>) -> Result<Self, StoreError> {
        Self::assemble(&Seams::from(spec), &Connector::new(profile)).await
    }

    /// Builds each seam on its own engine, sharing what `connector` has
    /// already set up.
    pub async fn assemble(seams: &Seams, connector: &Connector) -> Result<Self, StoreError> {
        Ok(Self {
            tables: connector.tables(&seams.tables).await?,
            queue: connector.queue(&seams.queue).await?,
            objects: connector.objects(&seams.objects).await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_specs() {
        assert_eq!(BackendSpec::parse("aws"), Ok(BackendSpec::Aws));
        assert_eq!(
            BackendSpec::parse("local:/tmp/x"),
            Ok(BackendSpec::Local("/tmp/x".into()))
        );
        assert!(BackendSpec::parse("local:").is_err());
        assert!(BackendSpec::parse("gcp").is_err());
    }
}
