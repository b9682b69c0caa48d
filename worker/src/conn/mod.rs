//! Connection CLI helpers for `exe` and `pkg` (`parameters.connections`):
//! for each `label: conn_id` the connection is looked up, its secrets read,
//! and a helper written to a fresh `<job dir>/conn.<random>/` (directories
//! and scripts 0700, credential files 0600); the payload gets
//! `LAVA_CONNID_<LABEL>` (the id) and `LAVA_CONN_<LABEL>` (the helper's
//! absolute path). Secrets go into files only: never into a script's text,
//! an argument list, a log line or an error. The directories are removed
//! when the run's programs have ended ([`Helpers::remove`]), and with the
//! job directory in any case.
//!
//! One file per connector type: `generic` (`get-attr-value`), `aws` (the
//! AWS CLI with the connection's credentials), the database types (`psql`,
//! `mysql`, `sqlite3`), `ssh` (`ssh`, `scp`, `sftp` and `git` with the
//! connection's key) and `messaging` (`lava-email` for `email`/`ses`,
//! `lava-slack` for `slack`).

mod aws;
mod database;
mod generic;
mod messaging;
mod ssh;

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use lava_common::connection::{self, ConnError, ConnType, Connections};
use lava_common::db::Engine;
use regex::Regex;
use serde_json::Value;

/// What the helpers need to know of the run.
pub struct RunInfo<'a> {
    /// The run's private directory.
    pub job_dir: &'a Path,
    /// The realm.
    pub realm: &'a str,
    /// The job id.
    pub job_id: &'a str,
    /// `CONN_APP_NAME`, if set.
    pub app_name_template: Option<&'a str>,
}

/// Why the helpers could not be made.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// The `connections` parameter is malformed.
    #[error("{0}")]
    Parameter(String),
    /// A connection cannot be used.
    #[error(transparent)]
    Connection(#[from] ConnError),
    /// A helper file could not be written.
    #[error("Connection {conn_id}: cannot create its helper: {source}")]
    Write {
        /// The connection.
        conn_id: String,
        /// The failure.
        source: std::io::Error,
    },
}

/// The files of one helper, relative to its directory.
struct Helper {
    /// The script's file name (`get-attr-value`, `aws`).
    script_name: &'static str,
    /// The script's text (no secrets in it).
    script: String,
    /// Sub-directories to create (0700).
    dirs: Vec<PathBuf>,
    /// Credential files (0600).
    files: Vec<(PathBuf, Vec<u8>)>,
}

/// The helpers of one run, with the variables that point at them.
#[derive(Debug, Default)]
pub struct Helpers {
    dirs: Vec<PathBuf>,
    /// `LAVA_CONNID_<LABEL>` and `LAVA_CONN_<LABEL>` for every label.
    pub env: Vec<(String, String)>,
}

impl Helpers {
    /// Removes the helpers' directories (best effort: the job directory is
    /// removed after the run anyway).
    pub async fn remove(self) {
        for dir in self.dirs {
            if let Err(e) = crate::workdir::remove_tree(&dir).await {
                tracing::warn!("cannot remove {}: {e}", dir.display());
            }
        }
    }
}

/// `^\w+$`.
static LABEL: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^\w+$").ok());

/// Makes the helpers named by a `connections` parameter (absent or null:
/// none). On failure nothing is left behind.
pub async fn create(
    connections: &Connections,
    parameter: Option<&Value>,
    run: &RunInfo<'_>,
) -> Result<Helpers, HelperError> {
    let map = match parameter {
        None | Some(Value::Null) => return Ok(Helpers::default()),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(HelperError::Parameter(
                "connections parameter must be a map".into(),
            ));
        }
    };
    let mut helpers = Helpers::default();
    for (label, conn_id) in map {
        let made = create_one(connections, label, conn_id, run).await;
        match made {
            Ok((dir, env)) => {
                helpers.dirs.push(dir);
                helpers.env.extend(env);
            }
            Err(e) => {
                helpers.remove().await;
                return Err(e);
            }
        }
    }
    Ok(helpers)
}

