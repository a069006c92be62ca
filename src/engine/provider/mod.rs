//! LLM providers: real streaming HTTP clients behind one small trait.
//!
//! A provider turns a [`ProviderRequest`] (system prompt, history, tool definitions) into a
//! stream of [`ProviderEvent`]s. Everything wire-specific (SSE, NDJSON, JSON shapes, auth
//! headers) stays inside the provider's own module. Retries happen before the first byte of
//! the answer only: once text has streamed, a failure ends the turn.
//!
//! Modules: `openai` (Chat Completions, SSE), `anthropic` (Messages, SSE), `ollama` (native
//! `/api/chat`, NDJSON), `scripted` (offline replay for demos and tests), `http` (shared client,
//! retry and error mapping), `select` (which provider the environment and config choose).

pub mod anthropic;
pub mod http;

pub mod ollama;
pub mod openai;
pub mod scripted;
pub mod select;
pub mod tls;

#[cfg(test)]
mod stream_prop_tests;

use std::pin::Pin;

use futures::Stream;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::engine::content::{ContentPart, ToolCall, ToolResult, Usage};

pub use select::{ProviderChoice, ProviderKind};

/// One message of the conversation as sent to a provider.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderMessage {
    /// What the user said.
    User(Vec<ContentPart>),
    /// What the model said earlier: text, thoughts, and the tool calls it made.
    Assistant { content: Vec<ContentPart>, tool_calls: Vec<ToolCall> },
    /// Results of tool calls, answering the preceding assistant message.
    ToolResults(Vec<ToolResult>),
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// Everything a provider needs for one model call.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderRequest {
    /// The model name, passed to the provider unchanged.
    pub model: String,
    /// The system prompt, if any.
    pub system: Option<String>,
    /// The conversation, oldest first.
    pub messages: Vec<ProviderMessage>,
    /// Tools offered to the model (may be empty).
    pub tools: Vec<ToolSpec>,
    /// Upper bound on output tokens for this call.
    pub max_tokens: u32,
}

/// Why the model stopped generating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model finished its answer.
    Stop,
    /// The output token limit was hit.
    MaxTokens,
    /// The model asked for tool calls (they were sent as `ToolCall` events).
    ToolUse,
    /// The provider or model refused (content filter, safety refusal).
    Refusal,
}

/// One event of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderEvent {
    /// A piece of answer text.
    TextDelta(String),
    /// A piece of reasoning text.
    ThoughtDelta(String),
    /// The signature that closes a thinking block (Anthropic); stored with the thought.
    ThoughtSignature(String),
    /// A complete tool call (providers assemble streamed argument fragments themselves).
    ToolCall(ToolCall),
    /// Token usage for this call; may come more than once, the last one wins.
    Usage(Usage),
    /// The end of the answer. Always the last event of a successful stream.
    Finish(FinishReason),
}

/// What went wrong talking to a provider. The message always tells the user what to do next.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// 401/403: the key is missing, wrong or lacks access.
    #[error("{provider} rejected the credentials (HTTP {status}): {detail}; set a valid key in {env_var}")]
    Auth { provider: &'static str, status: u16, env_var: &'static str, detail: String },
    /// 429 after all retries.
    #[error("{provider} is rate limiting requests (HTTP 429) and retries ran out: {detail}; wait and try again")]
    RateLimited { provider: &'static str, detail: String },
    /// Any other non-success HTTP status.
    #[error("{provider} answered HTTP {status}: {detail}")]
    Http { provider: &'static str, status: u16, detail: String },
    /// The server could not be reached.
    #[error("cannot reach {provider} at {url}: {detail}; check {env_var} and that the server is running")]
    Connect { provider: &'static str, url: String, env_var: &'static str, detail: String },
    /// The answer did not follow the provider's wire format.
    #[error("{provider} sent a malformed stream: {detail}")]
    Protocol { provider: &'static str, detail: String },
    /// Not configured correctly (no key, bad script file, ...).
    #[error("{0}")]
    Config(String),
}

/// The stream of events of one model call.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<ProviderEvent, ProviderError>> + Send>>;

/// A streaming LLM backend.
///
/// `stream` sends the request (retrying on 429/5xx and connection errors before any byte of
/// the answer arrived) and returns the event stream. Dropping the stream aborts the HTTP
/// request; that is how a turn is cancelled.
pub trait Provider: Send + Sync {
    /// A short name for messages and logs (`openai`, `anthropic`, `ollama`, `scripted`).
    fn name(&self) -> &'static str;
    /// Starts one model call.
    fn stream(&self, request: ProviderRequest) -> BoxFuture<'_, Result<EventStream, ProviderError>>;
}
