//! The store's public value types and its error type.
//!
//! These are what the engine passes in and gets back; how they map onto tables and JSON
//! columns is private to `queries.rs`.

use std::path::PathBuf;

use crate::engine::content::{ContentPart, Role, ToolCall, ToolResult, Usage};
use crate::engine::session::Mode;

/// A session to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    /// The id to use; `None` picks a fresh UUID v7 (time-ordered, so ids sort by creation).
    pub id: Option<String>,
    pub cwd: PathBuf,
    pub additional_dirs: Vec<PathBuf>,
    pub provider: String,
    pub model: String,
    pub mode: Mode,
    /// The session that started this one (a fleet worker's prompting session).
    pub parent_id: Option<String>,
    /// True if `provider` names a stored provider entry this session keeps, whatever the
    /// default (a worker routed to a model by its step's complexity).
    pub provider_pinned: bool,
    /// The named agent this session plays (a sub-agent), if any.
    pub agent: Option<AgentProfile>,
}

/// A named agent a session plays: its role prompt, the tools it may use and its cap on model
/// calls per turn (from an agent definition; see `orchestra::agents`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AgentProfile {
    pub name: String,
    /// Added to the session's system prompt.
    pub prompt: String,
    /// Only these tools are offered; `None`: all of them.
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    /// Model calls per turn; `None`: the configured `max_turn_requests`.
    #[serde(default)]
    pub max_turn_requests: Option<u32>,
}

/// A session as stored. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionRecord {
    pub id: String,
    pub title: Option<String>,
    pub cwd: PathBuf,
    pub additional_dirs: Vec<PathBuf>,
    pub provider: String,
    pub model: String,
    pub mode: Mode,
    pub status: SessionStatus,
    pub created_at: i64,
    /// Strictly increases with every change to the session (including appended messages).
    pub updated_at: i64,
    /// The session that started this one (a fleet worker's prompting session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// `provider` names a stored entry the session keeps (see [`NewSession::provider_pinned`]).
    #[serde(default)]
    pub provider_pinned: bool,
    /// The named agent this session plays, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentProfile>,
}

/// Whether a session can still take prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Active,
    Closed,
}

impl SessionStatus {
    /// The spelling used in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "active",
            SessionStatus::Closed => "closed",
        }
    }

    /// Parses the store's spelling.
    pub fn parse(s: &str) -> Option<SessionStatus> {
        match s {
            "active" => Some(SessionStatus::Active),
            "closed" => Some(SessionStatus::Closed),
            _ => None,
        }
    }
}

/// Changes to a session; `None` fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionPatch {
    pub title: Option<String>,
    pub cwd: Option<PathBuf>,
    pub additional_dirs: Option<Vec<PathBuf>>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub mode: Option<Mode>,
    pub status: Option<SessionStatus>,
}

/// A message to append to a session's history.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub role: Role,
    pub content: Vec<ContentPart>,
    pub tool_calls: Vec<ToolCall>,
    pub tool_results: Vec<ToolResult>,
    pub usage: Option<Usage>,
    pub status: MessageStatus,
}

impl NewMessage {
    /// A complete user message.
    pub fn user(content: Vec<ContentPart>) -> Self {
        NewMessage {
            role: Role::User,
            content,
            tool_calls: Vec::new(),
            tool_results: Vec::new(),
            usage: None,
            status: MessageStatus::Complete,
        }
    }

    /// A complete assistant message.
    pub fn assistant(content: Vec<ContentPart>, tool_calls: Vec<ToolCall>, usage: Option<Usage>) -> Self {
        NewMessage {
            role: Role::Assistant,
            content,
            tool_calls,
            tool_results: Vec::new(),
            usage,
            status: MessageStatus::Complete,
        }
    }

    /// A complete tool message carrying the results of one step's tool calls.
    pub fn tool(tool_results: Vec<ToolResult>) -> Self {
        NewMessage {
            role: Role::Tool,
            content: Vec::new(),
            tool_calls: Vec::new(),
            tool_results,
            usage: None,
            status: MessageStatus::Complete,
        }
    }
}

