//! Editor delegation (protocol §6.3-§6.5): with `fs.readTextFile`/`fs.writeTextFile` the
//! file tools go through the editor (whose unsaved buffers win over the disk); with
//! `terminal` the `shell` tool runs in an editor terminal (create, wait, output, release);
//! without the capabilities no such request is ever sent and the work happens locally.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::support::{AcpClient, MockLlm, MockReply, Reply, TestEnv};

/// The agent→client requests of a method, in order.
fn requests_of<'a>(client: &'a AcpClient, method: &str) -> Vec<&'a Value> {
    client.agent_requests.iter().filter(|(m, _)| m == method).map(|(_, p)| p).collect()
}

#[tokio::test]
async fn with_fs_capabilities_file_tools_use_the_editor_and_its_unsaved_buffer_wins() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let notes = env.workspace().join("notes.txt");
    let out = env.workspace().join("out.txt");
    std::fs::write(&notes, "DISK VERSION\n").unwrap();
    mock.enqueue(MockReply::tool("call_read", "read_file", json!({"path": "notes.txt"})));
    mock.enqueue(MockReply::tool(
        "call_write",
        "write_file",
        json!({"path": "out.txt", "content": "WRITTEN BY AGENT\n"}),
    ));
    mock.enqueue(MockReply::tool(
        "call_edit",
        "edit_file",
        json!({"path": "notes.txt", "old_text": "UNSAVED", "new_text": "SAVED"}),
    ));
    mock.enqueue(MockReply::text(["Done."]));

    let mut client = env.spawn_acp().await;
    client.initialize_with_caps(true, true, false).await;
    let notes_path = notes.to_str().unwrap().to_owned();
    let buffers: Arc<Mutex<Vec<(String, String)>>> =
        Arc::new(Mutex::new(vec![(notes_path.clone(), "UNSAVED BUFFER\n".to_owned())]));
    {
        let buffers = buffers.clone();
        client.set_request_handler(move |method, params| {
            let path = params["path"].as_str().unwrap_or("").to_owned();
            let mut buffers = buffers.lock().unwrap();
            match method {
                "fs/read_text_file" => Some(match buffers.iter().find(|(p, _)| *p == path) {
                    Some((_, content)) => Reply::Result(json!({"content": content})),
                    None => Reply::Error(-32002, format!("Resource not found: {path}")),
                }),
                "fs/write_text_file" => {
                    let content = params["content"].as_str().unwrap_or("").to_owned();
                    buffers.retain(|(p, _)| *p != path);
                    buffers.push((path, content));
                    Some(Reply::Result(json!({})))
                }
                _ => None,
            }
        });
    }
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "accept-edits").await;
    let turn = client.prompt_text(&session, "Work on the files").await;
    assert_eq!(turn.stop_reason(), "end_turn");

    // The read went to the editor, and the model got the buffer, not the disk.
    let reads = requests_of(&client, "fs/read_text_file");
    assert!(!reads.is_empty());
    assert_eq!(reads[0]["sessionId"], session.as_str());
    assert_eq!(reads[0]["path"], notes_path.as_str());
    let requests = mock.model_requests();
    let read_result = &requests[1].tool_results()[0];
    assert!(read_result.text.contains("UNSAVED BUFFER"), "the editor's content wins: {read_result:#?}");
    assert!(!requests[1].raw_body.contains("DISK VERSION"));

    // The writes went to the editor, not to the disk.
    let writes = requests_of(&client, "fs/write_text_file");
    let written: Vec<(String, String)> = writes
        .iter()
        .map(|w| {
            assert_eq!(w["sessionId"], session.as_str());
            (w["path"].as_str().unwrap().to_owned(), w["content"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        written,
        [
            (out.to_str().unwrap().to_owned(), "WRITTEN BY AGENT\n".to_owned()),
            (notes_path.clone(), "SAVED BUFFER\n".to_owned()),
        ],
        "write_file writes the content, edit_file edits the buffer"
    );
    assert!(!out.exists(), "the editor owns the write: {out:?}");
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "DISK VERSION\n");

    let calls = turn.tool_calls();
    assert_eq!(calls.len(), 3);
    for c in &calls {
        assert_eq!(c.final_status(), "completed", "{c:#?}");
    }
    let diff = &calls[2].content_of_type("diff")[0];
    assert_eq!(diff["oldText"], "UNSAVED BUFFER\n");
    assert_eq!(diff["newText"], "SAVED BUFFER\n");
}

#[tokio::test]
async fn without_fs_or_terminal_capabilities_tools_work_locally_and_no_client_request_is_sent() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let notes = env.workspace().join("notes.txt");
    std::fs::write(&notes, "DISK VERSION\n").unwrap();
    mock.enqueue(
        MockReply::text(Vec::<String>::new())
            .tool_call("call_read", "read_file", json!({"path": "notes.txt"}))
            .tool_call("call_write", "write_file", json!({"path": "out.txt", "content": "LOCAL WRITE\n"}))
            .tool_call("call_edit", "edit_file", json!({"path": "notes.txt", "old_text": "DISK", "new_text": "EDITED"}))
            .tool_call("call_shell", "shell", json!({"command": "cat out.txt"})),
    );
    mock.enqueue(MockReply::text(["Done."]));
    // The harness fails the test if an unadvertised fs/terminal request arrives.
    let mut client = env.spawn_acp().await;
    client.initialize_with_caps(false, false, false).await;
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "yolo").await;
    let turn = client.prompt_text(&session, "Work locally").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let calls = turn.tool_calls();
    for c in &calls {
        assert_eq!(c.final_status(), "completed", "{c:#?}");
    }
    assert_eq!(std::fs::read_to_string(env.workspace().join("out.txt")).unwrap(), "LOCAL WRITE\n");
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "EDITED VERSION\n");
    let results = mock.model_requests()[1].tool_results();
    assert!(results[0].text.contains("DISK VERSION"), "{results:#?}");
    assert!(results[3].text.contains("LOCAL WRITE"), "{results:#?}");
    let methods: Vec<&str> = client.agent_requests.iter().map(|(m, _)| m.as_str()).collect();
    assert!(methods.iter().all(|m| !m.starts_with("fs/") && !m.starts_with("terminal/")), "{methods:?}");
    for c in &calls {
        assert!(c.content_of_type("terminal").is_empty(), "{c:#?}");
    }
}

