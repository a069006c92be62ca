//! The SQL behind each `SessionStore` method. These run only on the store thread.
//!
//! Every read-modify-write runs in a `BEGIN IMMEDIATE` transaction: it takes the write lock
//! up front, so another process writing the same file makes it wait (busy timeout) instead
//! of failing half-way with a stale read.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Row, ToSql, TransactionBehavior, params};
use serde::de::DeserializeOwned;

use super::{
    ListQuery, MessageStatus, NewMessage, NewSession, SessionPage, SessionPatch, SessionRecord, SessionStatus,
    StoreError, StoredMessage,
};
use crate::engine::content::Role;
use crate::engine::session::Mode;

/// The largest page `list_sessions` returns.
const MAX_PAGE: usize = 1000;

/// Columns read by `session_from_row`, in its order.
const SESSION_COLUMNS: &str = "id, title, cwd, additional_dirs, provider, model, mode, status, created_at, updated_at, parent_id, provider_pinned, agent";

/// Columns read by `message_from_row`, in its order.
const MESSAGE_COLUMNS: &str = "seq, role, content, tool_calls, tool_results, usage, status, created_at";

pub(super) fn create_session(conn: &Connection, new: NewSession) -> Result<SessionRecord, StoreError> {
    let now = now_ms();
    let record = SessionRecord {
        id: new.id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        title: None,
        cwd: new.cwd,
        additional_dirs: new.additional_dirs,
        provider: new.provider,
        model: new.model,
        mode: new.mode,
        status: SessionStatus::Active,
        created_at: now,
        updated_at: now,
        parent_id: new.parent_id,
        provider_pinned: new.provider_pinned,
        agent: new.agent,
    };
    let n_inserted = conn.execute(
        &format!(
            "INSERT INTO sessions ({SESSION_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (id) DO NOTHING"
        ),
        params![
            record.id,
            record.title,
            path_text(&record.cwd),
            dirs_json(&record.additional_dirs)?,
            record.provider,
            record.model,
            record.mode.id(),
            record.status.as_str(),
            record.created_at,
            record.updated_at,
            record.parent_id,
            record.provider_pinned,
            record
                .agent
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| StoreError::Open(e.to_string()))?,
        ],
    )?;
    if n_inserted == 0 {
        return Err(StoreError::AlreadyExists(record.id));
    }
    Ok(record)
}

pub(super) fn get_session(conn: &Connection, id: &str) -> Result<Option<SessionRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"))?;
    Ok(stmt.query_row([id], session_from_row).optional()?)
}

pub(super) fn update_session(
    conn: &mut Connection,
    id: &str,
    patch: SessionPatch,
) -> Result<SessionRecord, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut record = get_session(&tx, id)?.ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
    let SessionPatch { title, cwd, additional_dirs, provider, model, mode, status } = patch;
    record.title = title.or(record.title);
    record.cwd = cwd.unwrap_or(record.cwd);
    record.additional_dirs = additional_dirs.unwrap_or(record.additional_dirs);
    record.provider = provider.unwrap_or(record.provider);
    record.model = model.unwrap_or(record.model);
    record.mode = mode.unwrap_or(record.mode);
    record.status = status.unwrap_or(record.status);
    record.updated_at = next_updated_at(record.updated_at);
    tx.execute(
        "UPDATE sessions
         SET title = ?2, cwd = ?3, additional_dirs = ?4, provider = ?5, model = ?6, mode = ?7,
             status = ?8, updated_at = ?9
         WHERE id = ?1",
        params![
            record.id,
            record.title,
            path_text(&record.cwd),
            dirs_json(&record.additional_dirs)?,
            record.provider,
            record.model,
            record.mode.id(),
            record.status.as_str(),
            record.updated_at,
        ],
    )?;
    tx.commit()?;
    Ok(record)
}

pub(super) fn list_sessions(conn: &Connection, query: ListQuery) -> Result<SessionPage, StoreError> {
    let limit = query.limit.clamp(1, MAX_PAGE);
    // One row more than the page tells whether another page follows.
    let n_fetch = (limit + 1) as i64;
    let cwd = query.cwd.as_deref().map(path_text);
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;

    let mut sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE 1 = 1");
    let mut args: Vec<(&str, &dyn ToSql)> = vec![(":limit", &n_fetch)];
    if let Some(cwd) = &cwd {
        sql.push_str(" AND cwd = :cwd");
        args.push((":cwd", cwd));
    }
    if query.top_level {
        sql.push_str(" AND parent_id IS NULL");
    }
    if let Some((updated_at, id)) = &after {
        // Keyset pagination: strictly after the previous page's last row in list order.
        sql.push_str(" AND (updated_at, id) < (:updated_at, :id)");
        args.push((":updated_at", updated_at));
        args.push((":id", id));
    }
    sql.push_str(" ORDER BY updated_at DESC, id DESC LIMIT :limit");

    let mut stmt = conn.prepare_cached(&sql)?;
    let mut sessions = stmt.query_map(args.as_slice(), session_from_row)?.collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if sessions.len() > limit {
        sessions.truncate(limit);
        sessions.last().map(|last| encode_cursor(last.updated_at, &last.id))
    } else {
        None
    };
    Ok(SessionPage { sessions, next_cursor })
}

