//! A database connection's settings, resolved from its connections item:
//! the `password` SSM parameter, then the fields a Secrets Manager
//! `secret_id` supplies, the required keys, the port, and the user and
//! password. Without a password, the RDS and Aurora types get an RDS
//! authentication token (see [`super::iam`]); Redshift's
//! `GetClusterCredentials` is not built, and such a record fails saying so.

use serde_json::{Map, Value};

use crate::connection::{ConnError, ConnType, Connections, Record};
use crate::store::SecretValue;

/// The database engines lava talks to in-process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// `postgres`, `psql`, `postgresql`, `postgres-aurora`, `postgres-rds`.
    Postgres,
    /// `redshift`: the PostgreSQL protocol.
    Redshift,
    /// `mysql`, `mariadb`, `mariadb-rds`, `mysql-aurora`, `mysql-rds`.
    MySql,
    /// `sqlite3`: a local database file.
    Sqlite,
}

impl Engine {
    /// The engine of a connector type (lower-cased), if it is a database
    /// type this lava connects to.
    pub fn of_type(conn_type: &str) -> Option<Self> {
        match conn_type {
            "postgres" | "psql" | "postgresql" | "postgres-aurora" | "postgres-rds" => {
                Some(Self::Postgres)
            }
            "redshift" => Some(Self::Redshift),
            "mysql" | "mariadb" | "mariadb-rds" | "mysql-aurora" | "mysql-rds" => Some(Self::MySql),
            "sqlite3" => Some(Self::Sqlite),
            _ => None,
        }
    }
}

/// How a connection uses TLS (`ssl`, `ssl_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// No TLS.
    Off,
    /// TLS without certificate or host-name checks (`ssl: true`,
    /// `ssl_mode: require`).
    Require,
    /// TLS with the certificate chain checked, not the host name.
    VerifyCa,
    /// TLS with chain and host name checked.
    VerifyFull,
}

/// A resolved database connection.
#[derive(Clone)]
pub struct DbSpec {
    /// The connection id.
    pub conn_id: String,
    /// The engine.
    pub engine: Engine,
    /// Server host (for SQLite, the database file).
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Database name.
    pub database: Option<String>,
    /// User.
    pub user: String,
    /// Password (never logged or shown).
    pub password: String,
    /// TLS.
    pub tls: TlsMode,
    /// A CA bundle file (`ca_cert` or `ssl_ca_file`).
    pub ca_file: Option<String>,
    /// The application name of `CONN_APP_NAME`.
    pub app_name: Option<String>,
}

impl std::fmt::Debug for DbSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbSpec")
            .field("conn_id", &self.conn_id)
            .field("engine", &self.engine)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Secrets Manager keys and the record fields they fill.
const SECRET_FIELDS: [(&str, &str); 8] = [
    ("username", "user"),
    ("password", "password"),
    ("host", "host"),
    ("port", "port"),
    ("dbname", "database"),
    ("dbClusterIdentifier", "description"),
    ("serviceName", "service_name"),
    ("sid", "sid"),
];

/// Types that get an RDS authentication token when no password is given.
const RDS_IAM_TYPES: [&str; 4] = [
    "postgres-aurora",
    "postgres-rds",
    "mysql-aurora",
    "mysql-rds",
];

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
        _ => None,
    }
}

fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(m)) => !m.is_empty(),
    }
}

