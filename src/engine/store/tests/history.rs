//! Message history, permissions and plans, and what deleting a session takes with it.

use rusqlite::Connection;
use serde_json::json;

use super::{named_session, new_session, open_in};
use crate::engine::content::{ContentPart, Role, ToolCall, ToolResult, Usage};
use crate::engine::store::*;

#[tokio::test]
async fn append_assigns_sequence_numbers_and_round_trips_content() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path()).await;
    let session = store.create_session(new_session("/proj")).await.unwrap();

    let user = NewMessage::user(vec![
        ContentPart::text("Read @main.rs and fix it"),
        ContentPart::Image { mime_type: "image/png".to_owned(), data: "iVBORw0KGgo=".to_owned() },
        ContentPart::Resource {
            uri: "file:///proj/main.rs".to_owned(),
            text: "fn main() {}\n".to_owned(),
            mime_type: Some("text/x-rust".to_owned()),
        },
    ]);
    let assistant = NewMessage::assistant(
        vec![
            ContentPart::Thought { text: "Look first.".to_owned(), signature: Some("sig".into()) },
            ContentPart::text("Reading the file."),
        ],
        vec![ToolCall {
            id: "call_1".to_owned(),
            name: "read_file".to_owned(),
            arguments: json!({"path": "main.rs", "line": 1}),
        }],
        Some(Usage { input_tokens: 120, output_tokens: 30, cached_input_tokens: 100, reasoning_tokens: 7 }),
    );
    let tool = NewMessage {
        status: MessageStatus::Cancelled,
        ..NewMessage::tool(vec![ToolResult {
            call_id: "call_1".to_owned(),
            content: "cancelled by the user".to_owned(),
            is_error: true,
            title: None,
            kind: None,
        }])
    };

    let mut stored = Vec::new();
    let mut previous_updated_at = session.updated_at;
    for message in [user.clone(), assistant.clone(), tool.clone()] {
        stored.push(store.append_message(&session.id, message).await.unwrap());
        let updated_at = store.get_session(&session.id).await.unwrap().unwrap().updated_at;
        assert!(updated_at > previous_updated_at);
        previous_updated_at = updated_at;
    }
    assert_eq!(stored.iter().map(|message| message.seq).collect::<Vec<_>>(), vec![1, 2, 3]);

    let history = store.messages(&session.id).await.unwrap();
    assert_eq!(history, stored);
    for (got, sent) in history.iter().zip([&user, &assistant, &tool]) {
        assert_eq!(got.role, sent.role);
        assert_eq!(got.content, sent.content);
        assert_eq!(got.tool_calls, sent.tool_calls);
        assert_eq!(got.tool_results, sent.tool_results);
        assert_eq!(got.usage, sent.usage);
        assert_eq!(got.status, sent.status);
    }
    assert_eq!(history[2].role, Role::Tool);
    assert_eq!(history[2].status, MessageStatus::Cancelled);
    assert_eq!(store.messages("missing").await.unwrap(), vec![]);
}

#[tokio::test]
async fn append_to_unknown_session_is_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path()).await;
    let err = store.append_message("nope", NewMessage::user(vec![ContentPart::text("hi")])).await.unwrap_err();
    assert!(matches!(&err, StoreError::NotFound(id) if id == "nope"), "{err:?}");
    assert_eq!(err.to_string(), "no session with id \"nope\"; list sessions to see which exist");
}

#[tokio::test]
async fn concurrent_appends_get_distinct_consecutive_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path()).await;
    let session = store.create_session(new_session("/proj")).await.unwrap();
    let tasks: Vec<_> = (0..40)
        .map(|n| {
            let (store, id) = (store.clone(), session.id.clone());
            tokio::spawn(async move {
                let message = NewMessage::user(vec![ContentPart::text(format!("message {n}"))]);
                store.append_message(&id, message).await.unwrap().seq
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=40).collect::<Vec<i64>>());
    assert_eq!(store.messages(&session.id).await.unwrap().len(), 40);
}

#[tokio::test]
async fn delete_cascades_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path()).await;
    let doomed = store.create_session(named_session("doomed", "/proj")).await.unwrap();
    let kept = store.create_session(named_session("kept", "/proj")).await.unwrap();
    for id in [&doomed.id, &kept.id] {
        store.append_message(id, NewMessage::user(vec![ContentPart::text("one")])).await.unwrap();
        store.append_message(id, NewMessage::user(vec![ContentPart::text("two")])).await.unwrap();
        store.set_permission(id, "shell", "allow").await.unwrap();
        store.save_plan(id, json!([{"content": "step", "status": "pending"}])).await.unwrap();
    }

    store.delete_session("doomed").await.unwrap();
    assert_eq!(store.get_session("doomed").await.unwrap(), None);
    assert_eq!(store.messages("doomed").await.unwrap(), vec![]);
    assert_eq!(store.permissions("doomed").await.unwrap(), vec![]);
    assert_eq!(store.plan("doomed").await.unwrap(), None);
    assert_eq!(store.session_count().await.unwrap(), 1);

    let raw = Connection::open(store.path()).unwrap();
    let count = |table: &str| -> i64 {
        raw.query_row(&format!("SELECT COUNT(*) FROM {table} WHERE session_id = 'doomed'"), [], |row| row.get(0))
            .unwrap()
    };
    assert_eq!([count("messages"), count("session_permissions"), count("plans")], [0, 0, 0]);

    store.delete_session("doomed").await.unwrap();
    store.delete_session("never-existed").await.unwrap();
    assert_eq!(store.messages("kept").await.unwrap().len(), 2);
    assert_eq!(store.session_count().await.unwrap(), 1);
}

#[tokio::test]
async fn permissions_and_plans_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_in(dir.path()).await;
    store.create_session(named_session("s", "/proj")).await.unwrap();

    store.set_permission("s", "write_file", "allow").await.unwrap();
    store.set_permission("s", "shell", "allow").await.unwrap();
    store.set_permission("s", "shell", "reject").await.unwrap();
    assert_eq!(
        store.permissions("s").await.unwrap(),
        vec![("shell".to_owned(), "reject".to_owned()), ("write_file".to_owned(), "allow".to_owned())]
    );
    let err = store.set_permission("missing", "shell", "allow").await.unwrap_err();
    assert!(matches!(&err, StoreError::NotFound(id) if id == "missing"), "{err:?}");
    let err = store.set_permission("s", "shell", "maybe").await.unwrap_err();
    let StoreError::Sqlite { path, .. } = &err else {
        panic!("expected a SQLite error, got {err:?}");
    };
    assert_eq!(path.as_path(), store.path());

    assert_eq!(store.plan("s").await.unwrap(), None);
    let first = json!([{"content": "read", "priority": "high", "status": "pending"}]);
    let second = json!([{"content": "read", "priority": "high", "status": "completed"}]);
    store.save_plan("s", first).await.unwrap();
    store.save_plan("s", second.clone()).await.unwrap();
    assert_eq!(store.plan("s").await.unwrap(), Some(second));
    let err = store.save_plan("missing", json!([])).await.unwrap_err();
    assert!(matches!(&err, StoreError::NotFound(id) if id == "missing"), "{err:?}");
}
