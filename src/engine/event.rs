//! What a turn reports while it runs: the engine's face towards every front end.
//!
//! The ACP bridge turns these into `session/update` notifications, `ratchet exec` prints
//! them, the daemon forwards them. The enum is the contract; front ends only render it.

use super::content::Usage;

/// One event of a running turn. The last event of every turn is `Complete` or `Error`.
#[derive(Debug, Clone, PartialEq)]
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
    /// The turn ended normally. Everything it produced is saved before this is sent.
    Complete { stop: StopReason },
    /// The turn failed. What was received before the failure is saved.
    Error { kind: ErrorKind, message: String },
}

/// Why a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The provider rejected the credentials.
    Auth,
    /// No provider is configured, or its configuration is wrong.
    Config,
    /// The provider failed (HTTP error, unreachable, malformed stream, rate limit).
    Provider,
    /// The session store failed.
    Store,
}
