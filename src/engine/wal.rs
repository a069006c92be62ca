//! What every ratchet SQLite file (`ratchet.db`, `orchestra.db`) does when its process ends.
//!
//! A process ends without closing its connection (the store thread and blocking threads are
//! not joined), so SQLite never checkpoints on close: the write-ahead log outlived every
//! process and grew, and each start read all of it back to rebuild its index (issue 11:
//! 170 KiB after a few starts, up to the 4 MiB auto-checkpoint size on a used data
//! directory). Shutdown therefore copies the log into the database and truncates it.

use std::time::Duration;

use rusqlite::Connection;

/// Checkpoints and truncates the WAL, without waiting: when another process is reading or
/// writing, the log is left for the last one to end (or SQLite's own auto-checkpoint).
/// `busy_timeout` is restored afterwards.
pub fn truncate_on_shutdown(conn: &Connection, busy_timeout: Duration, what: &str) {
    let _ = conn.busy_timeout(Duration::ZERO);
    match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0)) {
        Ok(0) => tracing::debug!(database = what, "write-ahead log checkpointed and truncated"),
        Ok(_) => tracing::debug!(database = what, "write-ahead log left: another process uses the database"),
        Err(e) => tracing::debug!(database = what, error = %e, "write-ahead log not checkpointed"),
    }
    let _ = conn.busy_timeout(busy_timeout);
}
