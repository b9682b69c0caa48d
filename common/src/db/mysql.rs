//! MySQL and MariaDB sessions over `mysql_async` (text protocol, rustls).
//!
//! Rows are read one at a time from the server's stream and handed on in
//! batches. Values are rendered as the original's driver (pymysql) turns
//! the text protocol into Python values: DECIMAL as `Decimal`, FLOAT and
//! DOUBLE as Python floats, DATETIME with six fraction digits, TIME as
//! `timedelta`, binary strings and BIT as `bytes`; other types as text.

use std::borrow::Cow;

use mysql_async::consts::ColumnType;
use mysql_async::prelude::Queryable;
use mysql_async::{Column, Conn, OptsBuilder, SslOpts, Value};

use super::{DbError, DbSpec, RowSink, TlsMode};
use crate::sql::csv::Field;
use crate::sql::pytext;

/// MySQL's `binary` character set.
const BINARY_CHARSET: u16 = 63;

/// An open MySQL or MariaDB session.
pub struct MySession {
    conn: Conn,
}

fn my_error(e: &mysql_async::Error) -> DbError {
    match e {
        mysql_async::Error::Server(s) => DbError(format!("({}, {:?})", s.code, s.message)),
        other => DbError(other.to_string()),
    }
}

impl MySession {
    pub(super) async fn connect(spec: &DbSpec) -> Result<Self, DbError> {
        let mut opts = OptsBuilder::default()
            .ip_or_hostname(spec.host.clone())
            .tcp_port(spec.port)
            .user(Some(spec.user.clone()))
            .pass(Some(spec.password.clone()))
            .db_name(spec.database.clone())
            .prefer_socket(false);
        if let Some(name) = &spec.app_name {
            opts = opts.connect_attribute("program_name", name.clone());
        }
        // An RDS authentication token goes in clear text, so only over TLS.
        if spec.password.contains("X-Amz-Credential=") {
            if spec.tls == TlsMode::Off {
                return Err(DbError(
                    "SSL is required with IAM database authentication".into(),
                ));
            }
            opts = opts.enable_cleartext_plugin(true);
        }
        if spec.tls != TlsMode::Off {
            let mut ssl = SslOpts::default();
            if let Some(ca) = &spec.ca_file {
                ssl = ssl.with_root_certs(vec![std::path::PathBuf::from(ca).into()]);
            }
            ssl = match spec.tls {
                TlsMode::Require => ssl
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true),
                TlsMode::VerifyCa => ssl.with_danger_skip_domain_validation(true),
                TlsMode::VerifyFull | TlsMode::Off => ssl,
            };
            opts = opts.ssl_opts(ssl);
        }
        let conn = Conn::new(opts).await.map_err(|e| my_error(&e))?;
        Ok(Self { conn })
    }

    pub(super) async fn simple(&mut self, sql: &str) -> Result<(), DbError> {
        self.conn.query_drop(sql).await.map_err(|e| my_error(&e))
    }

    pub(super) async fn execute(
        &mut self,
        sql: &str,
        batch_size: usize,
        sink: &mut dyn RowSink,
    ) -> Result<bool, DbError> {
        let mut result = self.conn.query_iter(sql).await.map_err(|e| my_error(&e))?;
        let columns: Vec<Column> = result.columns_ref().to_vec();
        if columns.is_empty() {
            result.drop_result().await.map_err(|e| my_error(&e))?;
            return Ok(false);
        }
        let names: Vec<String> = columns.iter().map(|c| c.name_str().into_owned()).collect();
        sink.columns(&names).await?;
        let mut batch: Vec<Vec<Field>> = Vec::with_capacity(batch_size);
        // Only the first result set is read (as a DB-API cursor does).
        while let Some(row) = result.next().await.map_err(|e| my_error(&e))? {
            if row.columns_ref().len() != columns.len() {
                break;
            }
            batch.push(
                columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| row.as_ref(i).map_or_else(Field::null, |v| field(c, v)))
                    .collect(),
            );
            if batch.len() >= batch_size {
                sink.rows(&batch).await?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            sink.rows(&batch).await?;
        }
        result.drop_result().await.map_err(|e| my_error(&e))?;
        Ok(true)
    }

    pub(super) async fn close(self) {
        if let Err(e) = self.conn.disconnect().await {
            tracing::debug!("mysql disconnect: {e}");
        }
    }
}

/// One value, as pymysql gives it to Python's `str()`.
fn field(column: &Column, value: &Value) -> Field {
    let bytes: Cow<'_, [u8]> = match value {
        Value::NULL => return Field::null(),
        Value::Bytes(b) => Cow::Borrowed(b.as_slice()),
        // The text protocol sends everything as bytes; other variants are
        // rendered through their SQL text.
        other => Cow::Owned(other.as_sql(true).into_bytes()),
    };
    let ty = column.column_type();
    let binary = column.character_set() == BINARY_CHARSET;
    match ty {
        ColumnType::MYSQL_TYPE_BIT | ColumnType::MYSQL_TYPE_GEOMETRY => {
            return Field::text(pytext::bytes_repr(&bytes));
        }
        ColumnType::MYSQL_TYPE_STRING
        | ColumnType::MYSQL_TYPE_VAR_STRING
        | ColumnType::MYSQL_TYPE_VARCHAR
        | ColumnType::MYSQL_TYPE_BLOB
        | ColumnType::MYSQL_TYPE_TINY_BLOB
        | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
        | ColumnType::MYSQL_TYPE_LONG_BLOB
            if binary =>
        {
            return Field::text(pytext::bytes_repr(&bytes));
        }
        _ => {}
    }
    let text = String::from_utf8_lossy(&bytes);
    match ty {
        ColumnType::MYSQL_TYPE_TINY
        | ColumnType::MYSQL_TYPE_SHORT
        | ColumnType::MYSQL_TYPE_LONG
        | ColumnType::MYSQL_TYPE_LONGLONG
        | ColumnType::MYSQL_TYPE_INT24
        | ColumnType::MYSQL_TYPE_YEAR => Field::number(text),
        ColumnType::MYSQL_TYPE_FLOAT | ColumnType::MYSQL_TYPE_DOUBLE => {
            Field::number(pytext::float_text(&text))
        }
        ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL => {
            Field::number(pytext::decimal_text(&text))
        }
        ColumnType::MYSQL_TYPE_DATETIME
        | ColumnType::MYSQL_TYPE_DATETIME2
        | ColumnType::MYSQL_TYPE_TIMESTAMP
        | ColumnType::MYSQL_TYPE_TIMESTAMP2 => {
            // Zero dates are not Python dates: pymysql keeps the text.
            if text.starts_with("0000")
                || text.get(4..8) == Some("-00-")
                || text.get(7..10) == Some("-00")
            {
                Field::text(text)
            } else {
                Field::text(pytext::fraction_text(&text))
            }
        }
        ColumnType::MYSQL_TYPE_TIME | ColumnType::MYSQL_TYPE_TIME2 => {
            match pytext::clock_micros(&text) {
                Some(us) => Field::text(pytext::timedelta_text(us)),
                None => Field::text(text),
            }
        }
        _ => Field::text(text),
    }
}
