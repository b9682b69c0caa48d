//! The local backend's database file `<DIR>/lava.db`: opening it (WAL mode,
//! busy timeout, `synchronous=FULL`), its schema version in the `meta`
//! key/value table and the migrations that bring an older file up to date,
//! the connections calls run on, and the opportunistic sweep of expired rows.
//!
//! **Connections.** rusqlite is blocking, so every call runs on
//! [`tokio::task::spawn_blocking`] with a connection checked out of a small
//! per-process pool (idle connections are kept, up to [`MAX_IDLE`]; a call
//! that finds none idle opens one). Concurrent calls of one process (a
//! worker's slots) therefore run in parallel: WAL readers never block each
//! other, and writers are serialised by SQLite's own file lock, which works
//! across processes too. Reusing connections spares each call the open,
//! the pragmas and the schema parse, and keeps the prepared-statement cache
//! warm. No connection is held while a long poll waits.
//!
//! **Locking.** Every write is one `BEGIN IMMEDIATE` transaction, so the
//! write lock is taken up front and waits in SQLite's busy handler (the
//! busy timeout) instead of failing on a read-to-write upgrade; a call that
//! still gets `SQLITE_BUSY` is retried a few times before it reports
//! [`StoreError::Unavailable`].

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use crate::store::StoreError;

/// The schema version this lava writes and understands.
pub(super) const SCHEMA_VERSION: u32 = 1;

/// Migration `n` brings a database at version `n - 1` to version `n`; each
/// runs in the same transaction as the version update. A file at version 0
/// is a new file, or one that has only the `meta` table.
const MIGRATIONS: &[(u32, &str)] = &[(1, MIGRATION_1)];

/// Version 1: tables and their items, queues and their messages.
///
/// `items` keeps every realm's items as JSON text keyed by (table name,
/// partition value, sort value or ''). Each table has at most one index
/// lava queries, so one pair of columns serves all three: jobs by
/// `dispatcher` sorted by `job_id`, events by `job_id` sorted by
/// `tu_event`, s3triggers by `bucket` and `prefix`. `ttl` is set for the
/// tables that have DynamoDB TTL enabled (events, state).
const MIGRATION_1: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE lava_tables (
    name       TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);
CREATE TABLE items (
    tbl   TEXT NOT NULL,
    pk    TEXT NOT NULL,
    sk    TEXT NOT NULL DEFAULT '',
    body  TEXT NOT NULL,
    ttl   INTEGER,
    ix_pk TEXT,
    ix_sk TEXT,
    PRIMARY KEY (tbl, pk, sk)
) WITHOUT ROWID;
CREATE INDEX items_by_index ON items (tbl, ix_pk, ix_sk);
CREATE INDEX items_by_ttl ON items (ttl) WHERE ttl IS NOT NULL;
CREATE TABLE queues (
    name            TEXT PRIMARY KEY,
    visibility_secs INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT NOT NULL REFERENCES queues (name),
    message_id    TEXT NOT NULL UNIQUE,
    body          TEXT NOT NULL,
    sent_at       INTEGER NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT UNIQUE,
    received_at   INTEGER
);
CREATE INDEX messages_by_visibility ON messages (queue, visible_at);
CREATE INDEX messages_by_age ON messages (sent_at);
";

/// How long a statement waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening keeps retrying a database another process is initialising.
const INIT_PATIENCE: Duration = Duration::from_secs(60);
/// Retries of a whole call that still met `SQLITE_BUSY`.
const BUSY_RETRIES: u32 = 3;
/// Idle connections kept per process.
const MAX_IDLE: usize = 4;
/// Seconds between two sweeps of expired rows by one process.
const SWEEP_EVERY_SECS: i64 = 60;
/// SQS's default message retention (4 days), in milliseconds.
const RETENTION_MS: i64 = 4 * 24 * 3600 * 1000;

/// A failure inside a database call: SQLite's, or one of the seam's own.
#[derive(Debug)]
pub(super) enum DbError {
    /// SQLite failed.
    Sql(rusqlite::Error),
    /// The call's answer is an error (missing table, failed condition, …).
    Store(StoreError),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sql(e)
    }
}

impl From<StoreError> for DbError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// The current time in epoch milliseconds.
pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The current time in epoch seconds.
pub(super) fn now_secs() -> i64 {
    now_ms() / 1000
}