/// Reads connection `conn_id` and resolves it as a database connection.
pub async fn resolve(
    connections: &Connections,
    conn_id: &str,
    app_name: Option<String>,
) -> Result<DbSpec, ConnError> {
    let record = connections.get(conn_id).await?;
    let conn_type = record.connection.conn_type().to_ascii_lowercase();
    let Some(engine) = Engine::of_type(&conn_type) else {
        return Err(match record.conn_type {
            ConnType::NotBuilt => record.unsupported(),
            _ => ConnError::Unsupported {
                id: conn_id.to_string(),
                conn_type,
            },
        });
    };
    let mut fields: Map<String, Value> = record.item().clone();
    fill(connections, &record, &mut fields).await?;
    let id = conn_id;
    let mut missing: Vec<&str> = ["host", "port"]
        .into_iter()
        .filter(|k| fields.get(*k).is_none_or(Value::is_null))
        .collect();
    if !missing.is_empty() {
        missing.sort_unstable();
        return Err(ConnError::BadRecord {
            id: id.to_string(),
            reason: format!(
                "Bad connection record: Missing keys: {}",
                missing.join(", ")
            ),
        });
    }
    let port_text = fields.get("port").and_then(text_of).unwrap_or_default();
    let port: u16 = port_text
        .trim()
        .parse()
        .map_err(|_| ConnError::field(id, "port", format!("Bad port: {port_text}")))?;
    let host = fields.get("host").and_then(text_of).unwrap_or_default();
    let database = fields
        .get("database")
        .and_then(text_of)
        .filter(|d| !d.is_empty());
    let (user, password) = if engine == Engine::Sqlite {
        (String::new(), String::new())
    } else {
        let user = fields
            .get("user")
            .and_then(text_of)
            .ok_or_else(|| ConnError::other(id, "Missing keys: user"))?;
        let password = match fields.get("password").and_then(text_of) {
            Some(p) => p,
            None if RDS_IAM_TYPES.contains(&conn_type.as_str()) => {
                let (credentials, region) = connections
                    .aws_resolver()
                    .session_credentials()
                    .await
                    .map_err(|e| ConnError::other(id, e))?;
                let region = region.ok_or_else(|| {
                    ConnError::other(id, "no AWS region for the RDS authentication token")
                })?;
                super::iam::rds_auth_token(
                    credentials,
                    &region,
                    &host,
                    port,
                    &user,
                    std::time::SystemTime::now(),
                )
                .map_err(|e| ConnError::other(id, format!("RDS authentication token: {e}")))?
            }
            None if conn_type == "redshift" => {
                return Err(ConnError::other(
                    id,
                    "redshift: IAM-generated credentials (GetClusterCredentials) are not supported by this worker yet: set password",
                ));
            }
            None => return Err(ConnError::other(id, "Password must be specified")),
        };
        (user, password)
    };
    match engine {
        Engine::Postgres | Engine::Redshift if database.is_none() => {
            return Err(ConnError::other(
                id,
                "database must be specified for Postgres",
            ));
        }
        Engine::MySql if database.is_none() => {
            return Err(ConnError::other(id, "database must be specified for MySQL"));
        }
        _ => {}
    }
    let tls = match fields.get("ssl_mode") {
        None | Some(Value::Null) => {
            if truthy(fields.get("ssl")) {
                TlsMode::Require
            } else {
                TlsMode::Off
            }
        }
        Some(Value::String(m)) if m == "require" => TlsMode::Require,
        Some(Value::String(m)) if m == "verify-ca" => TlsMode::VerifyCa,
        Some(Value::String(m)) if m == "verify-full" => TlsMode::VerifyFull,
        Some(other) => {
            return Err(ConnError::field(
                id,
                "ssl_mode",
                format!("Bad ssl_mode: {}", text_of(other).unwrap_or_default()),
            ));
        }
    };
    let ca_file = ["ssl_ca_file", "ca_cert"]
        .iter()
        .find_map(|k| fields.get(*k).and_then(text_of))
        .filter(|f| !f.is_empty());
    Ok(DbSpec {
        conn_id: id.to_string(),
        engine,
        host,
        port,
        database,
        user,
        password,
        tls,
        ca_file,
        app_name,
    })
}

/// The password from SSM, then fields from Secrets Manager.
async fn fill(
    connections: &Connections,
    record: &Record,
    fields: &mut Map<String, Value>,
) -> Result<(), ConnError> {
    let id = record.id();
    if fields.contains_key("password") {
        let value = connections.parameter_field(record, "password").await?;
        fields.insert("password".into(), Value::String(value));
    }
    let secret_id = match fields.get("secret_id") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(ConnError::field(id, "secret_id", "must be a secret name"));
        }
    };
    let secret = connections
        .secrets()
        .secret(&secret_id)
        .await
        .map_err(|e| ConnError::field(id, "secret_id", format!("{secret_id}: {e}")))?;
    let text = match secret {
        SecretValue::Text(t) => t,
        SecretValue::Binary(_) => {
            return Err(ConnError::field(
                id,
                "secret_id",
                "Binary secret not allowed",
            ));
        }
    };
    let Ok(Value::Object(data)) = serde_json::from_str::<Value>(&text) else {
        return Err(ConnError::field(
            id,
            "secret_id",
            format!("{secret_id}: not a JSON object"),
        ));
    };
    for (secret_key, field) in SECRET_FIELDS {
        if !fields.contains_key(field)
            && let Some(v) = data.get(secret_key)
        {
            fields.insert(field.to_string(), v.clone());
        }
    }
    Ok(())
}
