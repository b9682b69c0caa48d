//! Connections at use time: the realm's connections item is read afresh on
//! every use (no caching of records), checked, and the secrets it names are
//! read from SSM (through the [`ParameterCache`]) or Secrets Manager. The
//! connector types resolved in-process so far are `generic` (its attribute
//! map), `aws` (credentials, from access keys or an assumed role), the
//! ssh family (`ssh`, `scp`, `sftp`, `git`: a private key and options),
//! `email`/`ses` (a sender), `slack` (a webhook) and the database types
//! (`crate::db::resolve`); every other type fails with an error naming it.
//! Also the application name of `CONN_APP_NAME`.
//!
//! Errors keep the original's texts (`<id>: No such connection`,
//! `Connection <id>: Not enabled`, …) and name the field at fault; they
//! never hold a secret's value.

pub mod aws;
pub mod email;
pub mod generic;
pub mod slack;
pub mod ssh;

use std::sync::Arc;

use serde_json::Value;

use crate::spec::{Connection, Item, is_ignored_field};
use crate::store::{Key, ParameterCache, StoreError, Table, Tables};

pub use aws::{AwsCredentials, AwsResolver, AwsSettings};
pub use email::{EmailConn, EmailTransport};
pub use slack::{SlackConn, SlackStyle};
pub use ssh::SshAccess;

/// A connection that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    /// No item with this `conn_id`.
    #[error("{0}: No such connection")]
    NotFound(String),
    /// The item lacks required keys or has a malformed one.
    #[error("{id}: {reason}")]
    BadRecord {
        /// The connection.
        id: String,
        /// `Bad connection record: Missing keys: …`, …
        reason: String,
    },
    /// `enabled` is not `true`.
    #[error("Connection {0}: Not enabled")]
    NotEnabled(String),
    /// A connector type lava does not know, or one that has no interface
    /// for this use (a `docker` connection as a CLI helper).
    #[error("{id}: Unsupported connection type - {conn_type}")]
    Unsupported {
        /// The connection.
        id: String,
        /// Its type.
        conn_type: String,
    },
    /// A connector type of the original that this lava does not build yet.
    #[error("{id}: Unsupported connection type - {conn_type}: not supported by this worker yet")]
    NotBuilt {
        /// The connection.
        id: String,
        /// Its type.
        conn_type: String,
    },
    /// A field that is missing, malformed, or names a secret that cannot be read.
    #[error("Connection {id}: {field}: {reason}")]
    Field {
        /// The connection.
        id: String,
        /// The field (`access_keys`, `attributes.password`, …).
        field: String,
        /// What is wrong (never a secret's value).
        reason: String,
    },
    /// Anything else about the connection (keys the type does not allow,
    /// an AWS call that failed).
    #[error("Connection {id}: {reason}")]
    Other {
        /// The connection.
        id: String,
        /// What went wrong.
        reason: String,
    },
    /// The connections table could not be read.
    #[error("{id}: cannot read the connections table: {source}")]
    Store {
        /// The connection.
        id: String,
        /// The storage failure.
        source: StoreError,
    },
}

impl ConnError {
    /// A field error.
    pub fn field(id: &str, field: &str, reason: impl Into<String>) -> Self {
        Self::Field {
            id: id.to_string(),
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    /// Any other error about connection `id`.
    pub fn other(id: &str, reason: impl Into<String>) -> Self {
        Self::Other {
            id: id.to_string(),
            reason: reason.into(),
        }
    }
}

/// The connector types of lava, as a connection's `type` names them (lower-cased).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnType {
    /// `generic`: an attribute map.
    Generic,
    /// `aws`: AWS credentials.
    Aws,
    /// `docker`: a registry login; no CLI helper.
    Docker,
    /// `ssh`, `scp`, `sftp` and `git`: a private key and ssh options, for
    /// the program of that name.
    Ssh(SshTool),
    /// `email` (subtypes `ses`, `smtp`) and the deprecated `ses`: a sender.
    Email,
    /// `slack`: a webhook sender.
    Slack,
    /// A type of the original that is not built yet.
    NotBuilt,
    /// Not a lava connector type.
    Unknown,
}

/// The program an ssh-family connection's helper runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshTool {
    /// `ssh`.
    Ssh,
    /// `scp`.
    Scp,
    /// `sftp`.
    Sftp,
    /// `git`, its ssh through `GIT_SSH_COMMAND`.
    Git,
}

