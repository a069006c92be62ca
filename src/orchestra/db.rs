//! The orchestra's own database, `RATCHET_HOME/orchestra.db`: plans, the question queue and
//! the job registry. Apart from the engine's session store (the orchestra never touches
//! that), and shared by every ratchet process on the data directory: a plan approved or a
//! question answered by `ratchet plans …`/`ratchet questions …` in another terminal is seen
//! by the process that waits for it (see `questions::QuestionQueue::wait`).
//!
//! Each module owns its tables and contributes one migration to [`MIGRATIONS`]. Never edit a
//! migration that has shipped: append a new one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

/// The page cache of the orchestra's connection, in KiB.
const ORCHESTRA_CACHE_KIB: i64 = 256;

/// How long a statement waits for another process to release the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations, oldest first; the database's `user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    super::plans::SCHEMA,
    super::questions::SCHEMA,
    super::jobs::SCHEMA,
    super::blackboard::SCHEMA,
    super::plans::SCHEMA_STEP_AGENT,
    super::tasks::SCHEMA,
    super::projects::SCHEMA,
    super::cron::SCHEMA,
    super::teams::store::SCHEMA,
];

/// Why the orchestra's database failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("orchestra database {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("orchestra database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("orchestra database: a stored value does not parse: {0}")]
    Corrupt(String),
    #[error("orchestra database: {0}")]
    Join(String),
    /// The database could not be opened on first use; the message says why.
    #[error("cannot open the orchestra database: {0}")]
    Unavailable(String),
}

/// A shared handle on the database: one connection, used on blocking threads.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` for an in-memory database (opened at once).
    path: Option<PathBuf>,
    /// Opened on first use (see [`Db::lazy`]); an error is kept and returned to every call.
    conn: std::sync::OnceLock<Result<Mutex<Connection>, String>>,
}

impl Db {
    /// Opens (creating 0600 if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let conn = open_file(path)?;
        let db = Db::lazy(path);
        let _ = db.inner.conn.set(Ok(Mutex::new(conn)));
        Ok(db)
    }

    /// The database at `path`, opened by the first call on it (on a blocking thread): a
    /// process that never plans or asks pays nothing for it at start-up.
    pub fn lazy(path: &Path) -> Db {
        Db { inner: Arc::new(Inner { path: Some(path.to_path_buf()), conn: std::sync::OnceLock::new() }) }
    }

    /// The database under a data directory.
    pub fn open_in(home: &Path) -> Result<Db, DbError> {
        Db::open(&home.join("orchestra.db"))
    }

    /// A private in-memory database (tests).
    pub fn memory() -> Db {
        let mut conn = Connection::open_in_memory().expect("an in-memory database opens");
        conn.pragma_update(None, "foreign_keys", "ON").expect("pragma");
        migrate(&mut conn).expect("the schema applies");
        let inner = Inner { path: None, conn: std::sync::OnceLock::from(Ok(Mutex::new(conn))) };
        Db { inner: Arc::new(inner) }
    }

    /// Copies the write-ahead log into the database and truncates it, if this process opened
    /// the database (see `engine::wal`); for shutdown.
    pub async fn checkpoint_on_shutdown(&self) {
        let inner = self.inner.clone();
        let done = tokio::task::spawn_blocking(move || {
            if let Some(Ok(conn)) = inner.conn.get() {
                let conn = conn.lock().unwrap_or_else(|p| p.into_inner());
                crate::engine::wal::truncate_on_shutdown(&conn, BUSY_TIMEOUT, "orchestra.db");
            }
        });
        let _ = done.await;
    }

    /// Runs `f` on the connection on a blocking thread.
    pub async fn call<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let opened = inner.conn.get_or_init(|| match &inner.path {
                Some(path) => open_file(path).map(Mutex::new).map_err(|e| e.to_string()),
                None => Err("the in-memory database is gone".into()),
            });
            let conn = opened.as_ref().map_err(|e| DbError::Unavailable(e.clone()))?;
            let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| DbError::Join(e.to_string()))?
    }
}

/// Opens (creating 0600 if needed) the database file and migrates it.
fn open_file(path: &Path) -> Result<Connection, DbError> {
    let io = |source| DbError::Io { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::engine::data_dir::create_dir(dir).map_err(io)?;
    }
    crate::engine::data_dir::touch(path).map_err(io)?;
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let _: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Small tables, touched a few times per turn: a small page cache (SQLite's default is
    // 2 MiB) keeps the orchestra from growing every process that runs turns.
    conn.pragma_update(None, "cache_size", -ORCHESTRA_CACHE_KIB)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Applies the migrations not yet applied, each in its own `BEGIN IMMEDIATE` transaction
/// that re-reads the version (two processes opening the file at once apply each step once).
fn migrate(conn: &mut Connection) -> Result<(), DbError> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: usize =
            tx.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))?.try_into().unwrap_or(0);
        let Some(step) = MIGRATIONS.get(version) else { return Ok(()) };
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", (version + 1) as i64)?;
        tx.commit()?;
    }
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_private_and_migrates_once_per_process_pair() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o").join("orchestra.db");
        let a = Db::open(&path).unwrap();
        let b = Db::open(&path).unwrap();
        let va: i64 = a.call(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?)).await.unwrap();
        let vb: i64 = b.call(|c| Ok(c.pragma_query_value(None, "user_version", |r| r.get(0))?)).await.unwrap();
        assert_eq!((va, vb), (MIGRATIONS.len() as i64, MIGRATIONS.len() as i64));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