/// How the turn that produced a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Complete,
    Cancelled,
    Error,
}

impl MessageStatus {
    /// The spelling used in the store.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Complete => "complete",
            MessageStatus::Cancelled => "cancelled",
            MessageStatus::Error => "error",
        }
    }

    /// Parses the store's spelling.
    pub fn parse(s: &str) -> Option<MessageStatus> {
        match s {
            "complete" => Some(MessageStatus::Complete),
            "cancelled" => Some(MessageStatus::Cancelled),
            "error" => Some(MessageStatus::Error),
            _ => None,
        }
    }
}

/// A message as stored. `seq` numbers a session's messages 1, 2, 3, … in order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredMessage {
    pub seq: i64,
    pub role: Role,
    pub content: Vec<ContentPart>,
    pub tool_calls: Vec<ToolCall>,
    pub tool_results: Vec<ToolResult>,
    pub usage: Option<Usage>,
    pub status: MessageStatus,
    pub created_at: i64,
}

/// One page of [`SessionStore::list_sessions`](super::SessionStore::list_sessions).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ListQuery {
    /// Only sessions whose cwd is exactly this path.
    pub cwd: Option<PathBuf>,
    /// The `next_cursor` of the previous page; `None` starts at the most recent session.
    pub cursor: Option<String>,
    /// Page size, clamped to 1..=1000.
    pub limit: usize,
    /// Only sessions no other session started (no fleet workers): what editors list.
    #[serde(default)]
    pub top_level: bool,
}

/// Sessions, most recently updated first.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionPage {
    pub sessions: Vec<SessionRecord>,
    /// Pass this back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused. `path` is the database file. Not a `source`: the message already
    /// says what SQLite said, with what to do about it.
    #[error("session database {}: {}", path.display(), super::sqlite_error::describe(error, path))]
    Sqlite { path: PathBuf, error: rusqlite::Error },
    /// The database file or its directory could not be created.
    #[error(
        "session database {}: {source}; check that the directory is writable or point RATCHET_HOME elsewhere",
        path.display()
    )]
    Io { path: PathBuf, source: std::io::Error },
    /// The database cannot be used as configured (e.g. no WAL support on its file system).
    #[error("{0}")]
    Open(String),
    /// The schema could not be brought up to date, or is newer than this binary.
    #[error("{0}")]
    Migration(String),
    /// A list cursor that this store did not hand out.
    #[error(
        "invalid session list cursor {0:?}; pass back a nextCursor from an earlier page unchanged, or omit it to start from the most recent session"
    )]
    BadCursor(String),
    /// No session has this id.
    #[error("no session with id {0:?}; list sessions to see which exist")]
    NotFound(String),
    /// `create_session` was given an id that is taken.
    #[error("a session with id {0:?} already exists; omit the id to get a fresh one")]
    AlreadyExists(String),
    /// The store's thread has stopped, so nothing can be read or written.
    #[error("the session store has stopped (its database thread exited); restart ratchet")]
    Closed,
    /// A stored provider entry has a kind this binary does not know.
    #[error("unknown provider {0:?} in the provider store; use one of: openai, anthropic, ollama, scripted")]
    UnknownProviderKind(String),
    /// A value could not be encoded as JSON for storage.
    #[error("could not encode a value for the session database as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<rusqlite::Error> for StoreError {
    /// The path is left empty here; `SessionStore` fills it in before the error reaches a
    /// caller (see `StoreError::at`).
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Sqlite { path: PathBuf::new(), error }
    }
}

impl StoreError {
    /// Names the database file in a SQLite error that does not name one yet.
    pub(super) fn at(self, db_path: &std::path::Path) -> Self {
        match self {
            StoreError::Sqlite { path, error } if path.as_os_str().is_empty() => {
                StoreError::Sqlite { path: db_path.to_path_buf(), error }
            }
            other => other,
        }
    }
}
