//! The permission gate (protocol §6.2): in mode `ask`, writes and commands are put to the
//! editor with `session/request_permission` before they run; answers (once/always, allow/
//! reject) are honoured and "always" is remembered per session and tool, also across a
//! restart; the modes `accept-edits`, `plan` and `yolo`; allow and deny rules from
//! `config.toml`.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::support::{AcpClient, Message, MockLlm, MockReply, PermissionPolicy, TestEnv, ToolCallView};

/// Position of the first message of the turn matching `pred`.
fn position(messages: &[Message], what: &str, pred: impl Fn(&Message) -> bool) -> usize {
    messages.iter().position(pred).unwrap_or_else(|| panic!("no {what} in the turn: {messages:#?}"))
}

/// Is `m` a tool-call notification of `kind` for `id` with `status` (a `tool_call`
/// without a status is `pending`, the schema's default)?
fn is_update(m: &Message, kind: &str, id: &str, status: &str) -> bool {
    m.as_update().is_some_and(|u| {
        let got = u["update"]["status"].as_str().unwrap_or(if kind == "tool_call" { "pending" } else { "" });
        u["update"]["sessionUpdate"] == kind && u["update"]["toolCallId"] == id && got == status
    })
}

fn is_permission_request(m: &Message) -> bool {
    matches!(m, Message::Request { method, .. } if method == "session/request_permission")
}

fn find_call<'a>(calls: &'a [ToolCallView], id: &str) -> &'a ToolCallView {
    calls.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("no tool call {id}: {calls:#?}"))
}

async fn open(env: &TestEnv) -> (AcpClient, String) {
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    (client, session)
}

fn load_params(session: &str, env: &TestEnv) -> Value {
    json!({"sessionId": session, "cwd": env.cwd(), "mcpServers": []})
}

#[tokio::test]
async fn edit_in_ask_mode_asks_first_then_reports_a_diff_and_changes_the_file() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let file = env.workspace().join("greeting.txt");
    std::fs::write(&file, "Hello world\nBye\n").unwrap();
    mock.enqueue(MockReply::tool(
        "call_edit",
        "edit_file",
        json!({"path": "greeting.txt", "old_text": "world", "new_text": "ACP"}),
    ));
    mock.enqueue(MockReply::text(["Edited."]));
    let (mut client, session) = open(&env).await;
    client.permission_policy = PermissionPolicy::AllowOnce;

    let turn = client.prompt_text(&session, "Greet ACP").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.text(), "Edited.");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "Hello ACP\nBye\n");

    // The question.
    let asks = turn.requests("session/request_permission");
    assert_eq!(asks.len(), 1, "{:#?}", turn.messages);
    let ask = asks[0];
    assert_eq!(ask["sessionId"], session.as_str());
    assert_eq!(ask["toolCall"]["toolCallId"], "call_edit", "{ask}");
    let options: BTreeSet<(String, String)> = ask["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["optionId"].as_str().unwrap().to_owned(), o["kind"].as_str().unwrap().to_owned()))
        .collect();
    let expected: BTreeSet<(String, String)> = ["allow_once", "allow_always", "reject_once", "reject_always"]
        .iter()
        .map(|k| (k.to_string(), k.to_string()))
        .collect();
    assert_eq!(options, expected, "{ask}");

    // Order: announced (pending), asked, then run.
    let announced =
        position(&turn.messages, "tool_call pending", |m| is_update(m, "tool_call", "call_edit", "pending"));
    let asked = position(&turn.messages, "permission request", is_permission_request);
    let running =
        position(&turn.messages, "in_progress", |m| is_update(m, "tool_call_update", "call_edit", "in_progress"));
    assert!(announced < asked && asked < running, "{:#?}", turn.messages);

    // The report.
    let calls = turn.tool_calls();
    let call = find_call(&calls, "call_edit");
    assert_eq!(call.kind(), "edit");
    assert_eq!(call.title(), "Edit greeting.txt");
    assert_eq!(call.final_status(), "completed");
    let diffs = call.content_of_type("diff");
    assert_eq!(diffs.len(), 1, "{call:#?}");
    assert_eq!(diffs[0]["path"], file.to_str().unwrap());
    assert_eq!(diffs[0]["oldText"], "Hello world\nBye\n");
    assert_eq!(diffs[0]["newText"], "Hello ACP\nBye\n");
    assert_eq!(call.latest("locations")[0]["path"], file.to_str().unwrap());
    assert!(!call.raw_output_text().is_empty());
    assert_eq!(mock.model_requests()[1].tool_results().len(), 1);
}

