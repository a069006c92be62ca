//! `AcpClient` plays the editor: it spawns `ratchet acp`, writes JSON-RPC lines to its stdin
//! and reads its stdout.
//!
//! A reader task checks that every stdout line is exactly one JSON-RPC 2.0 message and
//! validates it against the official ACP schema (responses by the method of the request
//! they answer, notifications and agent→client requests by their method). A violation is
//! delivered in order with the other messages and fails the test as soon as the test
//! reaches it (or when the client is dropped). stderr is captured and printed when a test
//! panics while the client is alive.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;

use super::schema::{self, Kind};
use super::{TIMEOUT, TestEnv, within};

/// A JSON-RPC error object received from the agent.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    /// The message plus `data` rendered as JSON, for "does the error mention X" checks.
    pub fn full_text(&self) -> String {
        match &self.data {
            Some(d) => format!("{} {d}", self.message),
            None => self.message.clone(),
        }
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error {}: {}", self.code, self.message)?;
        if let Some(d) = &self.data {
            write!(f, " (data: {d})")?;
        }
        Ok(())
    }
}

/// One message from the agent.
#[derive(Debug, Clone)]
pub enum Message {
    Response { id: Value, outcome: Result<Value, RpcError> },
    Notification { method: String, params: Value },
    Request { id: Value, method: String, params: Value },
}

impl Message {
    /// The `session/update` params, if this is one.
    pub fn as_update(&self) -> Option<&Value> {
        match self {
            Message::Notification { method, params } if method == "session/update" => Some(params),
            _ => None,
        }
    }
}

/// The outcome of one `session/prompt`: the updates streamed before the response, and
/// the stop reason or the error.
#[derive(Debug, Clone)]
pub struct Turn {
    pub updates: Vec<Value>,
    pub outcome: Result<String, RpcError>,
    /// Every message before the response, in order: the updates interleaved with the
    /// agent→client requests (which were answered automatically).
    pub messages: Vec<Message>,
}

impl Turn {
    /// The stop reason; panics (with the error) if the prompt failed.
    pub fn stop_reason(&self) -> &str {
        match &self.outcome {
            Ok(s) => s,
            Err(e) => panic!("session/prompt failed with {e}; updates: {:#?}", self.updates),
        }
    }

    /// The error; panics if the prompt succeeded.
    pub fn error(&self) -> &RpcError {
        match &self.outcome {
            Ok(s) => panic!(
                "session/prompt succeeded with stopReason {s:?}, expected an error; updates: {:#?}",
                self.updates
            ),
            Err(e) => e,
        }
    }

    pub fn text(&self) -> String {
        super::agent_text(&self.updates)
    }

    pub fn thoughts(&self) -> String {
        super::thought_text(&self.updates)
    }

    pub fn of_kind(&self, kind: &str) -> Vec<&Value> {
        super::updates_of(&self.updates, kind)
    }

    /// The agent→client requests of this turn with the given method (params), in order.
    pub fn requests(&self, method: &str) -> Vec<&Value> {
        self.messages
            .iter()
            .filter_map(|m| match m {
                Message::Request { method: m, params, .. } if m == method => Some(params),
                _ => None,
            })
            .collect()
    }

    /// The tool calls of this turn.
    pub fn tool_calls(&self) -> Vec<super::ToolCallView> {
        super::tool_calls(&self.updates)
    }
}

/// How the client answers `session/request_permission`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermissionPolicy {
    /// Select the `allow_once` option (else `allow_always`).
    AllowOnce,
    /// Select the `reject_once` option (else `reject_always`).
    RejectOnce,
    /// Answer `{outcome: "cancelled"}`.
    Cancelled,
    /// Select the `allow_always` option.
    AllowAlways,
    /// Select the `reject_always` option.
    RejectAlways,
}

/// How a test's [`RequestHandler`] answers one agent→client request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A successful response with this result.
    Result(Value),
    /// An error response.
    Error(i64, String),
    /// Do not answer (the request stays open; answer later with [`AcpClient::respond`]).
    Silence,
}

/// A test's own answers to agent→client requests (fs, terminal, permissions), consulted
/// before the built-in behaviour. Gets the method and params; `None` falls back to the
/// default (permission policy, or a -32601 error).
pub type RequestHandler = Box<dyn FnMut(&str, &Value) -> Option<Reply> + Send>;

