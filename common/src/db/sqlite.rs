//! SQLite sessions over `rusqlite`, on a blocking thread; rows come back to
//! the async side in batches through a bounded channel. Values are rendered
//! as Python's `sqlite3` module gives them: integers, floats (`repr`), text,
//! `bytes` for blobs. The database is the connection's `host`, a local
//! file (`s3://` files are not built).

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use tokio::sync::mpsc;

use super::{DbError, DbSpec, RowSink};
use crate::sql::csv::Field;
use crate::sql::pytext;

/// An open SQLite session.
pub struct LiteSession {
    conn: Arc<Mutex<Connection>>,
}

fn lite_error(e: &rusqlite::Error) -> DbError {
    DbError(e.to_string())
}

/// What the blocking side sends.
enum Message {
    Columns(Vec<String>),
    Rows(Vec<Vec<Field>>),
}

impl LiteSession {
    pub(super) async fn open(spec: &DbSpec) -> Result<Self, DbError> {
        if spec.host.starts_with("s3://") {
            return Err(DbError(format!(
                "{}: SQLite databases in S3 are not supported by this worker yet",
                spec.host
            )));
        }
        let path = spec.host.clone();
        let conn = tokio::task::spawn_blocking(move || Connection::open(path))
            .await
            .map_err(|e| DbError(e.to_string()))?
            .map_err(|e| lite_error(&e))?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with_conn<T>(
        conn: &Arc<Mutex<Connection>>,
        f: impl FnOnce(&Connection) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let guard = conn
            .lock()
            .map_err(|_| DbError("SQLite session poisoned".into()))?;
        f(&guard)
    }

    pub(super) async fn simple(&mut self, sql: &str) -> Result<(), DbError> {
        let conn = self.conn.clone();
        let sql = sql.to_string();
        tokio::task::spawn_blocking(move || {
            Self::with_conn(&conn, |c| c.execute_batch(&sql).map_err(|e| lite_error(&e)))
        })
        .await
        .map_err(|e| DbError(e.to_string()))?
    }

    pub(super) async fn execute(
        &mut self,
        sql: &str,
        batch_size: usize,
        sink: &mut dyn RowSink,
    ) -> Result<bool, DbError> {
        let conn = self.conn.clone();
        let sql = sql.to_string();
        let (tx, mut rx) = mpsc::channel::<Message>(2);
        let worker = tokio::task::spawn_blocking(move || {
            Self::with_conn(&conn, |c| run(c, &sql, batch_size, &tx))
        });
        let mut had_columns = false;
        let mut sink_error = None;
        while let Some(message) = rx.recv().await {
            let done = match message {
                Message::Columns(names) => {
                    had_columns = true;
                    sink.columns(&names).await
                }
                Message::Rows(rows) => sink.rows(&rows).await,
            };
            if let Err(e) = done {
                sink_error = Some(e);
                break;
            }
        }
        drop(rx);
        let ran = worker.await.map_err(|e| DbError(e.to_string()))?;
        if let Some(e) = sink_error {
            return Err(e);
        }
        ran?;
        Ok(had_columns)
    }

    pub(super) async fn close(self) {
        drop(self.conn);
    }
}

/// Runs one statement on the blocking thread, sending its rows.
fn run(
    conn: &Connection,
    sql: &str,
    batch_size: usize,
    tx: &mpsc::Sender<Message>,
) -> Result<(), DbError> {
    let mut statement = conn.prepare(sql).map_err(|e| lite_error(&e))?;
    let names: Vec<String> = statement.column_names().map(str::to_string).collect();
    let count = names.len();
    if count == 0 {
        statement.raw_execute().map_err(|e| lite_error(&e))?;
        return Ok(());
    }
    if tx.blocking_send(Message::Columns(names)).is_err() {
        return Ok(());
    }
    let mut rows = statement.raw_query();
    let mut batch = Vec::with_capacity(batch_size);
    while let Some(row) = rows.next().map_err(|e| lite_error(&e))? {
        let mut fields = Vec::with_capacity(count);
        for i in 0..count {
            let value = row.get_ref(i).map_err(|e| lite_error(&e))?;
            fields.push(match value {
                ValueRef::Null => Field::null(),
                ValueRef::Integer(n) => Field::number(n.to_string()),
                ValueRef::Real(f) => Field::number(pytext::float_repr(f)),
                ValueRef::Text(t) => Field::text(String::from_utf8_lossy(t)),
                ValueRef::Blob(b) => Field::text(pytext::bytes_repr(b)),
            });
        }
        batch.push(fields);
        if batch.len() >= batch_size
            && tx
                .blocking_send(Message::Rows(std::mem::take(&mut batch)))
                .is_err()
        {
            return Ok(());
        }
    }
    if !batch.is_empty() {
        // A closed receiver means the sink failed; its error is reported.
        let _ = tx.blocking_send(Message::Rows(batch));
    }
    Ok(())
}
