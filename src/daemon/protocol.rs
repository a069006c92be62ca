//! The daemon's control API on the wire: method names, payloads, stream items, error codes.
//!
//! JSON-RPC 2.0 over a WebSocket on the daemon's Unix socket (jsonrpsee on both ends). Every
//! method takes one JSON object as its params (by name). The API mirrors
//! [`EngineApi`](crate::engine::EngineApi) one method per call (its `status` is part of
//! `daemon.health`, its `shutdown` is the client's own), plus `daemon.*` and two
//! subscriptions: `turn.send` (a turn as its starter sees it, including the editor calls the
//! turn's tools make: [`TurnItem::HostCall`]) and `session.subscribe` (live sharing).
//!
//! Engine errors cross the wire as codes plus `data.kind` ([`engine_error_to_rpc`]) and are
//! rebuilt on the client ([`engine_error_from_rpc`]) with the same message, so the ACP bridge
//! answers editors with the same codes in daemon and stand-alone mode.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::engine::mcp::McpServerConfig;
use crate::engine::store::StoreError;
use crate::engine::tools::{CommandRequest, TerminalRun};
use crate::engine::{ChatEvent, ChildSpec, ContentPart, EngineError, PermissionAnswer, QuestionAnswer};

/// Bumped whenever a method, payload or item changes incompatibly; client and daemon must agree.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest message either side sends or accepts. jsonrpsee's default (10 MiB) is too small for
/// the history of a long session with big tool outputs and images; the socket is local.
pub const MAX_MESSAGE_BYTES: u32 = 256 * 1024 * 1024;

/// Method names.
pub mod method {
    pub const HEALTH: &str = "daemon.health";
    pub const SHUTDOWN: &str = "daemon.shutdown";
    pub const RELOAD: &str = "daemon.reload";
    pub const CREATE: &str = "session.create";
    pub const CREATE_CHILD: &str = "session.create_child";
    pub const OPEN: &str = "session.open";
    pub const CLOSE: &str = "session.close";
    pub const GET: &str = "session.get";
    pub const LIST: &str = "session.list";
    pub const HISTORY: &str = "session.history";
    pub const PLAN: &str = "session.plan";
    pub const SET_MODE: &str = "session.set_mode";
    pub const SET_MODEL: &str = "session.set_model";
    pub const DELETE: &str = "session.delete";
    pub const KILL: &str = "session.kill";
    pub const MODEL_OPTIONS: &str = "engine.model_options";
    /// Named provider entries; params [`ProviderSpec`](crate::engine::ProviderSpec) for
    /// `add`, [`NameParams`](super::NameParams) for the rest.
    pub const PROVIDER_LIST: &str = "provider.list";
    pub const PROVIDER_ADD: &str = "provider.add";
    pub const PROVIDER_REMOVE: &str = "provider.remove";
    pub const PROVIDER_DEFAULT: &str = "provider.default";
    pub const PROVIDER_TEST: &str = "provider.test";
    pub const CANCEL: &str = "turn.cancel";
    pub const ANSWER_PERMISSION: &str = "turn.answer_permission";
    pub const ANSWER_QUESTION: &str = "turn.answer_question";
    pub const HOST_REPLY: &str = "turn.host_reply";
    /// Subscription: starts a turn; items are [`TurnItem`](super::TurnItem)s.
    pub const SEND: &str = "turn.send";
    pub const SEND_ITEM: &str = "turn.item";
    pub const SEND_UNSUBSCRIBE: &str = "turn.detach";
    /// Subscription: a session's live events; items are [`SessionEvent`](crate::engine::SessionEvent)s.
    pub const SUBSCRIBE: &str = "session.subscribe";
    pub const SUBSCRIBE_ITEM: &str = "session.event";
    pub const SUBSCRIBE_UNSUBSCRIBE: &str = "session.unsubscribe";
    /// Starts a team in the daemon (it outlives the caller); params
    /// [`StartTeam`](crate::orchestra::teams::StartTeam), result
    /// [`TeamRecord`](crate::orchestra::teams::TeamRecord).
    pub const TEAM_START: &str = "team.start";
}

