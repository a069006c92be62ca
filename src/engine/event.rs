//! What a turn reports while it runs: the engine's face towards every front end.
//!
//! The ACP bridge turns these into `session/update` notifications, `ratchet exec` prints
//! them, the daemon forwards them. The enum is the contract; front ends only render it.

use super::content::ToolKind;
use super::content::Usage;
use super::tool_view::{Display, Location, PlanEntry};

/// One event of a running turn. The last event of every turn is `Complete` or `Error`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatEvent {
    /// A piece of the answer text.
    TextDelta(String),
    /// A piece of the model's reasoning.
    ThoughtDelta(String),
    /// The session got a title (derived from its first prompt).
    TitleChanged(String),
    /// Token usage after a model call.
    Usage {
        usage: Usage,
        /// The model's context window, for "how full is it" displays.
        context_window: u64,
    },
    /// The model asked for a tool call; it waits for permission or is about to run.
    ToolCallStarted(ToolCallStart),
    /// A tool call changed state (running, finished, failed).
    ToolCallUpdated(ToolCallChange),
    /// The turn waits for the user to allow or reject a tool call. Answer with
    /// [`Engine::answer_permission`](super::Engine::answer_permission).
    PermissionRequest(PermissionRequest),
    /// The model published a plan (always the complete list).
    Plan(Vec<PlanEntry>),
    /// A question for the user that is not about one tool call's permission (a plan to
    /// approve, a question of the model's). Answer with `EngineApi::answer_question`.
    Question(Question),
    /// A [`Question`] was answered elsewhere (the CLI, a rule) or is no longer needed: the
    /// front end stops asking it.
    QuestionWithdrawn { request_id: u64 },
    /// The session's mode or model changed (e.g. by a slash command).
    SessionChanged { mode: super::Mode, model: String },
    /// The turn ended normally. Everything it produced is saved before this is sent.
    Complete { stop: StopReason },
    /// The turn failed. What was received before the failure is saved.
    Error { kind: ErrorKind, message: String },
}

/// Why a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model finished its answer.
    EndTurn,
    /// The model hit its output token limit.
    MaxTokens,
    /// The turn made as many model calls as it may.
    MaxTurnRequests,
    /// The model or provider refused.
    Refusal,
    /// The user cancelled.
    Cancelled,
}

/// What kind of failure ended a turn, so front ends can react (e.g. offer to log in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The provider rejected the credentials.
    Auth,
    /// No provider is configured, or its configuration is wrong.
    Config,
    /// The provider failed (HTTP error, unreachable, malformed stream, rate limit).
    Provider,
    /// The session store failed.
    Store,
    /// Ratchet itself failed (a bug); the message says what to do.
    Internal,
    /// The engine went away during the turn (its daemon stopped); the prompt can be sent
    /// again once it is back.
    Unavailable,
}

/// A tool call as first announced.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolCallStart {
    /// The provider's call id; unique within the session.
    pub id: String,
    /// The tool's name as the model called it.
    pub name: String,
    pub title: String,
    pub kind: ToolKind,
    pub arguments: serde_json::Value,
    pub locations: Vec<Location>,
    /// A preview, e.g. the diff an edit would make.
    pub display: Vec<Display>,
}

/// Where a tool call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCallStatus {
    Pending,
    InProgress,
    Completed,
    Failed,
}

/// A change to an announced tool call. `None` fields are unchanged.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToolCallChange {
    pub id: String,
    pub status: ToolCallStatus,
    pub display: Option<Vec<Display>>,
    pub locations: Option<Vec<Location>>,
    /// The text the model got back.
    pub output: Option<String>,
}

/// A question to the user: may this tool call run?
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PermissionRequest {
    /// Answer with this id.
    pub request_id: u64,
    pub tool_call_id: String,
    pub tool: String,
    pub title: String,
    pub kind: ToolKind,
}

/// The user's answer to a [`PermissionRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionAnswer {
    AllowOnce,
    AllowAlways,
    RejectOnce,
    RejectAlways,
    /// The prompt was cancelled while the question was open: stop the turn.
    Cancelled,
}

/// A question for the user, put by a tool while its turn runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Question {
    /// Answer with this id.
    pub request_id: u64,
    /// The tool call the question belongs to, when there is one.
    pub tool_call_id: Option<String>,
    /// What is asked, in one line (also the editor's dialog message).
    pub title: String,
    pub form: QuestionForm,
}

/// What kind of answer a [`Question`] wants.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum QuestionForm {
    /// Approve (perhaps skipping steps) or reject (with feedback) a plan.
    PlanApproval { plan_id: String, steps: Vec<StepChoice> },
    /// Free text.
    Text,
}

/// A plan step as offered for skipping.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepChoice {
    pub id: String,
    pub description: String,
}

/// The user's answer to a [`Question`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionAnswer {
    /// Approved, with these steps skipped.
    Approve {
        skip: Vec<String>,
    },
    Reject {
        feedback: String,
    },
    Text(String),
    /// The editor closed the question without an answer (declined, dismissed, cancelled).
    Declined,
}