#[tokio::test]
async fn with_the_terminal_capability_shell_runs_in_an_editor_terminal_and_releases_it() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let command = "touch local-marker && echo from-editor-terminal";
    mock.enqueue(MockReply::tool("call_shell", "shell", json!({"command": command})));
    mock.enqueue(MockReply::text(["Ran it."]));
    let mut client = env.spawn_acp().await;
    client.initialize_with_caps(false, false, true).await;
    client.set_request_handler(|method, _params| match method {
        "terminal/create" => Some(Reply::Result(json!({"terminalId": "term-1"}))),
        "terminal/wait_for_exit" => Some(Reply::Result(json!({"exitCode": 0}))),
        "terminal/output" => Some(Reply::Result(json!({
            "output": "from-editor-terminal\n",
            "truncated": false,
            "exitStatus": {"exitCode": 0}
        }))),
        "terminal/release" | "terminal/kill" => Some(Reply::Result(json!({}))),
        _ => None,
    });
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "yolo").await;
    let turn = client.prompt_text(&session, "Run it").await;
    assert_eq!(turn.stop_reason(), "end_turn");

    let terminal: Vec<(&str, &Value)> = client
        .agent_requests
        .iter()
        .filter(|(m, _)| m.starts_with("terminal/"))
        .map(|(m, p)| (m.as_str(), p))
        .collect();
    let methods: Vec<&str> = terminal.iter().map(|(m, _)| *m).collect();
    assert_eq!(methods, ["terminal/create", "terminal/wait_for_exit", "terminal/output", "terminal/release"]);
    let create = terminal[0].1;
    assert_eq!(create["sessionId"], session.as_str());
    assert_eq!(create["command"], "sh");
    assert_eq!(create["args"], json!(["-c", command]));
    assert_eq!(create["cwd"], env.cwd().as_str());
    for (m, p) in &terminal[1..] {
        assert_eq!(p["terminalId"], "term-1", "{m}: {p}");
        assert_eq!(p["sessionId"], session.as_str(), "{m}: {p}");
    }
    assert!(!env.workspace().join("local-marker").exists(), "the command ran in the editor, not locally");

    let calls = turn.tool_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.kind(), "execute");
    assert_eq!(call.final_status(), "completed", "{call:#?}");
    assert_eq!(call.content_of_type("terminal"), [json!({"type": "terminal", "terminalId": "term-1"})], "{call:#?}");
    assert!(call.raw_output_text().contains("from-editor-terminal"));
    let results = mock.model_requests()[1].tool_results();
    assert!(results[0].text.contains("from-editor-terminal"), "{results:#?}");
}

