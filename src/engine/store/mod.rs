//! `SessionStore`: sessions and their message history, persisted in SQLite.
//!
//! rusqlite is synchronous, and a `Connection` must not be shared between threads while in
//! use, so one dedicated `std::thread` owns the connection and runs every query. Async code
//! holds a [`SessionStore`], a cheap `Clone` handle that sends commands over a bounded
//! channel; each command carries a oneshot for its reply. No async task ever blocks on
//! SQLite, and all writes from this process are serialized in one place. When the last
//! handle is dropped, the channel closes and the thread exits, closing the database.
//!
//! Durability: a write's future resolves only after its transaction committed, so an
//! acknowledged message survives the process being killed (see `schema::configure`).
//! Several ratchet processes may share one database file: WAL mode plus a busy timeout let
//! them read concurrently and take turns writing.
//!
//! Layout: `types.rs` holds the public values and errors, `schema.rs` opens the file and
//! migrates it, `queries.rs` holds the SQL, `providers.rs` the named provider entries.

mod providers;
mod queries;
mod schema;
mod sqlite_error;
#[cfg(test)]
mod tests;
mod types;

use std::path::Path;
use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

pub use providers::{NewProvider, ProviderRecord};
pub use types::{
    AgentProfile, ListQuery, MessageStatus, NewMessage, NewSession, SessionPage, SessionPatch, SessionRecord,
    SessionStatus, StoreError, StoredMessage,
};

/// How many commands may wait for the store thread. Each command is small (a boxed closure)
/// and most take well under a millisecond, so this only fills when SQLite stalls, e.g. while
/// another process holds the write lock. Then senders wait instead of queueing without
/// bound: memory stays bounded, and back-pressure reaches the sessions producing the writes.
const COMMAND_QUEUE_CAPACITY: usize = 256;

/// A command for the store thread: it runs a query and sends the result on its oneshot.
type Command = Box<dyn FnOnce(&mut Connection) + Send>;

/// A handle to the session database. Clone it freely; all clones share one connection.
#[derive(Debug, Clone)]
pub struct SessionStore {
    commands: mpsc::Sender<Command>,
    path: Arc<Path>,
}

