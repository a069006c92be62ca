//! Session rows: create, get, update, and listing with keyset pagination.

use std::path::PathBuf;

use super::{ids, named_session, new_session, open_in, tick};
use crate::engine::content::ContentPart;
use crate::engine::session::Mode;
use crate::engine::store::*;

#[tokio::test]
async fn create_get_and_update_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path()).await;

    let created = store.create_session(new_session("/proj")).await.unwrap();
    let uuid = uuid::Uuid::parse_str(&created.id).unwrap();
    assert_eq!(uuid.get_version_num(), 7);
    assert_eq!(created.title, None);
    assert_eq!(created.cwd, PathBuf::from("/proj"));
    assert_eq!(created.additional_dirs, vec![PathBuf::from("/extra/one"), PathBuf::from("/extra/two")]);
    assert_eq!(created.provider, "anthropic");
    assert_eq!(created.model, "claude-sonnet");
    assert_eq!(created.mode, Mode::Ask);
    assert_eq!(created.status, SessionStatus::Active);
    assert_eq!(created.created_at, created.updated_at);
    assert!(created.created_at > 1_600_000_000_000, "{}", created.created_at);
    assert_eq!(store.get_session(&created.id).await.unwrap(), Some(created.clone()));

    let patch = SessionPatch {
        title: Some("Fix the parser".to_owned()),
        model: Some("claude-opus".to_owned()),
        additional_dirs: Some(vec![]),
        status: Some(SessionStatus::Closed),
        ..SessionPatch::default()
    };
    let updated = store.update_session(&created.id, patch).await.unwrap();
    let expected = SessionRecord {
        title: Some("Fix the parser".to_owned()),
        model: "claude-opus".to_owned(),
        additional_dirs: vec![],
        status: SessionStatus::Closed,
        updated_at: updated.updated_at,
        ..created.clone()
    };
    assert_eq!(updated, expected);
    assert!(updated.updated_at > created.updated_at);
    assert_eq!(store.get_session(&created.id).await.unwrap(), Some(updated.clone()));

    // Back-to-back updates within one millisecond still move updated_at forward.
    let mut previous = updated.updated_at;
    for _ in 0..5 {
        let again = store.update_session(&created.id, SessionPatch::default()).await.unwrap();
        assert!(again.updated_at > previous);
        previous = again.updated_at;
    }

    assert_eq!(store.get_session("missing").await.unwrap(), None);
    let err = store.update_session("missing", SessionPatch::default()).await.unwrap_err();
    assert!(matches!(&err, StoreError::NotFound(id) if id == "missing"), "{err:?}");

    store.create_session(named_session("fixed", "/proj")).await.unwrap();
    let err = store.create_session(named_session("fixed", "/other")).await.unwrap_err();
    assert!(matches!(&err, StoreError::AlreadyExists(id) if id == "fixed"), "{err:?}");
    assert_eq!(store.get_session("fixed").await.unwrap().unwrap().cwd, PathBuf::from("/proj"));
}

#[tokio::test]
async fn list_orders_by_recency_and_filters_by_cwd() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path()).await;
    for (id, cwd) in [("a", "/proj"), ("b", "/proj"), ("c", "/other")] {
        store.create_session(named_session(id, cwd)).await.unwrap();
        tick().await;
    }
    let all = |cwd: Option<&str>| ListQuery { cwd: cwd.map(PathBuf::from), cursor: None, limit: 100, top_level: false };
    let page = store.list_sessions(all(None)).await.unwrap();
    assert_eq!(ids(&page.sessions), ["c", "b", "a"]);
    assert_eq!(page.next_cursor, None);

    store.update_session("a", SessionPatch::default()).await.unwrap();
    tick().await;
    store.append_message("b", NewMessage::user(vec![ContentPart::text("hi")])).await.unwrap();
    let page = store.list_sessions(all(None)).await.unwrap();
    assert_eq!(ids(&page.sessions), ["b", "a", "c"]);

    let page = store.list_sessions(all(Some("/proj"))).await.unwrap();
    assert_eq!(ids(&page.sessions), ["b", "a"]);
    let page = store.list_sessions(all(Some("/other"))).await.unwrap();
    assert_eq!(ids(&page.sessions), ["c"]);
    // Exact match only: neither a prefix nor a trailing slash matches.
    assert_eq!(store.list_sessions(all(Some("/pro"))).await.unwrap().sessions, vec![]);
    assert_eq!(store.list_sessions(all(Some("/proj/"))).await.unwrap().sessions, vec![]);
}

