//! In-process database sessions for the SQL job types (and, later, the
//! tracking store): one [`Session`] type over PostgreSQL and Redshift
//! (`tokio-postgres`, rustls), MySQL and MariaDB (`mysql_async`, rustls)
//! and SQLite (`rusqlite`). A session runs one statement at a time and
//! streams a statement's rows to a [`RowSink`] in batches, each value
//! already rendered as the original's Python drivers would give it to
//! Python's `str()` (see [`crate::sql::pytext`]); a result set is never held
//! whole.
//!
//! Autocommit is on unless a transaction is begun; the application name of
//! `CONN_APP_NAME` goes to PostgreSQL's `application_name` and MySQL's
//! `program_name` connection attribute.

pub mod iam;
mod mysql;
mod postgres;
pub mod spec;
mod sqlite;
mod tls;

use async_trait::async_trait;

pub use spec::{DbSpec, Engine, TlsMode, resolve};

use crate::sql::csv::Field;

/// A database failure, with the driver's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DbError(pub String);

/// Where a statement's result set goes.
#[async_trait]
pub trait RowSink: Send {
    /// The statement returned a result set with these columns (possibly
    /// empty); called once, before any rows.
    async fn columns(&mut self, names: &[String]) -> Result<(), DbError>;

    /// The next batch of rows.
    async fn rows(&mut self, rows: &[Vec<Field>]) -> Result<(), DbError>;
}

/// An open database session.
pub enum Session {
    /// PostgreSQL or Redshift.
    Postgres(postgres::PgSession),
    /// MySQL or MariaDB.
    MySql(mysql::MySession),
    /// SQLite.
    Sqlite(sqlite::LiteSession),
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Postgres(_) => "Session::Postgres",
            Self::MySql(_) => "Session::MySql",
            Self::Sqlite(_) => "Session::Sqlite",
        })
    }
}

impl Session {
    /// Connects, in autocommit mode.
    pub async fn connect(spec: &DbSpec) -> Result<Self, DbError> {
        Ok(match spec.engine {
            Engine::Postgres | Engine::Redshift => {
                Self::Postgres(postgres::PgSession::connect(spec).await?)
            }
            Engine::MySql => Self::MySql(mysql::MySession::connect(spec).await?),
            Engine::Sqlite => Self::Sqlite(sqlite::LiteSession::open(spec).await?),
        })
    }

    /// Begins a transaction: statements run in it until [`Session::commit`]
    /// or [`Session::rollback`].
    pub async fn begin(&mut self) -> Result<(), DbError> {
        self.simple("BEGIN").await
    }

    /// Commits the transaction.
    pub async fn commit(&mut self) -> Result<(), DbError> {
        self.simple("COMMIT").await
    }

    /// Rolls the transaction back.
    pub async fn rollback(&mut self) -> Result<(), DbError> {
        self.simple("ROLLBACK").await
    }

    async fn simple(&mut self, sql: &str) -> Result<(), DbError> {
        match self {
            Self::Postgres(s) => s.simple(sql).await,
            Self::MySql(s) => s.simple(sql).await,
            Self::Sqlite(s) => s.simple(sql).await,
        }
    }

    /// Runs one statement; a result set goes to `sink` in batches of
    /// `batch_size` rows. Returns whether there was a result set.
    pub async fn execute(
        &mut self,
        sql: &str,
        batch_size: usize,
        sink: &mut dyn RowSink,
    ) -> Result<bool, DbError> {
        let batch_size = batch_size.max(1);
        match self {
            Self::Postgres(s) => s.execute(sql, batch_size, sink).await,
            Self::MySql(s) => s.execute(sql, batch_size, sink).await,
            Self::Sqlite(s) => s.execute(sql, batch_size, sink).await,
        }
    }

    /// Closes the session.
    pub async fn close(self) {
        match self {
            Self::Postgres(s) => s.close().await,
            Self::MySql(s) => s.close().await,
            Self::Sqlite(s) => s.close().await,
        }
    }
}
