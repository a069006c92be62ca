//! A real HTTP server on 127.0.0.1 that speaks the three LLM wire formats ratchet supports.
//!
//! - `POST /v1/chat/completions`: OpenAI Chat Completions, Server-Sent Events (`data:` lines,
//!   a `finish_reason` chunk, a usage chunk with `choices: []`, then `data: [DONE]`).
//! - `POST /v1/messages`: Anthropic Messages, Server-Sent Events with `event:` lines.
//! - `POST /api/chat`: Ollama, newline-delimited JSON; `GET /api/tags` lists one model.
//!
//! Tests enqueue scripted [`MockReply`]s (an empty queue answers with [`DEFAULT_REPLY_TEXT`]).
//! Replies stream chunk by chunk with real delays, and can stall after N text chunks so a
//! test can cancel mid-stream. Every request is recorded (path, headers, JSON body), and a
//! stream that the client dropped before its end is counted as aborted.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::TIMEOUT;

/// What an empty reply queue answers with.
pub const DEFAULT_REPLY_TEXT: &str = "Default mock answer.";

/// Why a scripted reply ends. Mapped to each provider's own wire value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// OpenAI `stop`, Anthropic `end_turn`, Ollama `stop`.
    Stop,
    /// OpenAI `length`, Anthropic `max_tokens`, Ollama `length`.
    Length,
    /// OpenAI `tool_calls`, Anthropic `tool_use`, Ollama `stop` (with tool calls).
    ToolUse,
    /// OpenAI `content_filter`, Anthropic `refusal`, Ollama `stop`.
    Refusal,
}

/// A tool call the mock model makes.
#[derive(Debug, Clone)]
pub struct MockToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as a JSON object.
    pub arguments: Value,
}

/// Token counts the mock reports.
#[derive(Debug, Clone, Copy)]
pub struct MockUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// One scripted answer of the mock model.
#[derive(Debug, Clone)]
pub struct MockReply {
    pub text_chunks: Vec<String>,
    pub thinking_chunks: Vec<String>,
    pub tool_calls: Vec<MockToolCall>,
    pub finish: Finish,
    /// An error status: the reply is then a JSON error body in the provider's format.
    pub status: Option<u16>,
    /// Sleep before each streamed frame.
    pub chunk_delay: Duration,
    pub usage: MockUsage,
    /// Stream this many text chunks, then keep the connection open without sending anything
    /// more until the client goes away.
    pub stall_after_text_chunks: Option<usize>,
    /// Stream this many text chunks, then break the connection off (no end of the body).
    pub drop_after_text_chunks: Option<usize>,
}

impl MockReply {
    /// A reply that streams `chunks` as answer text and then stops normally.
    pub fn text<I, S>(chunks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        MockReply {
            text_chunks: chunks.into_iter().map(Into::into).collect(),
            thinking_chunks: Vec::new(),
            tool_calls: Vec::new(),
            finish: Finish::Stop,
            status: None,
            chunk_delay: Duration::from_millis(5),
            usage: MockUsage { input_tokens: 42, output_tokens: 7 },
            stall_after_text_chunks: None,
            drop_after_text_chunks: None,
        }
    }

    /// An HTTP error reply (body in the provider's error format).
    pub fn error(status: u16) -> Self {
        MockReply { status: Some(status), ..MockReply::text(Vec::<String>::new()) }
    }

    pub fn thinking<I, S>(mut self, chunks: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.thinking_chunks = chunks.into_iter().map(Into::into).collect();
        self
    }

    pub fn finish(mut self, finish: Finish) -> Self {
        self.finish = finish;
        self
    }

    pub fn delay(mut self, delay: Duration) -> Self {
        self.chunk_delay = delay;
        self
    }

    pub fn usage(mut self, input_tokens: u64, output_tokens: u64) -> Self {
        self.usage = MockUsage { input_tokens, output_tokens };
        self
    }

    pub fn stall_after(mut self, n_text_chunks: usize) -> Self {
        self.stall_after_text_chunks = Some(n_text_chunks);
        self
    }

    /// Streams `n_text_chunks` text chunks, then breaks the connection off mid-body.
    pub fn drop_after(mut self, n_text_chunks: usize) -> Self {
        self.drop_after_text_chunks = Some(n_text_chunks);
        self
    }

