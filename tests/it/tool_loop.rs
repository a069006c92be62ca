//! The agent loop (protocol §7.2): tool definitions in every model request, each tool call
//! reported as `tool_call` → `in_progress` → `completed`/`failed`, results fed back to the
//! model in each provider's format, several calls per answer, the iteration cap, the loop
//! detector, plans, and the sandbox around the session directory.

use serde_json::{Value, json};

use crate::providers::{Wire, env_for};
use crate::support::{MockLlm, MockReply, TestEnv, tool_events, updates_of};

/// Every tool of a top-level session, as the model must see them: the engine's built-ins and
/// the orchestra's `propose_plan`, `agent_spawn`, `ask_human` and the task tracker's tools.
const ALL_TOOLS: [&str; 16] = [
    "read_file",
    "diagnostics",
    "write_file",
    "edit_file",
    "list_dir",
    "glob",
    "grep",
    "shell",
    "update_plan",
    "propose_plan",
    "agent_spawn",
    "ask_human",
    "task_create",
    "task_claim",
    "task_update",
    "task_list",
];

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn all_tools_sorted() -> Vec<String> {
    sorted(ALL_TOOLS.iter().map(|s| s.to_string()).collect())
}

async fn read_file_round_trip(wire: Wire) {
    let mock = MockLlm::start().await;
    let env = env_for(wire, &mock);
    let file = env.workspace().join("notes.txt");
    std::fs::write(&file, "alpha\nbeta\nNOTE-CONTENT-7\n").unwrap();
    mock.enqueue(MockReply::tool("call_read_1", "read_file", json!({"path": "notes.txt"})));
    mock.enqueue(MockReply::text(["The file ", "mentions NOTE-CONTENT-7."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;

    let turn = client.prompt_text(&session, "What is in notes.txt?").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.text(), "The file mentions NOTE-CONTENT-7.");
    assert!(turn.requests("session/request_permission").is_empty(), "read-only tools never ask: {:#?}", turn.messages);

    // What the editor saw.
    let calls = turn.tool_calls();
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let call = &calls[0];
    if wire != Wire::Ollama {
        assert_eq!(call.id, "call_read_1", "the model's call id is the toolCallId");
    }
    assert!(!call.id.is_empty());
    assert_eq!(call.statuses(), ["pending", "in_progress", "completed"], "{call:#?}");
    assert_eq!(call.kind(), "read");
    assert_eq!(call.title(), "Read notes.txt");
    assert_eq!(call.start_field("rawInput"), json!({"path": "notes.txt"}));
    let locations = call.latest("locations");
    assert_eq!(locations[0]["path"], file.to_str().unwrap(), "locations carry the absolute path: {call:#?}");
    assert!(call.text().contains("NOTE-CONTENT-7"), "{call:#?}");
    assert!(call.raw_output_text().contains("NOTE-CONTENT-7"), "{call:#?}");

    // What the model saw.
    let requests = mock.model_requests();
    assert_eq!(requests.len(), 2, "one request per model answer");
    for (i, r) in requests.iter().enumerate() {
        assert_eq!(sorted(r.tool_names()), all_tools_sorted(), "request {i} must offer every tool: {}", r.raw_body);
    }
    assert!(requests[0].tool_results().is_empty());
    let second = &requests[1];
    let calls_sent = second.assistant_tool_calls();
    assert_eq!(calls_sent.len(), 1, "{}", second.raw_body);
    assert_eq!(calls_sent[0].name, "read_file");
    assert_eq!(calls_sent[0].arguments, json!({"path": "notes.txt"}));
    let results = second.tool_results();
    assert_eq!(results.len(), 1, "{}", second.raw_body);
    assert!(results[0].text.contains("NOTE-CONTENT-7"), "the tool result goes back to the model: {results:#?}");
    let roles: Vec<String> = second.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["role"].as_str().map(str::to_owned))
        .filter(|r| r != "system")
        .collect();
    match wire {
        Wire::OpenAi => {
            assert_eq!(calls_sent[0].id.as_deref(), Some("call_read_1"));
            assert_eq!(results[0].call_id.as_deref(), Some("call_read_1"));
            assert_eq!(roles, ["user", "assistant", "tool"], "{}", second.raw_body);
        }
        Wire::Anthropic => {
            assert_eq!(calls_sent[0].id.as_deref(), Some("call_read_1"));
            assert_eq!(results[0].call_id.as_deref(), Some("call_read_1"), "a tool_result block with the tool_use_id");
            assert_eq!(roles, ["user", "assistant", "user"], "{}", second.raw_body);
        }
        Wire::Ollama => {
            assert_eq!(roles, ["user", "assistant", "tool"], "{}", second.raw_body);
            assert_eq!(results[0].tool_name.as_deref(), Some("read_file"));
        }
    }
}

#[tokio::test]
async fn openai_read_file_call_runs_reports_and_its_result_goes_back_to_the_model() {
    read_file_round_trip(Wire::OpenAi).await;
}

#[tokio::test]
async fn anthropic_read_file_call_runs_reports_and_its_result_goes_back_to_the_model() {
    read_file_round_trip(Wire::Anthropic).await;
}

#[tokio::test]
async fn ollama_read_file_call_runs_reports_and_its_result_goes_back_to_the_model() {
    read_file_round_trip(Wire::Ollama).await;
}

async fn two_tool_calls_in_one_answer(wire: Wire) {
    let mock = MockLlm::start().await;
    let env = env_for(wire, &mock);
    std::fs::write(env.workspace().join("a.txt"), "CONTENT-OF-A\n").unwrap();
    std::fs::create_dir(env.workspace().join("sub")).unwrap();
    std::fs::write(env.workspace().join("sub/b.md"), "a needle here\n").unwrap();
    mock.enqueue(MockReply::text(["Looking."]).tool_call("call_a", "read_file", json!({"path": "a.txt"})).tool_call(
        "call_b",
        "grep",
        json!({"pattern": "needle", "path": "sub"}),
    ));
    mock.enqueue(MockReply::text(["Both done."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;

    let turn = client.prompt_text(&session, "Look around").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.text(), "Looking.Both done.");

    let calls = turn.tool_calls();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    let (id_a, id_b) = (calls[0].id.clone(), calls[1].id.clone());
    assert_ne!(id_a, id_b, "tool call ids are unique");
    if wire != Wire::Ollama {
        assert_eq!([id_a.as_str(), id_b.as_str()], ["call_a", "call_b"], "{calls:#?}");
    }
    assert_eq!(calls[0].title(), "Read a.txt");
    assert_eq!(calls[0].kind(), "read");
    assert_eq!(calls[1].kind(), "search");
    for c in &calls {
        assert_eq!(c.statuses(), ["pending", "in_progress", "completed"], "{c:#?}");
    }
    assert!(calls[1].text().contains("b.md"), "{:#?}", calls[1]);
    // In order: the first call is finished before the second starts running.
    let events = tool_events(&turn.updates);
    let pos = |id: &str, status: &str| {
        events
            .iter()
            .position(|(_, i, s)| i == id && s == status)
            .unwrap_or_else(|| panic!("no {status} for {id}: {events:#?}"))
    };
    assert!(pos(&id_a, "completed") < pos(&id_b, "in_progress"), "{events:#?}");

    let requests = mock.model_requests();
    assert_eq!(requests.len(), 2);
    let second = &requests[1];
    let results = second.tool_results();
    assert_eq!(results.len(), 2, "{}", second.raw_body);
    assert!(results[0].text.contains("CONTENT-OF-A"), "{results:#?}");
    assert!(results[1].text.contains("b.md"), "{results:#?}");
    let sent = second.assistant_tool_calls();
    let sent_names: Vec<&str> = sent.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(sent_names, ["read_file", "grep"], "{}", second.raw_body);
    let roles: Vec<&str> = second.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["role"].as_str())
        .filter(|r| *r != "system")
        .collect();
    match wire {
        Wire::OpenAi | Wire::Anthropic => {
            let result_ids: Vec<Option<&str>> = results.iter().map(|r| r.call_id.as_deref()).collect();
            assert_eq!(result_ids, [Some("call_a"), Some("call_b")], "{}", second.raw_body);
            let sent_ids: Vec<Option<&str>> = sent.iter().map(|c| c.id.as_deref()).collect();
            assert_eq!(sent_ids, [Some("call_a"), Some("call_b")]);
        }
        Wire::Ollama => {
            let names: Vec<Option<&str>> = results.iter().map(|r| r.tool_name.as_deref()).collect();
            assert_eq!(names, [Some("read_file"), Some("grep")]);
        }
    }
    // One assistant message carries both calls; the results follow it (Anthropic: both
    // tool_result blocks in the one user message after it).
    let expected_roles: &[&str] = match wire {
        Wire::Anthropic => &["user", "assistant", "user"],
        Wire::OpenAi | Wire::Ollama => &["user", "assistant", "tool", "tool"],
    };
    assert_eq!(roles, expected_roles, "{}", second.raw_body);
}

#[tokio::test]
async fn openai_two_tool_calls_in_one_answer_run_in_order_and_both_results_go_back() {
    two_tool_calls_in_one_answer(Wire::OpenAi).await;
}

#[tokio::test]
async fn anthropic_two_tool_calls_in_one_answer_run_in_order_and_both_results_go_back() {
    two_tool_calls_in_one_answer(Wire::Anthropic).await;
}

#[tokio::test]
async fn ollama_two_tool_calls_in_one_answer_run_in_order_and_both_results_go_back() {
    two_tool_calls_in_one_answer(Wire::Ollama).await;
}

#[tokio::test]
async fn max_turn_requests_stops_a_model_that_always_calls_tools_after_exactly_that_many_requests() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    env.write_config("max_turn_requests = 3\n");
    let lines: String = (1..=10).map(|i| format!("line {i}\n")).collect();
    std::fs::write(env.workspace().join("a.txt"), lines).unwrap();
    // Every answer calls a tool. A fourth request would get the mock's default text answer
    // (and end the turn with end_turn).
    for i in 0..3 {
        mock.enqueue(MockReply::tool(&format!("call_{i}"), "read_file", json!({"path": "a.txt", "offset": i + 1})));
    }
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, "Loop forever").await;
    assert_eq!(turn.stop_reason(), "max_turn_requests");
    assert_eq!(mock.model_requests().len(), 3, "exactly max_turn_requests model requests");
    // Every call that was made ran and was reported.
    let calls = turn.tool_calls();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    for c in &calls {
        assert_eq!(c.final_status(), "completed", "{c:#?}");
    }

    // The session is usable afterwards and the cap applies per turn.
    mock.enqueue(MockReply::text(["Fine."]));
    let turn = client.prompt_text(&session, "Now just answer").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.text(), "Fine.");
}