/// One label's helper: its directory and its two variables.
async fn create_one(
    connections: &Connections,
    label: &str,
    conn_id: &Value,
    run: &RunInfo<'_>,
) -> Result<(PathBuf, Vec<(String, String)>), HelperError> {
    if !LABEL.as_ref().is_some_and(|re| re.is_match(label)) {
        return Err(HelperError::Parameter(format!(
            "Bad connection label: {label}"
        )));
    }
    let Value::String(conn_id) = conn_id else {
        return Err(HelperError::Parameter(format!(
            "Bad connection id for label {label}: must be a string"
        )));
    };
    let (dir, script) = make(connections, conn_id, run).await?;
    let upper = label.to_uppercase();
    Ok((
        dir,
        vec![
            (format!("LAVA_CONNID_{upper}"), conn_id.clone()),
            (format!("LAVA_CONN_{upper}"), script.display().to_string()),
        ],
    ))
}

/// The helper of connection `conn_id` in a fresh directory (for `sqlc`):
/// the directory (removed by the caller, and with the job directory in any
/// case) and the helper's absolute path.
pub async fn create_for(
    connections: &Connections,
    conn_id: &str,
    run: &RunInfo<'_>,
) -> Result<(PathBuf, PathBuf), HelperError> {
    make(connections, conn_id, run).await
}

/// Writes the helper of `conn_id`; its directory and script.
async fn make(
    connections: &Connections,
    conn_id: &str,
    run: &RunInfo<'_>,
) -> Result<(PathBuf, PathBuf), HelperError> {
    let record = connections.get(conn_id).await?;
    let dir = run.job_dir.join(format!(
        "conn.{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ));
    let conn_type = record.connection.conn_type().to_ascii_lowercase();
    let helper = match record.conn_type {
        _ if Engine::of_type(&conn_type).is_some() => {
            let app_name = run
                .app_name_template
                .and_then(|t| connection::app_name(t, run.realm, run.job_id, conn_id));
            let spec = lava_common::db::resolve(connections, conn_id, app_name).await?;
            database::helper(&dir, &spec, run).await?
        }
        ConnType::Generic => {
            let attributes = connections.generic_attributes(&record).await?;
            generic::helper(&dir, &attributes)
        }
        ConnType::Aws => {
            let app_name = run
                .app_name_template
                .and_then(|t| connection::app_name(t, run.realm, run.job_id, conn_id));
            let creds = connections
                .aws_credentials(&record, app_name.as_deref())
                .await?;
            aws::helper(&dir, &creds)
        }
        ConnType::Ssh(tool) => {
            let access = connections.ssh_access(&record).await?;
            ssh::helper(&dir, tool, &access)
        }
        ConnType::Email => {
            // Checked now, so a bad record fails the run, not the payload.
            connections.email(&record).await?;
            messaging::helper("lava-email", conn_id)
        }
        ConnType::Slack => {
            connections.slack(&record).await?;
            messaging::helper("lava-slack", conn_id)
        }
        ConnType::Docker | ConnType::NotBuilt | ConnType::Unknown => {
            return Err(record.unsupported().into());
        }
    };
    let script = dir.join(helper.script_name);
    let written = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || write_helper(&dir, &helper))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
    };
    if let Err(source) = written {
        if let Err(e) = crate::workdir::remove_tree(&dir).await {
            tracing::debug!("cannot remove {}: {e}", dir.display());
        }
        return Err(HelperError::Write {
            conn_id: conn_id.to_string(),
            source,
        });
    }
    Ok((dir, script))
}

/// Writes a helper's directory, sub-directories (0700), credential files
/// (0600) and script (0700). The directory must not exist yet.
fn write_helper(dir: &Path, helper: &Helper) -> std::io::Result<()> {
    DirBuilder::new().mode(0o700).create(dir)?;
    for sub in &helper.dirs {
        DirBuilder::new().mode(0o700).create(dir.join(sub))?;
    }
    for (name, body) in &helper.files {
        write_file(&dir.join(name), body, 0o600)?;
    }
    write_file(
        &dir.join(helper.script_name),
        helper.script.as_bytes(),
        0o700,
    )
}