    pub fn tool_call(mut self, id: &str, name: &str, arguments: Value) -> Self {
        self.tool_calls.push(MockToolCall { id: id.to_owned(), name: name.to_owned(), arguments });
        self.finish = Finish::ToolUse;
        self
    }

    /// The full answer text.
    pub fn full_text(&self) -> String {
        self.text_chunks.concat()
    }

    /// A reply that makes one tool call and nothing else (finish: tool use).
    pub fn tool(id: &str, name: &str, arguments: Value) -> Self {
        MockReply::text(Vec::<String>::new()).tool_call(id, name, arguments)
    }
}

/// A tool result found in a request body, in any of the three wire formats.
#[derive(Debug, Clone, PartialEq)]
pub struct SentToolResult {
    /// OpenAI `tool_call_id`, Anthropic `tool_use_id`; `None` for Ollama (no ids).
    pub call_id: Option<String>,
    /// Ollama `tool_name`, if given.
    pub tool_name: Option<String>,
    /// The result text (string content, or the text blocks joined).
    pub text: String,
    /// Anthropic `is_error`, if given.
    pub is_error: Option<bool>,
}

/// A tool call of an assistant message found in a request body.
#[derive(Debug, Clone, PartialEq)]
pub struct SentToolCall {
    /// OpenAI `id`, Anthropic `tool_use.id`; Ollama calls may have none.
    pub id: Option<String>,
    pub name: String,
    /// The arguments as JSON (OpenAI's argument string is parsed).
    pub arguments: Value,
}

fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// One HTTP request the mock received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Header names are lower case.
    pub headers: BTreeMap<String, String>,
    /// The JSON body, or `Value::Null` if there was none or it was not JSON.
    pub body: Value,
    pub raw_body: String,
}

