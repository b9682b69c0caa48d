//! Which engine backs each seam, and building a seam from its engine. Each
//! seam (tables, queue, objects, event bus, secrets) is chosen and constructed on its
//! own; engines that several seams share (one AWS SDK configuration, one
//! opened local directory) are set up once, on first use, by a
//! [`Connector`]. A new engine is a module implementing the seam traits, a
//! variant of [`Engine`], and one match arm in each seam's constructor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_config::SdkConfig;
use tokio::sync::{Mutex, OnceCell};

use super::aws::{self, AwsBus, AwsObjects, AwsQueue, AwsSecrets, AwsTables};
use super::kms::{AwsKms, Kms, LocalKms};
use super::local::{self, LocalBus, LocalSecrets, LocalStore};
use super::{BackendSpec, EventBus, Objects, Queue, Secrets, StoreError, Tables};

/// The implementation behind one seam.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Engine {
    /// The AWS service for the seam: DynamoDB, SQS, S3, EventBridge, SSM
    /// and Secrets Manager, or KMS.
    Aws,
    /// The embedded engine rooted at a directory: SQLite `<DIR>/lava.db` for
    /// tables and queue, files under `<DIR>/objects`, `<DIR>/events.jsonl`,
    /// files under `<DIR>/secrets`, key files under `<DIR>/keys`.
    Local(PathBuf),
}

/// The engine chosen for each seam.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seams {
    /// Realm tables.
    pub tables: Engine,
    /// Dispatch queues.
    pub queue: Engine,
    /// Payloads and outputs.
    pub objects: Engine,
    /// Events of the `event` action.
    pub bus: Engine,
    /// SSM parameters and Secrets Manager secrets named by connections.
    pub secrets: Engine,
    /// Keys of secure state.
    pub kms: Engine,
}

impl Seams {
    /// Every seam on one engine.
    pub fn all(engine: Engine) -> Self {
        Self {
            tables: engine.clone(),
            queue: engine.clone(),
            objects: engine.clone(),
            bus: engine.clone(),
            secrets: engine.clone(),
            kms: engine,
        }
    }
}

impl From<&BackendSpec> for Engine {
    fn from(spec: &BackendSpec) -> Self {
        match spec {
            BackendSpec::Aws => Engine::Aws,
            BackendSpec::Local(dir) => Engine::Local(dir.clone()),
        }
    }
}

impl From<&BackendSpec> for Seams {
    /// `aws` and `local:<DIR>` put every seam on that one engine.
    fn from(spec: &BackendSpec) -> Self {
        Seams::all(Engine::from(spec))
    }
}

/// Builds seams, setting up each engine once and sharing it between the
/// seams that use it: the AWS SDK configuration (region, credentials,
/// endpoint) is loaded on first use, and a local directory is opened
/// (created or migrated) once however many seams live in it.
pub struct Connector {
    profile: Option<String>,
    aws: OnceCell<SdkConfig>,
    local: Mutex<HashMap<PathBuf, LocalStore>>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// A connector; `profile` names the AWS shared-config profile, if any.
    /// Nothing is loaded or opened yet.
    pub fn new(profile: Option<&str>) -> Self {
        Self {
            profile: profile.map(str::to_string),
            aws: OnceCell::new(),
            local: Mutex::new(HashMap::new()),
        }
    }

    /// The AWS SDK configuration, loaded on first call. Nothing is sent:
    /// clients connect on first use.
    pub async fn aws_config(&self) -> &SdkConfig {
        self.aws
            .get_or_init(|| aws::sdk_config(self.profile.as_deref()))
            .await
    }

    /// The local engine rooted at `dir`, opened (created or migrated) on
    /// first call for that directory.
    pub async fn local_store(&self, dir: &Path) -> Result<LocalStore, StoreError> {
        let mut opened = self.local.lock().await;
        if let Some(store) = opened.get(dir) {
            return Ok(store.clone());
        }
        let store = local::open(dir).await?;
        opened.insert(dir.to_path_buf(), store.clone());
        Ok(store)
    }

