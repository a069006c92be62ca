//! `session/cancel` during tool work (protocol §13.1): while a permission question is open
//! (answered `cancelled` or never answered), while a local `shell` command runs, and while a
//! command runs in an editor terminal. The turn answers `cancelled` promptly, the call ends
//! `failed`, nothing more runs, and the session stays usable with a valid history.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{AcpClient, Message, MockLlm, MockReply, Reply, TestEnv, tool_calls};

/// How long a cancelled turn may take to answer (the slow command would take 30 s).
const PROMPT_CANCEL: Duration = Duration::from_secs(8);

/// Sends a prompt and reads until the agent sends a request with `method` (answering other
/// requests as usual). Returns the prompt id, the updates read so far, and that request's id.
async fn start_until_request(
    client: &mut AcpClient,
    session: &str,
    text: &str,
    method: &str,
) -> (u64, Vec<Value>, Value) {
    let id = client
        .send_request("session/prompt", json!({"sessionId": session, "prompt": [{"type": "text", "text": text}]}))
        .await;
    let mut updates = Vec::new();
    loop {
        match client.next_message().await {
            Message::Request { id: rid, method: m, params } => {
                if m == method {
                    return (id, updates, rid);
                }
                client.answer_request(rid, m, params).await;
            }
            Message::Notification { method: m, params } if m == "session/update" => updates.push(params),
            Message::Response { id: rid, outcome } => {
                panic!("unexpected response {rid} before {method}: {outcome:?}; updates: {updates:#?}")
            }
            Message::Notification { .. } => {}
        }
    }
}

async fn permission_cancel(answer_cancelled: bool) {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let file = env.workspace().join("keep.txt");
    std::fs::write(&file, "original\n").unwrap();
    mock.enqueue(MockReply::tool(
        "call_edit",
        "edit_file",
        json!({"path": "keep.txt", "old_text": "original", "new_text": "changed"}),
    ));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;

    let (id, mut updates, ask_id) =
        start_until_request(&mut client, &session, "Change it", "session/request_permission").await;
    let started = Instant::now();
    client.cancel(&session).await;
    if answer_cancelled {
        client.respond(&ask_id, json!({"outcome": {"outcome": "cancelled"}})).await;
    }
    let turn = client.finish_turn(id).await;
    assert!(started.elapsed() < PROMPT_CANCEL, "{:?}", started.elapsed());
    assert_eq!(turn.outcome, Ok("cancelled".to_owned()), "a cancel with an open permission question answers cancelled");
    updates.extend(turn.updates.iter().cloned());
    let calls = tool_calls(&updates);
    assert_eq!(calls.len(), 1);
    assert!(!calls[0].statuses().contains(&"in_progress".to_owned()), "{calls:#?}");
    assert_ne!(calls[0].final_status(), "completed", "{calls:#?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "original\n");
    assert_eq!(mock.model_requests().len(), 1, "a cancelled question is a stop, not a rejection to work around");

    if !answer_cancelled {
        // A late "allow" for the dead question must not run the tool.
        client.respond(&ask_id, json!({"outcome": {"outcome": "selected", "optionId": "allow_once"}})).await;
    }

    // The session stays usable, and its history answers the interrupted call.
    mock.enqueue(MockReply::text(["Still here."]));
    let turn = client.prompt_text(&session, "Are you there?").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(turn.text(), "Still here.");
    assert!(turn.tool_calls().is_empty(), "nothing of the cancelled turn runs later: {:#?}", turn.updates);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "original\n");
    let last = mock.last_model_request();
    let results = last.tool_results();
    assert!(
        results.iter().any(|r| r.call_id.as_deref() == Some("call_edit")),
        "every tool call in the history has a result: {}",
        last.raw_body
    );
}

#[tokio::test]
async fn cancel_while_a_permission_question_is_unanswered_ends_the_turn_cancelled() {
    permission_cancel(false).await;
}

#[tokio::test]
async fn cancel_then_a_cancelled_permission_answer_ends_the_turn_cancelled() {
    permission_cancel(true).await;
}