#[tokio::test]
async fn without_the_terminal_capability_shell_runs_locally_in_the_session_directory() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue(MockReply::tool("call_shell", "shell", json!({"command": "pwd; echo local-out; echo local-err >&2"})));
    mock.enqueue(MockReply::text(["Ran it."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "yolo").await;
    let turn = client.prompt_text(&session, "Run it").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let calls = turn.tool_calls();
    let call = &calls[0];
    assert_eq!(call.kind(), "execute");
    assert_eq!(call.final_status(), "completed", "{call:#?}");
    let output = call.raw_output_text();
    assert!(output.contains(&env.cwd()), "the command runs in the session cwd (not the agent's own cwd): {output}");
    assert!(output.contains("local-out") && output.contains("local-err"), "{output}");
    assert!(call.text().contains("local-out"), "{call:#?}");
    let results = mock.model_requests()[1].tool_results();
    assert!(results[0].text.contains("local-out"));
    assert!(client.agent_requests.iter().all(|(m, _)| !m.starts_with("terminal/")));
}

#[tokio::test]
async fn a_failing_local_command_is_reported_failed_with_its_exit_code() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue(MockReply::tool("call_shell", "shell", json!({"command": "echo about-to-fail; exit 3"})));
    mock.enqueue(MockReply::text(["It failed."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "yolo").await;
    let turn = client.prompt_text(&session, "Run it").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let call = &turn.tool_calls()[0];
    assert_eq!(call.final_status(), "failed", "{call:#?}");
    let result = &mock.model_requests()[1].tool_results()[0];
    assert!(result.text.contains("about-to-fail"), "{result:#?}");
    assert!(result.text.contains('3'), "the exit code reaches the model: {result:#?}");
}

#[tokio::test]
async fn a_local_command_over_its_timeout_is_killed_and_reported_failed() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue(MockReply::tool(
        "call_slow",
        "shell",
        json!({"command": "echo started; sleep 20", "timeout_secs": 1}),
    ));
    mock.enqueue(MockReply::text(["Too slow."]));
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "yolo").await;
    let started = std::time::Instant::now();
    let turn = client.prompt_text(&session, "Run it").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    let call = &turn.tool_calls()[0];
    assert_eq!(call.final_status(), "failed", "{call:#?}");
    let result = &mock.model_requests()[1].tool_results()[0];
    assert!(result.text.contains("started"), "{result:#?}");
    assert!(result.text.contains("timed out"), "{result:#?}");
}

/// The terminal is embedded in the tool call while it is valid (protocol §6.5: `release`
/// invalidates the id; "to show live output, add `{type: terminal}` to the tool call's
/// content"), so the editor can show the command's output as it runs. Editors' own agents
/// attach it right after `terminal/create`.
#[tokio::test]
async fn the_editor_terminal_is_attached_to_the_tool_call_before_it_is_released() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue(MockReply::tool("call_shell", "shell", json!({"command": "echo live"})));
    mock.enqueue(MockReply::text(["Ran it."]));
    let mut client = env.spawn_acp().await;
    client.initialize_with_caps(false, false, true).await;
    client.set_request_handler(|method, _params| match method {
        "terminal/create" => Some(Reply::Result(json!({"terminalId": "term-live"}))),
        "terminal/wait_for_exit" => Some(Reply::Result(json!({"exitCode": 0}))),
        "terminal/output" => Some(Reply::Result(json!({
            "output": "live\n",
            "truncated": false,
            "exitStatus": {"exitCode": 0}
        }))),
        "terminal/release" | "terminal/kill" => Some(Reply::Result(json!({}))),
        _ => None,
    });
    let session = client.new_session(&env.cwd()).await;
    client.set_mode(&session, "yolo").await;
    let turn = client.prompt_text(&session, "Run it").await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let embedded = turn.messages.iter().position(|m| {
        m.as_update().is_some_and(|u| {
            u["update"]["toolCallId"] == "call_shell"
                && u["update"]["content"].as_array().is_some_and(|c| c.iter().any(|i| i["terminalId"] == "term-live"))
        })
    });
    let released = turn
        .messages
        .iter()
        .position(|m| matches!(m, crate::support::Message::Request { method, .. } if method == "terminal/release"));
    let (Some(embedded), Some(released)) = (embedded, released) else {
        panic!("terminal content or release missing: {:#?}", turn.messages);
    };
    assert!(
        embedded < released,
        "the terminal content arrives only after terminal/release (message {embedded} vs {released}): {:#?}",
        turn.messages
    );
}