    /// The tables seam on `engine`.
    pub async fn tables(&self, engine: &Engine) -> Result<Arc<dyn Tables>, StoreError> {
        Ok(match engine {
            Engine::Aws => Arc::new(AwsTables::new(self.aws_config().await)),
            Engine::Local(dir) => Arc::new(self.local_store(dir).await?.tables),
        })
    }

    /// The queue seam on `engine`.
    pub async fn queue(&self, engine: &Engine) -> Result<Arc<dyn Queue>, StoreError> {
        Ok(match engine {
            Engine::Aws => Arc::new(AwsQueue::new(self.aws_config().await)),
            Engine::Local(dir) => Arc::new(self.local_store(dir).await?.queue),
        })
    }

    /// The objects seam on `engine`.
    pub async fn objects(&self, engine: &Engine) -> Result<Arc<dyn Objects>, StoreError> {
        Ok(match engine {
            Engine::Aws => Arc::new(AwsObjects::new(self.aws_config().await)),
            Engine::Local(dir) => Arc::new(self.local_store(dir).await?.objects),
        })
    }

    /// The event-bus seam on `engine`. The local bus appends to
    /// `<DIR>/events.jsonl` without opening the database.
    pub async fn bus(&self, engine: &Engine) -> Result<Arc<dyn EventBus>, StoreError> {
        Ok(match engine {
            Engine::Aws => Arc::new(AwsBus::new(self.aws_config().await)),
            Engine::Local(dir) => Arc::new(LocalBus::new(dir)),
        })
    }

    /// The secrets seam on `engine`: SSM and Secrets Manager, or files under
    /// `<DIR>/secrets` (the database is not opened).
    pub async fn secrets(&self, engine: &Engine) -> Arc<dyn Secrets> {
        match engine {
            Engine::Aws => Arc::new(AwsSecrets::new(self.aws_config().await)),
            Engine::Local(dir) => Arc::new(LocalSecrets::new(dir)),
        }
    }

    /// The key seam on `engine`: KMS, or the realm key files under
    /// `<DIR>/keys` (the database is not opened).
    pub async fn kms(&self, engine: &Engine) -> Arc<dyn Kms> {
        match engine {
            Engine::Aws => Arc::new(AwsKms::new(self.aws_config().await)),
            Engine::Local(dir) => Arc::new(LocalKms::new(dir)),
        }
    }
}

/// The event bus of a backend given on the command line (`aws` or
/// `local:<DIR>`), on its own: EventBridge, or `<DIR>/events.jsonl`.
pub async fn connect_bus(
    spec: &BackendSpec,
    profile: Option<&str>,
) -> Result<Arc<dyn EventBus>, StoreError> {
    Connector::new(profile).bus(&Seams::from(spec).bus).await
}

/// The secrets seam of a backend given on the command line, on its own.
pub async fn connect_secrets(spec: &BackendSpec, profile: Option<&str>) -> Arc<dyn Secrets> {
    Connector::new(profile)
        .secrets(&Seams::from(spec).secrets)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_spec_puts_every_seam_on_its_engine() {
        let dir = PathBuf::from("/tmp/x");
        let seams = Seams::from(&BackendSpec::Local(dir.clone()));
        assert_eq!(seams, Seams::all(Engine::Local(dir)));
        assert_eq!(seams.tables, seams.objects);
        assert_eq!(Seams::from(&BackendSpec::Aws).queue, Engine::Aws);
    }

    #[tokio::test]
    async fn a_local_directory_is_opened_once_for_all_its_seams() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let connector = Connector::new(None);
        let engine = Engine::Local(dir.path().to_path_buf());
        let tables = connector.tables(&engine).await;
        assert!(tables.is_ok(), "{:?}", tables.err());
        assert!(dir.path().join("lava.db").is_file());
        assert_eq!(connector.local.lock().await.len(), 1);
        let queue = connector.queue(&engine).await;
        assert!(queue.is_ok(), "{:?}", queue.err());
        let objects = connector.objects(&engine).await;
        let objects = objects.unwrap_or_else(|e| panic!("{e}"));
        assert!(objects.bucket_url("b").ends_with("/objects/b"));
        assert_eq!(connector.local.lock().await.len(), 1);
    }
}
