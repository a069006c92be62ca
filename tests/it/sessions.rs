//! Session lifecycle: load (replay before the response, across restarts), resume (no
//! replay), close, list (order, cwd filter, pagination, cursors), modes and config options,
//! and durability (kill -9 loses nothing that was answered).

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::providers::assert_title_derived_from;
use crate::support::{Message, MockLlm, MockReply, TestEnv, tr, transcript};

fn load_params(session: &str, env: &TestEnv) -> Value {
    json!({"sessionId": session, "cwd": env.cwd(), "mcpServers": []})
}

/// Two turns in one process: returns the session id.
async fn two_turn_session(env: &TestEnv, mock: &MockLlm) -> String {
    mock.enqueue(MockReply::text(["Rust is ", "a language."]).thinking(["Define it."]));
    mock.enqueue(MockReply::text(["Cargo ", "builds it."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    assert_eq!(client.prompt_text(&session, "What is Rust?").await.stop_reason(), "end_turn");
    assert_eq!(client.prompt_text(&session, "And Cargo?").await.stop_reason(), "end_turn");
    client.shutdown().await;
    session
}

fn expected_two_turn_transcript() -> Vec<(String, String)> {
    tr(&[
        ("user", "What is Rust?"),
        ("thought", "Define it."),
        ("agent", "Rust is a language."),
        ("user", "And Cargo?"),
        ("agent", "Cargo builds it."),
    ])
}

#[tokio::test]
async fn load_after_restart_replays_history_in_order_before_responding() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let session = two_turn_session(&env, &mock).await;

    let mut client = env.spawn_initialized().await;
    let id = client.send_request("session/load", load_params(&session, &env)).await;
    let (before, result) = client.wait_response(id).await;
    let result = result.expect("session/load");
    let replay: Vec<Value> = before.iter().filter_map(Message::as_update).cloned().collect();
    for u in &replay {
        if crate::support::update_kind(u) != "available_commands_update" {
            assert_eq!(u["sessionId"], session.as_str(), "{u}");
        }
    }
    assert_eq!(
        transcript(&replay),
        expected_two_turn_transcript(),
        "the whole conversation is replayed, in order, before the load response"
    );
    assert_eq!(result["modes"]["currentModeId"], "ask", "{result:#}");

    // Nothing of the replay may trail the response.
    let probe = client.send_request("session/list", json!({})).await;
    let (after, _) = client.wait_response(probe).await;
    let late: Vec<Value> = after.iter().filter_map(Message::as_update).cloned().collect();
    assert!(transcript(&late).is_empty(), "history chunks arrived after the load response: {late:#?}");
}

#[tokio::test]
async fn load_in_the_same_process_replays_history() {
    let env = TestEnv::scripted(&["First scripted answer.", "Second scripted answer."]);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, "Hello script").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let answer = turn.text();
    let (replay, result) = client.request_collect("session/load", load_params(&session, &env)).await;
    result.expect("session/load");
    assert_eq!(transcript(&replay), tr(&[("user", "Hello script"), ("agent", answer.as_str())]));
}

#[tokio::test]
async fn loaded_session_continues_with_its_stored_history() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let session = two_turn_session(&env, &mock).await;

    let mut client = env.spawn_initialized().await;
    client.request_collect("session/load", load_params(&session, &env)).await.1.expect("session/load");
    mock.enqueue(MockReply::text(["Third answer."]));
    let turn = client.prompt_text(&session, "And rustc?").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.text(), "Third answer.");
    let conversation = mock.last_model_request().conversation();
    let roles: Vec<&str> = conversation.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant", "user"], "{conversation:#?}");
    assert!(conversation[0].1.contains("What is Rust?"));
    assert_eq!(conversation[1].1, "Rust is a language.");
    assert_eq!(conversation[3].1, "Cargo builds it.");
    assert!(conversation[4].1.contains("And rustc?"));
}

