//! Realm configuration as code: a document of realm, job, connection and
//! s3trigger items (the table item shapes) read from JSON or YAML, validated
//! as a whole, written to a backend, and exported back (`lava-realm import`
//! and `export`).

use serde_json::{Map, Value};

use crate::spec::{Connection, Item, JobSpec, Realm, S3Trigger, SpecError};
use crate::store::{Backend, StoreError, Table};

/// The items of one realm, grouped by table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RealmDocument {
    /// The realm record, if present.
    pub realm: Option<Item>,
    /// Job items.
    pub jobs: Vec<Item>,
    /// Connection items.
    pub connections: Vec<Item>,
    /// S3 trigger items.
    pub s3triggers: Vec<Item>,
}

/// A document that cannot be read or loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// Not JSON or YAML.
    #[error("{source_name}: not JSON or YAML: {reason}")]
    Syntax {
        /// File name or `-`.
        source_name: String,
        /// Parser message.
        reason: String,
    },
    /// An item whose table cannot be told.
    #[error(
        "{source_name}: item {index}: cannot tell its table (no realm, job_id, conn_id or trigger_id key)"
    )]
    Unclassified {
        /// File name.
        source_name: String,
        /// 1-based position.
        index: usize,
    },
    /// An item that fails validation.
    #[error("{what}: {error}")]
    Invalid {
        /// Which item (`job etl/x`, …).
        what: String,
        /// The validation error.
        error: SpecError,
    },
    /// The realm item names another realm.
    #[error("the realm item is for realm {found:?}, not {expected:?}")]
    OtherRealm {
        /// The realm being loaded.
        expected: String,
        /// The realm the item names.
        found: String,
    },
    /// The backend refused a write or read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RealmDocument {
    /// Reads JSON or YAML text: a document map (`realm`, `jobs`,
    /// `connections`, `s3triggers`), a list of items, or one item.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, DocumentError> {
        let value: Value = serde_json::from_str(text).or_else(|_| {
            serde_yaml_ng::from_str(text).map_err(|e| DocumentError::Syntax {
                source_name: source_name.to_string(),
                reason: e.to_string(),
            })
        })?;
        let mut doc = Self::default();
        let is_document = value.as_object().is_some_and(|m| {
            m.get("realm").is_some_and(Value::is_object)
                || ["jobs", "connections", "s3triggers"]
                    .iter()
                    .any(|k| m.contains_key(*k))
        });
        let items: Vec<Value> = match value {
            Value::Object(mut map) if is_document => {
                if let Some(Value::Object(realm)) = map.remove("realm") {
                    doc.realm = Some(realm);
                }
                let mut all = Vec::new();
                for key in ["jobs", "connections", "s3triggers"] {
                    match map.remove(key) {
                        Some(Value::Array(list)) => all.extend(list),
                        Some(Value::Null) | None => {}
                        Some(other) => all.push(other),
                    }
                }
                all
            }
            Value::Array(list) => list,
            other => vec![other],
        };
        for (i, item) in items.into_iter().enumerate() {
            doc.add(item, source_name, i + 1)?;
        }
        Ok(doc)
    }

    fn add(&mut self, item: Value, source_name: &str, index: usize) -> Result<(), DocumentError> {
        let unclassified = || DocumentError::Unclassified {
            source_name: source_name.to_string(),
            index,
        };
        let Value::Object(map) = item else {
            return Err(unclassified());
        };
        if map.contains_key("trigger_id") {
            self.s3triggers.push(map);
        } else if map.contains_key("conn_id") {
            self.connections.push(map);
        } else if map.contains_key("job_id") {
            self.jobs.push(map);
        } else if map.contains_key("realm") && map.contains_key("s3_payloads") {
            self.realm = Some(map);
        } else {
            return Err(unclassified());
        }
        Ok(())
    }

    /// Adds every item of another document (a later realm item wins).
    pub fn merge(&mut self, other: RealmDocument) {
        if other.realm.is_some() {
            self.realm = other.realm;
        }
        self.jobs.extend(other.jobs);
        self.connections.extend(other.connections);
        self.s3triggers.extend(other.s3triggers);
    }

    /// Validates every item as lava reads it; returns the warnings (unknown
    /// job keys, missing owner or description) or the first error.
    pub fn validate(&self, realm: &str) -> Result<Vec<String>, DocumentError> {
        let invalid = |what: String| move |error| DocumentError::Invalid { what, error };
        let mut warnings = Vec::new();
        if let Some(item) = &self.realm {
            let r = Realm::from_item(item.clone()).map_err(invalid("realm".into()))?;
            if r.name() != realm {
                return Err(DocumentError::OtherRealm {
                    expected: realm.to_string(),
                    found: r.name().to_string(),
                });
            }
        }
        for item in &self.jobs {
            let id = key_text(item, "job_id");
            let job = JobSpec::from_item(item.clone()).map_err(invalid(format!("job {id}")))?;
            warnings.extend(job.warnings.iter().map(|w| format!("job {id}: {w}")));
        }
        for item in &self.connections {
            let id = key_text(item, "conn_id");
            Connection::from_item(item.clone()).map_err(invalid(format!("connection {id}")))?;
        }
        for item in &self.s3triggers {
            let id = key_text(item, "trigger_id");
            S3Trigger::from_item(item.clone(), 900.0)
                .map_err(invalid(format!("s3trigger {id}")))?;
        }
        Ok(warnings)
    }

    /// Validates, then writes every item (replacing items with the same key).
    /// Nothing is written when any item is invalid.
    pub async fn load(&self, backend: &Backend, realm: &str) -> Result<Vec<String>, DocumentError> {
        let warnings = self.validate(realm)?;
        if let Some(item) = &self.realm {
            backend.tables.put(realm, Table::Realms, item).await?;
        }
        for (table, items) in [
            (Table::Jobs, &self.jobs),
            (Table::Connections, &self.connections),
            (Table::S3Triggers, &self.s3triggers),
        ] {
            for item in items {
                backend.tables.put(realm, table, item).await?;
            }
        }
        Ok(warnings)
    }

    /// Reads a realm's record and its jobs, connections and triggers, sorted by key.
    pub async fn export(backend: &Backend, realm: &str) -> Result<Self, DocumentError> {
        let realm_item = backend
            .tables
            .get(realm, Table::Realms, &crate::store::Key::new(realm), false)
            .await?;
        let sorted = |mut items: Vec<Item>, key: &str| {
            items.sort_by_key(|a| key_text(a, key));
            items
        };
        Ok(Self {
            realm: realm_item,
            jobs: sorted(backend.tables.scan(realm, Table::Jobs).await?, "job_id"),
            connections: sorted(
                backend.tables.scan(realm, Table::Connections).await?,
                "conn_id",
            ),
            s3triggers: sorted(
                backend.tables.scan(realm, Table::S3Triggers).await?,
                "trigger_id",
            ),
        })
    }

    /// The document as one JSON value (`realm`, `jobs`, `connections`, `s3triggers`).
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        if let Some(r) = &self.realm {
            map.insert("realm".into(), Value::Object(r.clone()));
        }
        let list =
            |items: &Vec<Item>| Value::Array(items.iter().cloned().map(Value::Object).collect());
        map.insert("jobs".into(), list(&self.jobs));
        map.insert("connections".into(), list(&self.connections));
        map.insert("s3triggers".into(), list(&self.s3triggers));
        Value::Object(map)
    }
}

