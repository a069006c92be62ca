//! The engine's face, used directly (no ACP): turns, durability, cancel, busy sessions.
//! Uses the offline `scripted` provider; the real HTTP providers are covered in `tests/it`.

use ratchet::engine::store::MessageStatus;
use ratchet::engine::{ChatEvent, ContentPart, EngineError, Role, StopReason};

mod common;
use common::{WAIT, drain, scripted_engine as engine, text_of};

#[tokio::test]
async fn a_turn_streams_titles_and_stores_both_messages() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), r#"{"turns":[{"thinking":"let me see","text":"hello there, friend"}]}"#).await;
    let s = e.create_session(dir.path().to_path_buf(), vec![]).await.unwrap();
    let events = drain(e.send_message(&s.id, vec![ContentPart::text("Say hello\nplease")]).await.unwrap()).await;
    assert_eq!(text_of(&events), "hello there, friend");
    assert!(events.contains(&ChatEvent::TitleChanged("Say hello".into())));
    assert!(events.iter().any(|e| matches!(e, ChatEvent::ThoughtDelta(_))));
    assert_eq!(events.last(), Some(&ChatEvent::Complete { stop: StopReason::EndTurn }));

    let history = e.history(&s.id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!((history[0].role, history[1].role), (Role::User, Role::Assistant));
    assert_eq!(history[0].content, vec![ContentPart::text("Say hello\nplease")]);
    assert!(history[1].content.contains(&ContentPart::text("hello there, friend")));
    assert_eq!(e.session(&s.id).await.unwrap().title.as_deref(), Some("Say hello"));
}

#[tokio::test]
async fn cancel_keeps_the_partial_answer_and_frees_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"{"turns":[{"text":"one two three four five six seven eight nine ten","chunk_delay_ms":200}]}"#;
    let e = engine(dir.path(), script).await;
    let s = e.create_session(dir.path().to_path_buf(), vec![]).await.unwrap();
    let mut rx = e.send_message(&s.id, vec![ContentPart::text("count")]).await.unwrap();
    // Wait for the first piece of text, then cancel.
    loop {
        match tokio::time::timeout(WAIT, rx.recv()).await.unwrap().unwrap() {
            ChatEvent::TextDelta(_) => break,
            _ => continue,
        }
    }
    assert!(matches!(e.send_message(&s.id, vec![ContentPart::text("again")]).await, Err(EngineError::Busy(_))));
    assert!(e.cancel(&s.id));
    let rest = drain(rx).await;
    assert_eq!(rest.last(), Some(&ChatEvent::Complete { stop: StopReason::Cancelled }));

    let history = e.history(&s.id).await.unwrap();
    let answer = history.iter().find(|m| m.role == Role::Assistant).expect("partial answer stored");
    assert_eq!(answer.status, MessageStatus::Cancelled);
    let ContentPart::Text { text } = answer.content.last().unwrap() else { panic!("no text") };
    assert!(text.starts_with("one") && !text.contains("ten"), "partial text: {text:?}");

    // A cancel with nothing running changes nothing, and the session takes a new turn.
    assert!(!e.cancel(&s.id));
    let events = drain(e.send_message(&s.id, vec![ContentPart::text("again")]).await.unwrap()).await;
    assert_eq!(events.last(), Some(&ChatEvent::Complete { stop: StopReason::EndTurn }));
}

#[tokio::test]
async fn prompts_need_an_open_session() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), r#"{"turns":[{"text":"x"}]}"#).await;
    assert!(matches!(e.send_message("nope", vec![]).await, Err(EngineError::NotOpen(_))));
    assert!(matches!(e.session("nope").await, Err(EngineError::NotFound(_))));
}

#[tokio::test]
async fn history_survives_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let e = engine(dir.path(), r#"{"turns":[{"text":"persisted"}]}"#).await;
        let s = e.create_session(dir.path().to_path_buf(), vec![]).await.unwrap();
        drain(e.send_message(&s.id, vec![ContentPart::text("hi")]).await.unwrap()).await;
        e.shutdown().await;
        s.id
    };
    let e = engine(dir.path(), r#"{"turns":[{"text":"x"}]}"#).await;
    let history = e.history(&id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(history[1].content.contains(&ContentPart::text("persisted")));
    // The store is not part of the engine's face: check the file itself.
    let conn = rusqlite::Connection::open(e.config().db_path()).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}
