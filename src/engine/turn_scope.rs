//! What a tool may do in the turn that runs it beyond its own call: show more in the editor
//! (the fleet shows each worker as a tool call of its own) and put questions to the user
//! through the turn's front end (a plan to approve, a worker's permission question).
//!
//! A question whose future is dropped before it is answered (answered elsewhere, the tool
//! stopped waiting) is withdrawn: front ends get `QuestionWithdrawn` and close their dialog.

use futures::future::BoxFuture;

use super::content::ToolKind;
use super::event::{ChatEvent, PermissionAnswer, QuestionAnswer, QuestionForm};

/// A permission question put on behalf of someone else (a fleet worker's tool call).
#[derive(Debug, Clone, PartialEq)]
pub struct PermissionAsk {
    /// The tool call in this turn the question is shown with.
    pub tool_call_id: String,
    pub tool: String,
    pub title: String,
    pub kind: ToolKind,
}

/// The running turn, as its tools see it.
pub trait TurnScope: Send + Sync {
    /// The session the turn runs in.
    fn session_id(&self) -> &str;
    /// Sends an event to the turn's front end (and its watchers).
    fn emit(&self, event: ChatEvent) -> BoxFuture<'_, ()>;
    /// Asks the user whether a tool call may run; `Cancelled` if the turn is cancelled.
    fn ask_permission(&self, ask: PermissionAsk) -> BoxFuture<'_, PermissionAnswer>;
    /// Asks the user a question; `Declined` if the turn is cancelled. Dropping the future
    /// withdraws the question.
    fn ask(&self, tool_call_id: Option<String>, title: String, form: QuestionForm) -> BoxFuture<'_, QuestionAnswer>;
}

/// No turn (tools run outside one, in tests): events go nowhere, questions are declined.
pub struct NoTurn;

impl TurnScope for NoTurn {
    fn session_id(&self) -> &str {
        ""
    }
    fn emit(&self, _: ChatEvent) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
    fn ask_permission(&self, _: PermissionAsk) -> BoxFuture<'_, PermissionAnswer> {
        Box::pin(async { PermissionAnswer::Cancelled })
    }
    fn ask(&self, _: Option<String>, _: String, _: QuestionForm) -> BoxFuture<'_, QuestionAnswer> {
        Box::pin(async { QuestionAnswer::Declined })
    }
}
