//! Names derived from a realm and worker: table names, the dispatch queue,
//! the default bucket, and the rules realm and worker names must follow
//! (the queue `lava-<realm>-<worker>` must fit SQS's 80 characters and
//! parse back into realm and worker).

/// A realm or worker name that lava cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The realm name has characters other than letters, digits and `_`.
    #[error("bad realm name {0:?}: use letters, digits and _ only")]
    Realm(String),
    /// The worker name has characters other than letters, digits, `_` and `-`.
    #[error("bad worker name {0:?}: use letters, digits, _ and - only")]
    Worker(String),
    /// Realm and worker together are too long for the queue and IAM role names.
    #[error(
        "realm {realm:?} and worker {worker:?} are too long together ({len} characters, at most 51)"
    )]
    TooLong {
        /// The realm.
        realm: String,
        /// The worker.
        worker: String,
        /// Their combined length.
        len: usize,
    },
}

/// Checks a realm name: `[A-Za-z0-9_]+`.
pub fn check_realm(realm: &str) -> Result<(), NameError> {
    if !realm.is_empty()
        && realm
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        Ok(())
    } else {
        Err(NameError::Realm(realm.to_string()))
    }
}

/// Checks a worker name `[A-Za-z0-9_-]+` and its length together with the realm.
pub fn check_worker(realm: &str, worker: &str) -> Result<(), NameError> {
    if worker.is_empty()
        || !worker
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(NameError::Worker(worker.to_string()));
    }
    let len = realm.len() + worker.len();
    if len > 51 {
        return Err(NameError::TooLong {
            realm: realm.to_string(),
            worker: worker.to_string(),
            len,
        });
    }
    Ok(())
}

/// The dispatch queue of a worker fleet: `lava-<realm>-<worker>`.
pub fn queue_name(realm: &str, worker: &str) -> String {
    format!("lava-{realm}-{worker}")
}

/// The global realms table.
pub const REALMS_TABLE: &str = "lava.realms";

/// A per-realm table name: `lava.<realm>.<kind>`.
pub fn table_name(realm: &str, kind: &str) -> String {
    format!("lava.{realm}.{kind}")
}

/// The default bucket of a realm created by lava: `lava-<realm lower-cased, _ as ->`.
pub fn default_bucket(realm: &str) -> String {
    format!("lava-{}", realm.to_ascii_lowercase().replace('_', "-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realm_and_worker_rules() {
        assert!(check_realm("prod_2").is_ok());
        for bad in ["", "pro-d", "pro.d", "pr d", "é"] {
            assert!(check_realm(bad).is_err(), "{bad}");
        }
        assert!(check_worker("prod", "core-2_x").is_ok());
        assert!(check_worker("prod", "co.re").is_err());
        assert!(check_worker("prod", "").is_err());
        let long = "w".repeat(47);
        assert!(check_worker("prod", &long).is_ok());
        assert!(matches!(
            check_worker("prod", &format!("{long}w")),
            Err(NameError::TooLong { len: 52, .. })
        ));
    }

    #[test]
    fn derived_names() {
        assert_eq!(queue_name("prod", "core"), "lava-prod-core");
        assert_eq!(table_name("prod", "jobs"), "lava.prod.jobs");
        assert_eq!(default_bucket("My_Realm"), "lava-my-realm");
    }
}