/// The database of one local backend directory, shared by a process's seams.
pub(super) struct Db {
    dir: PathBuf,
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    last_sweep: AtomicI64,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

/// Creates the database file, private to its owner (mode 0600: it holds
/// every table, state included), or checks an existing one is a regular
/// file and takes group and other access away from it. SQLite gives its
/// `-wal` and `-shm` files the database's mode.
fn private_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        // Never opened through a symbolic link.
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| unusable(path, "cannot open the database file", &e))?;
    let meta = file
        .metadata()
        .map_err(|e| unusable(path, "cannot read the database file", &e))?;
    if !meta.is_file() {
        return Err(StoreError::BadRequest(format!(
            "local backend: {} is not a database file",
            path.display()
        )));
    }
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o700))
            .map_err(|e| unusable(path, "cannot make the database file private", &e))?;
    }
    Ok(())
}

fn unusable(path: &Path, what: &str, e: &std::io::Error) -> StoreError {
    StoreError::BadRequest(format!("local backend: {what} {}: {e}", path.display()))
}

impl Db {
    /// Creates `dir` and `dir/objects` if needed, opens `dir/lava.db`, and
    /// creates or migrates its schema. Blocking.
    pub(super) fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| unusable(dir, "cannot create the directory", &e))?;
        let dir = std::fs::canonicalize(dir)
            .map_err(|e| unusable(dir, "cannot resolve the directory", &e))?;
        if dir.to_str().is_none() {
            return Err(StoreError::BadRequest(format!(
                "local backend: the directory {} is not valid UTF-8, so it cannot be a file:// URL",
                dir.display()
            )));
        }
        let objects = dir.join("objects");
        std::fs::create_dir_all(&objects)
            .map_err(|e| unusable(&objects, "cannot create the directory", &e))?;
        let path = dir.join("lava.db");
        private_file(&path)?;
        let db = Self {
            dir,
            path,
            idle: Mutex::new(Vec::new()),
            last_sweep: AtomicI64::new(0),
        };
        let mut conn = db.connect()?;
        // Several processes opening a new file at once race for the switch to
        // WAL and the first migration; SQLite can answer SQLITE_BUSY there
        // without waiting (deadlock avoidance), so the losers retry.
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            match db.init(&mut conn) {
                Err(DbError::Sql(e)) if is_busy(&e) && started.elapsed() < INIT_PATIENCE => {
                    tracing::debug!(path = %db.path.display(), "database busy while opening; retrying");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                other => break other.map_err(|e| db.store_error(e))?,
            }
        }
        db.sweep_if_due(&conn);
        db.checkin(conn);
        Ok(db)
    }

    /// The backend directory (absolute, UTF-8).
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let setup = || -> Result<Connection, rusqlite::Error> {
            let conn = Connection::open(&self.path)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            Ok(conn)
        };
        setup().map_err(|e| self.sql_error(&e))
    }

    /// Switches the file to WAL and brings its schema to [`SCHEMA_VERSION`].
    fn init(&self, conn: &mut Connection) -> Result<(), DbError> {
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %self.path.display(), mode, "the database could not switch to WAL mode; concurrent processes will wait more");
        }
        if self.stored_version(conn)? == SCHEMA_VERSION {
            return Ok(());
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Read again under the write lock: another process may have migrated.
        let from = self.stored_version(&tx)?;
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > from) {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [version.to_string()],
            )?;
            tracing::info!(path = %self.path.display(), from, to = version, "migrated the local backend's schema");
        }
        tx.commit()?;
        Ok(())
    }

    /// The schema version stored in `meta` (0 for a new, empty file).
    /// Refuses files of a newer lava and SQLite files that are not lava's.
    fn stored_version(&self, conn: &Connection) -> Result<u32, DbError> {
        let has_meta: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta')",
            [],
            |r| r.get(0),
        )?;
        let path = self.path.display();
        if !has_meta {
            let others: i64 = conn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
                [],
                |r| r.get(0),
            )?;
            if others == 0 {
                return Ok(0);
            }
            return Err(StoreError::BadRequest(format!(
                "local backend: {path} is an SQLite database but not lava's (it has no meta table); it was left untouched"
            ))
            .into());
        }
        let text: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let version = match text {
            None => 0,
            Some(t) => t.trim().parse::<u32>().map_err(|_| {
                StoreError::BadRequest(format!(
                    "local backend: {path} has a schema_version lava cannot read: {t:?}"
                ))
            })?,
        };
        if version > SCHEMA_VERSION {
            return Err(StoreError::BadRequest(format!(
                "local backend: {path} has schema version {version}, newer than this lava understands ({SCHEMA_VERSION}); use a newer lava (the file was left untouched)"
            ))
            .into());
        }
        Ok(version)
    }

    /// Runs `f` on a pooled connection on the blocking thread pool. `f` is
    /// retried (with a fresh transaction) while SQLite reports busy.
    pub(super) async fn run<T, F>(self: &std::sync::Arc<Self>, f: F) -> Result<T, StoreError>
    where
        F: Fn(&mut Connection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let db = std::sync::Arc::clone(self);
        tokio::task::spawn_blocking(move || db.run_blocking(f))
            .await
            .map_err(|e| {
                StoreError::Service(format!("local backend: a database call failed: {e}"))
            })?
    }

    fn run_blocking<T>(
        &self,
        f: impl Fn(&mut Connection) -> Result<T, DbError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.checkout()?;
        let mut attempt = 0;
        let result = loop {
            match f(&mut conn) {
                Err(DbError::Sql(e)) if is_busy(&e) && attempt < BUSY_RETRIES => {
                    attempt += 1;
                    tracing::debug!(path = %self.path.display(), attempt, "database busy; retrying");
                    std::thread::sleep(Duration::from_millis(50 * u64::from(attempt)));
                }
                other => break other,
            }
        };
        self.sweep_if_due(&conn);
        self.checkin(conn);
        result.map_err(|e| self.store_error(e))
    }

    fn checkout(&self) -> Result<Connection, StoreError> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match pooled {
            Some(conn) => Ok(conn),
            None => self.connect(),
        }
    }

    fn checkin(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
    }

    /// Deletes expired items and messages past retention, at most once a
    /// minute per process (reads already skip them; this only frees space).
    fn sweep_if_due(&self, conn: &Connection) {
        let now = now_secs();
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now - last < SWEEP_EVERY_SECS
            || self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        // Read first, so a process with nothing to sweep (a cron-started
        // dispatcher, mostly) never takes the write lock for it.
        let sweep = || -> Result<(usize, usize), rusqlite::Error> {
            let cutoff = now_ms() - RETENTION_MS;
            let due: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM items WHERE ttl IS NOT NULL AND ttl < ?1)
                     OR EXISTS (SELECT 1 FROM messages WHERE sent_at < ?2)",
                params![now, cutoff],
                |r| r.get(0),
            )?;
            if !due {
                return Ok((0, 0));
            }
            let items = conn.execute(
                "DELETE FROM items WHERE ttl IS NOT NULL AND ttl < ?1",
                [now],
            )?;
            let messages = conn.execute("DELETE FROM messages WHERE sent_at < ?1", [cutoff])?;
            Ok((items, messages))
        };
        match sweep() {
            Ok((0, 0)) => {}
            Ok((items, messages)) => {
                tracing::debug!(path = %self.path.display(), items, messages, "swept expired rows");
            }
            Err(e) => {
                tracing::debug!(path = %self.path.display(), error = %e, "sweeping expired rows failed; will try later");
            }
        }
    }

    /// A call's failure as the seam reports it.
    pub(super) fn store_error(&self, e: DbError) -> StoreError {
        match e {
            DbError::Store(s) => s,
            DbError::Sql(e) => self.sql_error(&e),
        }
    }

    fn sql_error(&self, e: &rusqlite::Error) -> StoreError {
        let path = self.path.display();
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                StoreError::BadRequest(format!(
                    "local backend: {path} is not a lava database (not SQLite, or corrupt): {e}; it was left untouched"
                ))
            }
            Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly | ErrorCode::PermissionDenied) => {
                StoreError::BadRequest(format!(
                    "local backend: cannot open {path} for reading and writing: {e}"
                ))
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Unavailable(
                format!("local backend: {path} stayed locked by another process: {e}"),
            ),
            Some(ErrorCode::DiskFull | ErrorCode::SystemIoFailure) => {
                StoreError::Unavailable(format!("local backend: {path}: {e}"))
            }
            _ => StoreError::Service(format!("local backend: {path}: {e}")),
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn the_database_file_is_private_and_never_a_link() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let fresh = dir.path().join("fresh");
        Db::open(&fresh).unwrap_or_else(|e| panic!("open: {e}"));
        assert_eq!(mode(&fresh.join("lava.db")), 0o600);

        let old = dir.path().join("old");
        std::fs::create_dir(&old).unwrap_or_else(|e| panic!("mkdir: {e}"));
        std::fs::write(old.join("lava.db"), b"").unwrap_or_else(|e| panic!("write: {e}"));
        std::fs::set_permissions(old.join("lava.db"), std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("chmod: {e}"));
        Db::open(&old).unwrap_or_else(|e| panic!("open: {e}"));
        assert_eq!(mode(&old.join("lava.db")), 0o600, "made private");

        let linked = dir.path().join("linked");
        std::fs::create_dir(&linked).unwrap_or_else(|e| panic!("mkdir: {e}"));
        std::os::unix::fs::symlink(fresh.join("lava.db"), linked.join("lava.db"))
            .unwrap_or_else(|e| panic!("symlink: {e}"));
        assert!(Db::open(&linked).is_err(), "a link is refused");
    }
}
