//! MCP servers over the real binary (protocol §10): servers given in `session/new` and in the
//! project's `.ratchet/mcp.json` are started, their tools are offered to the model as
//! `mcp__<server>__<tool>`, calls round-trip, and a server that cannot start is named in the
//! chat. Uses the reference `@modelcontextprotocol/server-everything` from npm, installed by
//! `.ci/install-mcp-servers` (run by `scripts/test`).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::{MockLlm, MockReply, TestEnv};

fn server_entry() -> PathBuf {
    let entry = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".ci/mcp-servers/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        entry.is_file(),
        "the reference MCP server is not installed ({} is missing); run .ci/install-mcp-servers first",
        entry.display()
    );
    entry
}

fn node() -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("node"))
        .find(|p| p.is_file())
        .expect("`node` is not on PATH; install Node.js 20+")
        .display()
        .to_string()
}

fn everything_acp() -> Value {
    json!({"name": "everything", "command": node(), "args": [server_entry().display().to_string(), "stdio"], "env": []})
}

async fn echo_round_trip(env: &TestEnv, mock: &MockLlm, servers: Value) {
    mock.enqueue(MockReply::tool("call_echo_1", "mcp__everything__echo", json!({"message": "ping from the model"})));
    mock.enqueue(MockReply::text(["The server echoed."]));
    let mut client = env.spawn_initialized().await;
    let created = client.call("session/new", json!({"cwd": env.cwd(), "mcpServers": servers})).await;
    let session = created["sessionId"].as_str().unwrap().to_string();
    client.set_mode(&session, "yolo").await;

    let turn = client.prompt_text(&session, "Echo something").await;
    assert_eq!(turn.stop_reason(), "end_turn", "{:#?}", turn.messages);
    let requests = mock.requests();
    assert_eq!(requests.len(), 2, "one call with the tool, one with its result");
    let offered = requests[0].tool_names();
    assert!(offered.iter().any(|n| n == "mcp__everything__echo"), "MCP tools offered: {offered:?}");
    assert!(offered.iter().any(|n| n == "read_file"), "built-in tools still offered: {offered:?}");
    let results = requests[1].tool_results();
    assert_eq!(results.len(), 1, "{results:#?}");
    assert!(results[0].text.contains("ping from the model"), "the server's answer reached the model: {results:#?}");
    let calls = turn.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].title(), "everything: echo");
    assert_eq!(calls[0].statuses().last().map(String::as_str), Some("completed"));
}

#[tokio::test]
async fn servers_from_session_new_are_offered_and_a_call_round_trips() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    echo_round_trip(&env, &mock, json!([everything_acp()])).await;
}

#[tokio::test]
async fn servers_from_the_project_mcp_json_are_used_too() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let dir = env.workspace().join(".ratchet");
    std::fs::create_dir_all(&dir).unwrap();
    let config = json!({"mcpServers": {"everything": {"command": node(), "args": [server_entry().display().to_string(), "stdio"]}}});
    std::fs::write(dir.join("mcp.json"), config.to_string()).unwrap();
    echo_round_trip(&env, &mock, json!([])).await;
}

#[tokio::test]
async fn a_server_that_cannot_start_is_named_in_the_chat_and_the_turn_goes_on() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue(MockReply::text(["Still here."]));
    let mut client = env.spawn_initialized().await;
    let broken = json!({"name": "broken", "command": "/nonexistent/mcp-server", "args": [], "env": []});
    let created = client.call("session/new", json!({"cwd": env.cwd(), "mcpServers": [broken]})).await;
    let session = created["sessionId"].as_str().unwrap().to_string();
    let turn = client.prompt_text(&session, "hello").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let text = turn.text();
    assert!(text.contains("MCP server \"broken\" is unavailable"), "{text}");
    assert!(text.ends_with("Still here."), "{text}");
}

/// A repository's `.ratchet/mcp.json` runs commands its author chose: in the default mode the
/// user is asked first (once per session), and a rejection keeps the servers off.
#[tokio::test]
async fn project_servers_are_started_only_after_the_user_allows_them() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let dir = env.workspace().join(".ratchet");
    std::fs::create_dir_all(&dir).unwrap();
    let config = json!({"mcpServers": {"everything": {"command": node(), "args": [server_entry().display().to_string(), "stdio"]}}});
    std::fs::write(dir.join("mcp.json"), config.to_string()).unwrap();

    // Rejected: not started, and not asked again in the session.
    mock.enqueue(MockReply::text(["one"]));
    mock.enqueue(MockReply::text(["two"]));
    let mut client = env.spawn_initialized().await;
    client.permission_policy = crate::support::PermissionPolicy::RejectOnce;
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, "hello").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let asked = turn.requests("session/request_permission");
    assert_eq!(asked.len(), 1, "{:#?}", turn.messages);
    let title = asked[0]["toolCall"]["title"].as_str().unwrap_or_default().to_string();
    assert!(title.starts_with("Start MCP servers from .ratchet/mcp.json: everything"), "{title}");
    let offered = mock.requests()[0].tool_names();
    assert!(!offered.iter().any(|n| n.starts_with("mcp__")), "rejected servers offer no tools: {offered:?}");
    let turn = client.prompt_text(&session, "again").await;
    assert!(turn.requests("session/request_permission").is_empty(), "asked once per session");

    // Allowed (in a new session): started, tools offered.
    mock.enqueue(MockReply::text(["three"]));
    client.permission_policy = crate::support::PermissionPolicy::AllowOnce;
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, "hello").await;
    assert_eq!(turn.requests("session/request_permission").len(), 1);
    let offered = mock.requests().last().unwrap().tool_names();
    assert!(offered.iter().any(|n| n == "mcp__everything__echo"), "allowed servers offer tools: {offered:?}");
}
