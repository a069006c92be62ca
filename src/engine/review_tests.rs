//! Engine tests that need its private parts: the history sent to providers after an
//! interrupted turn, the turn's panic backstop, and MCP sessions of closed sessions.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::Engine;
use super::config::{ConfigFile, EngineConfig, EnvSnapshot};
use super::content::{ContentPart, Role, ToolCall, ToolResult};
use super::event::{ChatEvent, StopReason};
use super::provider::ProviderMessage;
use super::provider::http::test_support::{MockServer, Reply, sse_data};
use super::provider_messages::to_provider_messages;
use super::store::{MessageStatus, NewMessage, StoredMessage};

const WAIT: Duration = Duration::from_secs(20);

async fn scripted_engine(dir: &Path) -> Engine {
    let script = dir.join("script.json");
    std::fs::write(&script, r#"{"turns":[{"text":"ok"}]}"#).unwrap();
    let env = EnvSnapshot {
        ratchet_provider: Some("scripted".into()),
        ratchet_script: Some(script.to_string_lossy().into_owned()),
        ..Default::default()
    };
    Engine::open(EngineConfig { home: dir.to_path_buf(), env, file: ConfigFile::default() }).await.unwrap()
}

async fn drain(mut rx: tokio::sync::mpsc::Receiver<ChatEvent>) -> Vec<ChatEvent> {
    let mut out = Vec::new();
    while let Some(e) = tokio::time::timeout(WAIT, rx.recv()).await.expect("turn hung") {
        out.push(e);
    }
    out
}

fn stored(seq: i64, role: Role, content: &str, calls: Vec<ToolCall>, results: Vec<ToolResult>) -> StoredMessage {
    StoredMessage {
        seq,
        role,
        content: if content.is_empty() { vec![] } else { vec![ContentPart::text(content)] },
        tool_calls: calls,
        tool_results: results,
        usage: None,
        status: MessageStatus::Complete,
        created_at: 0,
    }
}

fn call(id: &str) -> ToolCall {
    ToolCall { id: id.into(), name: "shell".into(), arguments: json!({"command": "ls"}) }
}

#[test]
fn unanswered_tool_calls_get_interrupted_results_and_stray_results_are_dropped() {
    let history = vec![
        stored(1, Role::User, "do it", vec![], vec![]),
        // A crash (or a store error) between the answer and its results.
        stored(2, Role::Assistant, "running", vec![call("a"), call("b")], vec![]),
        stored(3, Role::User, "and now?", vec![], vec![]),
        // Only one of two results stored.
        stored(4, Role::Assistant, "", vec![call("c"), call("d")], vec![]),
        stored(5, Role::Tool, "", vec![], vec![ToolResult::new("d", "done d", false)]),
        // Results that answer no call just before them.
        stored(6, Role::Tool, "", vec![], vec![ToolResult::new("zzz", "stray", false)]),
        stored(7, Role::User, "next", vec![], vec![]),
    ];
    let messages = to_provider_messages(&history);
    let shape: Vec<&str> = messages
        .iter()
        .map(|m| match m {
            ProviderMessage::User(_) => "user",
            ProviderMessage::Assistant { .. } => "assistant",
            ProviderMessage::ToolResults(_) => "results",
        })
        .collect();
    assert_eq!(shape, ["user", "assistant", "results", "user", "assistant", "results", "user"]);
    let ProviderMessage::ToolResults(first) = &messages[2] else { unreachable!() };
    assert_eq!(first.iter().map(|r| r.call_id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert!(first.iter().all(|r| r.is_error && r.content.contains("interrupted")), "{first:?}");
    let ProviderMessage::ToolResults(second) = &messages[5] else { unreachable!() };
    assert_eq!(second.iter().map(|r| r.call_id.as_str()).collect::<Vec<_>>(), ["c", "d"]);
    assert!(second[0].is_error && second[0].content.contains("interrupted"));
    assert_eq!(second[1], ToolResult::new("d", "done d", false));
}

#[test]
fn complete_history_is_passed_through_unchanged() {
    let results = vec![ToolResult::new("a", "out", false)];
    let history = vec![
        stored(1, Role::User, "hi", vec![], vec![]),
        stored(2, Role::Assistant, "", vec![call("a")], vec![]),
        stored(3, Role::Tool, "", vec![], results.clone()),
        stored(4, Role::Assistant, "done", vec![], vec![]),
    ];
    let messages = to_provider_messages(&history);
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[2], ProviderMessage::ToolResults(results));
}

/// End to end: a session whose last answer's tool calls never got results (the process died
/// while the tool ran) must still be usable: the next request answers every call.
#[tokio::test]
async fn the_turn_after_an_interrupted_tool_call_sends_a_valid_history() {
    let dir = tempfile::tempdir().unwrap();
    let answer = vec![
        sse_data(json!({"choices": [{"delta": {"content": "fine"}, "finish_reason": "stop"}]})),
        "data: [DONE]".to_string(),
    ];
    let server = MockServer::start(vec![Reply::sse(&answer)]).await;
    let env = EnvSnapshot {
        ratchet_provider: Some("openai".into()),
        openai_api_key: Some("sk-test".into()),
        openai_base_url: Some(format!("{}/v1", server.base)),
        ratchet_model: Some("gpt-test".into()),
        ..Default::default()
    };
    let e =
        Engine::open(EngineConfig { home: dir.path().to_path_buf(), env, file: ConfigFile::default() }).await.unwrap();
    let s = e.create_session(dir.path().to_path_buf(), vec![]).await.unwrap();
    e.store().append_message(&s.id, NewMessage::user(vec![ContentPart::text("run ls")])).await.unwrap();
    let assistant = NewMessage::assistant(vec![], vec![call("call_1")], None);
    e.store().append_message(&s.id, assistant).await.unwrap();

    let events = drain(e.send_message(&s.id, vec![ContentPart::text("well?")]).await.unwrap()).await;
    assert_eq!(events.last(), Some(&ChatEvent::Complete { stop: StopReason::EndTurn }), "{events:?}");
    let body = server.single_request().body;
    let messages = body["messages"].as_array().unwrap();
    let at = messages.iter().position(|m| m["tool_calls"].is_array()).expect("the assistant's call is sent");
    assert_eq!(messages[at + 1]["role"], "tool", "{messages:#?}");
    assert_eq!(messages[at + 1]["tool_call_id"], "call_1");
    assert_eq!(messages[at + 2]["role"], "user");
}

/// A panic anywhere in a turn still ends it with an `Error` event (and frees the session).
#[tokio::test]
async fn a_panicking_turn_still_sends_its_final_event() {
    let dir = tempfile::tempdir().unwrap();
    let e = scripted_engine(dir.path()).await;
    let s = e.create_session(dir.path().to_path_buf(), vec![]).await.unwrap();
    let claim = e.claim_turn(&s.id).unwrap();
    let mut live = e.live().subscribe(&s.id);
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let backstop =
        super::backstop::Backstop { engine: e.clone(), session_id: s.id.clone(), turn_id: claim.turn_id(), events: tx };
    let turn = async move {
        let _claim = claim;
        panic!("a bug");
    };
    tokio::spawn(backstop.run(turn));
    let events = drain(rx).await;
    assert!(matches!(events.last(), Some(ChatEvent::Error { message, .. }) if message.contains("a bug")), "{events:?}");
    let seen = tokio::time::timeout(WAIT, live.recv()).await.unwrap().unwrap();
    assert!(matches!(seen.event, super::live::LiveEvent::Chat(ChatEvent::Error { .. })), "{seen:?}");
    assert!(e.claim_turn(&s.id).is_ok(), "the session is free again");
}

/// A turn that reaches its tools after its session was closed must not start (and leak) MCP
/// servers for it: nothing would ever stop them.
#[tokio::test]
async fn tools_of_a_closed_session_start_no_mcp_servers() {
    let dir = tempfile::tempdir().unwrap();
    let e = scripted_engine(dir.path()).await;
    let s = e.create_session(dir.path().to_path_buf(), vec![]).await.unwrap();
    e.set_mcp_servers(&s, vec![]);
    assert!(e.has_mcp(&s.id));
    e.close_session(&s.id);
    assert!(!e.has_mcp(&s.id));
    let (registry, _) = e.tools_for(&s).await;
    assert!(registry.get("read_file").is_some(), "built-in tools still work");
    assert!(!e.has_mcp(&s.id), "a closed session got an MCP session again");
    e.shutdown().await;
}

#[tokio::test]
async fn a_normal_turn_ends_with_complete_and_closes_its_channel() {
    // The backstop must not change a normal turn: Complete stays the last event.
    let dir = tempfile::tempdir().unwrap();
    let e = scripted_engine(dir.path()).await;
    let s = e.create_session(dir.path().to_path_buf(), vec![]).await.unwrap();
    let events = drain(e.send_message(&s.id, vec![ContentPart::text("hi")]).await.unwrap()).await;
    assert_eq!(events.last(), Some(&ChatEvent::Complete { stop: StopReason::EndTurn }));
}
