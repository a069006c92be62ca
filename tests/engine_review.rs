//! Engine behaviour found in review: cancellation while MCP servers start, and closing and
//! reopening a session while its turn still runs. Offline (`scripted` provider).

use std::time::{Duration, Instant};

use ratchet::engine::mcp::McpServerConfig;
use ratchet::engine::{ChatEvent, ContentPart, EngineError, Role, StopReason};

mod common;
use common::{WAIT, drain, scripted_engine as engine};

/// An MCP server that never answers the handshake (here: `sleep`) makes a turn wait for
/// `CONNECT_TIMEOUT` (15 s) before its first model call; a cancel in that time must end the
/// turn at once, not when the timeout expires.
#[cfg(unix)]
#[tokio::test]
async fn cancel_while_mcp_servers_start_ends_the_turn_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path(), r#"{"turns":[{"text":"never"}]}"#).await;
    let s = e.create_session(dir.path().to_path_buf(), vec![]).await.unwrap();
    let hanging =
        McpServerConfig::Stdio { name: "slow".into(), command: "sleep".into(), args: vec!["30".into()], env: vec![] };
    e.set_mcp_servers(&s, vec![hanging]);
    let rx = e.send_message(&s.id, vec![ContentPart::text("hi")]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    assert!(e.cancel(&s.id));
    let events = drain(rx).await;
    assert_eq!(events.last(), Some(&ChatEvent::Complete { stop: StopReason::Cancelled }), "{events:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "the cancel took {:?}", started.elapsed());
    assert!(!events.iter().any(|e| matches!(e, ChatEvent::TextDelta(t) if t.contains("never"))));
    e.shutdown().await;
}

/// Closing a session cancels its turn; loading it again right away must not let a second turn
/// run beside the first one's last writes (their messages would interleave).
#[tokio::test]
async fn a_reopened_session_takes_a_new_turn_only_after_the_closed_one_ends() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"{"turns":[{"text":"one two three four five six seven eight nine ten","chunk_delay_ms":100}]}"#;
    let e = engine(dir.path(), script).await;
    let s = e.create_session(dir.path().to_path_buf(), vec![]).await.unwrap();
    let mut rx = e.send_message(&s.id, vec![ContentPart::text("count")]).await.unwrap();
    loop {
        if let ChatEvent::TextDelta(_) = tokio::time::timeout(WAIT, rx.recv()).await.unwrap().unwrap() {
            break;
        }
    }
    e.close_session(&s.id);
    e.open_session(&s.id, dir.path().to_path_buf(), vec![]).await.unwrap();
    // Either the old turn is still saving (busy) or it has ended; never two at once.
    let second = loop {
        match e.send_message(&s.id, vec![ContentPart::text("again")]).await {
            Err(EngineError::Busy(_)) => tokio::time::sleep(Duration::from_millis(5)).await,
            other => break other.unwrap(),
        }
    };
    let first = drain(rx).await;
    assert_eq!(first.last(), Some(&ChatEvent::Complete { stop: StopReason::Cancelled }));
    drain(second).await;
    let roles: Vec<Role> = e.history(&s.id).await.unwrap().iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::User, Role::Assistant], "interleaved: {roles:?}");
}

/// Two sessions' turns run at once, each with its own claim, events and history.
#[tokio::test]
async fn two_sessions_run_turns_at_the_same_time_without_mixing() {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"{"turns":[{"text":"alpha beta gamma delta","chunk_delay_ms":30}]}"#;
    let e = engine(dir.path(), script).await;
    let a = e.create_session(dir.path().to_path_buf(), vec![]).await.unwrap();
    let b = e.create_session(dir.path().to_path_buf(), vec![]).await.unwrap();
    let ra = e.send_message(&a.id, vec![ContentPart::text("from a")]).await.unwrap();
    let rb = e.send_message(&b.id, vec![ContentPart::text("from b")]).await.unwrap();
    assert_eq!(e.running_turns(), 2);
    let (ea, eb) = tokio::join!(drain(ra), drain(rb));
    for events in [&ea, &eb] {
        assert_eq!(events.last(), Some(&ChatEvent::Complete { stop: StopReason::EndTurn }));
    }
    for (s, prompt) in [(&a, "from a"), (&b, "from b")] {
        let history = e.history(&s.id).await.unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].content, vec![ContentPart::text(prompt)]);
    }
}