impl SshTool {
    /// The program's name (and the helper's).
    pub fn program(self) -> &'static str {
        match self {
            Self::Ssh => "ssh",
            Self::Scp => "scp",
            Self::Sftp => "sftp",
            Self::Git => "git",
        }
    }
}

/// Types of the original that this lava does not build yet.
const NOT_BUILT: &[&str] = &[
    "postgres",
    "psql",
    "postgresql",
    "postgres-aurora",
    "postgres-rds",
    "redshift",
    "redshift-serverless",
    "mysql",
    "mariadb",
    "mariadb-rds",
    "mysql-aurora",
    "mysql-rds",
    "oracle",
    "oracle-rds",
    "mssql",
    "sqlite3",
    "smb",
    "sharepoint",
];

impl ConnType {
    /// The type named by `text`, compared lower-cased.
    pub fn parse(text: &str) -> Self {
        match text.to_ascii_lowercase().as_str() {
            "generic" => Self::Generic,
            "aws" => Self::Aws,
            "docker" => Self::Docker,
            "ssh" => Self::Ssh(SshTool::Ssh),
            "scp" => Self::Ssh(SshTool::Scp),
            "sftp" => Self::Ssh(SshTool::Sftp),
            "git" => Self::Ssh(SshTool::Git),
            "email" | "ses" => Self::Email,
            "slack" => Self::Slack,
            t if NOT_BUILT.contains(&t) => Self::NotBuilt,
            _ => Self::Unknown,
        }
    }
}

/// A connection record that exists and is enabled.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The checked item.
    pub connection: Connection,
    /// Its type.
    pub conn_type: ConnType,
}

impl Record {
    /// The connection id.
    pub fn id(&self) -> &str {
        self.connection.conn_id()
    }

    /// The item's fields.
    pub fn item(&self) -> &Item {
        self.connection.item()
    }

    /// Fails with "Unexpected keys: …" when the item has keys other than the
    /// common ones, `allowed` and `x-*`.
    pub fn allow_only(&self, allowed: &[&str]) -> Result<(), ConnError> {
        const COMMON: [&str; 5] = ["conn_id", "type", "enabled", "description", "owner"];
        let mut extra: Vec<&str> = self
            .item()
            .keys()
            .map(String::as_str)
            .filter(|k| !COMMON.contains(k) && !allowed.contains(k) && !is_ignored_field(k))
            .collect();
        if extra.is_empty() {
            return Ok(());
        }
        extra.sort_unstable();
        Err(ConnError::other(
            self.id(),
            format!("Unexpected keys: {}", extra.join(", ")),
        ))
    }

    /// The error for a type that has no implementation for this use.
    pub fn unsupported(&self) -> ConnError {
        let id = self.id().to_string();
        let conn_type = self.connection.conn_type().to_string();
        match self.conn_type {
            ConnType::NotBuilt => ConnError::NotBuilt { id, conn_type },
            _ => ConnError::Unsupported { id, conn_type },
        }
    }
}

impl Connections {
    /// The sender of an `email` or `ses` connection (the SMTP password read
    /// from SSM, uncached).
    pub async fn email(&self, record: &Record) -> Result<EmailConn, ConnError> {
        email::resolve(self, record).await
    }

    /// The webhook sender of a `slack` connection.
    pub async fn slack(&self, record: &Record) -> Result<SlackConn, ConnError> {
        slack::resolve(self, record).await
    }
}

/// Connection lookup for one realm, with the secrets and AWS clients
/// connections need. Cheap to clone; share one per process so the caches
/// are shared.
#[derive(Clone)]
pub struct Connections {
    realm: String,
    tables: Arc<dyn Tables>,
    parameters: ParameterCache,
    aws: AwsResolver,
}

impl std::fmt::Debug for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connections")
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