#[tokio::test]
async fn resume_after_restart_restores_without_replay() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let session = two_turn_session(&env, &mock).await;

    let mut client = env.spawn_initialized().await;
    let (before, result) = client.request_collect("session/resume", load_params(&session, &env)).await;
    result.expect("session/resume");
    assert!(transcript(&before).is_empty(), "resume must not replay: {before:#?}");
    // And not right after the response either.
    let probe = client.send_request("session/list", json!({})).await;
    let (after, _) = client.wait_response(probe).await;
    let late: Vec<Value> = after.iter().filter_map(Message::as_update).cloned().collect();
    assert!(transcript(&late).is_empty(), "resume must not replay: {late:#?}");

    // The context is restored: the next prompt sends the old conversation.
    mock.enqueue(MockReply::text(["Resumed answer."]));
    let turn = client.prompt_text(&session, "Still there?").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let conversation = mock.last_model_request().conversation();
    assert_eq!(conversation.len(), 5, "{conversation:#?}");
    assert!(conversation[0].1.contains("What is Rust?"));
}

#[tokio::test]
async fn close_returns_an_empty_object_and_keeps_the_session_stored() {
    let env = TestEnv::scripted(&["ok"]);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    assert_eq!(client.prompt_text(&session, "Hi").await.stop_reason(), "end_turn");
    let result = client.call("session/close", json!({"sessionId": session})).await;
    assert_eq!(result, json!({}));
    let list = client.call("session/list", json!({})).await;
    assert!(
        list["sessions"].as_array().unwrap().iter().any(|s| s["sessionId"] == session.as_str()),
        "close is not delete: {list:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// session/list

fn listed_ids(list: &Value) -> Vec<String> {
    list["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("no sessions array: {list}"))
        .iter()
        .map(|s| s["sessionId"].as_str().unwrap().to_owned())
        .collect()
}

fn looks_like_iso8601(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && (s.ends_with('Z') || s[19..].contains('+') || s[19..].contains('-'))
}

#[tokio::test]
async fn list_is_empty_for_a_fresh_home() {
    let env = TestEnv::scripted(&["ok"]);
    let mut client = env.spawn_initialized().await;
    let list = client.call("session/list", json!({})).await;
    assert_eq!(list["sessions"], json!([]));
    assert!(list.get("nextCursor").is_none_or(Value::is_null), "{list}");
}

#[tokio::test]
async fn list_returns_sessions_newest_first_with_cwd_title_and_updated_at() {
    let env = TestEnv::scripted(&["Alpha answer.", "Beta answer."]);
    let mut client = env.spawn_initialized().await;
    let a = client.new_session(&env.cwd()).await;
    assert_eq!(client.prompt_text(&a, "Alpha question").await.stop_reason(), "end_turn");
    let b = client.new_session(&env.cwd()).await;
    assert_eq!(client.prompt_text(&b, "Beta question").await.stop_reason(), "end_turn");

    let list = client.call("session/list", json!({})).await;
    assert_eq!(listed_ids(&list), [b.clone(), a.clone()], "newest first: {list:#}");
    for (entry, prompt) in list["sessions"].as_array().unwrap().iter().zip(["Beta question", "Alpha question"]) {
        assert_eq!(entry["cwd"], env.cwd(), "{entry}");
        let title = entry["title"].as_str().unwrap_or_else(|| panic!("no title: {entry}"));
        assert_title_derived_from(title, prompt);
        let updated = entry["updatedAt"].as_str().unwrap_or_else(|| panic!("no updatedAt: {entry}"));
        assert!(looks_like_iso8601(updated), "updatedAt is not ISO-8601: {updated}");
    }
}

#[tokio::test]
async fn list_filters_by_exact_cwd() {
    let env = TestEnv::scripted(&["ok"]);
    let mut client = env.spawn_initialized().await;
    let in_a = client.new_session(&env.cwd()).await;
    let in_b = client.new_session(env.workspace_b().to_str().unwrap()).await;

    let list_a = client.call("session/list", json!({"cwd": env.cwd()})).await;
    assert_eq!(listed_ids(&list_a), [in_a]);
    let list_b = client.call("session/list", json!({"cwd": env.workspace_b()})).await;
    assert_eq!(listed_ids(&list_b), [in_b]);
    // Exact match only: a parent directory matches nothing.
    let parent = env.workspace().parent().unwrap().to_path_buf();
    let list_parent = client.call("session/list", json!({"cwd": parent})).await;
    assert_eq!(listed_ids(&list_parent), Vec::<String>::new());
    let all = client.call("session/list", json!({})).await;
    assert_eq!(listed_ids(&all).len(), 2);
}

#[tokio::test]
async fn list_paginates_at_50_with_a_next_cursor() {
    let env = TestEnv::scripted(&["ok"]);
    let mut client = env.spawn_initialized().await;
    let mut created = HashSet::new();
    for _ in 0..55 {
        created.insert(client.new_session(&env.cwd()).await);
    }
    let page1 = client.call("session/list", json!({})).await;
    let ids1 = listed_ids(&page1);
    assert_eq!(ids1.len(), 50, "page size is 50");
    let cursor = page1["nextCursor"]
        .as_str()
        .unwrap_or_else(|| panic!("a full page must carry nextCursor: {}", page1["nextCursor"]))
        .to_owned();

    let page2 = client.call("session/list", json!({"cursor": cursor})).await;
    let ids2 = listed_ids(&page2);
    assert_eq!(ids2.len(), 5);
    assert!(
        page2.get("nextCursor").is_none_or(Value::is_null),
        "the last page has no nextCursor: {}",
        page2["nextCursor"]
    );
    let all: Vec<String> = ids1.into_iter().chain(ids2).collect();
    let unique: HashSet<String> = all.iter().cloned().collect();
    assert_eq!(unique.len(), 55, "no session listed twice");
    assert_eq!(unique, created);
}

#[tokio::test]
async fn list_with_a_garbage_cursor_is_invalid_params() {
    let env = TestEnv::scripted(&["ok"]);
    let mut client = env.spawn_initialized().await;
    client.new_session(&env.cwd()).await;
    let err = client
        .request("session/list", json!({"cursor": "%%%not-a-cursor%%%"}))
        .await
        .expect_err("a garbage cursor must be rejected");
    assert_eq!(err.code, -32602, "{err}");
}

// ---------------------------------------------------------------------------------------------
// Modes and config options

async fn wait_for_update_kind(client: &mut crate::support::AcpClient, session: &str, kind: &str) -> Value {
    let seen = client.updates_until(|u| u["sessionId"] == session && crate::support::update_kind(u) == kind).await;
    seen.last().unwrap().clone()
}

#[tokio::test]
async fn set_mode_switches_the_mode_and_sends_current_mode_update() {
    let env = TestEnv::scripted(&["ok"]);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let result = client.call("session/set_mode", json!({"sessionId": session, "modeId": "plan"})).await;
    assert_eq!(result, json!({}));
    let update = wait_for_update_kind(&mut client, &session, "current_mode_update").await;
    assert_eq!(update["update"]["currentModeId"], "plan", "{update}");
}

#[tokio::test]
async fn set_mode_with_an_unknown_mode_is_invalid_params() {
    let env = TestEnv::scripted(&["ok"]);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let err = client
        .request("session/set_mode", json!({"sessionId": session, "modeId": "turbo"}))
        .await
        .expect_err("unknown mode");
    assert_eq!(err.code, -32602, "{err}");
}

#[tokio::test]
async fn set_config_option_mode_switches_the_mode_too() {
    let env = TestEnv::scripted(&["ok"]);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let result = client
        .call("session/set_config_option", json!({"sessionId": session, "configId": "mode", "value": "accept-edits"}))
        .await;
    let mode = result["configOptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "mode")
        .unwrap_or_else(|| panic!("no mode option: {result:#}"))
        .clone();
    assert_eq!(mode["currentValue"], "accept-edits");
    let update = wait_for_update_kind(&mut client, &session, "current_mode_update").await;
    assert_eq!(update["update"]["currentModeId"], "accept-edits", "{update}");
}

#[tokio::test]
async fn set_config_option_model_changes_the_model_sent_to_the_provider() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    env.write_config("models = [\"mock-model-b\"]\n");
    let mut client = env.spawn_initialized().await;
    let created = client.new_session_full(&env.cwd()).await;
    let session = created["sessionId"].as_str().unwrap().to_owned();
    let model_opt = created["configOptions"].as_array().unwrap().iter().find(|o| o["id"] == "model").unwrap().clone();
    let values: Vec<&str> =
        model_opt["options"].as_array().unwrap().iter().filter_map(|o| o["value"].as_str()).collect();
    assert!(values.contains(&"mock-model-b"), "configured models are offered: {values:?}");

    let result = client
        .call("session/set_config_option", json!({"sessionId": session, "configId": "model", "value": "mock-model-b"}))
        .await;
    let options = result["configOptions"].as_array().expect("the complete option list");
    let model = options.iter().find(|o| o["id"] == "model").expect("model option");
    assert_eq!(model["currentValue"], "mock-model-b");
    assert!(options.iter().any(|o| o["id"] == "mode"), "the list must be complete: {result:#}");

    let turn = client.prompt_text(&session, "Which model are you?").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(mock.last_model_request().model(), Some("mock-model-b"));
}

#[tokio::test]
async fn set_config_option_with_an_unknown_config_id_is_invalid_params() {
    let env = TestEnv::scripted(&["ok"]);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let err = client
        .request("session/set_config_option", json!({"sessionId": session, "configId": "warp_drive", "value": "on"}))
        .await
        .expect_err("unknown configId");
    assert_eq!(err.code, -32602, "{err}");
}

#[tokio::test]
async fn legacy_set_model_is_accepted_and_changes_the_model() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    env.write_config("models = [\"mock-model-b\"]\n");
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let result = client.call("session/set_model", json!({"sessionId": session, "modelId": "mock-model-b"})).await;
    assert_eq!(result, json!({}));
    let turn = client.prompt_text(&session, "Which model?").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(mock.last_model_request().model(), Some("mock-model-b"));
}

// ---------------------------------------------------------------------------------------------
// Durability

#[tokio::test]
async fn kill_9_after_an_answer_loses_nothing() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue(MockReply::text(["Durable ", "answer."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, "Remember this").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    client.kill9().await;

    let mut client = env.spawn_initialized().await;
    let (replay, result) = client.request_collect("session/load", load_params(&session, &env)).await;
    result.expect("session/load after kill -9");
    assert_eq!(transcript(&replay), tr(&[("user", "Remember this"), ("agent", "Durable answer.")]));
}

#[tokio::test]
async fn user_message_is_stored_before_the_provider_is_called() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    // The model never answers: the process dies while the request is in flight.
    mock.enqueue(MockReply::text(["never"]).stall_after(0));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    client
        .send_request(
            "session/prompt",
            json!({"sessionId": session, "prompt": [{"type": "text", "text": "Do not forget me"}]}),
        )
        .await;
    mock.wait_for_requests(1).await;
    client.kill9().await;

    let mut client = env.spawn_initialized().await;
    let (replay, result) = client.request_collect("session/load", load_params(&session, &env)).await;
    result.expect("session/load");
    let got = transcript(&replay);
    assert_eq!(got.first(), tr(&[("user", "Do not forget me")]).first(), "{got:#?}");
    assert!(!got.iter().any(|(_, t)| t.contains("never")), "nothing the model did not send may appear: {got:#?}");
}