#[tokio::test]
async fn rejected_edit_fails_leaves_the_file_untouched_and_the_model_is_told() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let file = env.workspace().join("keep.txt");
    std::fs::write(&file, "original\n").unwrap();
    mock.enqueue(MockReply::tool(
        "call_edit",
        "edit_file",
        json!({"path": "keep.txt", "old_text": "original", "new_text": "changed"}),
    ));
    mock.enqueue(MockReply::text(["OK, I will not change it."]));
    let (mut client, session) = open(&env).await;
    client.permission_policy = PermissionPolicy::RejectOnce;

    let turn = client.prompt_text(&session, "Change keep.txt").await;
    assert_eq!(turn.stop_reason(), "end_turn", "a rejection does not end the turn");
    assert_eq!(turn.text(), "OK, I will not change it.");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "original\n");
    assert_eq!(turn.requests("session/request_permission").len(), 1);
    let calls = turn.tool_calls();
    let call = find_call(&calls, "call_edit");
    assert_eq!(call.final_status(), "failed", "{call:#?}");
    assert!(!call.statuses().contains(&"in_progress".to_owned()), "a rejected call never runs: {call:#?}");
    let requests = mock.model_requests();
    assert_eq!(requests.len(), 2, "the model is asked again after the rejection");
    let results = requests[1].tool_results();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].call_id.as_deref(), Some("call_edit"));
    assert!(results[0].text.contains("the user rejected this tool call"), "{results:#?}");
}

#[tokio::test]
async fn allow_always_is_remembered_per_tool_and_session_also_after_restart_and_load() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let ws = env.workspace();
    let (mut client, session) = open(&env).await;

    // First write: asked, answered "always allow".
    client.permission_policy = PermissionPolicy::AllowAlways;
    mock.enqueue(MockReply::tool("call_w1", "write_file", json!({"path": "one.txt", "content": "1\n"})));
    mock.enqueue(MockReply::text(["Wrote one."]));
    let turn = client.prompt_text(&session, "Write one").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.requests("session/request_permission").len(), 1);
    assert_eq!(std::fs::read_to_string(ws.join("one.txt")).unwrap(), "1\n");

    // From now on any question would be rejected, so a second question would show.
    client.permission_policy = PermissionPolicy::RejectOnce;
    mock.enqueue(MockReply::tool("call_w2", "write_file", json!({"path": "two.txt", "content": "2\n"})));
    mock.enqueue(MockReply::text(["Wrote two."]));
    let turn = client.prompt_text(&session, "Write two").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert!(
        turn.requests("session/request_permission").is_empty(),
        "no second question for write_file: {:#?}",
        turn.messages
    );
    assert_eq!(std::fs::read_to_string(ws.join("two.txt")).unwrap(), "2\n");

    // Another tool still asks (the rejection policy answers it).
    mock.enqueue(MockReply::tool("call_sh", "shell", json!({"command": "touch shell-ran.txt"})));
    mock.enqueue(MockReply::text(["Not run."]));
    let turn = client.prompt_text(&session, "Run something").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.requests("session/request_permission").len(), 1);
    assert!(!ws.join("shell-ran.txt").exists());

    // Another session does not inherit the answer.
    let other = client.new_session(&env.cwd()).await;
    mock.enqueue(MockReply::tool("call_w3", "write_file", json!({"path": "three.txt", "content": "3\n"})));
    mock.enqueue(MockReply::text(["Refused."]));
    let turn = client.prompt_text(&other, "Write three").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.requests("session/request_permission").len(), 1);
    assert!(!ws.join("three.txt").exists());
    client.shutdown().await;

    // After a restart and session/load the answer still holds.
    let mut client = env.spawn_initialized().await;
    client.permission_policy = PermissionPolicy::RejectOnce;
    let (_, loaded) = client.request_collect("session/load", load_params(&session, &env)).await;
    loaded.expect("session/load");
    mock.enqueue(MockReply::tool("call_w4", "write_file", json!({"path": "four.txt", "content": "4\n"})));
    mock.enqueue(MockReply::text(["Wrote four."]));
    let turn = client.prompt_text(&session, "Write four").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert!(
        turn.requests("session/request_permission").is_empty(),
        "allow_always survives a restart: {:#?}",
        turn.messages
    );
    assert_eq!(std::fs::read_to_string(ws.join("four.txt")).unwrap(), "4\n");
}

