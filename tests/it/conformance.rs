//! Conformance details a real editor hits (PROTOCOL.md §2, §5, §6, §8, §13): framing
//! oddities (BOM, CRLF, blank lines, null and string ids, batches), lenient reading of the
//! client's responses, session roots, prompt content, permission answers that fail, and
//! `$/cancel_request` in both directions.
//!
//! Most tests use the validating [`AcpClient`]; a few drive the process through [`RawAgent`]
//! because they need lines the validating client rejects on purpose (a successful response
//! with a `null` id, batch arrays).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::schema::{self, Kind};
use crate::support::{AcpClient, Message, MockLlm, MockReply, Reply, TestEnv, within};

// ---------------------------------------------------------------------------------------------
// A raw line driver

/// `ratchet acp` with raw access to its pipes: lines in, lines out, nothing validated.
pub(crate) struct RawAgent {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl RawAgent {
    pub(crate) fn spawn(env: &TestEnv) -> RawAgent {
        let mut cmd = env.command(&["acp"]);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().expect("spawn ratchet acp");
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        RawAgent { child, stdin, lines }
    }

    async fn send_bytes(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    pub(crate) async fn send(&mut self, line: &str) {
        self.send_bytes(format!("{line}\n").as_bytes()).await;
    }

    /// The next stdout line as JSON.
    pub(crate) async fn next(&mut self) -> Value {
        let line = within("a line from the agent", self.lines.next_line()).await.unwrap().expect("agent stdout ended");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"))
    }

    /// Nothing arrives for a short while.
    async fn assert_silent(&mut self) {
        if let Ok(line) = tokio::time::timeout(Duration::from_millis(400), self.lines.next_line()).await {
            panic!("expected no output, got {line:?}");
        }
    }

    pub(crate) async fn initialize(&mut self) {
        self.send(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":1}}"#).await;
        let v = self.next().await;
        assert_eq!(v["id"], 1, "{v}");
        assert_eq!(v["result"]["protocolVersion"], 1, "{v}");
    }
}

impl Drop for RawAgent {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

// ---------------------------------------------------------------------------------------------
// §2 framing

#[tokio::test]
async fn a_utf8_bom_before_the_first_message_is_ignored() {
    // Windows tools (PowerShell pipes, some .NET/Node writers) prefix the stream with a BOM.
    // RFC 8259 §8.1 lets parsers ignore it; failing would leave `initialize` unanswered.
    let env = TestEnv::scripted(&["hi"]);
    let mut agent = RawAgent::spawn(&env);
    agent
        .send("\u{feff}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":1}}")
        .await;
    let v = agent.next().await;
    assert_eq!(v["id"], 1, "the BOM-prefixed initialize must be answered: {v}");
    schema::check(Kind::InitializeResponse, &v["result"]).unwrap();
}

#[tokio::test]
async fn crlf_blank_and_whitespace_lines_are_tolerated() {
    let env = TestEnv::scripted(&["hi"]);
    let mut agent = RawAgent::spawn(&env);
    agent.send_bytes(b"\r\n   \t\r\n\n").await;
    agent
        .send_bytes(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":1}}\r\n")
        .await;
    let v = agent.next().await;
    assert_eq!(v["id"], 1, "blank lines get no reply, CRLF is a line end: {v}");
    assert_eq!(v["result"]["protocolVersion"], 1);
}

#[tokio::test]
async fn null_and_string_ids_are_echoed_exactly() {
    let env = TestEnv::scripted(&["hi"]);
    let mut agent = RawAgent::spawn(&env);
    agent.initialize().await;
    agent.send(r#"{"jsonrpc":"2.0","id":null,"method":"session/list","params":{}}"#).await;
    let v = agent.next().await;
    assert!(v.get("id").is_some_and(Value::is_null), "{v}");
    assert_eq!(v["result"], json!({"sessions": []}));
    agent.send(r#"{"jsonrpc":"2.0","id":"α-1","method":"session/list","params":{}}"#).await;
    let v = agent.next().await;
    assert_eq!(v["id"], "α-1");
}

#[tokio::test]
async fn batches_are_answered_with_an_array_and_notification_only_batches_get_nothing() {
    let env = TestEnv::scripted(&["hi"]);
    let mut agent = RawAgent::spawn(&env);
    agent.initialize().await;

    // Only notifications: no reply at all (JSON-RPC 2.0 §6).
    agent
        .send(
            r#"[{"jsonrpc":"2.0","method":"session/cancel","params":{"sessionId":"x"}},{"jsonrpc":"2.0","method":"_acme/ping"}]"#,
        )
        .await;
    agent.assert_silent().await;

    // A request plus invalid elements: one array, one entry per request or invalid element.
    agent.send(r#"[{"jsonrpc":"2.0","id":5,"method":"session/list","params":{}},1,{"foo":1}]"#).await;
    let v = agent.next().await;
    let replies = v.as_array().unwrap_or_else(|| panic!("a batch is answered with an array: {v}"));
    assert_eq!(replies.len(), 3, "{v}");
    let ok = replies.iter().find(|r| r["id"] == 5).expect("answer to id 5");
    schema::check(Kind::ListSessionsResponse, &ok["result"]).unwrap();
    let errors: Vec<_> = replies.iter().filter(|r| r["error"]["code"] == -32600).collect();
    assert_eq!(errors.len(), 2, "{v}");
    assert!(errors.iter().all(|e| e["id"].is_null()), "{v}");

    // An empty batch is one invalid-request error, not an array.
    agent.send("[]").await;
    let v = agent.next().await;
    assert_eq!(v["error"]["code"], -32600, "{v}");
}

#[tokio::test]
async fn initialize_twice_answers_the_same_version_and_requests_before_initialize_still_work() {
    // The spec puts "initialize first" on the client; a session method that comes early
    // works with no client capabilities (so no fs/terminal calls), which is always safe.
    let env = TestEnv::scripted(&["hi"]);
    let mut client = env.spawn_acp().await;
    let session = client.new_session(&env.cwd()).await;
    assert!(!session.is_empty());
    let first = client.initialize().await;
    let second = client.initialize().await;
    assert_eq!(first["protocolVersion"], 1);
    assert_eq!(second["protocolVersion"], 1);
    assert_eq!(first["agentCapabilities"], second["agentCapabilities"]);
}

// ---------------------------------------------------------------------------------------------
// The client's responses to our requests

/// A turn that asks permission to edit `keep.txt`; returns the prompt id and the id of the
/// permission request, still unanswered.
async fn turn_waiting_for_permission(client: &mut AcpClient, mock: &MockLlm, session: &str) -> (u64, Value) {
    mock.enqueue(MockReply::tool(
        "call_edit",
        "edit_file",
        json!({"path": "keep.txt", "old_text": "original", "new_text": "changed"}),
    ));
    let id = client
        .send_request("session/prompt", json!({"sessionId": session, "prompt": [{"type": "text", "text": "Edit"}]}))
        .await;
    loop {
        match client.next_message().await {
            Message::Request { id: rid, method, params } => {
                if method == "session/request_permission" {
                    assert_eq!(params["toolCall"]["toolCallId"], "call_edit", "{params}");
                    return (id, rid);
                }
                client.answer_request(rid, method, params).await;
            }
            Message::Response { id: rid, outcome } => panic!("unexpected response {rid}: {outcome:?}"),
            Message::Notification { .. } => {}
        }
    }
}

async fn permission_env() -> (MockLlm, TestEnv, std::path::PathBuf) {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let file = env.workspace().join("keep.txt");
    std::fs::write(&file, "original\n").unwrap();
    (mock, env, file)
}

/// The client answers the permission question with `raw` (a whole JSON line); the agent must
/// take it as "allow once", and must never answer the client's response.
async fn allow_once_with_raw_response(raw: impl Fn(&Value) -> String) {
    let (mock, env, file) = permission_env().await;
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let (id, ask) = turn_waiting_for_permission(&mut client, &mock, &session).await;
    mock.enqueue(MockReply::text(["Done."]));
    client.send_raw_line(&raw(&ask)).await;
    // A reply to the client's response would show up as "a response to an id the client
    // never sent" and fail the test.
    let turn = client.finish_turn(id).await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "changed\n", "the answer was an allow");
}

#[tokio::test]
async fn a_response_without_the_jsonrpc_member_is_read_and_never_answered() {
    allow_once_with_raw_response(|ask| {
        json!({"id": ask, "result": {"outcome": {"outcome": "selected", "optionId": "allow_once"}}}).to_string()
    })
    .await;
}

#[tokio::test]
async fn a_response_with_a_null_error_next_to_its_result_counts_as_the_result() {
    // JSON-RPC 1.0 style (`"error": null` beside the result), as some hand-written clients send.
    allow_once_with_raw_response(|ask| {
        json!({"jsonrpc": "2.0", "id": ask, "result": {"outcome": {"outcome": "selected", "optionId": "allow_once"}, "_meta": {"x": 1}}, "error": null})
            .to_string()
    })
    .await;
}

#[tokio::test]
async fn a_permission_request_answered_with_an_error_fails_the_prompt_instead_of_faking_a_cancel() {
    // §8: `cancelled` means the client sent session/cancel. An editor that cannot answer the
    // question (here: -32601) must see why the turn stopped, not a silent "cancelled".
    let (mock, env, file) = permission_env().await;
    mock.enqueue(MockReply::tool(
        "call_edit",
        "edit_file",
        json!({"path": "keep.txt", "old_text": "original", "new_text": "changed"}),
    ));
    let mut client = env.spawn_initialized().await;
    client.set_request_handler(|method, _| {
        (method == "session/request_permission").then(|| Reply::Error(-32601, "no permission UI".into()))
    });
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, "Edit").await;
    let err = turn.error();
    assert!(err.full_text().contains("session/request_permission"), "the error names the request: {err}");
    assert!(err.full_text().contains("no permission UI"), "the error carries the editor's message: {err}");
    assert!(err.data.is_some(), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "original\n");

    // The session stays usable.
    client.set_request_handler(|_, _| None);
    mock.enqueue(MockReply::text(["Still here."]));
    assert_eq!(client.prompt_text(&session, "Hello?").await.stop_reason(), "end_turn");
}

#[tokio::test]
async fn a_malformed_permission_answer_fails_the_prompt_and_runs_nothing() {
    let (mock, env, file) = permission_env().await;
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let (id, ask) = turn_waiting_for_permission(&mut client, &mock, &session).await;
    client.respond(&ask, json!({"outcome": "allow"})).await;
    let turn = client.finish_turn(id).await;
    let err = turn.error();
    assert!(err.full_text().contains("session/request_permission"), "{err}");
    assert_eq!(err.data.as_ref().unwrap()["kind"], "client", "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "original\n");
    assert_eq!(mock.model_requests().len(), 1, "the model is not sent looking for a workaround");
}

#[tokio::test]
async fn a_permission_request_answered_with_request_cancelled_is_a_cancellation() {
    let (mock, env, file) = permission_env().await;
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let (id, ask) = turn_waiting_for_permission(&mut client, &mock, &session).await;
    client.respond_error(&ask, -32800, "request cancelled").await;
    assert_eq!(client.finish_turn(id).await.stop_reason(), "cancelled");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "original\n");
}

/// Reads until the prompt `id` is answered and a `$/cancel_request` for `ask` has arrived
/// (in either order); returns the prompt's outcome and the other responses read.
async fn prompt_outcome_and_cancel_request(
    client: &mut AcpClient,
    id: u64,
    ask: &Value,
) -> (Result<Value, String>, Vec<(Value, Result<Value, String>)>) {
    let mut outcome = None;
    let mut others = Vec::new();
    let mut cancelled_ask = false;
    while outcome.is_none() || !cancelled_ask {
        match client.next_message().await {
            Message::Response { id: rid, outcome: o } if rid == json!(id) => {
                outcome = Some(o.map_err(|e| e.to_string()));
            }
            Message::Response { id, outcome } => others.push((id, outcome.map_err(|e| e.to_string()))),
            Message::Notification { method, params } if method == "$/cancel_request" => {
                assert_eq!(&params["requestId"], ask, "{params}");
                cancelled_ask = true;
            }
            Message::Notification { .. } => {}
            Message::Request { id, method, params } => client.answer_request(id, method, params).await,
        }
    }
    (outcome.unwrap(), others)
}

#[tokio::test]
async fn close_with_a_permission_question_open_answers_cancelled_and_withdraws_the_question() {
    // §13.2: the agent may `$/cancel_request` its own requests; without it the editor keeps
    // showing a question nobody waits for.
    let (mock, env, file) = permission_env().await;
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let (id, ask) = turn_waiting_for_permission(&mut client, &mock, &session).await;
    let close = client.send_request("session/close", json!({"sessionId": session})).await;
    let (outcome, mut others) = prompt_outcome_and_cancel_request(&mut client, id, &ask).await;
    assert_eq!(outcome.unwrap()["stopReason"], "cancelled");
    let closed = match others.pop() {
        Some((rid, closed)) if rid == json!(close) => closed,
        _ => client.wait_response(close).await.1.map_err(|e| e.to_string()),
    };
    assert_eq!(closed.expect("session/close"), json!({}));
    // A late answer to the withdrawn question changes nothing.
    client.respond(&ask, json!({"outcome": {"outcome": "selected", "optionId": "allow_once"}})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "original\n");
}

#[tokio::test]
async fn cancel_request_for_a_prompt_with_a_question_open_answers_cancelled_and_withdraws_the_question() {
    let (mock, env, file) = permission_env().await;
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let (id, ask) = turn_waiting_for_permission(&mut client, &mock, &session).await;
    client.notify("$/cancel_request", json!({"requestId": id})).await;
    let (outcome, _) = prompt_outcome_and_cancel_request(&mut client, id, &ask).await;
    assert_eq!(outcome.unwrap()["stopReason"], "cancelled", "a cancelled prompt is a stop reason, not -32800");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "original\n");
    mock.enqueue(MockReply::text(["Again."]));
    assert_eq!(client.prompt_text(&session, "Again").await.stop_reason(), "end_turn");
}

// ---------------------------------------------------------------------------------------------
// §5 sessions

#[tokio::test]
async fn load_or_resume_of_a_session_running_a_prompt_here_is_refused_as_busy() {
    // Replaying the history in the middle of the live turn would interleave two copies of the
    // conversation in the editor, and re-rooting would swap MCP servers under the turn.
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    mock.enqueue(MockReply::text(["Partial ", "answer ", "NEVER"]).stall_after(2));
    let id = client
        .send_request("session/prompt", json!({"sessionId": session, "prompt": [{"type": "text", "text": "Go"}]}))
        .await;
    client.wait_for_agent_text(&session, "Partial answer").await;

    let params = json!({"sessionId": session, "cwd": env.cwd(), "mcpServers": []});
    let (updates, outcome) = client.request_collect("session/load", params.clone()).await;
    let err = outcome.expect_err("load of a running session");
    assert_eq!(err.code, -32004, "{err}");
    assert!(err.message.contains(&session), "{err}");
    assert!(
        updates.iter().all(|u| u["update"]["sessionUpdate"] != "user_message_chunk"),
        "nothing replayed: {updates:#?}"
    );
    let err = client.request("session/resume", params).await.expect_err("resume of a running session");
    assert_eq!(err.code, -32004, "{err}");

    client.cancel(&session).await;
    assert_eq!(client.finish_turn(id).await.stop_reason(), "cancelled");
    // Once the turn is over, load works.
    let (_, outcome) =
        client.request_collect("session/load", json!({"sessionId": session, "cwd": env.cwd(), "mcpServers": []})).await;
    outcome.expect("session/load after the turn");
}

fn listed(list: &Value) -> Vec<String> {
    list["sessions"].as_array().unwrap().iter().map(|s| s["sessionId"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_trailing_slash_or_dot_in_cwd_names_the_same_directory() {
    let env = TestEnv::scripted(&["hi"]);
    let mut client = env.spawn_initialized().await;
    let plain = client.new_session(&env.cwd()).await;
    let slashed = client.new_session(&format!("{}/", env.cwd())).await;
    let dotted = client.new_session(&format!("{}/.", env.cwd())).await;
    for filter in [env.cwd(), format!("{}/", env.cwd()), format!("{}//", env.cwd())] {
        let list = client.call("session/list", json!({"cwd": filter})).await;
        let ids = listed(&list);
        for id in [&plain, &slashed, &dotted] {
            assert!(ids.contains(id), "filter {filter:?} must find {id}: {list:#}");
        }
        for s in list["sessions"].as_array().unwrap() {
            assert_eq!(s["cwd"], env.cwd(), "{list:#}");
        }
    }
}

#[tokio::test]
async fn a_cwd_that_does_not_exist_or_is_a_file_is_invalid_params() {
    let env = TestEnv::scripted(&["hi"]);
    let mut client = env.spawn_initialized().await;
    let missing = env.workspace().join("no-such-dir");
    let file = env.workspace().join("a-file.txt");
    std::fs::write(&file, "x").unwrap();
    for cwd in [&missing, &file] {
        let cwd = cwd.to_str().unwrap();
        let err = client.request("session/new", json!({"cwd": cwd, "mcpServers": []})).await.expect_err("bad cwd");
        assert_eq!(err.code, -32602, "{err}");
        assert!(err.message.contains(cwd), "the error names the path: {err}");
    }
    let session = client.new_session(&env.cwd()).await;
    let gone = missing.to_str().unwrap();
    for method in ["session/load", "session/resume"] {
        let err = client
            .request(method, json!({"sessionId": session, "cwd": gone, "mcpServers": []}))
            .await
            .expect_err("bad cwd");
        assert_eq!(err.code, -32602, "{method}: {err}");
    }
    // The session was not re-rooted by the refused calls.
    let list = client.call("session/list", json!({"cwd": env.cwd()})).await;
    assert!(listed(&list).contains(&session), "{list:#}");
}

#[tokio::test]
async fn relative_cwd_in_load_and_resume_is_invalid_params() {
    let env = TestEnv::scripted(&["hi"]);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    for method in ["session/load", "session/resume"] {
        let err = client
            .request(method, json!({"sessionId": session, "cwd": "relative/dir", "mcpServers": []}))
            .await
            .expect_err("relative cwd");
        assert_eq!(err.code, -32602, "{method}: {err}");
        assert!(err.full_text().contains("absolute"), "{err}");
    }
}

#[tokio::test]
async fn meta_and_unknown_fields_are_tolerated_everywhere() {
    let env = TestEnv::scripted(&["one", "two"]);
    let mut client = env.spawn_initialized().await;
    let meta = json!({"acme.dev": {"x": 1}, "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"});
    let session = client
        .call("session/new", json!({"cwd": env.cwd(), "mcpServers": [], "_meta": meta, "future": 1}))
        .await["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    client.call("session/set_mode", json!({"sessionId": session, "modeId": "plan", "_meta": meta, "x": true})).await;
    client
        .call(
            "session/set_config_option",
            json!({"sessionId": session, "configId": "mode", "value": "ask", "_meta": meta}),
        )
        .await;
    client.call("session/list", json!({"_meta": meta, "future": [1]})).await;
    let turn = client
        .prompt(
            &session,
            json!([{"type": "text", "text": "hi", "_meta": meta, "annotations": {"audience": ["user"], "priority": 0.5}, "future": 1}]),
        )
        .await;
    assert_eq!(turn.stop_reason(), "end_turn");
    client.notify("session/cancel", json!({"sessionId": session, "_meta": meta})).await;
    let (_, loaded) = client
        .request_collect(
            "session/load",
            json!({"sessionId": session, "cwd": env.cwd(), "mcpServers": [], "_meta": meta, "future": {}}),
        )
        .await;
    loaded.expect("session/load");
    client.call("session/resume", json!({"sessionId": session, "cwd": env.cwd(), "_meta": meta})).await;
    client.call("session/close", json!({"sessionId": session, "_meta": meta})).await;
}

#[tokio::test]
async fn set_config_option_rejects_booleans_and_unknown_values_and_close_rejects_unknown_sessions() {
    let env = TestEnv::scripted(&["hi"]);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let err = client
        .request(
            "session/set_config_option",
            json!({"sessionId": session, "configId": "mode", "type": "boolean", "value": true}),
        )
        .await
        .expect_err("boolean for a select");
    assert_eq!(err.code, -32602, "{err}");
    let err = client
        .request("session/set_config_option", json!({"sessionId": session, "configId": "mode", "value": "turbo"}))
        .await
        .expect_err("unknown mode value");
    assert_eq!(err.code, -32602, "{err}");
    assert!(err.message.contains("turbo"), "{err}");
    let err = client.request("session/close", json!({"sessionId": "no-such-session"})).await.expect_err("unknown");
    assert_eq!(err.code, -32002, "{err}");
}

#[tokio::test]
async fn set_mode_in_the_middle_of_a_turn_applies_to_the_next_tool_call() {
    let (mock, env, file) = permission_env().await;
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let (id, ask) = turn_waiting_for_permission(&mut client, &mock, &session).await;
    // While the question is open, switch to yolo: answered at once, not after the turn.
    let set = client.send_request("session/set_mode", json!({"sessionId": session, "modeId": "yolo"})).await;
    let (_, result) = client.wait_response(set).await;
    result.expect("set_mode during a turn");
    mock.enqueue(MockReply::tool("call_w", "write_file", json!({"path": "new.txt", "content": "n\n"})));
    mock.enqueue(MockReply::text(["Both done."]));
    client.respond(&ask, json!({"outcome": {"outcome": "selected", "optionId": "allow_once"}})).await;
    let turn = client.finish_turn(id).await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert!(turn.requests("session/request_permission").is_empty(), "yolo asks nothing: {:#?}", turn.messages);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "changed\n");
    assert_eq!(std::fs::read_to_string(env.workspace().join("new.txt")).unwrap(), "n\n");
}

// ---------------------------------------------------------------------------------------------
// §5.10 prompt content

#[tokio::test]
async fn an_empty_prompt_is_invalid_params_and_no_model_call_is_made() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    for prompt in [json!([]), json!([{"type": "text", "text": ""}]), json!([{"type": "text", "text": " \n\t"}])] {
        let turn = client.prompt(&session, prompt.clone()).await;
        let err = turn.error();
        assert_eq!(err.code, -32602, "{prompt}: {err}");
        assert!(err.message.contains("empty"), "{err}");
        // (The command list that follows `session/new` may still be in the queue.)
        assert!(
            turn.updates.iter().all(|u| u["update"]["sessionUpdate"] == "available_commands_update"),
            "a refused prompt streams nothing: {:#?}",
            turn.updates
        );
    }
    assert!(mock.model_requests().is_empty(), "an empty prompt must not reach the model");
    mock.enqueue(MockReply::text(["Fine."]));
    assert_eq!(client.prompt_text(&session, "Real question").await.stop_reason(), "end_turn");
    // Nothing of the refused prompts was stored.
    let conversation = mock.last_model_request().conversation();
    assert_eq!(conversation.len(), 1, "{conversation:#?}");
}

#[tokio::test]
async fn a_prompt_of_only_a_resource_link_reaches_the_model() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    mock.enqueue(MockReply::text(["Seen."]));
    let uri = format!("file://{}/src/lib.rs", env.cwd());
    let turn = client.prompt(&session, json!([{"type": "resource_link", "uri": uri, "name": "lib.rs"}])).await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert!(mock.last_model_request().raw_body.contains(&uri));
}

#[tokio::test]
async fn an_audio_block_is_refused_with_a_clear_invalid_params_and_the_session_stays_usable() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let turn = client
        .prompt(
            &session,
            json!([{"type": "text", "text": "listen"}, {"type": "audio", "data": "UklGRg==", "mimeType": "audio/wav"}]),
        )
        .await;
    let err = turn.error();
    assert_eq!(err.code, -32602, "{err}");
    assert!(err.message.contains("audio"), "{err}");
    assert!(mock.model_requests().is_empty());
    mock.enqueue(MockReply::text(["Ok."]));
    assert_eq!(client.prompt_text(&session, "text only").await.stop_reason(), "end_turn");
}

#[tokio::test]
async fn an_embedded_blob_image_reaches_the_model_as_an_image() {
    // `embeddedContext` covers blob resources; an attached picture sent as a blob must not be
    // reduced to a link the model cannot open.
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    mock.enqueue(MockReply::text(["A pixel."]));
    let turn = client
        .prompt(
            &session,
            json!([
                {"type": "text", "text": "What is this?"},
                {"type": "resource", "resource": {"uri": "file:///tmp/pixel.png", "blob": png, "mimeType": "image/png"}},
                {"type": "resource", "resource": {"uri": "file:///tmp/report.pdf", "blob": "JVBERi0=", "mimeType": "application/pdf"}}
            ]),
        )
        .await;
    assert_eq!(turn.stop_reason(), "end_turn");
    let body = mock.last_model_request().raw_body;
    assert!(body.contains(png), "the image data must reach the model: {body}");
    assert!(body.contains("report.pdf"), "a non-image blob is at least named: {body}");
}