/// What `daemon.health` answers.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Health {
    pub version: String,
    pub protocol: u32,
    pub pid: u32,
    pub uptime_ms: u64,
    /// Sessions in the store.
    pub sessions: u64,
    pub running_turns: usize,
    pub socket: PathBuf,
}

/// `session.create`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct CreateParams {
    pub cwd: PathBuf,
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    #[serde(default)]
    pub mcp: Vec<McpServerConfig>,
}

/// `session.open`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct OpenParams {
    pub id: String,
    pub cwd: PathBuf,
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    #[serde(default)]
    pub mcp: Vec<McpServerConfig>,
}

/// Methods that name one session: close, get, history, plan, delete, kill, cancel, subscribe.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct IdParams {
    pub id: String,
}

/// `provider.remove`, `provider.default`, `provider.test`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct NameParams {
    pub name: String,
}

/// `session.set_mode` / `session.set_model`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SetParams {
    pub id: String,
    pub value: String,
}

/// `engine.model_options`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ModelOptionsParams {
    pub current: String,
}

/// `turn.answer_permission`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct AnswerParams {
    pub id: String,
    pub request_id: u64,
    pub answer: PermissionAnswer,
}

/// `turn.answer_question`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct QuestionAnswerParams {
    pub id: String,
    pub request_id: u64,
    pub answer: QuestionAnswer,
}

/// `session.create_child`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ChildParams {
    pub parent: String,
    #[serde(default)]
    pub spec: ChildSpec,
}

/// What the prompting client's editor can do for the turn's tools.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostCaps {
    pub can_read: bool,
    pub can_write: bool,
    pub can_run: bool,
}

/// `turn.send`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SendParams {
    pub id: String,
    pub content: Vec<ContentPart>,
    #[serde(default)]
    pub host: HostCaps,
}

/// One item of a `turn.send` stream.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum TurnItem {
    /// Always first: the turn's id (as in `session.subscribe` events).
    Started { turn: u64 },
    /// An engine event; the stream ends after `Complete` or `Error`.
    Event(ChatEvent),
    /// A tool wants the editor: run `op` and answer with `turn.host_reply`.
    HostCall { call_id: u64, op: HostOp },
    /// The turn no longer needs host call `call_id` (it was cancelled): stop it and reply.
    HostCancel { call_id: u64 },
}

/// An editor operation a tool asks for (the engine's [`Host`](crate::engine::tools::Host) methods).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum HostOp {
    ReadTextFile { path: PathBuf, line: Option<u32>, limit: Option<u32> },
    WriteTextFile { path: PathBuf, content: String },
    RunCommand { command: String, cwd: PathBuf, timeout_ms: u64, output_limit: usize },
}

impl HostOp {
    /// The wire form of a command request.
    pub fn run(request: &CommandRequest) -> HostOp {
        HostOp::RunCommand {
            command: request.command.clone(),
            cwd: request.cwd.clone(),
            timeout_ms: u64::try_from(request.timeout.as_millis()).unwrap_or(u64::MAX),
            output_limit: request.output_limit,
        }
    }
}

/// Rebuilds a command request from its wire form.
pub fn command_request(command: String, cwd: PathBuf, timeout_ms: u64, output_limit: usize) -> CommandRequest {
    CommandRequest { command, cwd, timeout: Duration::from_millis(timeout_ms), output_limit, tool_call_id: None }
}

/// What a host call produced.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum HostValue {
    Text(String),
    Written,
    Ran(RunDto),
}

/// [`TerminalRun`] on the wire.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RunDto {
    pub terminal_id: String,
    pub output: String,
    pub truncated: bool,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
}

impl From<TerminalRun> for RunDto {
    fn from(r: TerminalRun) -> Self {
        RunDto {
            terminal_id: r.terminal_id,
            output: r.output,
            truncated: r.truncated,
            exit_code: r.exit_code,
            signal: r.signal,
        }
    }
}

