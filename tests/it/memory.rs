//! Parse memory is bounded (issue 7, item 6): a line costs a small multiple of its size
//! before it is accepted or refused, however its JSON is shaped. Numbers, arrays and objects
//! would cost ~30x as a `serde_json::Value` tree, so params over a budget of JSON values are
//! refused before any tree is built; big strings (images, embedded files) still go through.
//!
//! Peak memory is the agent's `VmHWM` from `/proc/<pid>/status` (Linux only).

use serde_json::{Value, json};

use crate::support::{AcpClient, MockLlm, MockReply, Reply, TestEnv};

/// Size of the hostile line: close to the 50 MB of the original report.
const BIG_LINE_BYTES: usize = 50_000_000;

/// The agent's budget of JSON values per message (`acp::envelope::MAX_JSON_VALUES`).
const MAX_VALUES: usize = 1 << 18;

/// How far above its idle peak the agent may go while reading a line: this many times the
/// line. The line itself must be held once (plus growth slack while it is read).
const PEAK_FACTOR: u64 = 4;

/// The agent's peak resident memory so far, in bytes.
fn peak_rss(client: &AcpClient) -> u64 {
    let pid = client.pid().expect("agent is running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/<pid>/status");
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no VmHWM in /proc/{pid}/status:\n{status}"));
    kb * 1024
}

/// The response to `id` (notifications on the way, like a previous session's command
/// list, are skipped).
async fn response_to(client: &mut AcpClient, id: &Value) -> Result<Value, crate::support::RpcError> {
    client.wait_response_to(id).await.1
}

/// `session/new` in `cwd` whose `_meta` carries `payload` (raw JSON text) under `extra`.
fn session_new_line(id: &Value, cwd: &str, payload: &str) -> String {
    let head = json!({"jsonrpc": "2.0", "id": id, "method": "session/new"}).to_string();
    let cwd = Value::String(cwd.to_owned());
    format!(r#"{},"params":{{"cwd":{cwd},"mcpServers":[],"_meta":{{"extra":{payload}}}}}}}"#, &head[..head.len() - 1])
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Prints the agent's peak memory after `what` (of `bytes`) against `idle`, and returns it.
fn report_peak(client: &AcpClient, idle: u64, what: &str, bytes: usize) -> u64 {
    let peak = peak_rss(client);
    let above = peak.saturating_sub(idle) as f64 / bytes as f64;
    eprintln!(
        "VmHWM: {:.1} MiB idle, {:.1} MiB after {what} of {:.1} MiB ({above:.2}x it above idle)",
        mib(idle),
        mib(peak),
        mib(bytes as u64)
    );
    peak
}

#[tokio::test]
async fn a_50_mb_numeric_array_is_refused_with_bounded_memory_and_the_agent_keeps_serving() {
    let env = TestEnv::scripted(&["ok"]);
    let mut client = env.spawn_initialized().await;
    client.new_session(&env.cwd()).await;
    let baseline = peak_rss(&client);

    let id = json!("big-numbers");
    let repeats = (BIG_LINE_BYTES - 200) / 2;
    let numbers = format!("[{}0]", "0,".repeat(repeats));
    let line = session_new_line(&id, &env.cwd(), &numbers);
    assert!(line.len() >= BIG_LINE_BYTES - 200, "{}", line.len());
    client.send_raw_request(&line, id.clone()).await;
    let err = response_to(&mut client, &id).await.expect_err("a 25-million-value session/new must be refused");
    let peak = report_peak(&client, baseline, "a numeric line", line.len());

    assert_eq!(err.code, -32602, "{err}");
    let text = err.full_text();
    // params, cwd, mcpServers, _meta, extra, and the array's elements.
    let values = 5 + repeats + 1;
    assert!(text.contains(&values.to_string()), "the error says how many values ({values}): {err}");
    assert!(text.contains(&MAX_VALUES.to_string()), "the error names the limit: {err}");
    assert!(text.contains("string"), "the error says images and files go as strings: {err}");
    let bound = baseline + PEAK_FACTOR * line.len() as u64;
    assert!(
        peak < bound,
        "peak RSS {:.1} MiB exceeds idle {:.1} MiB + {PEAK_FACTOR}x the {:.1} MiB line",
        mib(peak),
        mib(baseline),
        mib(line.len() as u64)
    );

    // The process is still up and serving.
    client.initialize().await;
    assert!(!client.new_session(&env.cwd()).await.is_empty());
}

#[tokio::test]
async fn a_large_string_field_in_session_new_is_accepted() {
    let env = TestEnv::scripted(&["ok"]);
    let mut client = env.spawn_initialized().await;
    let baseline = peak_rss(&client);
    let id = json!("big-string");
    let note = Value::String("x".repeat(30_000_000)).to_string();
    let line = session_new_line(&id, &env.cwd(), &note);
    client.send_raw_request(&line, id.clone()).await;
    let result = response_to(&mut client, &id).await.expect("a long but legal field is fine");
    assert!(result["sessionId"].is_string(), "{result}");
    report_peak(&client, baseline, "a session/new with a long string", line.len());
}

#[tokio::test]
async fn a_prompt_with_a_multi_megabyte_image_still_runs() {
    let env = TestEnv::scripted(&["I see a picture."]);
    let mut client = env.spawn_initialized().await;
    let session = client.new_session(&env.cwd()).await;
    let baseline = peak_rss(&client);
    // 20 MB of base64, the size of a large screenshot.
    let data = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8A".repeat(260_000);
    let blocks = json!([
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image", "mimeType": "image/png", "data": data},
    ]);
    let turn = client.prompt(&session, blocks).await;
    assert_eq!(turn.stop_reason(), "end_turn");
    assert!(turn.text().contains("I see a picture."), "{}", turn.text());
    // Not bounded here: past parsing, the engine keeps its own copies (history, store).
    report_peak(&client, baseline, "a prompt with an image", data.len());
}

#[tokio::test]
async fn an_editor_answer_over_the_value_budget_fails_that_read_and_a_big_string_answer_passes() {
    let mock = MockLlm::start().await;
    let env = TestEnv::openai(&mock);
    mock.enqueue(MockReply::tool("call_numbers", "read_file", json!({"path": "numbers.txt"})));
    mock.enqueue(MockReply::tool("call_text", "read_file", json!({"path": "text.txt"})));
    mock.enqueue(MockReply::text(["Read both."]));
    let mut client = env.spawn_acp().await;
    client.initialize_with_caps(true, false, false).await;
    let big_text = "y".repeat(1_000_000);
    let text = big_text.clone();
    client.set_request_handler(move |method, params| {
        (method == "fs/read_text_file").then(|| match params["path"].as_str() {
            Some(p) if p.ends_with("numbers.txt") => {
                Reply::Result(json!({"content": "", "_meta": {"junk": vec![0; 2 * MAX_VALUES]}}))
            }
            _ => Reply::Result(json!({"content": text})),
        })
    });
    let session = client.new_session(&env.cwd()).await;
    let turn = client.prompt_text(&session, "Read the files").await;
    assert_eq!(turn.stop_reason(), "end_turn");

    let results = mock.last_model_request().tool_results();
    assert_eq!(results.len(), 2, "{results:#?}");
    assert!(results[0].text.contains("JSON values"), "the oversized answer fails the read: {:?}", results[0].text);
    assert!(results[1].text.contains(&big_text[..1000]), "the big string answer is read");
    // The process keeps serving.
    assert!(!client.new_session(&env.cwd()).await.is_empty());
}
