//! Tool calls in the stored history: `session/load` after a restart replays them as
//! `tool_call` + `tool_call_update` (completed/failed, with the result text) in order between
//! the messages, and the next turn sends them to the model as a valid conversation.

use serde_json::{Value, json};

use crate::support::{MockLlm, MockReply, TestEnv, update_kind};

/// The replay as a flat sequence: merged message chunks as `("user"|"agent", text)`, tool
/// notifications as `("tool_call"|"tool_call_update", "id status")`.
fn replay_sequence(updates: &[Value]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for u in updates {
        let kind = update_kind(u);
        let entry = match kind {
            "user_message_chunk" | "agent_message_chunk" => {
                let who = if kind == "user_message_chunk" { "user" } else { "agent" };
                let text = u["update"]["content"]["text"].as_str().unwrap_or("");
                if let Some((last, t)) = out.last_mut()
                    && last == who
                {
                    t.push_str(text);
                    continue;
                }
                (who.to_owned(), text.to_owned())
            }
            "tool_call" | "tool_call_update" => (
                kind.to_owned(),
                format!(
                    "{} {}",
                    u["update"]["toolCallId"].as_str().unwrap_or(""),
                    u["update"]["status"].as_str().unwrap_or("")
                ),
            ),
            _ => continue,
        };
        out.push(entry);
    }
    out
}

#[tokio::test]
async fn load_after_restart_replays_tool_calls_in_order_between_the_messages() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    std::fs::write(env.workspace().join("present.txt"), "PRESENT-CONTENT\n").unwrap();
    mock.enqueue(
        MockReply::text(["Let me look."]).tool_call("call_ok", "read_file", json!({"path": "present.txt"})).tool_call(
            "call_bad",
            "read_file",
            json!({"path": "absent.txt"}),
        ),
    );
    mock.enqueue(MockReply::text(["One exists."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, "Inspect the files").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let live = turn.tool_calls();
    assert_eq!(live[0].final_status(), "completed");
    assert_eq!(live[1].final_status(), "failed");
    client.shutdown().await;

    let mut client = env.spawn_initialized().await;
    let (replay, result) =
        client.request_collect("session/load", json!({"sessionId": session, "cwd": env.cwd(), "mcpServers": []})).await;
    result.expect("session/load");
    let seq = replay_sequence(&replay);
    let shape: Vec<(String, String)> = seq
        .iter()
        .map(|(k, v)| {
            let v = match k.as_str() {
                // The status of the replayed creation is not prescribed.
                "tool_call" => v.split(' ').next().unwrap().to_owned(),
                _ => v.clone(),
            };
            (k.clone(), v)
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("user", "Inspect the files"),
        ("agent", "Let me look."),
        ("tool_call", "call_ok"),
        ("tool_call_update", "call_ok completed"),
        ("tool_call", "call_bad"),
        ("tool_call_update", "call_bad failed"),
        ("agent", "One exists."),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(shape, expected, "replay: {replay:#?}");

    let calls = crate::support::tool_calls(&replay);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].title(), "Read present.txt");
    assert_eq!(calls[0].kind(), "read");
    assert_eq!(calls[0].start_field("rawInput"), json!({"path": "present.txt"}));
    assert!(calls[0].text().contains("PRESENT-CONTENT"), "the result text is replayed: {:#?}", calls[0]);
    assert!(calls[0].raw_output_text().contains("PRESENT-CONTENT"));
    assert!(calls[1].text().contains("absent.txt"), "the failure message is replayed: {:#?}", calls[1]);
    for u in &replay {
        if matches!(update_kind(u), "tool_call" | "tool_call_update") {
            assert_eq!(u["sessionId"], session.as_str());
        }
    }

    // The next turn carries the tool exchange to the model, correctly paired.
    mock.enqueue(MockReply::text(["Sure."]));
    let turn = client.prompt_text(&session, "Thanks").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert!(turn.tool_calls().is_empty(), "no replay leaks into the turn");
    let last = mock.last_model_request();
    let ids: Vec<Option<String>> = last.assistant_tool_calls().into_iter().map(|c| c.id).collect();
    assert_eq!(ids, [Some("call_ok".to_owned()), Some("call_bad".to_owned())], "{}", last.raw_body);
    let results = last.tool_results();
    let result_ids: Vec<Option<&str>> = results.iter().map(|r| r.call_id.as_deref()).collect();
    assert_eq!(result_ids, [Some("call_ok"), Some("call_bad")]);
    assert!(results[0].text.contains("PRESENT-CONTENT"));
    let roles: Vec<&str> = last.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["role"].as_str())
        .filter(|r| *r != "system")
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "tool", "assistant", "user"], "{}", last.raw_body);
}

/// Ollama gives tool calls no ids, so the agent makes them up; they must stay unique within
/// the session (protocol §7.2) even when the process restarts between turns, or the editor
/// merges two calls and the replay pairs calls with the wrong results.
#[tokio::test]
async fn ollama_made_up_tool_call_ids_stay_unique_in_a_session_across_restarts() {
    let mock = MockLlm::start().await;
    let env = crate::providers::env_for(crate::providers::Wire::Ollama, &mock);
    std::fs::write(env.workspace().join("first.txt"), "FIRST-FILE\n").unwrap();
    std::fs::write(env.workspace().join("second.txt"), "SECOND-FILE\n").unwrap();
    let load = |session: &str| json!({"sessionId": session, "cwd": env.cwd(), "mcpServers": []});

    mock.enqueue(MockReply::tool("unused", "read_file", json!({"path": "first.txt"})));
    mock.enqueue(MockReply::text(["First read."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, "Read the first").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let first_id = turn.tool_calls()[0].id.clone();
    client.shutdown().await;

    mock.enqueue(MockReply::tool("unused", "read_file", json!({"path": "second.txt"})));
    mock.enqueue(MockReply::text(["Second read."]));
    let mut client = env.spawn_initialized().await;
    let (_, loaded) = client.request_collect("session/load", load(&session)).await;
    loaded.expect("session/load");
    let turn = client.prompt_text(&session, "Read the second").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let second_id = turn.tool_calls()[0].id.clone();
    client.shutdown().await;
    assert_ne!(first_id, second_id, "a toolCallId is reused within the session after a restart");

    let mut client = env.spawn_initialized().await;
    let (replay, loaded) = client.request_collect("session/load", load(&session)).await;
    loaded.expect("session/load");
    let calls = crate::support::tool_calls(&replay);
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert!(calls[0].text().contains("FIRST-FILE"), "{:#?}", calls[0]);
    assert!(calls[1].text().contains("SECOND-FILE"), "{:#?}", calls[1]);
}