impl Connections {
    /// Lookup in `realm`'s connections table, secrets through `parameters`,
    /// AWS credentials through `aws`.
    pub fn new(
        realm: &str,
        tables: Arc<dyn Tables>,
        parameters: ParameterCache,
        aws: AwsResolver,
    ) -> Self {
        Self {
            realm: realm.to_string(),
            tables,
            parameters,
            aws,
        }
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The worker's AWS configuration and `aws` credentials cache.
    pub(crate) fn aws_resolver(&self) -> &AwsResolver {
        &self.aws
    }

    /// The secret stores (SSM parameters and Secrets Manager secrets).
    pub fn secrets(&self) -> &Arc<dyn crate::store::Secrets> {
        self.parameters.secrets()
    }

    /// Reads and checks connection `conn_id`: it must exist, have
    /// `conn_id`, `type` and `enabled`, and be enabled.
    pub async fn get(&self, conn_id: &str) -> Result<Record, ConnError> {
        let item = self
            .tables
            .get(&self.realm, Table::Connections, &Key::new(conn_id), true)
            .await
            .map_err(|source| ConnError::Store {
                id: conn_id.to_string(),
                source,
            })?
            .ok_or_else(|| ConnError::NotFound(conn_id.to_string()))?;
        let connection = Connection::from_item(item).map_err(|e| ConnError::BadRecord {
            id: conn_id.to_string(),
            reason: e.to_string(),
        })?;
        if !connection.enabled() {
            return Err(ConnError::NotEnabled(conn_id.to_string()));
        }
        let conn_type = ConnType::parse(connection.conn_type());
        Ok(Record {
            connection,
            conn_type,
        })
    }

    /// The SSM parameter named by `field` of `record` (cached); a missing
    /// field or parameter names the connection and the field.
    pub async fn parameter_field(&self, record: &Record, field: &str) -> Result<String, ConnError> {
        let name = match record.item().get(field) {
            Some(Value::String(name)) if !name.is_empty() => name.clone(),
            None | Some(Value::Null) => {
                return Err(ConnError::field(record.id(), field, "required"));
            }
            Some(_) => {
                return Err(ConnError::field(
                    record.id(),
                    field,
                    "must be the name of an SSM parameter",
                ));
            }
        };
        self.parameter(record.id(), field, &name, true).await
    }

    /// SSM parameter `name` for `field` of connection `id`, cached when
    /// `cached`.
    pub async fn parameter(
        &self,
        id: &str,
        field: &str,
        name: &str,
        cached: bool,
    ) -> Result<String, ConnError> {
        let read = if cached {
            self.parameters.parameter(name).await
        } else {
            self.parameters.parameter_uncached(name).await
        };
        read.map_err(|e| match e {
            StoreError::SecretNotFound(_) => {
                ConnError::field(id, field, format!("SSM parameter {name} not found"))
            }
            other => ConnError::field(
                id,
                field,
                format!("cannot read SSM parameter {name}: {other}"),
            ),
        })
    }

    /// The AWS credentials of an `aws` connection (`app_name` gives the
    /// role session name).
    pub async fn aws_credentials(
        &self,
        record: &Record,
        app_name: Option<&str>,
    ) -> Result<AwsCredentials, ConnError> {
        self.aws.credentials(self, record, app_name).await
    }

    /// The key and options of an `ssh`, `scp`, `sftp` or `git` connection.
    pub async fn ssh_access(&self, record: &Record) -> Result<SshAccess, ConnError> {
        ssh::resolve(self, record).await
    }

    /// The resolved attributes of a `generic` connection.
    pub async fn generic_attributes(
        &self,
        record: &Record,
    ) -> Result<generic::Attributes, ConnError> {
        generic::resolve(self, record).await
    }
}

/// The application name of `CONN_APP_NAME` (`template`) for a connection:
/// the template rendered with `realm`, `job_id` and `conn_id`, with `'`,
/// `"` and `\` removed; `None` when any of them is empty or the template
/// does not render.
pub fn app_name(template: &str, realm: &str, job_id: &str, conn_id: &str) -> Option<String> {
    if [template, realm, job_id, conn_id]
        .iter()
        .any(|s| s.is_empty())
    {
        return None;
    }
    let env = minijinja::Environment::new();
    let rendered = env
        .render_str(
            template,
            minijinja::context! { realm => realm, job_id => job_id, conn_id => conn_id },
        )
        .ok()?;
    let cleaned: String = rendered
        .chars()
        .filter(|c| !matches!(c, '\'' | '"' | '\\'))
        .collect();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// An application name as an STS role session name: runs of characters
/// outside `[\w=,.@-]` become `.`, leading non-word characters are dropped,
/// and the result is cut to 64 characters; `None` when nothing is left.
pub fn role_session_name(app_name: &str) -> Option<String> {
    let mut out = String::new();
    let mut in_bad_run = false;
    for c in app_name.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '=' | ',' | '.' | '@' | '-') {
            out.push(c);
            in_bad_run = false;
        } else if !in_bad_run {
            out.push('.');
            in_bad_run = true;
        }
    }
    let trimmed: String = out
        .trim_start_matches(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .chars()
        .take(64)
        .collect();
    (trimmed.len() >= 2).then_some(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::local::LocalSecrets;
    use crate::store::{BackendSpec, Secrets};
    use serde_json::json;

    /// A local backend in a temporary directory with the given connections
    /// and SSM parameters.
    pub(crate) async fn connections(
        items: &[Value],
        parameters: &[(&str, &str)],
    ) -> (tempfile::TempDir, Connections) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let spec = BackendSpec::Local(dir.path().to_path_buf());
        let backend = crate::store::Backend::connect(&spec, None)
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
        let secrets: Arc<dyn Secrets> = Arc::new(LocalSecrets::new(dir.path()));
        for (name, value) in parameters {
            secrets
                .put_parameter(name, value, None)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let cache = ParameterCache::new(secrets, None, 0);
        let aws = AwsResolver::new(None, AwsSettings::default());
        (dir, Connections::new("r", backend.tables, cache, aws))
    }

    fn message<T: std::fmt::Debug>(r: Result<T, ConnError>) -> String {
        match r {
            Ok(v) => panic!("expected an error, got {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[tokio::test]
    async fn lookups_fail_as_the_original_does() {
        let (_dir, c) = connections(
            &[
                json!({"conn_id": "off", "type": "generic", "attributes": {}}),
                json!({"conn_id": "notype", "enabled": true}),
                json!({"conn_id": "ok", "type": "Generic", "enabled": true, "attributes": {}}),
                json!({"conn_id": "pg", "type": "postgres", "enabled": true}),
                json!({"conn_id": "odd", "type": "gneric", "enabled": true}),
            ],
            &[],
        )
        .await;
        assert_eq!(message(c.get("nope").await), "nope: No such connection");
        assert_eq!(message(c.get("off").await), "Connection off: Not enabled");
        assert_eq!(
            message(c.get("notype").await),
            "notype: Bad connection record: Missing keys: type"
        );
        let ok = c.get("ok").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ok.conn_type, ConnType::Generic);
        let pg = c.get("pg").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            pg.unsupported().to_string(),
            "pg: Unsupported connection type - postgres: not supported by this worker yet"
        );
        let odd = c.get("odd").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            odd.unsupported().to_string(),
            "odd: Unsupported connection type - gneric"
        );
    }

    #[tokio::test]
    async fn parameter_fields_name_the_connection_and_field() {
        let (_dir, c) = connections(
            &[json!({"conn_id": "k", "type": "aws", "enabled": true, "access_keys": "/lava/r/none", "role_arn": 5})],
            &[("/lava/r/keys", "AKIA,secret")],
        )
        .await;
        let k = c.get("k").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            message(c.parameter_field(&k, "access_keys").await),
            "Connection k: access_keys: SSM parameter /lava/r/none not found"
        );
        assert_eq!(
            message(c.parameter_field(&k, "external_id").await),
            "Connection k: external_id: required"
        );
        assert!(message(c.parameter_field(&k, "role_arn").await).contains("role_arn"));
        assert_eq!(
            c.parameter("k", "f", "/lava/r/keys", true).await,
            Ok("AKIA,secret".into())
        );
    }

    #[tokio::test]
    async fn database_connections_resolve_with_secrets() {
        let (dir, c) = connections(
            &[
                json!({"conn_id": "pg", "type": "Postgres", "enabled": true, "port": "5433",
                       "password": "/lava/r/pw", "secret_id": "db/main", "user": "own"}),
                json!({"conn_id": "nopw", "type": "postgres", "enabled": true, "host": "h",
                       "port": 5432, "user": "u", "database": "d"}),
                json!({"conn_id": "rds", "type": "postgres-rds", "enabled": true, "host": "h",
                       "port": 5432, "user": "u", "database": "d"}),
                json!({"conn_id": "my", "type": "mariadb", "enabled": true, "host": "h",
                       "port": 3306, "user": "u", "password": "/lava/r/pw"}),
                json!({"conn_id": "noport", "type": "mysql", "enabled": true, "host": "h"}),
                json!({"conn_id": "lite", "type": "sqlite3", "enabled": true, "host": "/tmp/x.db",
                       "port": 0, "user": "x"}),
                json!({"conn_id": "ora", "type": "oracle", "enabled": true}),
                json!({"conn_id": "tls", "type": "postgres", "enabled": true, "host": "h", "port": 1,
                       "user": "u", "database": "d", "password": "/lava/r/pw", "ssl_mode": "bogus"}),
            ],
            &[("/lava/r/pw", "from-ssm")],
        )
        .await;
        LocalSecrets::new(dir.path())
            .put_secret(
                "db/main",
                r#"{"username": "secret-user", "password": "secret-pw", "host": "db.example",
                    "dbname": "warehouse", "port": 1}"#,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let pg = crate::db::resolve(&c, "pg", Some("app".into()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pg.engine, crate::db::Engine::Postgres);
        // The record's own fields win; the SSM password wins over the secret's.
        assert_eq!(
            (
                pg.host.as_str(),
                pg.port,
                pg.user.as_str(),
                pg.password.as_str()
            ),
            ("db.example", 5433, "own", "from-ssm")
        );
        assert_eq!(pg.database.as_deref(), Some("warehouse"));
        assert!(!format!("{pg:?}").contains("from-ssm"));
        let err = |id: &'static str| {
            let c = c.clone();
            async move {
                crate::db::resolve(&c, id, None)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        };
        assert_eq!(
            err("nopw").await,
            Err("Connection nopw: Password must be specified".into())
        );
        // An RDS token from the worker's AWS credentials, or (without
        // credentials or region here) an error naming the connection.
        match crate::db::resolve(&c, "rds", None).await {
            Ok(spec) => assert!(
                spec.password
                    .starts_with("h:5432/?Action=connect&DBUser=u&")
                    && spec.password.contains("X-Amz-Signature="),
                "{}",
                spec.password
            ),
            Err(e) => assert!(e.to_string().starts_with("Connection rds: "), "{e}"),
        }
        assert_eq!(
            err("my").await,
            Err("Connection my: database must be specified for MySQL".into())
        );
        assert_eq!(
            err("noport").await,
            Err("noport: Bad connection record: Missing keys: port".into())
        );
        assert_eq!(err("lite").await, Ok(()));
        assert!(
            err("ora")
                .await
                .is_err_and(|e| e.contains("not supported by this worker yet"))
        );
        assert!(
            err("tls")
                .await
                .is_err_and(|e| e.contains("Bad ssl_mode: bogus"))
        );
    }

    #[tokio::test]
    async fn email_and_slack_records() {
        let (_dir, c) = connections(
            &[
                json!({"conn_id": "smtp", "type": "email", "enabled": true, "subtype": "smtp",
                       "host": "mx", "tls": "yes", "user": "u", "password": "/lava/r/pw",
                       "reply_to": "r@x.org"}),
                json!({"conn_id": "ses", "type": "SES", "enabled": true, "region": "eu-west-1"}),
                json!({"conn_id": "nopw", "type": "email", "enabled": true, "subtype": "smtp",
                       "host": "mx", "user": "u"}),
                json!({"conn_id": "odd", "type": "email", "enabled": true, "subtype": "pigeon"}),
                json!({"conn_id": "chat", "type": "slack", "enabled": true,
                       "webhook_url": "/lava/r/hook", "style": "plain"}),
                json!({"conn_id": "badstyle", "type": "slack", "enabled": true,
                       "webhook_url": "https://h/x", "style": "loud"}),
                json!({"conn_id": "gen", "type": "generic", "enabled": true, "attributes": {}}),
            ],
            &[
                ("/lava/r/pw", "sekrit"),
                ("/lava/r/hook", "https://hooks.example/T/B/x"),
            ],
        )
        .await;
        let smtp = c
            .email(&c.get("smtp").await.unwrap_or_else(|e| panic!("{e}")))
            .await;
        let smtp = smtp.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            smtp.transport,
            EmailTransport::Smtp {
                host: "mx".into(),
                port: 465,
                tls: true,
                login: Some(("u".into(), "sekrit".into())),
            }
        );
        assert!(
            !format!("{smtp:?}").contains("sekrit"),
            "Debug shows no password"
        );
        assert_eq!(smtp.reply_to, vec!["r@x.org".to_string()]);
        let ses = c
            .email(&c.get("ses").await.unwrap_or_else(|e| panic!("{e}")))
            .await;
        assert!(matches!(
            ses.map(|s| s.transport),
            Ok(EmailTransport::Ses { region: Some(r), .. }) if r == "eu-west-1"
        ));
        let get = |id: &'static str| {
            let c = c.clone();
            async move { c.get(id).await.unwrap_or_else(|e| panic!("{e}")) }
        };
        assert_eq!(
            message(c.email(&get("nopw").await).await),
            "Connection nopw: password is required if user is specified"
        );
        assert_eq!(
            message(c.email(&get("odd").await).await),
            "Connection odd: No email handler for type/subtype email/pigeon"
        );
        assert_eq!(
            message(c.email(&get("gen").await).await),
            "Connection gen: Must be of type \"email\" or \"ses\" not \"generic\""
        );
        let chat = c
            .slack(&get("chat").await)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(chat.webhook_url, "https://hooks.example/T/B/x");
        assert_eq!(chat.from, "lava@r");
        assert_eq!(chat.style, SlackStyle::Plain);
        assert_eq!(chat.colour, "#bbbbbb");
        assert!(
            !format!("{chat:?}").contains("hooks.example"),
            "Debug shows no URL"
        );
        assert_eq!(
            message(c.slack(&get("badstyle").await).await),
            "Connection badstyle: Bad style loud"
        );
    }

    #[test]
    fn unexpected_keys_are_listed() {
        let item = json!({"conn_id": "g", "type": "generic", "enabled": true, "attributes": {},
                          "x-lava-chk": 1, "zz": 1, "aa": 2});
        let record = Record {
            connection: Connection::from_item(item.as_object().cloned().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{e}")),
            conn_type: ConnType::Generic,
        };
        assert_eq!(
            record
                .allow_only(&["attributes"])
                .map_err(|e| e.to_string()),
            Err("Connection g: Unexpected keys: aa, zz".into())
        );
        assert!(record.allow_only(&["attributes", "aa", "zz"]).is_ok());
    }

    #[test]
    fn application_names() {
        let t = "lv-{{ realm }}-{{ job_id }}";
        assert_eq!(
            app_name(t, "prod", "a/b", "c").as_deref(),
            Some("lv-prod-a/b")
        );
        assert_eq!(app_name(t, "prod", "", "c"), None);
        assert_eq!(app_name("", "prod", "j", "c"), None);
        assert_eq!(
            app_name("{{ conn_id }}'\"\\x", "r", "j", "c").as_deref(),
            Some("cx")
        );
        assert_eq!(app_name("{{ oops", "r", "j", "c"), None);
        assert_eq!(
            role_session_name("lv-prod-a/b c").as_deref(),
            Some("lv-prod-a.b.c")
        );
        assert_eq!(role_session_name("//x y").as_deref(), Some("x.y"));
        assert_eq!(
            role_session_name(&"a".repeat(80)).map(|s| s.len()),
            Some(64)
        );
        assert_eq!(role_session_name("///"), None);
    }
}