enum Incoming {
    Message(Message),
    Violation(String),
}

/// What the reader task needs to know about our side of the conversation.
#[derive(Default)]
struct Shared {
    /// Requests we sent and have not seen a response for: id (as JSON text) → method.
    pending: HashMap<String, Option<String>>,
    /// Responses already seen (to catch duplicates).
    answered: HashMap<String, ()>,
    /// The `clientCapabilities` we sent in `initialize`.
    client_caps: Value,
}

pub struct AcpClient {
    child: Child,
    stdin: Option<ChildStdin>,
    incoming: mpsc::UnboundedReceiver<Incoming>,
    shared: Arc<Mutex<Shared>>,
    stderr: Arc<Mutex<String>>,
    next_id: u64,
    /// Messages read while waiting for something else, not yet handed out.
    unclaimed: VecDeque<Message>,
    /// Responses read while waiting for another one, by id (JSON text).
    stashed_responses: HashMap<String, Result<Value, RpcError>>,
    /// Every agent→client request seen, in order.
    pub agent_requests: Vec<(String, Value)>,
    pub permission_policy: PermissionPolicy,
    /// Every message ever received, in order (for debugging output).
    log: Vec<String>,
    /// Answers agent→client requests before the built-in behaviour (see [`RequestHandler`]).
    request_handler: Option<RequestHandler>,
    /// Every raw stdout line, in order (as written by the agent, without the newline).
    stdout_lines: Arc<Mutex<Vec<String>>>,
}

impl AcpClient {
    /// Spawns the binary with `args` in `env` (cleared environment plus the env's vars).
    pub async fn spawn(env: &TestEnv, args: &[&str]) -> AcpClient {
        AcpClient::spawn_command(env.command(args))
    }