impl SessionStore {
    /// Opens the database at `path`, creating it and its parent directories if needed, and
    /// migrates it to the current schema. Fails here, not later, if the file is unusable or
    /// was written by a newer ratchet.
    pub async fn open(path: &Path) -> Result<SessionStore, StoreError> {
        let path: Arc<Path> = Arc::from(path);
        let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE_CAPACITY);
        let (ready_tx, ready_rx) = oneshot::channel();
        let thread_path = Arc::clone(&path);
        std::thread::Builder::new()
            .name("ratchet-store".to_owned())
            .spawn(move || run(&thread_path, command_rx, ready_tx))
            .map_err(|source| StoreError::Io { path: path.to_path_buf(), source })?;
        ready_rx.await.map_err(|_| StoreError::Closed)??;
        Ok(SessionStore { commands, path })
    }

    /// Copies the write-ahead log into the database and truncates it, when no other process
    /// uses it (see `engine::wal`). For shutdown: the next start then has no log to read.
    pub async fn checkpoint_on_shutdown(&self) {
        let result = self
            .call(|conn| {
                crate::engine::wal::truncate_on_shutdown(conn, schema::BUSY_TIMEOUT, "ratchet.db");
                Ok(())
            })
            .await;
        if let Err(e) = result {
            tracing::debug!(error = %e, "no checkpoint at shutdown");
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a session (status `Active`, no title, `created_at == updated_at`).
    /// `AlreadyExists` if `new.id` is taken.
    pub async fn create_session(&self, new: NewSession) -> Result<SessionRecord, StoreError> {
        self.call(move |conn| queries::create_session(conn, new)).await
    }

    /// The session with this id, if any.
    pub async fn get_session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let id = id.to_owned();
        self.call(move |conn| queries::get_session(conn, &id)).await
    }

    /// Applies `patch` and bumps `updated_at`; returns the session as now stored.
    /// `NotFound` if there is no such session.
    pub async fn update_session(&self, id: &str, patch: SessionPatch) -> Result<SessionRecord, StoreError> {
        let id = id.to_owned();
        self.call(move |conn| queries::update_session(conn, &id, patch)).await
    }

    /// One page of sessions, most recently updated first (ties: higher id first).
    /// `BadCursor` if `query.cursor` is not a `next_cursor` this store handed out.
    pub async fn list_sessions(&self, query: ListQuery) -> Result<SessionPage, StoreError> {
        self.call(move |conn| queries::list_sessions(conn, query)).await
    }

    /// Appends a message as the session's next `seq` and bumps the session's `updated_at`,
    /// in one transaction. Resolves only once committed. `NotFound` if there is no such
    /// session.
    pub async fn append_message(&self, session_id: &str, message: NewMessage) -> Result<StoredMessage, StoreError> {
        let session_id = session_id.to_owned();
        self.call(move |conn| queries::append_message(conn, &session_id, message)).await
    }

    /// A session's messages in `seq` order; empty for an unknown session.
    pub async fn messages(&self, session_id: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let session_id = session_id.to_owned();
        self.call(move |conn| queries::messages(conn, &session_id)).await
    }

    /// A session's messages with a `seq` above `seq`, in order (what a cached history lacks).
    pub async fn messages_after(&self, session_id: &str, seq: i64) -> Result<Vec<StoredMessage>, StoreError> {
        let session_id = session_id.to_owned();
        self.call(move |conn| queries::messages_after(conn, &session_id, seq)).await
    }

    /// Deletes a session with its messages, permissions and plan. Deleting a session that
    /// does not exist succeeds.
    pub async fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_owned();
        self.call(move |conn| queries::delete_session(conn, &id)).await
    }

    /// Remembers `decision` (`"allow"` or `"reject"`) for `tool` in this session, replacing
    /// an earlier one. `NotFound` if there is no such session.
    pub async fn set_permission(&self, session_id: &str, tool: &str, decision: &str) -> Result<(), StoreError> {
        let (session_id, tool, decision) = (session_id.to_owned(), tool.to_owned(), decision.to_owned());
        self.call(move |conn| queries::set_permission(conn, &session_id, &tool, &decision)).await
    }

    /// A session's remembered `(tool, decision)` pairs, sorted by tool.
    pub async fn permissions(&self, session_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        let session_id = session_id.to_owned();
        self.call(move |conn| queries::permissions(conn, &session_id)).await
    }

    /// Stores the session's current plan, replacing the previous one. `NotFound` if there
    /// is no such session.
    pub async fn save_plan(&self, session_id: &str, entries: serde_json::Value) -> Result<(), StoreError> {
        let session_id = session_id.to_owned();
        self.call(move |conn| queries::save_plan(conn, &session_id, &entries)).await
    }

    /// The session's last saved plan, if any.
    pub async fn plan(&self, session_id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let session_id = session_id.to_owned();
        self.call(move |conn| queries::plan(conn, &session_id)).await
    }

    /// Sets what of the history the model sees: messages with `seq >= context_from`, after
    /// `summary`. `NotFound` if there is no such session.
    pub async fn set_context(
        &self,
        session_id: &str,
        context_from: i64,
        summary: Option<String>,
    ) -> Result<(), StoreError> {
        let session_id = session_id.to_owned();
        self.call(move |conn| queries::set_context(conn, &session_id, context_from, summary.as_deref())).await
    }

    /// The session's context window start and summary; `None` if never cleared or compacted.
    pub async fn context(&self, session_id: &str) -> Result<Option<(i64, Option<String>)>, StoreError> {
        let session_id = session_id.to_owned();
        self.call(move |conn| queries::context(conn, &session_id)).await
    }

    /// SQLite's `PRAGMA integrity_check`: `"ok"`, or one problem per line.
    pub async fn integrity_check(&self) -> Result<String, StoreError> {
        self.call(|conn| queries::integrity_check(conn)).await
    }

    /// How many sessions are stored.
    pub async fn session_count(&self) -> Result<u64, StoreError> {
        self.call(|conn| queries::session_count(conn)).await
    }

    /// Runs `query` on the store thread and waits for its result. If the caller stops
    /// waiting, the query still runs to completion (a write may still commit).
    async fn call<T, F>(&self, query: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel();
        let command: Command = Box::new(move |conn| {
            // The caller may have given up; then nobody wants the reply.
            let _ = reply_tx.send(query(conn));
        });
        self.commands.send(command).await.map_err(|_| StoreError::Closed)?;
        let result = reply_rx.await.map_err(|_| StoreError::Closed)?;
        result.map_err(|err| err.at(&self.path))
    }
}

/// The store thread: opens the database, reports readiness, then runs commands until every
/// handle is gone.
fn run(path: &Path, mut commands: mpsc::Receiver<Command>, ready: oneshot::Sender<Result<(), StoreError>>) {
    let mut conn = match schema::open(path) {
        Ok(conn) => conn,
        Err(err) => {
            let _ = ready.send(Err(err.at(path)));
            return;
        }
    };
    if ready.send(Ok(())).is_err() {
        return; // `open` was cancelled.
    }
    while let Some(command) = commands.blocking_recv() {
        command(&mut conn);
    }
    // Let SQLite refresh its planner statistics while closing, as its docs recommend.
    if let Err(err) = conn.execute_batch("PRAGMA optimize") {
        tracing::debug!(path = %path.display(), %err, "PRAGMA optimize failed on close");
    }
    tracing::debug!(path = %path.display(), "session database closed");
}