#[tokio::test]
async fn list_paginates_with_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path()).await;
    // Same-millisecond timestamps are likely here, which exercises the id tie-break.
    for n in 0..7 {
        store.create_session(named_session(&format!("s{n}"), "/proj")).await.unwrap();
    }
    let everything = store
        .list_sessions(ListQuery { cwd: None, cursor: None, limit: 100, top_level: false })
        .await
        .unwrap()
        .sessions;
    assert_eq!(everything.len(), 7);

    let mut page_sizes = Vec::new();
    let mut cursors = Vec::new();
    let mut cursor = None;
    loop {
        let query = ListQuery { cwd: Some("/proj".into()), cursor: cursor.clone(), limit: 3, top_level: false };
        let page = store.list_sessions(query).await.unwrap();
        page_sizes.push(page.sessions.len());
        cursors.push(page.next_cursor.clone());
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(cursors.iter().map(Option::is_some).collect::<Vec<_>>(), [true, true, false]);
    assert_eq!(page_sizes, [3, 3, 1]);

    // Walk again collecting ids: the pages together are the full list, in order.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list_sessions(ListQuery { cwd: None, cursor, limit: 3, top_level: false }).await.unwrap();
        seen.extend(page.sessions);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, everything);

    // A page that ends exactly at the last row has no cursor.
    let page = store.list_sessions(ListQuery { cwd: None, cursor: None, limit: 7, top_level: false }).await.unwrap();
    assert_eq!(page.sessions.len(), 7);
    assert_eq!(page.next_cursor, None);
    // A limit of 0 is clamped to 1.
    let page = store.list_sessions(ListQuery { cwd: None, cursor: None, limit: 0, top_level: false }).await.unwrap();
    assert_eq!(ids(&page.sessions), [everything[0].id.as_str()]);
    assert!(page.next_cursor.is_some());
}

#[tokio::test]
async fn bad_cursors_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path()).await;
    let hex = |text: &str| text.bytes().map(|byte| format!("{byte:02x}")).collect::<String>();
    for cursor in ["zz", "abc", "é1", &hex("no-colon"), &hex("soon:s1"), &hex("17:")] {
        let err = store
            .list_sessions(ListQuery { cwd: None, cursor: Some(cursor.to_owned()), limit: 10, top_level: false })
            .await
            .unwrap_err();
        assert!(matches!(&err, StoreError::BadCursor(bad) if bad == cursor), "{cursor}: {err:?}");
    }
    // A well-formed cursor past every row is simply an empty last page.
    let page = store
        .list_sessions(ListQuery { cwd: None, cursor: Some(hex("0:a")), limit: 10, top_level: false })
        .await
        .unwrap();
    assert_eq!(page, SessionPage { sessions: vec![], next_cursor: None });
}

#[tokio::test]
async fn stored_modes_are_typed_and_an_unknown_one_reads_as_ask() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path()).await;
    let created =
        store.create_session(NewSession { mode: Mode::AcceptEdits, ..named_session("s1", "/p") }).await.unwrap();
    assert_eq!(created.mode, Mode::AcceptEdits);
    let raw = rusqlite::Connection::open(store.path()).unwrap();
    let text: String = raw.query_row("SELECT mode FROM sessions WHERE id = 's1'", [], |row| row.get(0)).unwrap();
    assert_eq!(text, "accept-edits", "the stored text is the mode's id");

    raw.execute("UPDATE sessions SET mode = 'bogus' WHERE id = 's1'", []).unwrap();
    assert_eq!(store.get_session("s1").await.unwrap().unwrap().mode, Mode::Ask);
}