#[tokio::test]
async fn reject_always_refuses_later_calls_of_that_tool_without_asking() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let (mut client, session) = open(&env).await;
    client.permission_policy = PermissionPolicy::RejectAlways;
    mock.enqueue(MockReply::tool("call_1", "shell", json!({"command": "touch first.txt"})));
    mock.enqueue(MockReply::text(["No."]));
    let turn = client.prompt_text(&session, "Run one").await;
    assert_eq!(turn.requests("session/request_permission").len(), 1);
    assert_eq!(turn.tool_calls()[0].final_status(), "failed");

    client.permission_policy = PermissionPolicy::AllowOnce;
    mock.enqueue(MockReply::tool("call_2", "shell", json!({"command": "touch second.txt"})));
    mock.enqueue(MockReply::text(["Still no."]));
    let turn = client.prompt_text(&session, "Run two").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert!(turn.requests("session/request_permission").is_empty(), "{:#?}", turn.messages);
    assert_eq!(turn.tool_calls()[0].final_status(), "failed");
    assert!(!env.workspace().join("first.txt").exists());
    assert!(!env.workspace().join("second.txt").exists());
}

#[tokio::test]
async fn accept_edits_mode_edits_without_asking_but_shell_still_asks() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let file = env.workspace().join("a.txt");
    std::fs::write(&file, "one\n").unwrap();
    mock.enqueue(
        MockReply::text(Vec::<String>::new())
            .tool_call("call_edit", "edit_file", json!({"path": "a.txt", "old_text": "one", "new_text": "two"}))
            .tool_call("call_write", "write_file", json!({"path": "b.txt", "content": "bee\n"}))
            .tool_call("call_shell", "shell", json!({"command": "echo accept-edits-shell"})),
    );
    mock.enqueue(MockReply::text(["Done."]));
    let (mut client, session) = open(&env).await;
    client.set_mode(&session, "accept-edits").await;
    client.permission_policy = PermissionPolicy::AllowOnce;
    let turn = client.prompt_text(&session, "Edit and run").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let asks = turn.requests("session/request_permission");
    assert_eq!(asks.len(), 1, "only the shell call asks: {:#?}", turn.messages);
    assert_eq!(asks[0]["toolCall"]["toolCallId"], "call_shell");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "two\n");
    assert_eq!(std::fs::read_to_string(env.workspace().join("b.txt")).unwrap(), "bee\n");
    let calls = turn.tool_calls();
    for c in &calls {
        assert_eq!(c.final_status(), "completed", "{c:#?}");
    }
    assert!(find_call(&calls, "call_shell").raw_output_text().contains("accept-edits-shell"));
}

