//! Tests for `SessionStore` against real database files in temporary directories.
//!
//! This file holds the shared helpers and the tests of opening, migrating and sharing a
//! database file; `sessions.rs` covers session rows and listing, `history.rs` messages,
//! permissions, plans and deletion, `providers.rs` the named provider entries.

mod history;
mod history_prop;
mod providers;
mod sessions;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use super::*;
use crate::engine::content::ContentPart;
use crate::engine::session::Mode;

fn new_session(cwd: &str) -> NewSession {
    NewSession {
        id: None,
        cwd: PathBuf::from(cwd),
        additional_dirs: vec![PathBuf::from("/extra/one"), PathBuf::from("/extra/two")],
        provider: "anthropic".to_owned(),
        model: "claude-sonnet".to_owned(),
        mode: Mode::Ask,
        parent_id: None,
        provider_pinned: false,
        agent: None,
    }
}

fn named_session(id: &str, cwd: &str) -> NewSession {
    NewSession { id: Some(id.to_owned()), ..new_session(cwd) }
}

async fn open_in(dir: &Path) -> SessionStore {
    SessionStore::open(&dir.join("ratchet.db")).await.unwrap()
}

/// Lets the clock move so that successive updates get distinct timestamps.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

fn ids(sessions: &[SessionRecord]) -> Vec<&str> {
    sessions.iter().map(|session| session.id.as_str()).collect()
}

#[tokio::test]
async fn open_creates_wal_database_and_reopen_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/home/ratchet.db");
    let store = SessionStore::open(&path).await.unwrap();
    assert_eq!(store.path(), path);
    let created = store.create_session(named_session("s1", "/proj")).await.unwrap();
    drop(store);

    let raw = Connection::open(&path).unwrap();
    let mode: String = raw.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = raw.query_row("SELECT version FROM schema_version", [], |row| row.get(0)).unwrap();
    assert_eq!(version, schema::LATEST_VERSION as i64);

    let reopened = SessionStore::open(&path).await.unwrap();
    assert_eq!(reopened.get_session("s1").await.unwrap(), Some(created));
    assert_eq!(reopened.session_count().await.unwrap(), 1);
    assert_eq!(reopened.integrity_check().await.unwrap(), "ok");
    let n_version_rows: i64 = raw.query_row("SELECT COUNT(*) FROM schema_version", [], |row| row.get(0)).unwrap();
    assert_eq!(n_version_rows, 1);
}

#[tokio::test]
async fn too_new_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ratchet.db");
    drop(SessionStore::open(&path).await.unwrap());
    let newer = schema::LATEST_VERSION as i64 + 1;
    Connection::open(&path).unwrap().execute("UPDATE schema_version SET version = ?1", [newer]).unwrap();

    let err = SessionStore::open(&path).await.unwrap_err();
    let StoreError::Migration(message) = &err else {
        panic!("expected a migration error, got {err:?}");
    };
    assert!(message.contains(&format!("schema version {newer}")), "{message}");
    assert!(message.contains("written by a newer ratchet"), "{message}");
    assert!(message.contains("upgrade ratchet or point RATCHET_HOME elsewhere"), "{message}");
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[tokio::test]
async fn a_second_store_on_the_same_file_sees_the_first_ones_writes() {
    let dir = tempfile::tempdir().unwrap();
    let first = open_in(dir.path()).await;
    let second = open_in(dir.path()).await;

    let session = first.create_session(new_session("/proj")).await.unwrap();
    first.append_message(&session.id, NewMessage::user(vec![ContentPart::text("from first")])).await.unwrap();

    let seen = second.get_session(&session.id).await.unwrap().unwrap();
    assert_eq!(seen.id, session.id);
    assert!(seen.updated_at > session.updated_at);
    let from_second =
        second.append_message(&session.id, NewMessage::user(vec![ContentPart::text("from second")])).await.unwrap();
    assert_eq!(from_second.seq, 2);

    let history = first.messages(&session.id).await.unwrap();
    let texts: Vec<_> = history.iter().map(|message| message.content.clone()).collect();
    assert_eq!(texts, vec![vec![ContentPart::text("from first")], vec![ContentPart::text("from second")]]);
    assert_eq!(second.session_count().await.unwrap(), 1);
    assert_eq!(first.integrity_check().await.unwrap(), "ok");
}

/// A process ends without closing its connection; shutdown's checkpoint is what keeps the
/// write-ahead log from outliving it (and every later start from reading it back).
#[tokio::test]
async fn the_shutdown_checkpoint_empties_the_log_and_keeps_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path()).await;
    for i in 0..20 {
        store.create_session(named_session(&format!("s{i}"), "/proj")).await.unwrap();
    }
    let wal = dir.path().join("ratchet.db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0, "commits went to the log");

    // Another connection is reading: the checkpoint does not wait for it, and leaves the log.
    let reader = Connection::open(dir.path().join("ratchet.db")).unwrap();
    reader.execute_batch("BEGIN; SELECT count(*) FROM sessions;").unwrap();
    store.checkpoint_on_shutdown().await;
    assert!(std::fs::metadata(&wal).unwrap().len() > 0, "a reader's snapshot is kept");
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);

    store.checkpoint_on_shutdown().await;
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0, "the log was truncated");
    // The store still works after it, and another connection sees every row from the file.
    store.create_session(named_session("after", "/proj")).await.unwrap();
    let other = Connection::open(dir.path().join("ratchet.db")).unwrap();
    let n: i64 = other.query_row("SELECT count(*) FROM sessions", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 21);
}
