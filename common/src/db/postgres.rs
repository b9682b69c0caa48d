//! PostgreSQL and Redshift sessions over `tokio-postgres`.
//!
//! A statement is described first (its columns and their types), then run
//! with the simple query protocol, which Redshift also speaks, and its rows
//! streamed as they arrive (the connection reads no further than the sink
//! takes). Values arrive as the server's text and are rendered as the
//! original's driver (pg8000) turns that text into Python values: `t` →
//! `True`, floats as Python floats, NUMERIC as `Decimal`, times with six
//! fraction digits, intervals as `timedelta`, JSON as Python objects,
//! `bytea` as `bytes`; other types as the server's text.

use futures_util::StreamExt;
use tokio::task::JoinHandle;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Config, NoTls, SimpleQueryMessage};

use super::{DbError, DbSpec, RowSink, TlsMode, tls};
use crate::sql::csv::Field;
use crate::sql::pytext;

/// An open PostgreSQL session.
pub struct PgSession {
    client: Client,
    connection: JoinHandle<()>,
}

fn pg_error(e: &tokio_postgres::Error) -> DbError {
    match e.as_db_error() {
        Some(db) => DbError(format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        )),
        None => DbError(e.to_string()),
    }
}

impl PgSession {
    pub(super) async fn connect(spec: &DbSpec) -> Result<Self, DbError> {
        let mut config = Config::new();
        config
            .host(&spec.host)
            .port(spec.port)
            .user(&spec.user)
            .password(&spec.password);
        if let Some(db) = &spec.database {
            config.dbname(db);
        }
        if let Some(name) = &spec.app_name {
            config.application_name(name);
        }
        let (client, connection) = if spec.tls == TlsMode::Off {
            let (client, conn) = config.connect(NoTls).await.map_err(|e| pg_error(&e))?;
            (client, tokio::spawn(async move { drop(conn.await) }))
        } else {
            config.ssl_mode(tokio_postgres::config::SslMode::Require);
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls::client_config(
                spec.tls,
                spec.ca_file.as_deref(),
            )?);
            let (client, conn) = config.connect(tls).await.map_err(|e| pg_error(&e))?;
            (client, tokio::spawn(async move { drop(conn.await) }))
        };
        Ok(Self { client, connection })
    }

    pub(super) async fn simple(&mut self, sql: &str) -> Result<(), DbError> {
        self.client
            .batch_execute(sql)
            .await
            .map_err(|e| pg_error(&e))
    }

    pub(super) async fn execute(
        &mut self,
        sql: &str,
        batch_size: usize,
        sink: &mut dyn RowSink,
    ) -> Result<bool, DbError> {
        let statement = self.client.prepare(sql).await.map_err(|e| pg_error(&e))?;
        if statement.columns().is_empty() {
            drop(statement);
            self.simple(sql).await?;
            return Ok(false);
        }
        let types: Vec<Type> = statement
            .columns()
            .iter()
            .map(|c| c.type_().clone())
            .collect();
        let names: Vec<String> = statement
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        drop(statement);
        let stream = self
            .client
            .simple_query_raw(sql)
            .await
            .map_err(|e| pg_error(&e))?;
        let mut stream = std::pin::pin!(stream);
        let mut told = false;
        let mut batch: Vec<Vec<Field>> = Vec::with_capacity(batch_size);
        while let Some(message) = stream.next().await {
            match message.map_err(|e| pg_error(&e))? {
                SimpleQueryMessage::RowDescription(_) if !told => {
                    sink.columns(&names).await?;
                    told = true;
                }
                SimpleQueryMessage::Row(row) => {
                    let fields = (0..row.len())
                        .map(|i| {
                            let ty = types.get(i).unwrap_or(&Type::TEXT);
                            field(ty, row.get(i))
                        })
                        .collect();
                    batch.push(fields);
                    if batch.len() >= batch_size {
                        sink.rows(&batch).await?;
                        batch.clear();
                    }
                }
                _ => {}
            }
        }
        if !told {
            sink.columns(&names).await?;
        }
        if !batch.is_empty() {
            sink.rows(&batch).await?;
        }
        Ok(true)
    }

    pub(super) async fn close(self) {
        drop(self);
    }
}

impl Drop for PgSession {
    /// Closes the connection at once, even with a statement running (the
    /// server then rolls back an open transaction).
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// One value, as pg8000 gives it to Python's `str()`.
fn field(ty: &Type, text: Option<&str>) -> Field {
    let Some(text) = text else {
        return Field::null();
    };
    match *ty {
        Type::BOOL => Field::number(if text == "t" { "True" } else { "False" }),
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID | Type::XID => Field::number(text),
        Type::FLOAT4 | Type::FLOAT8 => Field::number(pytext::float_text(text)),
        Type::NUMERIC => Field::number(pytext::decimal_text(text)),
        Type::TIME | Type::TIMESTAMP => Field::text(pytext::fraction_text(text)),
        Type::TIMESTAMPTZ => Field::text(timestamptz(text)),
        Type::INTERVAL => Field::text(interval(text)),
        Type::JSON | Type::JSONB => match serde_json::from_str::<serde_json::Value>(text) {
            // JSON `null` is Python's None: an empty field.
            Ok(serde_json::Value::Null) => Field::null(),
            Ok(v) => {
                let numeric = v.is_number() || v.is_boolean();
                Field {
                    text: Some(pytext::json_text(&v)),
                    numeric,
                }
            }
            Err(_) => Field::text(text),
        },
        Type::BYTEA => match hex_bytes(text) {
            Some(bytes) => Field::text(pytext::bytes_repr(&bytes)),
            None => Field::text(text),
        },
        _ => Field::text(text),
    }
}

/// `2024-05-01 10:00:00.5+02` → `2024-05-01 10:00:00.500000+02:00`.
fn timestamptz(text: &str) -> String {
    let split = text
        .char_indices()
        .skip(19)
        .find(|(_, c)| *c == '+' || *c == '-')
        .map(|(i, _)| i);
    let Some(at) = split else {
        return text.to_string();
    };
    let (base, offset) = text.split_at(at);
    let sign = &offset[..1];
    let parts: Vec<&str> = offset[1..].split(':').collect();
    let ok = !parts.is_empty()
        && parts.len() <= 3
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        return text.to_string();
    }
    let mut tz = format!("{sign}{}:{}", parts[0], parts.get(1).unwrap_or(&"00"));
    if let Some(secs) = parts.get(2).filter(|s| **s != "00") {
        tz.push(':');
        tz.push_str(secs);
    }
    format!("{}{tz}", pytext::fraction_text(base))
}