/// Is a process whose command line contains `needle` still alive (not a zombie)?
fn process_alive(needle: &str) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        cmdline.contains(needle)
    })
}

#[tokio::test]
async fn cancel_during_a_running_local_shell_command_ends_promptly_and_the_call_fails() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    // A distinctive duration, to find the process.
    let sleep = "sleep 29.4172";
    mock.enqueue(MockReply::tool("call_sleep", "shell", json!({"command": sleep})));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "yolo").await;
    let id = client
        .send_request(
            "session/prompt",
            json!({"sessionId": session, "prompt": [{"type": "text", "text": "Wait a while"}]}),
        )
        .await;
    let mut updates = client
        .updates_until(|u| {
            u["update"]["sessionUpdate"] == "tool_call_update"
                && u["update"]["toolCallId"] == "call_sleep"
                && u["update"]["status"] == "in_progress"
        })
        .await;
    let started = Instant::now();
    client.cancel(&session).await;
    let turn = client.finish_turn(id).await;
    let took = started.elapsed();
    assert_eq!(turn.outcome, Ok("cancelled".to_owned()));
    assert!(took < PROMPT_CANCEL, "the cancel must not wait for the command: {took:?}");
    updates.extend(turn.updates.iter().cloned());
    let calls = tool_calls(&updates);
    assert_eq!(calls[0].final_status(), "failed", "{calls:#?}");
    assert_eq!(mock.model_requests().len(), 1);

    // The command was killed, not left running.
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_alive(sleep) {
        assert!(Instant::now() < deadline, "`{sleep}` is still running after the cancel");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The session stays usable and the interrupted call is answered in the history.
    mock.enqueue(MockReply::text(["Still here."]));
    let turn = client.prompt_text(&session, "Are you there?").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let last = mock.last_model_request();
    assert!(last.tool_results().iter().any(|r| r.call_id.as_deref() == Some("call_sleep")), "{}", last.raw_body);
}

#[tokio::test]
async fn cancel_during_an_editor_terminal_command_kills_and_releases_the_terminal() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue(MockReply::tool("call_sleep", "shell", json!({"command": "sleep 30"})));
    let mut client = env.spawn_acp().await;
    client.initialize_with_caps(false, false, true).await;
    client.set_request_handler(|method, _| match method {
        "terminal/create" => Some(Reply::Result(json!({"terminalId": "term-sleep"}))),
        // The command "runs" until killed: never answer.
        "terminal/wait_for_exit" => Some(Reply::Silence),
        "terminal/output" => Some(Reply::Result(json!({
            "output": "partial\n",
            "truncated": false,
            "exitStatus": {"signal": "SIGKILL"}
        }))),
        "terminal/kill" | "terminal/release" => Some(Reply::Result(json!({}))),
        _ => None,
    });
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "yolo").await;
    let (id, mut updates, _wait_id) =
        start_until_request(&mut client, &session, "Wait", "terminal/wait_for_exit").await;
    let started = Instant::now();
    client.cancel(&session).await;
    let turn = client.finish_turn(id).await;
    assert!(started.elapsed() < PROMPT_CANCEL, "{:?}", started.elapsed());
    assert_eq!(turn.outcome, Ok("cancelled".to_owned()));
    updates.extend(turn.updates.iter().cloned());
    let calls = tool_calls(&updates);
    assert_eq!(calls[0].final_status(), "failed", "{calls:#?}");

    let methods: Vec<(&str, &Value)> = client
        .agent_requests
        .iter()
        .filter(|(m, _)| m.starts_with("terminal/"))
        .map(|(m, p)| (m.as_str(), p))
        .collect();
    let names: Vec<&str> = methods.iter().map(|(m, _)| *m).collect();
    assert!(names.contains(&"terminal/kill"), "{names:?}");
    assert_eq!(names.last(), Some(&"terminal/release"), "the terminal is released last: {names:?}");
    for (m, p) in &methods[1..] {
        assert_eq!(p["terminalId"], "term-sleep", "{m}");
    }
    assert_eq!(mock.model_requests().len(), 1);
}