    /// Spawns any command as the agent (used by the harness self-tests with a fake agent).
    pub fn spawn_command(mut cmd: tokio::process::Command) -> AcpClient {
        cmd.kill_on_drop(true);
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
        let stdin = child.stdin.take().expect("child stdin");
        let stdout = child.stdout.take().expect("child stdout");
        let stderr_pipe = child.stderr.take().expect("child stderr");

        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let stderr = stderr.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr_pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut s = stderr.lock().unwrap();
                    s.push_str(&line);
                    s.push('\n');
                    // Keep the tail bounded.
                    if s.len() > 200_000 {
                        let cut = s.len() - 100_000;
                        let cut = (cut..s.len()).find(|i| s.is_char_boundary(*i)).unwrap();
                        s.drain(..cut);
                    }
                }
            });
        }

        let shared = Arc::new(Mutex::new(Shared::default()));
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::unbounded_channel();
        {
            let shared = shared.clone();
            let stdout_lines = stdout_lines.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stdout);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match reader.read_until(b'\n', &mut buf).await {
                        Ok(0) => break,
                        Ok(_) => {
                            let raw = String::from_utf8_lossy(&buf);
                            stdout_lines.lock().unwrap().push(raw.trim_end_matches(['\n', '\r']).to_owned());
                        }
                        Err(e) => {
                            let _ = tx.send(Incoming::Violation(format!("reading stdout: {e}")));
                            break;
                        }
                    }
                    let incoming = match std::str::from_utf8(&buf) {
                        Err(_) => {
                            Incoming::Violation(format!("stdout line is not UTF-8: {}", String::from_utf8_lossy(&buf)))
                        }
                        Ok(line) if !line.ends_with('\n') => Incoming::Violation(format!(
                            "stdout ended with a partial line (no trailing newline): {line:?}"
                        )),
                        Ok(line) => {
                            let line = line.strip_suffix('\n').unwrap();
                            let line = line.strip_suffix('\r').unwrap_or(line);
                            let mut shared = shared.lock().unwrap();
                            match check_line(line, &mut shared) {
                                Ok(msg) => Incoming::Message(msg),
                                Err(why) => Incoming::Violation(format!(
                                    "stdout line violates ACP/JSON-RPC: {why}\n  line: {line}"
                                )),
                            }
                        }
                    };
                    if tx.send(incoming).is_err() {
                        break;
                    }
                }
            });
        }

        AcpClient {
            child,
            stdin: Some(stdin),
            incoming: rx,
            shared,
            stderr,
            next_id: 1,
            unclaimed: VecDeque::new(),
            stashed_responses: HashMap::new(),
            agent_requests: Vec::new(),
            permission_policy: PermissionPolicy::AllowOnce,
            log: Vec::new(),
            request_handler: None,
            stdout_lines,
        }
    }

    /// The agent's stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Every raw line the agent wrote to stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout_lines.lock().unwrap().clone()
    }

    /// Installs a handler that answers agent→client requests before the built-in behaviour
    /// (the permission policy, or -32601 for anything else). Requests it answers are still
    /// recorded in [`agent_requests`](Self::agent_requests).
    pub fn set_request_handler(&mut self, handler: impl FnMut(&str, &Value) -> Option<Reply> + Send + 'static) {
        self.request_handler = Some(Box::new(handler));
    }

    // -- writing ------------------------------------------------------------------------------

    /// Writes one line (a newline is appended) to the agent's stdin.
    pub async fn send_raw_line(&mut self, line: &str) {
        assert!(!line.contains('\n'), "a raw line must not contain a newline");
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        within("writing to the agent's stdin", async {
            stdin.write_all(&bytes).await?;
            stdin.flush().await
        })
        .await
        .unwrap_or_else(|e| panic!("cannot write to the agent's stdin: {e}\n{}", self.stderr()));
    }

    /// Registers `id` as a request this client sent (for raw bytes written with
    /// [`send_raw_bytes`](Self::send_raw_bytes)), so its response is expected; `method`, if
    /// given, schema-checks the result.
    pub fn expect_response(&self, id: &Value, method: Option<&str>) {
        self.shared.lock().unwrap().pending.insert(id.to_string(), method.map(str::to_owned));
    }

    /// Writes raw bytes (not necessarily UTF-8, not necessarily whole lines) to the agent's stdin.
    pub async fn send_raw_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        within("writing to the agent's stdin", async {
            stdin.write_all(bytes).await?;
            stdin.flush().await
        })
        .await
        .unwrap_or_else(|e| panic!("cannot write to the agent's stdin: {e}\n{}", self.stderr()));
    }

    /// The next response, whatever its id (agent→client requests are answered on the way).
    pub async fn next_response(&mut self) -> (Value, Result<Value, RpcError>) {
        loop {
            match self.next_message().await {
                Message::Response { id, outcome } => return (id, outcome),
                Message::Request { id, method, params } => self.answer_request(id, method, params).await,
                Message::Notification { .. } => {}
            }
        }
    }

    /// Writes a raw line that is a request with the given `id`, so its response is expected
    /// (not reported as "a response to an id we never sent"). Its result is not schema-checked.
    pub async fn send_raw_request(&mut self, line: &str, id: Value) {
        self.shared.lock().unwrap().pending.insert(id.to_string(), None);
        self.send_raw_line(line).await;
    }

    /// Sends a request and returns its id without waiting for the response.
    pub async fn send_request(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if method == "initialize" {
            self.shared.lock().unwrap().client_caps = params.get("clientCapabilities").cloned().unwrap_or(Value::Null);
        }
        self.shared.lock().unwrap().pending.insert(json!(id).to_string(), Some(method.to_owned()));
        let line = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw_line(&line.to_string()).await;
        id
    }

    /// Sends a notification.
    pub async fn notify(&mut self, method: &str, params: Value) {
        let line = json!({"jsonrpc": "2.0", "method": method, "params": params});
        self.send_raw_line(&line.to_string()).await;
    }

    /// Answers an agent→client request.
    pub async fn respond(&mut self, id: &Value, result: Value) {
        let line = json!({"jsonrpc": "2.0", "id": id, "result": result});
        self.send_raw_line(&line.to_string()).await;
    }

    pub async fn respond_error(&mut self, id: &Value, code: i64, message: &str) {
        let line = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
        self.send_raw_line(&line.to_string()).await;
    }

    // -- reading ------------------------------------------------------------------------------

    /// The next message from the agent, in arrival order (including ones read earlier but
    /// not handed out). Panics on a protocol violation, on EOF and on timeout.
    pub async fn next_message(&mut self) -> Message {
        self.next_message_before(tokio::time::Instant::now() + TIMEOUT).await
    }

    /// Like [`next_message`](Self::next_message) with an explicit deadline.
    async fn next_message_before(&mut self, deadline: tokio::time::Instant) -> Message {
        if let Some(m) = self.unclaimed.pop_front() {
            return m;
        }
        match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
            Ok(Some(Incoming::Message(m))) => {
                self.log.push(format!("{m:?}"));
                m
            }
            Ok(Some(Incoming::Violation(v))) => panic!("{v}"),
            Ok(None) => {
                let status = self.child.try_wait().ok().flatten();
                panic!(
                    "the agent closed stdout (exit status: {status:?}) while a message was expected;\n\
                     messages so far:\n{}",
                    self.log_tail()
                )
            }
            Err(_) => panic!(
                "timed out after {TIMEOUT:?} waiting for a message from the agent;\nmessages so far:\n{}",
                self.log_tail()
            ),
        }
    }

    fn log_tail(&self) -> String {
        let start = self.log.len().saturating_sub(30);
        self.log[start..].join("\n")
    }

    /// Answers an agent→client request read with [`next_message`](Self::next_message) the
    /// way the automatic loops do (request handler, then permission policy, else -32601).
    pub async fn answer_request(&mut self, id: Value, method: String, params: Value) {
        self.auto_answer(id, method, params).await;
    }

    /// Handles an agent→client request the way an editor would, so turns do not hang.
    async fn auto_answer(&mut self, id: Value, method: String, params: Value) {
        self.agent_requests.push((method.clone(), params.clone()));
        if let Some(handler) = self.request_handler.as_mut()
            && let Some(reply) = handler(&method, &params)
        {
            match reply {
                Reply::Result(result) => self.respond(&id, result).await,
                Reply::Error(code, message) => self.respond_error(&id, code, &message).await,
                Reply::Silence => {}
            }
            return;
        }
        if method == "session/request_permission" {
            let options = params["options"].as_array().cloned().unwrap_or_default();
            let pick = |kinds: &[&str]| {
                kinds.iter().find_map(|k| options.iter().find(|o| o["kind"] == *k).map(|o| o["optionId"].clone()))
            };
            let chosen = match self.permission_policy {
                PermissionPolicy::AllowOnce => pick(&["allow_once", "allow_always"]),
                PermissionPolicy::RejectOnce => pick(&["reject_once", "reject_always"]),
                PermissionPolicy::Cancelled => None,
                PermissionPolicy::AllowAlways => pick(&["allow_always"]),
                PermissionPolicy::RejectAlways => pick(&["reject_always"]),
            };
            let outcome = match chosen {
                Some(option_id) => json!({"outcome": "selected", "optionId": option_id}),
                None => json!({"outcome": "cancelled"}),
            };
            self.respond(&id, json!({"outcome": outcome})).await;
        } else {
            self.respond_error(&id, -32601, &format!("test client does not implement {method}")).await;
        }
    }

    /// Reads until the response to `id`, returning the messages that arrived before it (agent
    /// requests are answered automatically and included) and the response.
    pub async fn wait_response(&mut self, id: u64) -> (Vec<Message>, Result<Value, RpcError>) {
        self.wait_response_to(&json!(id)).await
    }

    /// Like [`wait_response`](Self::wait_response) for an arbitrary id (string, null).
    pub async fn wait_response_to(&mut self, id: &Value) -> (Vec<Message>, Result<Value, RpcError>) {
        let key = id.to_string();
        if let Some(r) = self.stashed_responses.remove(&key) {
            return (Vec::new(), r);
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let mut before = Vec::new();
        loop {
            let msg = self.next_message_before(deadline).await;
            match msg {
                Message::Response { id: rid, outcome } => {
                    if rid == *id {
                        return (before, outcome);
                    }
                    self.stashed_responses.insert(rid.to_string(), outcome);
                }
                Message::Request { id, method, params } => {
                    before.push(Message::Request { id: id.clone(), method: method.clone(), params: params.clone() });
                    self.auto_answer(id, method, params).await;
                }
                other => before.push(other),
            }
        }
    }

    /// Sends a request and waits for its response. Messages that arrive before the response
    /// stay available to [`next_message`](Self::next_message) and [`next_update`](Self::next_update).
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, RpcError> {
        let id = self.send_request(method, params).await;
        let (before, outcome) = self.wait_response(id).await;
        // Keep them, in order, ahead of anything read later.
        for m in before.into_iter().rev() {
            if !matches!(m, Message::Request { .. }) {
                self.unclaimed.push_front(m);
            }
        }
        outcome
    }

    /// Like [`request`](Self::request), but panics on an error response.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        match self.request(method, params.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{method} {params} failed: {e}"),
        }
    }

    /// Sends a request and returns the `session/update` params that arrived before the
    /// response, plus the response.
    pub async fn request_collect(&mut self, method: &str, params: Value) -> (Vec<Value>, Result<Value, RpcError>) {
        let id = self.send_request(method, params).await;
        let (before, outcome) = self.wait_response(id).await;
        let updates = before.iter().filter_map(Message::as_update).cloned().collect();
        (updates, outcome)
    }

    /// The next `session/update` params. Responses read on the way are stashed for
    /// [`wait_response`](Self::wait_response); agent requests are answered.
    pub async fn next_update(&mut self) -> Value {
        self.next_update_before(tokio::time::Instant::now() + TIMEOUT).await
    }

    async fn next_update_before(&mut self, deadline: tokio::time::Instant) -> Value {
        loop {
            match self.next_message_before(deadline).await {
                Message::Notification { method, params } if method == "session/update" => {
                    return params;
                }
                Message::Response { id, outcome } => {
                    self.stashed_responses.insert(id.to_string(), outcome);
                }
                Message::Request { id, method, params } => {
                    self.auto_answer(id, method, params).await;
                }
                Message::Notification { .. } => {}
            }
        }
    }

    /// Reads updates until one satisfies `pred`; returns all updates read, the matching one last.
    pub async fn updates_until(&mut self, mut pred: impl FnMut(&Value) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let u = self.next_update_before(deadline).await;
            let done = pred(&u);
            seen.push(u);
            if done {
                return seen;
            }
        }
    }

    /// Reads updates until the agent's answer text (concatenated `agent_message_chunk`s of
    /// `session_id`) contains `text`; returns the updates read.
    pub async fn wait_for_agent_text(&mut self, session_id: &str, text: &str) -> Vec<Value> {
        let mut so_far = String::new();
        self.updates_until(|u| {
            if u["sessionId"] == session_id
                && super::update_kind(u) == "agent_message_chunk"
                && let Some(t) = u["update"]["content"]["text"].as_str()
            {
                so_far.push_str(t);
            }
            so_far.contains(text)
        })
        .await
    }

    // -- ACP helpers --------------------------------------------------------------------------

    /// `initialize` with protocol version 1 and no client capabilities beyond the defaults.
    pub async fn initialize(&mut self) -> Value {
        self.initialize_with(json!({
            "protocolVersion": 1,
            "clientCapabilities": {"fs": {"readTextFile": false, "writeTextFile": false}, "terminal": false},
            "clientInfo": {"name": "ratchet-it", "title": "ratchet integration tests", "version": "0.0.0"}
        }))
        .await
    }

    pub async fn initialize_with(&mut self, params: Value) -> Value {
        self.call("initialize", params).await
    }

    /// `initialize` with protocol version 1 advertising exactly these client capabilities.
    pub async fn initialize_with_caps(&mut self, read_text_file: bool, write_text_file: bool, terminal: bool) -> Value {
        self.initialize_with(json!({
            "protocolVersion": 1,
            "clientCapabilities": {
                "fs": {"readTextFile": read_text_file, "writeTextFile": write_text_file},
                "terminal": terminal
            },
            "clientInfo": {"name": "ratchet-it", "title": "ratchet integration tests", "version": "0.0.0"}
        }))
        .await
    }

    /// `session/set_mode`; panics on an error.
    pub async fn set_mode(&mut self, session_id: &str, mode_id: &str) {
        self.call("session/set_mode", json!({"sessionId": session_id, "modeId": mode_id})).await;
    }

    /// `session/new` in `cwd`; returns the whole result.
    pub async fn new_session_full(&mut self, cwd: &str) -> Value {
        self.call("session/new", json!({"cwd": cwd, "mcpServers": []})).await
    }

    /// `session/new` in `cwd`; returns the session id.
    pub async fn new_session(&mut self, cwd: &str) -> String {
        let result = self.new_session_full(cwd).await;
        result["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("session/new result has no sessionId: {result}"))
            .to_owned()
    }

    /// Sends `session/prompt` with `blocks` and collects the turn.
    pub async fn prompt(&mut self, session_id: &str, blocks: Value) -> Turn {
        let id = self.send_request("session/prompt", json!({"sessionId": session_id, "prompt": blocks})).await;
        self.finish_turn(id).await
    }

    /// Waits for the response to the prompt request `id` and collects its updates.
    pub async fn finish_turn(&mut self, id: u64) -> Turn {
        let (before, outcome) = self.wait_response(id).await;
        let updates = before.iter().filter_map(Message::as_update).cloned().collect();
        let outcome = outcome.map(|r| {
            r["stopReason"].as_str().unwrap_or_else(|| panic!("prompt result has no stopReason: {r}")).to_owned()
        });
        Turn { updates, outcome, messages: before }
    }

    /// Sends a one-text-block prompt and collects the turn.
    pub async fn prompt_text(&mut self, session_id: &str, text: &str) -> Turn {
        self.prompt(session_id, json!([{"type": "text", "text": text}])).await
    }

    /// Sends `session/cancel` for `session_id`.
    pub async fn cancel(&mut self, session_id: &str) {
        self.notify("session/cancel", json!({"sessionId": session_id})).await;
    }

    // -- process control ----------------------------------------------------------------------

    /// Closes stdin and waits (with the global timeout) for the agent to exit. Every message
    /// still on stdout is validated.
    pub async fn shutdown(mut self) -> ExitStatus {
        self.stdin = None;
        let status = within("the agent to exit after stdin EOF", self.child.wait()).await.expect("wait for agent");
        // Drain what is left; violations panic.
        while let Some(incoming) = within("stdout EOF", self.incoming.recv()).await {
            if let Incoming::Violation(v) = incoming {
                panic!("{v}");
            }
        }
        status
    }

    /// The response to `id` among what the agent wrote before its stdout closed, or `None` if
    /// it closed without one (a killed agent). Agent→client requests on the way are skipped.
    pub async fn response_before_exit(&mut self, id: u64) -> Option<Result<Value, RpcError>> {
        let want = json!(id);
        if let Some(r) = self.stashed_responses.remove(&want.to_string()) {
            return Some(r);
        }
        while let Some(m) = self.unclaimed.pop_front() {
            if let Message::Response { id: rid, outcome } = m
                && rid == want
            {
                return Some(outcome);
            }
        }
        loop {
            match within("the agent's stdout to close", self.incoming.recv()).await? {
                Incoming::Message(Message::Response { id: rid, outcome }) if rid == want => {
                    return Some(outcome);
                }
                Incoming::Message(_) => {}
                Incoming::Violation(v) => panic!("{v}"),
            }
        }
    }

    /// Waits (with the global timeout) for the agent process to exit, e.g. after a SIGKILL
    /// sent by pid.
    pub async fn wait_exit(&mut self) -> ExitStatus {
        within("the agent to exit", self.child.wait()).await.expect("wait for agent")
    }

    /// Closes the agent's stdin (end of file), keeping the client to read what follows.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Kills the agent with SIGKILL (no chance to flush or clean up) and waits for it.
    pub async fn kill9(mut self) {
        within("kill -9 of the agent", self.child.kill()).await.expect("kill agent");
    }
}

