//! Opening the database file, setting its pragmas, and migrating its schema.
//!
//! The schema version lives in a one-row `schema_version` table. `MIGRATIONS[i]` takes the
//! database from version `i` to `i + 1`; each runs in its own `BEGIN IMMEDIATE` transaction
//! that re-reads the version first, so two processes opening the same file at once cannot
//! both apply a step. Never edit a migration that has shipped: append a new one.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// How long a statement waits for another connection (possibly another ratchet process)
/// to release the write lock before failing with "database is locked".
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations, oldest first. The database's version is the number applied.
const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5];

/// Version 5: the named agent a session plays (role prompt, tools, cap), as JSON.
const V5: &str = "ALTER TABLE sessions ADD COLUMN agent TEXT;";

/// Version 4: sessions started by other sessions (fleet workers, listed with their parent,
/// deleted with it), and sessions that keep a stored provider entry whatever the default.
const V4: &str = "
ALTER TABLE sessions ADD COLUMN parent_id TEXT REFERENCES sessions (id) ON DELETE CASCADE;
ALTER TABLE sessions ADD COLUMN provider_pinned INTEGER NOT NULL DEFAULT 0;
CREATE INDEX sessions_by_parent ON sessions (parent_id) WHERE parent_id IS NOT NULL;
";

/// Version 3: named provider entries (`ratchet provider add`). No secret is stored: only the
/// name of the environment variable that holds the key. At most one entry is the default.
const V3: &str = "
CREATE TABLE providers (
    name        TEXT PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL,
    base_url    TEXT,
    model       TEXT NOT NULL,
    api_key_env TEXT,
    is_default  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX providers_one_default ON providers (is_default) WHERE is_default = 1;
";

/// Version 2: what of a session's history the model still sees (after `/clear` or
/// `/compact`): messages from `context_from` on, after `summary` if there is one.
const V2: &str = "
CREATE TABLE session_context (
    session_id   TEXT PRIMARY KEY NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    context_from INTEGER NOT NULL,
    summary      TEXT
);
";

/// Version 1: sessions, their messages, remembered permission decisions, and plans.
/// Times are Unix milliseconds; JSON columns hold serde encodings of engine types.
const V1: &str = "
CREATE TABLE sessions (
    id              TEXT PRIMARY KEY NOT NULL,
    title           TEXT,
    cwd             TEXT NOT NULL,
    additional_dirs TEXT NOT NULL DEFAULT '[]',
    provider        TEXT NOT NULL,
    model           TEXT NOT NULL,
    mode            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('active', 'closed')),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
-- Both indexes end in the list order (updated_at DESC, id DESC), so a page is an index range.
CREATE INDEX sessions_by_recency ON sessions (updated_at DESC, id DESC);
CREATE INDEX sessions_by_cwd ON sessions (cwd, updated_at DESC, id DESC);

CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    session_id   TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    role         TEXT NOT NULL,
    content      TEXT NOT NULL,
    tool_calls   TEXT NOT NULL DEFAULT '[]',
    tool_results TEXT NOT NULL DEFAULT '[]',
    usage        TEXT,
    status       TEXT NOT NULL CHECK (status IN ('complete', 'cancelled', 'error')),
    created_at   INTEGER NOT NULL,
    UNIQUE (session_id, seq)
);

CREATE TABLE session_permissions (
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    tool       TEXT NOT NULL,
    decision   TEXT NOT NULL CHECK (decision IN ('allow', 'reject')),
    PRIMARY KEY (session_id, tool)
);

CREATE TABLE plans (
    session_id TEXT PRIMARY KEY NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    entries    TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
";

/// Opens (creating if needed) the database at `path`, configures the connection and brings
/// the schema up to date.
pub(super) fn open(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        crate::engine::data_dir::create_dir(dir)
            .map_err(|source| StoreError::Io { path: path.to_path_buf(), source })?;
    }
    // Created 0600 before SQLite opens it: its -wal and -shm files take the same mode.
    crate::engine::data_dir::touch(path).map_err(|source| StoreError::Io { path: path.to_path_buf(), source })?;
    let mut conn = Connection::open(path)?;
    configure(&conn, path)?;
    let version = migrate(&mut conn, path)?;
    tracing::debug!(path = %path.display(), version, "session database open");
    Ok(conn)
}

/// Per-connection settings. The busy timeout comes first so the pragmas below wait for
/// other processes instead of failing.
fn configure(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // WAL lets readers (other processes included) run while one writer commits.
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Open(format!(
            "session database {}: could not switch to WAL journaling (SQLite kept {mode:?}); \
             this happens on file systems without shared-memory support, such as network \
             mounts: point RATCHET_HOME at a local disk",
            path.display()
        )));
    }
    // Durability: a commit returns only once the transaction is in the WAL file, so an
    // acknowledged write survives the process being killed (kill -9). With NORMAL the WAL is
    // not fsynced on every commit, so a power loss or OS crash may drop the last few commits;
    // that trade (FULL costs an fsync per message) is accepted for a coding agent's history.
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
    Ok(())
}

/// Applies pending migrations and returns the resulting schema version.
fn migrate(conn: &mut Connection, path: &Path) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
             id      INTEGER PRIMARY KEY CHECK (id = 1),
             version INTEGER NOT NULL
         );
         INSERT OR IGNORE INTO schema_version (id, version) VALUES (1, 0);",
    )?;
    tx.commit()?;

    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("SELECT version FROM schema_version WHERE id = 1", [], |row| row.get(0))?;
        let version = usize::try_from(version).map_err(|_| {
            StoreError::Migration(format!(
                "session database {} has an invalid schema version {version}; \
                 move the file aside to start with an empty history",
                path.display()
            ))
        })?;
        let Some(step) = MIGRATIONS.get(version) else {
            if version > MIGRATIONS.len() {
                return Err(StoreError::Migration(format!(
                    "session database {} has schema version {version}, but this ratchet knows \
                     only up to version {}: it was written by a newer ratchet; upgrade ratchet \
                     or point RATCHET_HOME elsewhere",
                    path.display(),
                    MIGRATIONS.len()
                )));
            }
            return Ok(version);
        };
        let next = version + 1;
        tx.execute_batch(step).map_err(|err| {
            StoreError::Migration(format!(
                "session database {}: migrating the schema to version {next} failed: {err}; \
                 that step was rolled back, so the file is still at version {version}",
                path.display()
            ))
        })?;
        tx.execute("UPDATE schema_version SET version = ?1 WHERE id = 1", [next as i64])?;
        tx.commit()?;
        tracing::info!(path = %path.display(), version = next, "migrated session database");
    }
}

/// The newest schema version this binary knows (for tests).
#[cfg(test)]
pub(super) const LATEST_VERSION: usize = MIGRATIONS.len();
