//! The secrets seam: SSM parameters (read with decryption) and Secrets
//! Manager secrets, which connections name instead of holding secrets
//! themselves. SSM and Secrets Manager on AWS; files under `<DIR>/secrets`
//! on the local backend. Reads of SSM parameters go through a
//! [`ParameterCache`] (`PARAM_CACHE_TTL`, `PARAM_CACHE_SIZE`).
//!
//! Values are secrets: nothing here logs them or puts them in an error.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;
use crate::ttl_cache::TtlCache;

/// A Secrets Manager secret's value.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretValue {
    /// A string secret (lava expects a JSON object in it).
    Text(String),
    /// A binary secret (lava refuses those: "Binary secret not allowed").
    Binary(Vec<u8>),
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text(_) => f.write_str("Text(<redacted>)"),
            Self::Binary(_) => f.write_str("Binary(<redacted>)"),
        }
    }
}

/// The secrets seam. A missing parameter or secret is
/// [`StoreError::SecretNotFound`] naming it.
#[async_trait]
pub trait Secrets: Send + Sync {
    /// An SSM parameter's value, decrypted; `name` is the full parameter
    /// name (`/lava/<realm>/…` by convention).
    async fn parameter(&self, name: &str) -> Result<String, StoreError>;
    /// Writes an SSM parameter as a `SecureString` (locally, a 0600 file),
    /// replacing any value; `kms_key` selects the key on AWS.
    async fn put_parameter(
        &self,
        name: &str,
        value: &str,
        kms_key: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Names of the SSM parameters that start with `prefix`, sorted.
    async fn list_parameters(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
    /// A Secrets Manager secret's current value.
    async fn secret(&self, id: &str) -> Result<SecretValue, StoreError>;
    /// Creates a Secrets Manager string secret or stores a new value for it.
    async fn put_secret(&self, id: &str, value: &str) -> Result<(), StoreError>;
    /// Ids (names) of the Secrets Manager secrets that start with `prefix`, sorted.
    async fn list_secrets(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

/// SSM parameter values kept in memory for `ttl`, at most `size` of them, in
/// front of a [`Secrets`] seam. A `ttl` of `None` or zero, or a `size` of
/// zero, caches nothing (the original caches for ever when its TTL is ≤ 0).
#[derive(Clone)]
pub struct ParameterCache {
    secrets: Arc<dyn Secrets>,
    entries: TtlCache<String>,
}

impl std::fmt::Debug for ParameterCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParameterCache")
            .field("active", &self.entries.is_active())
            .finish_non_exhaustive()
    }
}

impl ParameterCache {
    /// A cache in front of `secrets`.
    pub fn new(secrets: Arc<dyn Secrets>, ttl: Option<Duration>, size: usize) -> Self {
        Self {
            secrets,
            entries: TtlCache::new(ttl.unwrap_or_default(), size),
        }
    }

    /// The seam behind the cache.
    pub fn secrets(&self) -> &Arc<dyn Secrets> {
        &self.secrets
    }

    /// A parameter's value, from the cache while it is fresh.
    pub async fn parameter(&self, name: &str) -> Result<String, StoreError> {
        if let Some(value) = self.entries.get(name) {
            return Ok(value);
        }
        let value = self.secrets.parameter(name).await?;
        self.entries.put(name, value.clone());
        Ok(value)
    }

    /// A parameter's value read afresh, bypassing the cache (external ids).
    pub async fn parameter_uncached(&self, name: &str) -> Result<String, StoreError> {
        self.secrets.parameter(name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts reads; every parameter's value is its name reversed.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    #[async_trait]
    impl Secrets for Counting {
        async fn parameter(&self, name: &str) -> Result<String, StoreError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            if name == "missing" {
                return Err(StoreError::SecretNotFound(name.into()));
            }
            Ok(name.chars().rev().collect())
        }
        async fn put_parameter(&self, _: &str, _: &str, _: Option<&str>) -> Result<(), StoreError> {
            Ok(())
        }
        async fn list_parameters(&self, _: &str) -> Result<Vec<String>, StoreError> {
            Ok(Vec::new())
        }
        async fn secret(&self, _: &str) -> Result<SecretValue, StoreError> {
            Ok(SecretValue::Binary(Vec::new()))
        }
        async fn put_secret(&self, _: &str, _: &str) -> Result<(), StoreError> {
            Ok(())
        }
        async fn list_secrets(&self, _: &str) -> Result<Vec<String>, StoreError> {
            Ok(Vec::new())
        }
    }

    fn cache(ttl: Option<Duration>, size: usize) -> (Arc<Counting>, ParameterCache) {
        let counting = Arc::new(Counting::default());
        let seam: Arc<dyn Secrets> = counting.clone();
        (counting, ParameterCache::new(seam, ttl, size))
    }

    #[tokio::test]
    async fn fresh_values_come_from_the_cache() {
        let (reads, c) = cache(Some(Duration::from_secs(60)), 10);
        assert_eq!(c.parameter("abc").await, Ok("cba".into()));
        assert_eq!(c.parameter("abc").await, Ok("cba".into()));
        assert_eq!(reads.0.load(Ordering::SeqCst), 1);
        assert_eq!(c.parameter_uncached("abc").await, Ok("cba".into()));
        assert_eq!(reads.0.load(Ordering::SeqCst), 2);
        // Failures are not cached.
        assert!(c.parameter("missing").await.is_err());
        assert!(c.parameter("missing").await.is_err());
        assert_eq!(reads.0.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn stale_values_are_read_again() {
        let (reads, c) = cache(Some(Duration::from_millis(30)), 10);
        c.parameter("a").await.ok();
        tokio::time::sleep(Duration::from_millis(50)).await;
        c.parameter("a").await.ok();
        assert_eq!(reads.0.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn the_cache_holds_at_most_size_entries() {
        let (reads, c) = cache(Some(Duration::from_secs(60)), 2);
        for name in ["a", "b", "c"] {
            c.parameter(name).await.ok();
        }
        assert_eq!(c.entries.len(), 2);
        // "a" was the oldest: evicted, read again.
        c.parameter("a").await.ok();
        assert_eq!(reads.0.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn no_ttl_or_no_size_caches_nothing() {
        for (ttl, size) in [
            (None, 10),
            (Some(Duration::ZERO), 10),
            (Some(Duration::from_secs(9)), 0),
        ] {
            let (reads, c) = cache(ttl, size);
            c.parameter("a").await.ok();
            c.parameter("a").await.ok();
            assert_eq!(reads.0.load(Ordering::SeqCst), 2, "{ttl:?} {size}");
        }
    }

    #[test]
    fn secret_values_do_not_debug_print() {
        let shown = format!("{:?}", SecretValue::Text("hunter2".into()));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