impl Drop for AcpClient {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- ratchet stderr (pid {:?}) -----\n{}\n----- end of ratchet stderr -----",
                self.child.id(),
                self.stderr()
            );
            return;
        }
        // Report a violation that arrived after the test stopped reading.
        while let Ok(incoming) = self.incoming.try_recv() {
            if let Incoming::Violation(v) = incoming {
                eprintln!("----- ratchet stderr -----\n{}", self.stderr());
                panic!("{v}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Line checks

/// Checks one stdout line: a single JSON-RPC 2.0 message that matches the ACP schema.
fn check_line(line: &str, shared: &mut Shared) -> Result<Message, String> {
    if line.trim().is_empty() {
        return Err("empty line on stdout".to_owned());
    }
    let value: Value = serde_json::from_str(line).map_err(|e| format!("stdout line is not JSON ({e})"))?;
    let Value::Object(obj) = &value else {
        return Err("not a single JSON-RPC object (batches or bare values must not be sent)".to_owned());
    };
    if obj.get("jsonrpc") != Some(&json!("2.0")) {
        return Err("`jsonrpc` must be \"2.0\"".to_owned());
    }
    let id = obj.get("id");
    if let Some(id) = id
        && !(id.is_string() || id.is_null() || id.is_i64() || id.is_u64())
    {
        return Err(format!("`id` must be a string, an integer or null, got {id}"));
    }

    if let Some(method) = obj.get("method") {
        let method = method.as_str().ok_or("`method` must be a string")?.to_owned();
        if obj.contains_key("result") || obj.contains_key("error") {
            return Err("a message with `method` must not carry `result`/`error`".to_owned());
        }
        let params = obj.get("params").cloned().unwrap_or(Value::Null);
        if !(params.is_object() || params.is_array() || params.is_null()) {
            return Err("`params` must be an object or an array".to_owned());
        }
        match id {
            None => {
                match schema::agent_notification_kind(&method) {
                    Some(kind) => schema::check(kind, &params)?,
                    None if method.starts_with('_') => {}
                    None => return Err(format!("unknown agent→client notification `{method}`")),
                }
                Ok(Message::Notification { method, params })
            }
            Some(id) => {
                if id.is_null() {
                    return Err("a request must not have a null id".to_owned());
                }
                match schema::agent_request_kind(&method) {
                    Some(kind) => schema::check(kind, &params)?,
                    None if method.starts_with('_') => {}
                    None => return Err(format!("unknown agent→client request `{method}`")),
                }
                check_capability(&method, &shared.client_caps)?;
                Ok(Message::Request { id: id.clone(), method, params })
            }
        }
    } else {
        let id = id.ok_or("a message with neither `method` nor `id`")?.clone();
        let has_result = obj.contains_key("result");
        let has_error = obj.contains_key("error");
        if has_result == has_error {
            return Err("a response must carry exactly one of `result` and `error`".to_owned());
        }
        let key = id.to_string();
        let method = if id.is_null() {
            // Allowed for errors about requests whose id could not be read (parse errors).
            if has_result {
                return Err("a successful response must not have a null id".to_owned());
            }
            None
        } else {
            match shared.pending.remove(&key) {
                Some(m) => m,
                None if shared.answered.contains_key(&key) => {
                    return Err(format!("second response to request id {key}"));
                }
                None => return Err(format!("response to id {key}, which the client never sent")),
            }
        };
        if !id.is_null() {
            shared.answered.insert(key, ());
        }
        let outcome = if has_error {
            let err = &obj["error"];
            schema::check(Kind::ErrorObject, err)?;
            Err(RpcError {
                code: err["code"].as_i64().unwrap(),
                message: err["message"].as_str().unwrap().to_owned(),
                data: err.get("data").cloned(),
            })
        } else {
            let result = obj["result"].clone();
            if let Some(kind) = method.as_deref().and_then(schema::response_kind) {
                schema::check(kind, &result)
                    .map_err(|e| format!("result of {} {e}", method.as_deref().unwrap_or("?")))?;
            }
            Ok(result)
        };
        Ok(Message::Response { id, outcome })
    }
}

/// The agent must only call fs/terminal/elicitation methods the client advertised.
fn check_capability(method: &str, caps: &Value) -> Result<(), String> {
    let needed = match method {
        "fs/read_text_file" => caps["fs"]["readTextFile"] == true,
        "fs/write_text_file" => caps["fs"]["writeTextFile"] == true,
        m if m.starts_with("terminal/") => caps["terminal"] == true,
        "elicitation/create" => caps["elicitation"].is_object(),
        _ => true,
    };
    if needed {
        Ok(())
    } else {
        Err(format!(
            "the agent called `{method}` although the client did not advertise the capability \
             (clientCapabilities: {caps})"
        ))
    }
}

/// Self-tests of the client's checks against a fake agent (a shell script with canned lines),
/// so a violation by the real agent is known to fail a test.
#[cfg(test)]
mod tests {
    use super::*;

    /// A fake agent: for each step, read one line from stdin and print the step's lines.
    fn fake_agent(steps: &[&[&str]]) -> AcpClient {
        let mut script = String::new();
        for lines in steps {
            script.push_str("read -r l\n");
            for line in *lines {
                assert!(!line.contains('\''));
                script.push_str(&format!("printf '%s\\n' '{line}'\n"));
            }
        }
        script.push_str("cat >/dev/null\n");
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c").arg(script);
        AcpClient::spawn_command(cmd)
    }

    const INIT_OK: &str =
        r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":1,"agentCapabilities":{},"authMethods":[]}}"#;

    /// Runs `f` on its own task and returns its panic message (panics if it did not panic).
    async fn panic_message<F>(f: F) -> String
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let err = tokio::spawn(f).await.expect_err("expected the client to panic");
        let payload = err.into_panic();
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn accepts_well_formed_traffic_and_collects_a_turn() {
        let mut client = fake_agent(&[
            &[INIT_OK],
            &[
                r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s","update":{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"hi"}}}}"#,
                r#"{"jsonrpc":"2.0","id":2,"result":{"stopReason":"end_turn"}}"#,
            ],
        ]);
        client.initialize().await;
        let turn = client.prompt_text("s", "hello").await;
        assert_eq!(turn.stop_reason(), "end_turn");
        assert_eq!(turn.text(), "hi");
    }

    #[tokio::test]
    async fn rejects_a_stdout_line_that_is_not_json() {
        let msg = panic_message(async {
            let mut client = fake_agent(&[&[INIT_OK], &["Starting ratchet v0.1.0..."]]);
            client.initialize().await;
            let _ = client.request("session/list", json!({})).await;
        })
        .await;
        assert!(msg.contains("not JSON"), "{msg}");
    }

    #[tokio::test]
    async fn rejects_a_result_that_violates_the_schema() {
        let msg = panic_message(async {
            let mut client =
                fake_agent(&[&[INIT_OK], &[r#"{"jsonrpc":"2.0","id":2,"result":{"stopReason":"bogus"}}"#]]);
            client.initialize().await;
            client.prompt_text("s", "x").await;
        })
        .await;
        assert!(msg.contains("PromptResponse"), "{msg}");
    }

    #[tokio::test]
    async fn rejects_a_session_update_that_violates_the_schema() {
        let msg = panic_message(async {
            let mut client = fake_agent(&[
                &[INIT_OK],
                &[r#"{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"s","update":{"sessionUpdate":"agent_message_chunk"}}}"#],
            ]);
            client.initialize().await;
            client.prompt_text("s", "x").await;
        })
        .await;
        assert!(msg.contains("SessionNotification"), "{msg}");
    }

    #[tokio::test]
    async fn rejects_an_fs_request_the_client_did_not_advertise() {
        let msg = panic_message(async {
            let mut client = fake_agent(&[
                &[INIT_OK],
                &[r#"{"jsonrpc":"2.0","id":"a1","method":"fs/read_text_file","params":{"sessionId":"s","path":"/etc/hosts"}}"#],
            ]);
            client.initialize().await;
            client.prompt_text("s", "x").await;
        })
        .await;
        assert!(msg.contains("did not advertise"), "{msg}");
    }

    #[tokio::test]
    async fn rejects_a_wrong_jsonrpc_version_and_responses_to_unknown_ids() {
        let msg = panic_message(async {
            let mut client = fake_agent(&[&[r#"{"jsonrpc":"1.0","id":1,"result":{"protocolVersion":1}}"#]]);
            client.initialize().await;
        })
        .await;
        assert!(msg.contains("jsonrpc"), "{msg}");
        let msg = panic_message(async {
            let mut client = fake_agent(&[&[r#"{"jsonrpc":"2.0","id":99,"result":{}}"#]]);
            client.initialize().await;
        })
        .await;
        assert!(msg.contains("never sent"), "{msg}");
    }
}
