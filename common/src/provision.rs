//! Creating a realm on a backend: its tables (keys, indexes, TTL), one queue
//! per worker fleet, the bucket, and the realm item: what `lava-realm create`
//! and the test harness both call.

use serde_json::{Map, Value};

use crate::names::{self, NameError};
use crate::spec::{Realm, SpecError};
use crate::store::{Backend, StoreError, Table};

/// What to create.
#[derive(Debug, Clone, PartialEq)]
pub struct RealmSetup {
    /// Realm name.
    pub realm: String,
    /// Worker fleets that get a queue.
    pub workers: Vec<String>,
    /// Bucket for payloads and outputs (default `lava-<realm>`).
    pub bucket: Option<String>,
    /// KMS key for uploads; none means SSE AES256.
    pub s3_key: Option<String>,
    /// Queue visibility timeout in seconds.
    pub visibility_secs: u32,
    /// Realm `config` map.
    pub config: Map<String, Value>,
}

impl RealmSetup {
    /// A setup with the defaults: one hour of visibility, no KMS key, empty config.
    pub fn new(realm: &str, workers: &[&str]) -> Self {
        Self {
            realm: realm.to_string(),
            workers: workers.iter().map(|w| w.to_string()).collect(),
            bucket: None,
            s3_key: None,
            visibility_secs: 3600,
            config: Map::new(),
        }
    }
}

/// A realm that could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisionError {
    /// A name lava cannot use.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The backend refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The realm item would be invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
}

/// Creates (or completes) a realm; existing tables, queues and bucket are
/// kept, and the realm item is written last. The bucket's URL root comes
/// from the objects seam (`s3://<bucket>`, or `file:///<DIR>/objects/<bucket>`
/// on the local backend). Returns the realm record.
pub async fn create_realm(backend: &Backend, setup: &RealmSetup) -> Result<Realm, ProvisionError> {
    names::check_realm(&setup.realm)?;
    for worker in &setup.workers {
        names::check_worker(&setup.realm, worker)?;
    }
    let bucket = setup
        .bucket
        .clone()
        .unwrap_or_else(|| names::default_bucket(&setup.realm));
    backend.tables.create_realm_tables(&setup.realm).await?;
    for worker in &setup.workers {
        backend
            .queue
            .create(
                &names::queue_name(&setup.realm, worker),
                setup.visibility_secs,
            )
            .await?;
    }
    let root = backend.objects.bucket_url(&bucket);
    backend.objects.create_bucket(&root).await?;
    let mut item = Map::new();
    item.insert("realm".into(), Value::String(setup.realm.clone()));
    item.insert(
        "s3_payloads".into(),
        Value::String(format!("{root}/payloads")),
    );
    item.insert("s3_temp".into(), Value::String(format!("{root}/tmp")));
    if let Some(key) = &setup.s3_key {
        item.insert("s3_key".into(), Value::String(key.clone()));
    }
    item.insert("config".into(), Value::Object(setup.config.clone()));
    let realm = Realm::from_item(item)?;
    backend
        .tables
        .put(&setup.realm, Table::Realms, realm.item())
        .await?;
    Ok(realm)
}