#[tokio::test]
async fn the_same_failing_call_three_times_ends_the_turn_with_a_message_saying_it_stopped() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    for i in 0..6 {
        mock.enqueue(MockReply::tool(&format!("call_{i}"), "read_file", json!({"path": "missing.txt"})));
    }
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, "Read missing.txt").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(
        mock.model_requests().len(),
        3,
        "the loop stops after the third identical failure, without asking the model again"
    );
    let calls = turn.tool_calls();
    assert_eq!(calls.len(), 3);
    for c in &calls {
        assert_eq!(c.final_status(), "failed", "{c:#?}");
    }
    let text = turn.text().to_lowercase();
    assert!(text.contains("stop"), "an agent message says the loop was stopped: {text:?}");
}

#[tokio::test]
async fn update_plan_sends_a_plan_update_with_every_entry() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let entries = json!([
        {"content": "Read the code", "priority": "high", "status": "completed"},
        {"content": "Write the fix", "priority": "medium", "status": "in_progress"},
        {"content": "Run the tests", "priority": "low", "status": "pending"}
    ]);
    mock.enqueue(MockReply::tool("call_plan", "update_plan", json!({"entries": entries})));
    mock.enqueue(MockReply::text(["Plan made."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, "Plan it").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let plans = updates_of(&turn.updates, "plan");
    assert_eq!(plans.len(), 1, "{:#?}", turn.updates);
    assert_eq!(plans[0]["update"]["entries"], entries);
    let calls = turn.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].kind(), "think");
    assert_eq!(calls[0].final_status(), "completed");
    assert!(turn.requests("session/request_permission").is_empty(), "planning never asks");
    assert_eq!(mock.model_requests()[1].tool_results().len(), 1);
}