/// Creates a new file with `mode` (which the umask cannot widen) and writes it.
fn write_file(path: &Path, body: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(body)?;
    file.sync_all()
}

/// `text` as one shell word: single-quoted, with `'` written as `'"'"'`.
fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\"'\"'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lava_common::connection::{AwsResolver, AwsSettings};
    use lava_common::store::local::LocalSecrets;
    use lava_common::store::{Backend, BackendSpec, ParameterCache, Secrets, Table};
    use serde_json::json;
    use std::sync::Arc;

    /// Connections of realm `r` on a local backend in `dir`.
    async fn connections(dir: &Path, items: &[Value]) -> Connections {
        let spec = BackendSpec::Local(dir.to_path_buf());
        let backend = Backend::connect(&spec, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        backend
            .tables
            .create_realm_tables("r")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for item in items {
            let item = item.as_object().cloned().unwrap_or_default();
            backend
                .tables
                .put("r", Table::Connections, &item)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let secrets: Arc<dyn Secrets> = Arc::new(LocalSecrets::new(dir));
        secrets
            .put_parameter("/lava/r/pw", "hunter2", None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Connections::new(
            "r",
            backend.tables,
            ParameterCache::new(secrets, None, 0),
            AwsResolver::new(None, AwsSettings::default()),
        )
    }

    #[tokio::test]
    async fn helpers_are_named_by_label_and_removed_on_failure() {
        let store = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let job = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let c = connections(
            store.path(),
            &[json!({"conn_id": "g/1", "type": "generic", "enabled": true,
                     "attributes": {"pw": {"type": "ssm", "parameter": "/lava/r/pw"}}})],
        )
        .await;
        let run = RunInfo {
            job_dir: job.path(),
            realm: "r",
            job_id: "j",
            app_name_template: None,
        };
        let made = create(&c, Some(&json!({"Db_1": "g/1"})), &run)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            made.env[0],
            ("LAVA_CONNID_DB_1".to_string(), "g/1".to_string())
        );
        let (name, path) = &made.env[1];
        assert_eq!(name, "LAVA_CONN_DB_1");
        assert!(
            path.starts_with(&job.path().join("conn.").display().to_string()),
            "{path}"
        );
        assert!(path.ends_with("/get-attr-value"), "{path}");
        made.remove().await;
        assert_eq!(
            std::fs::read_dir(job.path()).map(|d| d.count()).ok(),
            Some(0)
        );

        // A later label that fails takes the earlier helpers with it.
        let failed = create(&c, Some(&json!({"a": "g/1", "b": "nope"})), &run).await;
        assert_eq!(
            failed.err().map(|e| e.to_string()).as_deref(),
            Some("nope: No such connection")
        );
        assert_eq!(
            std::fs::read_dir(job.path()).map(|d| d.count()).ok(),
            Some(0)
        );
        let none = create(&c, None, &run)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(none.env.is_empty());
    }

    #[test]
    fn quoting_survives_the_shell() {
        for text in ["plain", "it's", "$HOME `x` \"q\" \\", ""] {
            let out = std::process::Command::new("bash")
                .arg("-c")
                .arg(format!("printf %s {}", sh_quote(text)))
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            assert_eq!(out, text);
        }
    }

    #[test]
    fn helper_files_get_private_modes() {
        use std::os::unix::fs::PermissionsExt;
        let job = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = job.path().join("conn.x");
        let helper = Helper {
            script_name: "tool",
            script: "#!/bin/bash\n".into(),
            dirs: vec!["values".into()],
            files: vec![("values/a".into(), b"v".to_vec())],
        };
        write_helper(&dir, &helper).unwrap_or_else(|e| panic!("{e}"));
        let mode = |p: PathBuf| {
            std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0)
        };
        assert_eq!(mode(dir.clone()), 0o700);
        assert_eq!(mode(dir.join("values")), 0o700);
        assert_eq!(mode(dir.join("values/a")), 0o600);
        assert_eq!(mode(dir.join("tool")), 0o700);
        // A second helper in the same directory is refused.
        assert!(write_helper(&dir, &helper).is_err());
    }
}