fn key_text(item: &Item, key: &str) -> String {
    item.get(key).map(crate::units::show).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_shape() {
        let doc = RealmDocument::parse(
            r#"{"realm": {"realm": "demo", "s3_payloads": "s3://b/p", "s3_temp": "s3://b/t"},
                "jobs": [{"job_id": "a", "type": "cmd", "worker": "core", "payload": "true"}],
                "connections": [{"conn_id": "db", "type": "postgres", "enabled": true}],
                "s3triggers": []}"#,
            "doc.json",
        )
        .expect("parses");
        assert_eq!(doc.jobs.len(), 1);
        assert_eq!(doc.connections.len(), 1);
        assert!(doc.realm.is_some());
        assert_eq!(doc.validate("demo").map(|w| w.len()), Ok(2));
        assert!(matches!(
            doc.validate("prod"),
            Err(DocumentError::OtherRealm { .. })
        ));

        let yaml = "- job_id: a\n  type: cmd\n  worker: core\n  payload: echo 1\n  iteration_limit: 3\n- trigger_id: t\n  bucket: b\n  prefix: p\n  job_id: a\n  enabled: true\n";
        let doc = RealmDocument::parse(yaml, "x.yaml").expect("yaml");
        assert_eq!(doc.jobs[0].get("iteration_limit"), Some(&Value::from(3)));
        assert_eq!(doc.s3triggers.len(), 1);

        let single = RealmDocument::parse(
            r#"{"job_id": "b", "type": "log", "worker": "w", "payload": null}"#,
            "-",
        )
        .expect("single item");
        assert_eq!(single.jobs.len(), 1);
    }

    #[test]
    fn bad_documents_name_the_item() {
        let err = RealmDocument::parse(r#"[{"colour": "red"}]"#, "f.json").err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some(
                "f.json: item 1: cannot tell its table (no realm, job_id, conn_id or trigger_id key)"
            )
        );
        let doc =
            RealmDocument::parse(r#"[{"job_id": "x", "type": "cmd"}]"#, "f.json").expect("parses");
        assert_eq!(
            doc.validate("r").err().map(|e| e.to_string()).as_deref(),
            Some("job x: Bad job record: Missing keys: payload, worker")
        );
        assert!(RealmDocument::parse("{: nope", "f").is_err());
    }
}
