//! The `ssh`, `scp`, `sftp` and `git` connectors: a passphrase-less
//! private key read from the SSM parameter `ssh_key` (commas in the stored
//! value stand for line breaks, so a key can be stored on one line) and
//! the `ssh_options` every `ssh` the helpers start is given.

use serde_json::Value;

use super::{ConnError, Connections, Record};

/// What an ssh-family helper needs: the key and the options.
#[derive(Clone, PartialEq)]
pub struct SshAccess {
    /// The private key's text, with a trailing newline.
    pub key: String,
    /// `ssh_options`, each given as `-o <option>`.
    pub options: Vec<String>,
}

impl std::fmt::Debug for SshAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshAccess")
            .field("key", &"<secret>")
            .field("options", &self.options)
            .finish()
    }
}

/// Reads and checks an ssh-family connection's key and options.
pub(super) async fn resolve(
    connections: &Connections,
    record: &Record,
) -> Result<SshAccess, ConnError> {
    let options = options(record)?;
    let key = connections.parameter_field(record, "ssh_key").await?;
    let mut key = key.replace(',', "\n");
    key.push('\n');
    Ok(SshAccess { key, options })
}

/// `ssh_options`: absent, or a list of strings.
fn options(record: &Record) -> Result<Vec<String>, ConnError> {
    let bad = || ConnError::field(record.id(), "ssh_options", "must be a list of strings");
    match record.item().get("ssh_options") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        Some(_) => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::ConnType;
    use crate::spec::Connection;
    use serde_json::json;

    fn record(item: Value) -> Record {
        let connection = Connection::from_item(item.as_object().cloned().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        let conn_type = ConnType::parse(connection.conn_type());
        Record {
            connection,
            conn_type,
        }
    }

    #[test]
    fn options_are_a_list_of_strings() {
        let base = json!({"conn_id": "box", "type": "ssh", "enabled": true, "ssh_key": "/k"});
        assert_eq!(options(&record(base.clone())).ok(), Some(vec![]));
        let mut with = base.clone();
        with["ssh_options"] = json!(["Port=2222", "User=etl"]);
        assert_eq!(
            options(&record(with)).ok(),
            Some(vec!["Port=2222".to_string(), "User=etl".to_string()])
        );
        for bad in [json!("Port=2222"), json!(["Port=2222", 3])] {
            let mut item = base.clone();
            item["ssh_options"] = bad;
            assert_eq!(
                options(&record(item))
                    .err()
                    .map(|e| e.to_string())
                    .as_deref(),
                Some("Connection box: ssh_options: must be a list of strings")
            );
        }
    }

    #[test]
    fn the_key_never_prints() {
        let access = SshAccess {
            key: "-----BEGIN SECRET-----\n".into(),
            options: vec![],
        };
        assert!(!format!("{access:?}").contains("BEGIN"));
    }
}