pub(super) fn append_message(
    conn: &mut Connection,
    session_id: &str,
    message: NewMessage,
) -> Result<StoredMessage, StoreError> {
    let content = serde_json::to_string(&message.content)?;
    let tool_calls = serde_json::to_string(&message.tool_calls)?;
    let tool_results = serde_json::to_string(&message.tool_results)?;
    let usage = message.usage.as_ref().map(serde_json::to_string).transpose()?;

    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let updated_at = session_updated_at(&tx, session_id)?;
    let seq: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE session_id = ?1")?
        .query_row([session_id], |row| row.get(0))?;
    let now = now_ms();
    tx.prepare_cached(
        "INSERT INTO messages
             (session_id, seq, role, content, tool_calls, tool_results, usage, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        session_id,
        seq,
        message.role.as_str(),
        content,
        tool_calls,
        tool_results,
        usage,
        message.status.as_str(),
        now,
    ])?;
    tx.prepare_cached("UPDATE sessions SET updated_at = ?2 WHERE id = ?1")?
        .execute(params![session_id, next_updated_at(updated_at)])?;
    tx.commit()?;

    Ok(StoredMessage {
        seq,
        role: message.role,
        content: message.content,
        tool_calls: message.tool_calls,
        tool_results: message.tool_results,
        usage: message.usage,
        status: message.status,
        created_at: now,
    })
}

pub(super) fn messages(conn: &Connection, session_id: &str) -> Result<Vec<StoredMessage>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ?1 ORDER BY seq"))?;
    let messages = stmt.query_map([session_id], message_from_row)?.collect::<Result<_, _>>()?;
    Ok(messages)
}

/// A session's messages after `seq` (what a cached history lacks), in `seq` order.
pub(super) fn messages_after(conn: &Connection, session_id: &str, seq: i64) -> Result<Vec<StoredMessage>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ?1 AND seq > ?2 ORDER BY seq"
    ))?;
    let messages = stmt.query_map(params![session_id, seq], message_from_row)?.collect::<Result<_, _>>()?;
    Ok(messages)
}

pub(super) fn delete_session(conn: &Connection, id: &str) -> Result<(), StoreError> {
    // Messages, permissions and plans go with it (ON DELETE CASCADE).
    conn.execute("DELETE FROM sessions WHERE id = ?1", [id])?;
    Ok(())
}

pub(super) fn set_permission(
    conn: &mut Connection,
    session_id: &str,
    tool: &str,
    decision: &str,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    session_updated_at(&tx, session_id)?;
    tx.execute(
        "INSERT INTO session_permissions (session_id, tool, decision) VALUES (?1, ?2, ?3)
         ON CONFLICT (session_id, tool) DO UPDATE SET decision = excluded.decision",
        params![session_id, tool, decision],
    )?;
    tx.commit()?;
    Ok(())
}

pub(super) fn permissions(conn: &Connection, session_id: &str) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT tool, decision FROM session_permissions WHERE session_id = ?1 ORDER BY tool")?;
    let rows = stmt.query_map([session_id], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<_, _>>()?;
    Ok(rows)
}

pub(super) fn save_plan(
    conn: &mut Connection,
    session_id: &str,
    entries: &serde_json::Value,
) -> Result<(), StoreError> {
    let entries = serde_json::to_string(entries)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    session_updated_at(&tx, session_id)?;
    tx.execute(
        "INSERT INTO plans (session_id, entries, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (session_id) DO UPDATE
         SET entries = excluded.entries, updated_at = excluded.updated_at",
        params![session_id, entries, now_ms()],
    )?;
    tx.commit()?;
    Ok(())
}

pub(super) fn plan(conn: &Connection, session_id: &str) -> Result<Option<serde_json::Value>, StoreError> {
    let plan = conn
        .query_row("SELECT entries FROM plans WHERE session_id = ?1", [session_id], |row| json_column(row, 0))
        .optional()?;
    Ok(plan)
}

pub(super) fn set_context(
    conn: &mut Connection,
    session_id: &str,
    context_from: i64,
    summary: Option<&str>,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    session_updated_at(&tx, session_id)?;
    tx.execute(
        "INSERT INTO session_context (session_id, context_from, summary) VALUES (?1, ?2, ?3)
         ON CONFLICT (session_id) DO UPDATE
         SET context_from = excluded.context_from, summary = excluded.summary",
        params![session_id, context_from, summary],
    )?;
    tx.commit()?;
    Ok(())
}

