//! A small in-memory cache shared by clones: entries expire `ttl` after
//! they were stored, and at most `size` are kept (the oldest goes first).
//! A zero `ttl` or `size` keeps nothing. Used for secrets and credentials,
//! whose reads cost a request each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// See the module documentation.
#[derive(Clone)]
pub struct TtlCache<V> {
    ttl: Duration,
    size: usize,
    entries: Arc<Mutex<HashMap<String, (Instant, V)>>>,
}

impl<V: Clone> TtlCache<V> {
    /// An empty cache.
    pub fn new(ttl: Duration, size: usize) -> Self {
        Self {
            ttl,
            size,
            entries: Arc::default(),
        }
    }

    /// True when it keeps anything at all.
    pub fn is_active(&self) -> bool {
        !self.ttl.is_zero() && self.size > 0
    }

    /// How many entries it holds (some may have expired since).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, (Instant, V)>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value stored under `key`, while it is fresh.
    pub fn get(&self, key: &str) -> Option<V> {
        let entries = self.lock();
        let (at, value) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    /// Stores `value` under `key`, dropping expired entries and, when full,
    /// the oldest.
    pub fn put(&self, key: &str, value: V) {
        if !self.is_active() {
            return;
        }
        let mut entries = self.lock();
        entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
        while entries.len() >= self.size {
            let oldest = entries
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => entries.remove(&k),
                None => break,
            };
        }
        entries.insert(key.to_string(), (Instant::now(), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_while_fresh() {
        let cache = TtlCache::new(Duration::from_secs(60), 2);
        cache.put("a", 1);
        cache.put("b", 2);
        cache.put("c", 3);
        assert_eq!(cache.get("a"), None, "the oldest went");
        assert_eq!((cache.get("b"), cache.get("c")), (Some(2), Some(3)));
        let off = TtlCache::new(Duration::ZERO, 5);
        off.put("a", 1);
        assert_eq!(off.get("a"), None);
        assert!(!off.is_active());
    }
}