#[tokio::test]
async fn paths_outside_the_session_directory_are_refused_and_nothing_is_read_or_written() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let outside = env.workspace().parent().unwrap().join("outside.txt");
    std::fs::write(&outside, "OUTSIDE-SECRET-CONTENT\n").unwrap();
    let escaped = env.workspace().parent().unwrap().join("escaped.txt");
    mock.enqueue(
        MockReply::text(Vec::<String>::new())
            .tool_call("call_up", "read_file", json!({"path": "../outside.txt"}))
            .tool_call("call_abs", "read_file", json!({"path": "/etc/passwd"}))
            .tool_call("call_write", "write_file", json!({"path": "../escaped.txt", "content": "nope"}))
            .tool_call("call_list", "list_dir", json!({"path": ".."}))
            .tool_call("call_glob", "glob", json!({"pattern": "*.txt", "path": ".."}))
            .tool_call("call_grep", "grep", json!({"pattern": "OUTSIDE-SECRET", "path": ".."}))
            .tool_call("call_link", "read_file", json!({"path": "link.txt"})),
    );
    // A symlink inside the workspace that points outside it.
    std::os::unix::fs::symlink(&outside, env.workspace().join("link.txt")).unwrap();
    mock.enqueue(MockReply::text(["Refused, fine."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    // Never-ask mode, so the refusal comes from the sandbox, not from the user.
    client.set_mode(&session, "yolo").await;
    let turn = client.prompt_text(&session, "Escape").await;
    assert_eq!(turn.stop_reason(), "end_turn");

    let calls = turn.tool_calls();
    assert_eq!(calls.len(), 7, "{calls:#?}");
    for c in &calls {
        assert_eq!(c.final_status(), "failed", "{c:#?}");
        assert!(!c.text().trim().is_empty(), "a failed call says why: {c:#?}");
        assert!(!c.statuses().contains(&"completed".to_owned()));
    }
    assert!(!escaped.exists(), "nothing is written outside the session directory");
    let body = &mock.model_requests()[1];
    assert!(!body.raw_body.contains("OUTSIDE-SECRET-CONTENT"), "nothing outside is read");
    assert!(!body.raw_body.contains("root:x:0:0"), "/etc/passwd is not read");
    let results = body.tool_results();
    assert_eq!(results.len(), 7, "every refused call still gets a result");
    for r in &results {
        assert!(!r.text.trim().is_empty(), "{r:#?}");
    }
    for c in &calls {
        let dump = c.dump();
        assert!(!dump.contains("OUTSIDE-SECRET-CONTENT"), "{dump}");
        assert!(!dump.contains("root:x:0:0"), "{dump}");
    }
}

#[tokio::test]
async fn additional_directories_are_inside_the_sandbox() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let extra = env.workspace_b().join("shared.txt");
    std::fs::write(&extra, "SHARED-DIR-CONTENT\n").unwrap();
    mock.enqueue(MockReply::tool("call_extra", "read_file", json!({"path": extra.to_str().unwrap()})));
    mock.enqueue(MockReply::text(["Read it."]));
    let mut client = env.spawn_initialized().await;
    let result: Value = client
        .call(
            "session/new",
            json!({
                "cwd": env.cwd(),
                "mcpServers": [],
                "additionalDirectories": [env.workspace_b().to_str().unwrap()]
            }),
        )
        .await;
    let session = result["sessionId"].as_str().unwrap().to_owned();
    let turn = client.prompt_text(&session, "Read the shared file").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let calls = turn.tool_calls();
    assert_eq!(calls[0].final_status(), "completed", "{calls:#?}");
    assert!(mock.model_requests()[1].tool_results()[0].text.contains("SHARED-DIR-CONTENT"));
}

async fn unknown_tool_and_bad_arguments(wire: Wire) {
    let mock = MockLlm::start().await;
    let env = env_for(wire, &mock);
    mock.enqueue(
        MockReply::text(Vec::<String>::new()).tool_call("call_unknown", "teleport", json!({"to": "mars"})).tool_call(
            "call_bad",
            "read_file",
            json!({"file": "a.txt"}),
        ),
    );
    mock.enqueue(MockReply::text(["Sorry."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, "Go").await;
    assert_eq!(turn.stop_reason(), "end_turn", "bad calls do not end the turn");
    assert_eq!(turn.text(), "Sorry.");
    let calls = turn.tool_calls();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    for c in &calls {
        assert_eq!(c.final_status(), "failed", "{c:#?}");
    }
    let results = mock.model_requests()[1].tool_results();
    assert_eq!(results.len(), 2);
    assert!(
        results[0].text.contains("teleport") && results[0].text.contains("read_file"),
        "an unknown tool is named, with the real ones: {results:#?}"
    );
    assert!(results[1].text.contains("path"), "{results:#?}");
    if wire == Wire::Anthropic {
        assert!(results.iter().all(|r| r.is_error == Some(true)), "failed results are marked is_error: {results:#?}");
    }
}

#[tokio::test]
async fn openai_unknown_tools_and_bad_arguments_fail_the_call_and_the_model_is_told() {
    unknown_tool_and_bad_arguments(Wire::OpenAi).await;
}

#[tokio::test]
async fn anthropic_unknown_tools_and_bad_arguments_fail_the_call_and_the_model_is_told() {
    unknown_tool_and_bad_arguments(Wire::Anthropic).await;
}