/// A PostgreSQL-style interval as pg8000 gives it to Python's `str()`: a
/// `timedelta` (`1 day, 2:00:00`), or, with years or months (which a
/// `timedelta` cannot hold), pg8000's own interval text
/// (`1 years 2 months 3 days 4 hours`).
fn interval(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (mut years, mut months, mut days) = (None, None, None);
    let mut clock: Option<(i128, i128, String)> = None;
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        if w.contains(':') {
            let mut parts = w.split(':');
            let (Some(h), Some(m), Some(sec), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return text.to_string();
            };
            let (Ok(h), Ok(m)) = (h.parse::<i128>(), m.parse::<i128>()) else {
                return text.to_string();
            };
            clock = Some((h, m, sec.to_string()));
            i += 1;
            continue;
        }
        let (Ok(n), Some(unit)) = (w.parse::<i128>(), words.get(i + 1)) else {
            return text.to_string();
        };
        match *unit {
            "year" | "years" => years = Some(n),
            "mon" | "mons" => months = Some(n),
            "day" | "days" => days = Some(n),
            _ => return text.to_string(),
        }
        i += 2;
    }
    if years.is_some() || months.is_some() {
        let mut parts = Vec::new();
        if let Some(y) = years {
            parts.push(format!("{y} years"));
        }
        if let Some(m) = months {
            parts.push(format!("{m} months"));
        }
        if let Some(d) = days {
            parts.push(format!("{d} days"));
        }
        if let Some((h, m, sec)) = &clock {
            if *h != 0 {
                parts.push(format!("{h} hours"));
            }
            if *m != 0 {
                parts.push(format!("{m} minutes"));
            }
            let seconds = pytext::float_text(sec);
            if sec.parse::<f64>().is_ok_and(|f| f != 0.0) {
                parts.push(format!("{seconds} seconds"));
            }
        }
        return parts.join(" ");
    }
    let mut micros = days.unwrap_or(0) * 86_400_000_000;
    if let Some((h, m, sec)) = clock {
        // As pg8000 reads it: the sign belongs to the hours only.
        match clock_parts(&format!("{h}:{m}:{sec}")) {
            Some(us) => micros += us,
            None => return text.to_string(),
        }
    }
    pytext::timedelta_text(micros)
}

/// `H:MM:SS[.f]` of an interval as pg8000 reads it: signed hours, then
/// minutes and seconds added (so `-00:00:01.5` is 1.5 seconds).
fn clock_parts(text: &str) -> Option<i128> {
    let mut parts = text.split(':');
    let hours: i128 = parts.next()?.parse().ok()?;
    let minutes: i128 = parts.next()?.parse().ok()?;
    let seconds = pytext::clock_micros(&format!("0:0:{}", parts.next()?))?;
    if parts.next().is_some() {
        return None;
    }
    Some((hours * 60 + minutes) * 60_000_000 + seconds)
}

/// `\x0102` → bytes.
fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    let hex = text.strip_prefix("\\x")?;
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_as_pg8000() {
        assert_eq!(
            timestamptz("2024-05-01 10:00:00+00"),
            "2024-05-01 10:00:00+00:00"
        );
        assert_eq!(
            timestamptz("2024-05-01 10:00:00.25+05:30"),
            "2024-05-01 10:00:00.250000+05:30"
        );
        assert_eq!(interval("1 day 02:00:00"), "1 day, 2:00:00");
        assert_eq!(interval("-1 days +02:00:00"), "-1 day, 2:00:00");
        assert_eq!(interval("00:00:01.5"), "0:00:01.500000");
        assert_eq!(interval("-00:00:01.5"), "0:00:01.500000");
        assert_eq!(interval("-01:30:00"), "-1 day, 23:30:00");
        assert_eq!(interval("1 mon"), "1 months");
        assert_eq!(
            interval("1 year 2 mons 3 days 04:05:06"),
            "1 years 2 months 3 days 4 hours 5 minutes 6.0 seconds"
        );
        assert_eq!(interval("2 mons 00:00:00.5"), "2 months 0.5 seconds");
        assert_eq!(interval("1 year -01:00:00"), "1 years -1 hours");
        assert_eq!(interval("3 days"), "3 days, 0:00:00");
        assert_eq!(hex_bytes("\\x00ff"), Some(vec![0, 255]));
    }
}