impl From<RunDto> for TerminalRun {
    fn from(r: RunDto) -> Self {
        TerminalRun {
            terminal_id: r.terminal_id,
            output: r.output,
            truncated: r.truncated,
            exit_code: r.exit_code,
            signal: r.signal,
        }
    }
}

/// `turn.host_reply`: the answer to a [`TurnItem::HostCall`]; `Err` carries the editor's message.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct HostReplyParams {
    pub call_id: u64,
    pub result: Result<HostValue, String>,
}

// Error codes. -32002/-32004/-32602 match what the ACP bridge sends for the same errors.
/// Unknown session (also `data.kind = "not_open"` for a session not opened in the daemon).
pub const NOT_FOUND: i32 = -32002;
/// A turn is already running in the session.
pub const BUSY: i32 = -32004;
/// Bad params: unknown mode, bad cursor, malformed payload.
pub const INVALID_PARAMS: i32 = -32602;
/// The engine failed (store, configuration).
pub const ENGINE_FAILED: i32 = -32603;
/// A host reply for a call that is not waiting (answered, cancelled, or never asked).
pub const UNKNOWN_CALL: i32 = -32010;
/// The daemon refused to start a team (no such team, no task); the message says why.
pub const TEAM_REFUSED: i32 = -32011;

/// An engine error as a JSON-RPC error: the message unchanged, `data.kind` and `data.value`
/// so the client can rebuild the same [`EngineError`].
pub fn engine_error_to_rpc(e: &EngineError) -> (i32, String, serde_json::Value) {
    let (code, kind, value) = match e {
        EngineError::NotFound(id) => (NOT_FOUND, "not_found", id.as_str()),
        EngineError::NotOpen(id) => (NOT_FOUND, "not_open", id.as_str()),
        EngineError::Busy(id) => (BUSY, "busy", id.as_str()),
        EngineError::UnknownMode(m) => (INVALID_PARAMS, "unknown_mode", m.as_str()),
        EngineError::Store(StoreError::BadCursor(c)) => (INVALID_PARAMS, "bad_cursor", c.as_str()),
        EngineError::Store(StoreError::NotFound(id)) => (NOT_FOUND, "store_not_found", id.as_str()),
        EngineError::Store(_) => (ENGINE_FAILED, "store", ""),
        EngineError::Config(_) => (ENGINE_FAILED, "config", ""),
        EngineError::ProviderNotFound(name) => (NOT_FOUND, "provider_not_found", name.as_str()),
        EngineError::InvalidProvider(_) => (INVALID_PARAMS, "invalid_provider", ""),
        EngineError::Unavailable(_) => (ENGINE_FAILED, "unavailable", ""),
    };
    (code, e.to_string(), json!({"kind": kind, "value": value}))
}

/// Rebuilds the engine error a daemon sent; `None` if the error is not an engine error
/// (e.g. malformed params), which callers report as it is.
pub fn engine_error_from_rpc(message: &str, data: Option<&serde_json::Value>) -> Option<EngineError> {
    let data = data?;
    let kind = data.get("kind")?.as_str()?;
    let value = data.get("value").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    Some(match kind {
        "not_found" => EngineError::NotFound(value),
        "not_open" => EngineError::NotOpen(value),
        "busy" => EngineError::Busy(value),
        "unknown_mode" => EngineError::UnknownMode(value),
        "bad_cursor" => EngineError::Store(StoreError::BadCursor(value)),
        "store_not_found" => EngineError::Store(StoreError::NotFound(value)),
        // The message is the original's whole text (both variants display as `{0}`).
        "store" => EngineError::Store(StoreError::Open(message.to_string())),
        "config" => EngineError::Config(message.to_string()),
        "provider_not_found" => EngineError::ProviderNotFound(value),
        "invalid_provider" => EngineError::InvalidProvider(message.to_string()),
        "unavailable" => EngineError::Unavailable(message.to_string()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