pub(super) fn context(conn: &Connection, session_id: &str) -> Result<Option<(i64, Option<String>)>, StoreError> {
    Ok(conn
        .query_row("SELECT context_from, summary FROM session_context WHERE session_id = ?1", [session_id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?)
}

pub(super) fn integrity_check(conn: &Connection) -> Result<String, StoreError> {
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let lines = stmt.query_map([], |row| row.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    Ok(lines.join("\n"))
}

pub(super) fn session_count(conn: &Connection) -> Result<u64, StoreError> {
    let n_sessions: i64 = conn.query_row("SELECT COUNT(*) FROM sessions", [], |row| row.get(0))?;
    Ok(n_sessions.unsigned_abs()) // COUNT(*) is never negative
}

/// A session's `updated_at`, or `NotFound`.
fn session_updated_at(conn: &Connection, id: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT updated_at FROM sessions WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound(id.to_owned()))
}

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    let cwd: String = row.get(2)?;
    let additional_dirs: Vec<String> = json_column(row, 3)?;
    Ok(SessionRecord {
        id: row.get(0)?,
        title: row.get(1)?,
        cwd: PathBuf::from(cwd),
        additional_dirs: additional_dirs.into_iter().map(PathBuf::from).collect(),
        provider: row.get(4)?,
        model: row.get(5)?,
        mode: mode_column(row, 6)?,
        status: enum_column(row, 7, SessionStatus::parse)?,
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
        parent_id: row.get(10)?,
        provider_pinned: row.get(11)?,
        agent: {
            let text: Option<String> = row.get(12)?;
            text.map(|t| serde_json::from_str(&t))
                .transpose()
                .map_err(|err| rusqlite::Error::FromSqlConversionFailure(12, Type::Text, Box::new(err)))?
        },
    })
}

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<StoredMessage> {
    let usage: Option<String> = row.get(5)?;
    let usage = usage
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|err| rusqlite::Error::FromSqlConversionFailure(5, Type::Text, Box::new(err)))?;
    Ok(StoredMessage {
        seq: row.get(0)?,
        role: enum_column(row, 1, Role::parse)?,
        content: json_column(row, 2)?,
        tool_calls: json_column(row, 3)?,
        tool_results: json_column(row, 4)?,
        usage,
        status: enum_column(row, 6, MessageStatus::parse)?,
        created_at: row.get(7)?,
    })
}

/// Decodes the mode column. A mode this binary does not know (written by a newer one, or by
/// hand) falls back to `ask`, the safest mode, rather than making the session unreadable.
fn mode_column(row: &Row<'_>, idx: usize) -> rusqlite::Result<Mode> {
    let text: String = row.get(idx)?;
    Ok(Mode::parse(&text).unwrap_or_else(|| {
        tracing::warn!(mode = %text, "unknown stored session mode; using ask");
        Mode::Ask
    }))
}

/// Decodes a JSON text column; a bad value is reported as a conversion error on that column.
fn json_column<T: DeserializeOwned>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|err| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(err)))
}

/// Decodes a text column holding one of an enum's store spellings.
fn enum_column<T>(row: &Row<'_>, idx: usize, parse: fn(&str) -> Option<T>) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, format!("unknown value {text:?}").into())
    })
}

/// Paths are stored as text. Paths reach the engine as JSON strings (ACP), so they are UTF-8
/// and the lossy conversion never loses anything in practice.
fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn dirs_json(dirs: &[PathBuf]) -> Result<String, StoreError> {
    let dirs: Vec<String> = dirs.iter().map(|dir| path_text(dir)).collect();
    Ok(serde_json::to_string(&dirs)?)
}

/// The cursor names the last row of a page as hex of `"{updated_at}:{id}"`: opaque to
/// clients, and safe in any transport.
fn encode_cursor(updated_at: i64, id: &str) -> String {
    format!("{updated_at}:{id}").bytes().map(|byte| format!("{byte:02x}")).collect()
}

fn decode_cursor(cursor: &str) -> Result<(i64, String), StoreError> {
    let bad = || StoreError::BadCursor(cursor.to_owned());
    if !cursor.is_ascii() || !cursor.len().is_multiple_of(2) {
        return Err(bad());
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|idx| u8::from_str_radix(&cursor[idx..idx + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (updated_at, id) = text.split_once(':').ok_or_else(bad)?;
    let updated_at = updated_at.parse().map_err(|_| bad())?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok((updated_at, id.to_owned()))
}

/// The `updated_at` for a change to a row last updated at `previous`: now, but always later
/// than `previous`, so two updates in one millisecond still order correctly.
fn next_updated_at(previous: i64) -> i64 {
    now_ms().max(previous + 1)
}

pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}