#[tokio::test]
async fn plan_mode_offers_only_read_only_tools_and_refuses_a_write() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue(MockReply::tool("call_write", "write_file", json!({"path": "planned.txt", "content": "x\n"})));
    mock.enqueue(MockReply::text(["Here is my plan instead."]));
    let (mut client, session) = open(&env).await;
    client.set_mode(&session, "plan").await;
    client.permission_policy = PermissionPolicy::AllowOnce;
    let turn = client.prompt_text(&session, "Make planned.txt").await;
    assert_eq!(turn.stop_reason(), "end_turn");

    let requests = mock.model_requests();
    for r in &requests {
        let names = r.tool_names();
        for forbidden in ["write_file", "edit_file", "shell"] {
            assert!(!names.iter().any(|n| n == forbidden), "plan mode must not offer {forbidden}: {names:?}");
        }
        for allowed in ["read_file", "list_dir", "glob", "grep"] {
            assert!(names.iter().any(|n| n == allowed), "plan mode offers {allowed}: {names:?}");
        }
    }
    assert!(turn.requests("session/request_permission").is_empty(), "a refused call is not put to the user");
    assert!(!env.workspace().join("planned.txt").exists());
    let calls = turn.tool_calls();
    assert_eq!(find_call(&calls, "call_write").final_status(), "failed");
    let results = requests[1].tool_results();
    assert_eq!(results.len(), 1);
    assert!(results[0].text.contains("plan"), "{results:#?}");

    // Back in ask mode, the tools are offered again.
    client.set_mode(&session, "ask").await;
    mock.enqueue(MockReply::text(["ok"]));
    client.prompt_text(&session, "hi").await;
    let names = mock.last_model_request().tool_names();
    assert!(names.iter().any(|n| n == "write_file"), "{names:?}");
}

#[tokio::test]
async fn yolo_mode_runs_writes_and_commands_without_asking() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue(
        MockReply::text(Vec::<String>::new())
            .tool_call("call_write", "write_file", json!({"path": "y.txt", "content": "yolo\n"}))
            .tool_call("call_shell", "shell", json!({"command": "echo ran > ran.txt"})),
    );
    mock.enqueue(MockReply::text(["Done."]));
    let (mut client, session) = open(&env).await;
    client.set_mode(&session, "yolo").await;
    client.permission_policy = PermissionPolicy::RejectOnce;
    let turn = client.prompt_text(&session, "Go").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert!(turn.requests("session/request_permission").is_empty(), "yolo never asks: {:#?}", turn.messages);
    assert_eq!(std::fs::read_to_string(env.workspace().join("y.txt")).unwrap(), "yolo\n");
    assert_eq!(std::fs::read_to_string(env.workspace().join("ran.txt")).unwrap(), "ran\n");
}

#[tokio::test]
async fn deny_rule_refuses_a_matching_command_even_in_yolo_and_names_the_rule() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    env.write_config("[permissions]\nallow = [\"shell:echo *\"]\ndeny = [\"shell:rm *\"]\n");
    let victim = env.workspace().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    mock.enqueue(MockReply::tool("call_rm", "shell", json!({"command": "rm -f victim.txt"})));
    mock.enqueue(MockReply::text(["Could not delete."]));
    let (mut client, session) = open(&env).await;
    client.set_mode(&session, "yolo").await;
    let turn = client.prompt_text(&session, "Delete victim.txt").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert!(victim.exists(), "a denied command never runs");
    assert!(turn.requests("session/request_permission").is_empty());
    let calls = turn.tool_calls();
    let call = find_call(&calls, "call_rm");
    assert_eq!(call.final_status(), "failed");
    assert!(call.dump().contains("shell:rm *"), "{call:#?}");
    let results = mock.model_requests()[1].tool_results();
    assert!(results[0].text.contains("shell:rm *"), "the model is told which rule: {results:#?}");
}

#[tokio::test]
async fn allow_rule_runs_a_matching_command_without_asking_and_others_still_ask() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    env.write_config("[permissions]\nallow = [\"shell:echo *\"]\ndeny = [\"shell:rm *\"]\n");
    mock.enqueue(
        MockReply::text(Vec::<String>::new())
            .tool_call("call_echo", "shell", json!({"command": "echo allowed-by-rule"}))
            .tool_call("call_touch", "shell", json!({"command": "touch asked.txt"})),
    );
    mock.enqueue(MockReply::text(["Done."]));
    let (mut client, session) = open(&env).await;
    client.permission_policy = PermissionPolicy::AllowOnce;
    let turn = client.prompt_text(&session, "Run both").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let asks = turn.requests("session/request_permission");
    assert_eq!(asks.len(), 1, "{:#?}", turn.messages);
    assert_eq!(asks[0]["toolCall"]["toolCallId"], "call_touch");
    let calls = turn.tool_calls();
    assert!(find_call(&calls, "call_echo").raw_output_text().contains("allowed-by-rule"));
    assert!(env.workspace().join("asked.txt").exists());
}