impl RecordedRequest {
    /// Names of the tool definitions in the body (OpenAI and Ollama `tools[].function.name`,
    /// Anthropic `tools[].name`), in order. Empty when the body has no `tools`.
    pub fn tool_names(&self) -> Vec<String> {
        self.body
            .get("tools")
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| {
                        t.get("function")
                            .and_then(|f| f.get("name"))
                            .or_else(|| t.get("name"))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every tool result in the conversation of the body, oldest first: OpenAI and Ollama
    /// `role: "tool"` messages, Anthropic `tool_result` blocks.
    pub fn tool_results(&self) -> Vec<SentToolResult> {
        let Some(messages) = self.body.get("messages").and_then(Value::as_array) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for m in messages {
            if m.get("role").and_then(Value::as_str) == Some("tool") {
                out.push(SentToolResult {
                    call_id: m.get("tool_call_id").and_then(Value::as_str).map(str::to_owned),
                    tool_name: m.get("tool_name").and_then(Value::as_str).map(str::to_owned),
                    text: text_of(m.get("content")),
                    is_error: None,
                });
            }
            if let Some(blocks) = m.get("content").and_then(Value::as_array) {
                for b in blocks {
                    if b.get("type").and_then(Value::as_str) == Some("tool_result") {
                        out.push(SentToolResult {
                            call_id: b.get("tool_use_id").and_then(Value::as_str).map(str::to_owned),
                            tool_name: None,
                            text: text_of(b.get("content")),
                            is_error: b.get("is_error").and_then(Value::as_bool),
                        });
                    }
                }
            }
        }
        out
    }

    /// Every tool call made by assistant messages of the body, oldest first: OpenAI and
    /// Ollama `tool_calls`, Anthropic `tool_use` blocks.
    pub fn assistant_tool_calls(&self) -> Vec<SentToolCall> {
        let Some(messages) = self.body.get("messages").and_then(Value::as_array) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for m in messages {
            if m.get("role").and_then(Value::as_str) != Some("assistant") {
                continue;
            }
            for c in m.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                let f = &c["function"];
                let arguments = match &f["arguments"] {
                    Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
                    other => other.clone(),
                };
                out.push(SentToolCall {
                    id: c.get("id").and_then(Value::as_str).map(str::to_owned),
                    name: f["name"].as_str().unwrap_or("").to_owned(),
                    arguments,
                });
            }
            for b in m.get("content").and_then(Value::as_array).into_iter().flatten() {
                if b.get("type").and_then(Value::as_str) == Some("tool_use") {
                    out.push(SentToolCall {
                        id: b.get("id").and_then(Value::as_str).map(str::to_owned),
                        name: b["name"].as_str().unwrap_or("").to_owned(),
                        arguments: b["input"].clone(),
                    });
                }
            }
        }
        out
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// The `model` field of the body.
    pub fn model(&self) -> Option<&str> {
        self.body.get("model").and_then(Value::as_str)
    }

    /// The conversation in the body as `(role, text)` pairs, system messages left out.
    /// Understands string content and arrays of `{type: "text", text}` blocks (OpenAI,
    /// Anthropic, Ollama); other block kinds (thinking, images, tool use) are skipped.
    pub fn conversation(&self) -> Vec<(String, String)> {
        let Some(messages) = self.body.get("messages").and_then(Value::as_array) else {
            return Vec::new();
        };
        messages
            .iter()
            .filter_map(|m| {
                let role = m.get("role")?.as_str()?.to_owned();
                if role == "system" || role == "developer" {
                    return None;
                }
                let text = match m.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(blocks)) => blocks
                        .iter()
                        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                        .filter_map(|b| b.get("text").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join(""),
                    _ => String::new(),
                };
                Some((role, text))
            })
            .collect()
    }
}

struct MockState {
    replies: Mutex<VecDeque<MockReply>>,
    /// Replies for requests whose body contains a marker (a worker's step), by marker.
    routed: Mutex<Vec<(String, VecDeque<MockReply>)>>,
    /// Model requests being answered now, and the most at once.
    in_flight: std::sync::atomic::AtomicUsize,
    max_in_flight: std::sync::atomic::AtomicUsize,
    requests: Mutex<Vec<RecordedRequest>>,
    n_requests: watch::Sender<usize>,
    n_aborted_streams: watch::Sender<usize>,
    n_completed_streams: watch::Sender<usize>,
}

/// The running mock server. It stops when dropped.
pub struct MockLlm {
    addr: SocketAddr,
    state: Arc<MockState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl MockLlm {
    /// Starts the server on 127.0.0.1 with an OS-assigned port.
    pub async fn start() -> MockLlm {
        let state = Arc::new(MockState {
            replies: Mutex::new(VecDeque::new()),
            routed: Mutex::new(Vec::new()),
            in_flight: Default::default(),
            max_in_flight: Default::default(),
            requests: Mutex::new(Vec::new()),
            n_requests: watch::channel(0).0,
            n_aborted_streams: watch::channel(0).0,
            n_completed_streams: watch::channel(0).0,
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(openai_chat))
            .route("/v1/messages", post(anthropic_messages))
            .route("/api/chat", post(ollama_chat))
            .route("/api/tags", get(ollama_tags))
            .fallback(not_found)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind mock LLM server");
        let addr = listener.local_addr().expect("mock server address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("mock LLM server");
        });
        MockLlm { addr, state, server }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1` (what `OPENAI_BASE_URL` takes).
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues a reply; replies are used in order, one per model request.
    pub fn enqueue(&self, reply: MockReply) {
        self.state.replies.lock().unwrap().push_back(reply);
    }

    /// Drops every reply still queued (ordinary and routed), e.g. one a killed agent never
    /// asked for.
    pub fn clear_queue(&self) {
        self.state.replies.lock().unwrap().clear();
        self.state.routed.lock().unwrap().clear();
    }

    /// Queues a reply for the next request whose body contains `marker` (e.g. a fleet
    /// worker's step text): each agent is answered by its own prompt, whatever the order
    /// the requests arrive in. Unmatched requests take the ordinary queue.
    pub fn enqueue_for(&self, marker: &str, reply: MockReply) {
        let mut routed = self.state.routed.lock().unwrap();
        match routed.iter_mut().find(|(m, _)| m == marker) {
            Some((_, q)) => q.push_back(reply),
            None => routed.push((marker.to_owned(), VecDeque::from([reply]))),
        }
    }

    /// The most model requests that were being answered at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Model requests being answered now.
    pub fn in_flight(&self) -> usize {
        self.state.in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Requests to the model endpoints (everything but `GET /api/tags`).
    pub fn model_requests(&self) -> Vec<RecordedRequest> {
        self.requests().into_iter().filter(|r| r.method == "POST").collect()
    }

    /// The last model request; panics if there was none.
    pub fn last_model_request(&self) -> RecordedRequest {
        self.model_requests().pop().expect("the mock LLM received no model request")
    }

    /// Waits (with the global timeout) until at least `n` requests arrived.
    pub async fn wait_for_requests(&self, n: usize) {
        wait_count(&self.state.n_requests, n, "mock LLM requests").await;
    }

    /// Waits until at least `n` streams were dropped by the client before their end.
    pub async fn wait_for_aborted_streams(&self, n: usize) {
        wait_count(&self.state.n_aborted_streams, n, "aborted mock LLM streams").await;
    }

    pub fn n_aborted_streams(&self) -> usize {
        *self.state.n_aborted_streams.borrow()
    }

    pub fn n_completed_streams(&self) -> usize {
        *self.state.n_completed_streams.borrow()
    }
}

async fn wait_count(counter: &watch::Sender<usize>, n: usize, what: &str) {
    let mut rx = counter.subscribe();
    let result = tokio::time::timeout(TIMEOUT, rx.wait_for(|c| *c >= n)).await;
    match result {
        Ok(Ok(_)) => {}
        _ => panic!("timed out after {TIMEOUT:?} waiting for {n} {what}; got {}", *counter.borrow()),
    }
}

impl MockState {
    fn record(&self, method: &str, uri: &Uri, headers: &HeaderMap, body: &Bytes) {
        let raw_body = String::from_utf8_lossy(body).into_owned();
        let recorded = RecordedRequest {
            method: method.to_owned(),
            path: uri.path().to_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect(),
            body: serde_json::from_str(&raw_body).unwrap_or(Value::Null),
            raw_body,
        };
        self.requests.lock().unwrap().push(recorded);
        if method == "POST" {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.in_flight.fetch_add(1, SeqCst) + 1;
            self.max_in_flight.fetch_max(now, SeqCst);
        }
        self.n_requests.send_modify(|c| *c += 1);
    }

    /// The reply for this request: a routed one if its body has a marker. The handler passes
    /// its own body: with agents asking at once, the last recorded request may be another's.
    fn next_reply(&self, body: &Bytes) -> MockReply {
        let body = String::from_utf8_lossy(body);
        let mut routed = self.routed.lock().unwrap();
        // The longest marker first: one step's text may contain another's.
        let mut candidates: Vec<&mut (String, VecDeque<MockReply>)> =
            routed.iter_mut().filter(|(m, q)| !q.is_empty() && body.contains(m.as_str())).collect();
        candidates.sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));
        if let Some((_, q)) = candidates.into_iter().next() {
            return q.pop_front().expect("non-empty");
        }
        drop(routed);
        self.replies.lock().unwrap().pop_front().unwrap_or_else(|| MockReply::text(["Default mock ", "answer."]))
    }
}

/// One piece of a streamed body.
enum Frame {
    Data(String),
    /// Keep the connection open and send nothing more.
    Stall,
    /// Break the connection off: the body ends with an error, not its last chunk.
    Break,
}

/// Counts a stream as completed or aborted when it is dropped.
struct StreamGuard {
    state: Arc<MockState>,
    completed: std::cell::Cell<bool>,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.state.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        if self.completed.get() {
            self.state.n_completed_streams.send_modify(|c| *c += 1);
        } else {
            self.state.n_aborted_streams.send_modify(|c| *c += 1);
        }
    }
}

fn streaming_response(
    state: Arc<MockState>,
    content_type: &'static str,
    frames: Vec<Frame>,
    delay: Duration,
) -> Response {
    let guard = StreamGuard { state, completed: std::cell::Cell::new(false) };
    let stream = futures::stream::unfold((frames.into_iter(), guard), move |(mut frames, guard)| async move {
        match frames.next() {
            None => {
                guard.completed.set(true);
                None
            }
            Some(Frame::Stall) => {
                // Hold the connection until the client drops it (that drops this future).
                std::future::pending::<()>().await;
                None
            }
            Some(Frame::Break) => {
                // Like a frame, after the delay, so what was sent before has left.
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                // An error item makes hyper abort the body: the client sees a broken stream.
                Some((Err(std::io::Error::other("mock LLM breaks the connection off")), (frames, guard)))
            }
            Some(Frame::Data(data)) => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Some((Ok::<_, std::io::Error>(Bytes::from(data)), (frames, guard)))
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn json_response(status: u16, body: Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn not_found(uri: Uri) -> Response {
    json_response(404, json!({"error": {"message": format!("mock LLM: no route for {}", uri.path())}}))
}

/// Interleaves text chunks with a stall marker after the configured number of text chunks.
fn push_text_frames(frames: &mut Vec<Frame>, reply: &MockReply, mut to_frame: impl FnMut(&str) -> String) -> bool {
    for (idx, chunk) in reply.text_chunks.iter().enumerate() {
        if reply.stall_after_text_chunks == Some(idx) {
            frames.push(Frame::Stall);
            return true;
        }
        if reply.drop_after_text_chunks == Some(idx) {
            frames.push(Frame::Break);
            return true;
        }
        frames.push(Frame::Data(to_frame(chunk)));
    }
    if reply.stall_after_text_chunks.is_some_and(|n| n >= reply.text_chunks.len()) {
        frames.push(Frame::Stall);
        return true;
    }
    if reply.drop_after_text_chunks.is_some_and(|n| n >= reply.text_chunks.len()) {
        frames.push(Frame::Break);
        return true;
    }
    false
}

// ---------------------------------------------------------------------------------------------
// OpenAI Chat Completions

async fn openai_chat(State(state): State<Arc<MockState>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    state.record("POST", &uri, &headers, &body);
    let reply = state.next_reply(&body);
    if let Some(status) = reply.status {
        state.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        let (kind, code, message) = match status {
            401 => (
                "invalid_request_error",
                "invalid_api_key",
                "Incorrect API key provided: sk-test. You can find your API key at https://platform.openai.com/account/api-keys.",
            ),
            429 => ("rate_limit_exceeded", "rate_limit_exceeded", "Rate limit reached"),
            _ => ("server_error", "server_error", "The server had an error while processing your request."),
        };
        return json_response(
            status,
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
        );
    }
    let model = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("model").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "mock-model".to_owned());
    let chunk = |delta: Value, finish_reason: Value| {
        let v = json!({
            "id": "chatcmpl-mock",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "system_fingerprint": null,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        format!("data: {v}\n\n")
    };

    let mut frames = vec![Frame::Data(chunk(json!({"role": "assistant", "content": ""}), Value::Null))];
    for t in &reply.thinking_chunks {
        frames.push(Frame::Data(chunk(json!({"reasoning_content": t}), Value::Null)));
    }
    let stalled = push_text_frames(&mut frames, &reply, |t| chunk(json!({"content": t}), Value::Null));
    if !stalled {
        for (idx, call) in reply.tool_calls.iter().enumerate() {
            let args = call.arguments.to_string();
            let (first, second) = args.split_at(args.len() / 2);
            frames.push(Frame::Data(chunk(
                json!({"tool_calls": [{"index": idx, "id": call.id, "type": "function",
                        "function": {"name": call.name, "arguments": ""}}]}),
                Value::Null,
            )));
            for part in [first, second] {
                frames.push(Frame::Data(chunk(
                    json!({"tool_calls": [{"index": idx, "function": {"arguments": part}}]}),
                    Value::Null,
                )));
            }
        }
        let finish = match reply.finish {
            Finish::Stop => "stop",
            Finish::Length => "length",
            Finish::ToolUse => "tool_calls",
            Finish::Refusal => "content_filter",
        };
        frames.push(Frame::Data(chunk(json!({}), json!(finish))));
        let usage = json!({
            "id": "chatcmpl-mock",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [],
            "usage": {
                "prompt_tokens": reply.usage.input_tokens,
                "completion_tokens": reply.usage.output_tokens,
                "total_tokens": reply.usage.input_tokens + reply.usage.output_tokens,
            },
        });
        frames.push(Frame::Data(format!("data: {usage}\n\n")));
        frames.push(Frame::Data("data: [DONE]\n\n".to_owned()));
    }
    streaming_response(state, "text/event-stream", frames, reply.chunk_delay)
}

// ---------------------------------------------------------------------------------------------
// Anthropic Messages

fn sse_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

async fn anthropic_messages(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.record("POST", &uri, &headers, &body);
    let reply = state.next_reply(&body);
    if let Some(status) = reply.status {
        state.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        let (kind, message) = match status {
            401 => ("authentication_error", "invalid x-api-key"),
            429 => ("rate_limit_error", "Number of requests has exceeded your rate limit"),
            529 => ("overloaded_error", "Overloaded"),
            _ => ("api_error", "Internal server error"),
        };
        return json_response(status, json!({"type": "error", "error": {"type": kind, "message": message}}));
    }
    let model = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("model").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "mock-model".to_owned());

    let mut frames = vec![
        Frame::Data(sse_event(
            "message_start",
            json!({"type": "message_start", "message": {
                "id": "msg_mock", "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": reply.usage.input_tokens, "output_tokens": 1}}}),
        )),
        Frame::Data(sse_event("ping", json!({"type": "ping"}))),
    ];
    let mut block_idx = 0;
    if !reply.thinking_chunks.is_empty() {
        frames.push(Frame::Data(sse_event(
            "content_block_start",
            json!({"type": "content_block_start", "index": block_idx,
                   "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        )));
        for t in &reply.thinking_chunks {
            frames.push(Frame::Data(sse_event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": block_idx,
                       "delta": {"type": "thinking_delta", "thinking": t}}),
            )));
        }
        frames.push(Frame::Data(sse_event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": block_idx,
                   "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}),
        )));
        frames.push(Frame::Data(sse_event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": block_idx}),
        )));
        block_idx += 1;
    }
    let mut stalled = false;
    if !reply.text_chunks.is_empty()
        || reply.stall_after_text_chunks.is_some()
        || reply.drop_after_text_chunks.is_some()
    {
        frames.push(Frame::Data(sse_event(
            "content_block_start",
            json!({"type": "content_block_start", "index": block_idx,
                   "content_block": {"type": "text", "text": ""}}),
        )));
        let idx = block_idx;
        stalled = push_text_frames(&mut frames, &reply, |t| {
            sse_event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": idx,
                       "delta": {"type": "text_delta", "text": t}}),
            )
        });
        if !stalled {
            frames.push(Frame::Data(sse_event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": block_idx}),
            )));
        }
        block_idx += 1;
    }
    if !stalled {
        for call in &reply.tool_calls {
            frames.push(Frame::Data(sse_event(
                "content_block_start",
                json!({"type": "content_block_start", "index": block_idx,
                       "content_block": {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}}),
            )));
            let args = call.arguments.to_string();
            let (first, second) = args.split_at(args.len() / 2);
            for part in [first, second] {
                frames.push(Frame::Data(sse_event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": block_idx,
                           "delta": {"type": "input_json_delta", "partial_json": part}}),
                )));
            }
            frames.push(Frame::Data(sse_event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": block_idx}),
            )));
            block_idx += 1;
        }
        let stop_reason = match reply.finish {
            Finish::Stop => "end_turn",
            Finish::Length => "max_tokens",
            Finish::ToolUse => "tool_use",
            Finish::Refusal => "refusal",
        };
        frames.push(Frame::Data(sse_event(
            "message_delta",
            json!({"type": "message_delta",
                   "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                   "usage": {"output_tokens": reply.usage.output_tokens}}),
        )));
        frames.push(Frame::Data(sse_event("message_stop", json!({"type": "message_stop"}))));
    }
    streaming_response(state, "text/event-stream", frames, reply.chunk_delay)
}

// ---------------------------------------------------------------------------------------------
// Ollama

const OLLAMA_CREATED_AT: &str = "2025-01-01T00:00:00.000000Z";

async fn ollama_chat(State(state): State<Arc<MockState>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    state.record("POST", &uri, &headers, &body);
    let reply = state.next_reply(&body);
    if let Some(status) = reply.status {
        state.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        let message = match status {
            404 => "model not found, try pulling it first",
            _ => "internal server error",
        };
        return json_response(status, json!({"error": message}));
    }
    let model = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("model").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "mock-model".to_owned());
    let line = |message: Value| {
        format!("{}\n", json!({"model": model, "created_at": OLLAMA_CREATED_AT, "message": message, "done": false}))
    };
    let mut frames = Vec::new();
    for t in &reply.thinking_chunks {
        frames.push(Frame::Data(line(json!({"role": "assistant", "content": "", "thinking": t}))));
    }
    let stalled = push_text_frames(&mut frames, &reply, |t| line(json!({"role": "assistant", "content": t})));
    if !stalled {
        if !reply.tool_calls.is_empty() {
            let calls: Vec<Value> = reply
                .tool_calls
                .iter()
                .map(|c| json!({"function": {"name": c.name, "arguments": c.arguments}}))
                .collect();
            frames.push(Frame::Data(line(json!({"role": "assistant", "content": "", "tool_calls": calls}))));
        }
        let done_reason = match reply.finish {
            Finish::Length => "length",
            Finish::Stop | Finish::ToolUse | Finish::Refusal => "stop",
        };
        frames.push(Frame::Data(format!(
            "{}\n",
            json!({
                "model": model, "created_at": OLLAMA_CREATED_AT,
                "message": {"role": "assistant", "content": ""},
                "done": true, "done_reason": done_reason,
                "total_duration": 123_456_789u64, "load_duration": 1_000_000u64,
                "prompt_eval_count": reply.usage.input_tokens, "prompt_eval_duration": 1_000_000u64,
                "eval_count": reply.usage.output_tokens, "eval_duration": 1_000_000u64,
            })
        )));
    }
    streaming_response(state, "application/x-ndjson", frames, reply.chunk_delay)
}

async fn ollama_tags(State(state): State<Arc<MockState>>, uri: Uri, headers: HeaderMap) -> Response {
    state.record("GET", &uri, &headers, &Bytes::new());
    json_response(
        200,
        json!({"models": [{
            "name": "mock-model:latest", "model": "mock-model:latest",
            "modified_at": OLLAMA_CREATED_AT, "size": 1_000_000u64,
            "digest": "0000000000000000000000000000000000000000000000000000000000000000",
            "details": {"format": "gguf", "family": "llama", "parameter_size": "1B", "quantization_level": "Q4_0"}
        }]}),
    )
}

/// Self-tests of the mock: the wire formats are what real clients parse.
#[cfg(test)]
mod tests {
    use super::*;

    fn http() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder().build().expect("reqwest client")
    }

    async fn post(mock: &MockLlm, path: &str, body: Value) -> (u16, String) {
        let resp = within_timeout(
            http().post(format!("{}{path}", mock.base_url())).header("authorization", "Bearer k").json(&body).send(),
        )
        .await
        .expect("POST to mock");
        let status = resp.status().as_u16();
        (status, within_timeout(resp.text()).await.expect("body"))
    }

    async fn within_timeout<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(TIMEOUT, f).await.expect("mock self-test timed out")
    }

    fn sse_data(body: &str) -> Vec<String> {
        body.lines().filter_map(|l| l.strip_prefix("data: ")).map(str::to_owned).collect()
    }

    #[tokio::test]
    async fn openai_stream_carries_reasoning_text_tool_calls_finish_usage_and_done() {
        let mock = MockLlm::start().await;
        mock.enqueue(
            MockReply::text(["Hel", "lo"])
                .thinking(["hmm"])
                .tool_call("call_1", "read_file", json!({"path": "/a"}))
                .usage(3, 4),
        );
        let (status, body) = post(&mock, "/v1/chat/completions", json!({"model": "m", "stream": true})).await;
        assert_eq!(status, 200);
        let data = sse_data(&body);
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
        let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
        let field =
            |name: &str| -> String { chunks.iter().filter_map(|c| c["choices"][0]["delta"][name].as_str()).collect() };
        assert_eq!(field("reasoning_content"), "hmm");
        assert_eq!(field("content"), "Hello");
        let args: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
            .collect();
        assert_eq!(serde_json::from_str::<Value>(&args).unwrap(), json!({"path": "/a"}));
        assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"] == "tool_calls"));
        let usage = chunks.last().unwrap();
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(usage["usage"]["prompt_tokens"], 3);
        assert_eq!(usage["usage"]["completion_tokens"], 4);
        let req = mock.last_model_request();
        assert_eq!(req.path, "/v1/chat/completions");
        assert_eq!(req.header("Authorization"), Some("Bearer k"));
        assert_eq!(req.model(), Some("m"));
    }

    #[tokio::test]
    async fn anthropic_stream_has_the_documented_event_sequence() {
        let mock = MockLlm::start().await;
        mock.enqueue(MockReply::text(["A", "B"]).thinking(["t"]).finish(Finish::Length));
        let (status, body) = post(&mock, "/v1/messages", json!({"model": "m"})).await;
        assert_eq!(status, 200);
        let events: Vec<&str> = body.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
        assert_eq!(
            events,
            [
                "message_start",
                "ping",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        let data: Vec<Value> = sse_data(&body).iter().map(|d| serde_json::from_str(d).unwrap()).collect();
        let text: String = data.iter().filter_map(|d| d["delta"]["text"].as_str()).collect();
        assert_eq!(text, "AB");
        assert!(data.iter().any(|d| d["delta"]["type"] == "signature_delta"));
        assert!(data.iter().any(|d| d["delta"]["stop_reason"] == "max_tokens"));
    }

    #[tokio::test]
    async fn ollama_stream_is_ndjson_ending_with_done() {
        let mock = MockLlm::start().await;
        mock.enqueue(MockReply::text(["x", "y"]).thinking(["t"]).usage(5, 6));
        let (status, body) = post(&mock, "/api/chat", json!({"model": "m"})).await;
        assert_eq!(status, 200);
        let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let text: String = lines.iter().filter_map(|l| l["message"]["content"].as_str()).collect();
        let thinking: String = lines.iter().filter_map(|l| l["message"]["thinking"].as_str()).collect();
        assert_eq!((text.as_str(), thinking.as_str()), ("xy", "t"));
        let last = lines.last().unwrap();
        assert_eq!(last["done"], true);
        assert_eq!(last["done_reason"], "stop");
        assert_eq!((last["prompt_eval_count"].as_u64(), last["eval_count"].as_u64()), (Some(5), Some(6)));
        assert!(lines[..lines.len() - 1].iter().all(|l| l["done"] == false));
    }

    #[tokio::test]
    async fn error_replies_use_each_providers_error_body() {
        let mock = MockLlm::start().await;
        mock.enqueue(MockReply::error(401));
        mock.enqueue(MockReply::error(401));
        mock.enqueue(MockReply::error(500));
        let (s, b) = post(&mock, "/v1/chat/completions", json!({})).await;
        assert_eq!(s, 401);
        assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["error"]["code"], "invalid_api_key");
        let (s, b) = post(&mock, "/v1/messages", json!({})).await;
        assert_eq!(s, 401);
        assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["error"]["type"], "authentication_error");
        let (s, b) = post(&mock, "/api/chat", json!({})).await;
        assert_eq!(s, 500);
        assert!(serde_json::from_str::<Value>(&b).unwrap()["error"].is_string());
        // An empty queue answers with the default reply.
        let (s, b) = post(&mock, "/api/chat", json!({})).await;
        assert_eq!(s, 200);
        assert!(b.contains("Default mock "));
    }

    #[tokio::test]
    async fn a_stalled_stream_dropped_by_the_client_counts_as_aborted() {
        let mock = MockLlm::start().await;
        mock.enqueue(MockReply::text(["one", "two"]).stall_after(1));
        let mut resp =
            within_timeout(http().post(format!("{}/v1/chat/completions", mock.base_url())).json(&json!({})).send())
                .await
                .unwrap();
        // Read until the first text chunk arrived, then hang up.
        let mut seen = String::new();
        while !seen.contains("one") {
            let chunk = within_timeout(resp.chunk()).await.unwrap().expect("stream ended early");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(!seen.contains("two"));
        assert_eq!(mock.n_aborted_streams(), 0);
        drop(resp);
        mock.wait_for_aborted_streams(1).await;
        assert_eq!(mock.n_completed_streams(), 0);
    }
}
