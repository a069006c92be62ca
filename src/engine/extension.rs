//! How a layer above the engine (the orchestra) adds to it without the engine knowing that
//! layer: tools for the model, slash commands, a look at every turn as it starts (to list it
//! as a job, to pause or stop it), and a word before and after every tool call and at a
//! session's start, end and token limit (for hooks). The composition root (`cli`) installs one
//! [`Extension`] with [`Engine::set_extension`](super::Engine::set_extension); without one
//! the engine is a plain single agent.

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::commands::CommandInfo;
use super::store::SessionRecord;
use super::tools::{Tool, ToolKind};

/// What a layer above adds to the engine. Every method has a default that adds nothing.
pub trait Extension: Send + Sync + 'static {
    /// Tools to offer in `session`'s turns, after the built-in ones (names never shadow them).
    fn tools(&self, _session: &SessionRecord) -> Vec<Arc<dyn Tool>> {
        Vec::new()
    }

    /// Slash commands it answers, for `/help` and the editor's command list.
    fn commands(&self) -> Vec<CommandInfo> {
        Vec::new()
    }

    /// Runs `/name args` if it is one of [`Extension::commands`]: the reply shown and stored
    /// as the answer. `None` leaves the prompt to the engine.
    fn command(&self, _session: &SessionRecord, _name: &str, _args: &str) -> Option<BoxFuture<'static, String>> {
        None
    }

    /// Runs `/name args` inside the turn, for a command that shows its progress (tool calls of
    /// the turn) and may run long: it gets the turn's scope and cancel token, and its text is
    /// the answer. Asked before [`Extension::command`]; `None` leaves the prompt to that.
    fn turn_command(&self, _session: &SessionRecord, _name: &str, _args: &str) -> Option<TurnCommand> {
        None
    }

    /// A turn starts. What it returns is kept for the turn's life and dropped when the turn
    /// has ended and saved its work (a job registration, say).
    fn watch_turn(&self, _turn: TurnInfo) -> BoxFuture<'static, Option<Box<dyn Send + Sync>>> {
        Box::pin(async { None })
    }

    /// The engine is shutting down (its turns are cancelled and saved): stop what it runs.
    fn shutdown(&self) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }

    /// A tool call is about to run (the permission policy or the user allowed it). `Err`
    /// refuses it: the message is its result, for the model and the editor (redacted first).
    fn before_tool(&self, _call: ToolCallInfo) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    /// A tool call ran (it was not refused); `outcome` is what the model gets.
    fn after_tool(&self, _call: ToolCallInfo, _outcome: ToolOutcome) {}

    /// Something happened to a session outside any tool call. Must not block: the engine
    /// calls it on its own path (creating or closing a session, before a compaction).
    fn session_event(&self, _notice: SessionNotice) {}
}

/// One tool call as an extension sees it before and after it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCallInfo {
    pub session_id: String,
    /// The session's directory (where its project's configuration is).
    pub cwd: PathBuf,
    /// The provider's id of the call.
    pub call_id: String,
    pub tool: String,
    pub kind: ToolKind,
    pub arguments: serde_json::Value,
    /// The files an edit, delete or move touches, absolute (empty for other kinds).
    pub paths: Vec<PathBuf>,
    /// The command line of a command (`Execute` with a `command` argument).
    pub command: Option<String>,
}

/// How a tool call that ran ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutcome {
    pub is_error: bool,
    /// The user cancelled it while it ran.
    pub cancelled: bool,
    /// Its result as the model gets it (redacted).
    pub output: String,
}

/// What happened to a session, for [`Extension::session_event`].
#[derive(Debug, Clone, PartialEq)]
pub enum SessionNotice {
    /// Created (`resumed: false`) or opened again (loaded, resumed).
    Started { session: SessionRecord, resumed: bool },
    /// Closed here (it stays in the store).
    Ended { session: SessionRecord },
    /// The last model call filled the context window past the compaction threshold; the
    /// history is about to be compacted.
    TokenLimit { session: SessionRecord, used_tokens: u64, context_window: u64 },
}

/// A slash command run inside its turn ([`Extension::turn_command`]).
pub type TurnCommand = Box<
    dyn FnOnce(Arc<dyn super::turn_scope::TurnScope>, CancellationToken) -> BoxFuture<'static, String> + Send + Sync,
>;

/// A turn as an extension sees it start.
pub struct TurnInfo {
    pub session: SessionRecord,
    pub turn: u64,
    /// Cancelling it stops the turn (as `session/cancel` does).
    pub cancel: CancellationToken,
    /// Pausing holds the turn before its next model call.
    pub pause: PauseGate,
}

/// Holds a turn before its next model call while paused: the call running now finishes (its
/// answer and tool calls are saved), then the turn waits until resumed or cancelled.
#[derive(Clone)]
pub struct PauseGate {
    paused: Arc<watch::Sender<bool>>,
}

impl Default for PauseGate {
    fn default() -> Self {
        PauseGate { paused: Arc::new(watch::Sender::new(false)) }
    }
}

impl PauseGate {
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
    }

    /// Returns once not paused, or when `cancel` fires.
    pub async fn wait(&self, cancel: &CancellationToken) {
        let mut rx = self.paused.subscribe();
        tokio::select! {
            _ = rx.wait_for(|paused| !paused) => {}
            () = cancel.cancelled() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_paused_gate_holds_until_resumed_or_cancelled() {
        let gate = PauseGate::default();
        let cancel = CancellationToken::new();
        gate.wait(&cancel).await; // open: returns at once
        gate.pause();
        let held = tokio::time::timeout(std::time::Duration::from_millis(50), gate.wait(&cancel)).await;
        assert!(held.is_err(), "paused: waits");
        let g2 = gate.clone();
        let waiter = tokio::spawn(async move { g2.wait(&CancellationToken::new()).await });
        gate.resume();
        waiter.await.unwrap();
        gate.pause();
        cancel.cancel();
        gate.wait(&cancel).await; // cancelled: returns
        assert!(gate.is_paused());
    }
}
