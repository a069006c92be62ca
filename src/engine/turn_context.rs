//! What running a turn's tool calls needs of the turn: its engine, session, claim (the
//! cancel token and turn id), editor, and where its events go. Apart from `turn`, so the
//! tool runner does not depend on the step loop that calls it.

use std::sync::Arc;

use tokio::sync::mpsc;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::Engine;
use super::event::{ChatEvent, PermissionAnswer, PermissionRequest, Question, QuestionAnswer, QuestionForm};
use super::live::LiveEvent;
use super::open_session::{TurnClaim, TurnQuestions};
use super::store::SessionRecord;
use super::tools::Host;
use super::turn_scope::{PermissionAsk, TurnScope};

/// The part of a turn its tool calls share.
pub(super) struct TurnContext {
    pub engine: Engine,
    pub session: SessionRecord,
    pub claim: TurnClaim,
    pub events: mpsc::Sender<ChatEvent>,
    pub host: Arc<dyn Host>,
}

impl TurnContext {
    /// Sends an event; a front end that went away does not stop the turn.
    pub async fn emit(&self, event: ChatEvent) {
        let live = LiveEvent::Chat(event.clone());
        self.engine.live().publish(&self.session.id, self.claim.turn_id(), live);
        let _ = self.events.send(event).await;
    }

    /// The turn as its tools see it.
    pub fn tool_turn(&self) -> Arc<dyn TurnScope> {
        Arc::new(ToolTurn {
            engine: self.engine.clone(),
            session_id: self.session.id.clone(),
            turn_id: self.claim.turn_id(),
            events: self.events.clone(),
            questions: self.claim.questions(),
            cancel: self.claim.token().clone(),
        })
    }
}

/// The turn as its tools see it ([`TurnScope`]): emits like the turn, asks through the
/// turn's open questions.
pub(super) struct ToolTurn {
    pub engine: Engine,
    pub session_id: String,
    pub turn_id: u64,
    pub events: mpsc::Sender<ChatEvent>,
    pub questions: TurnQuestions,
    pub cancel: CancellationToken,
}

impl ToolTurn {
    async fn send(&self, event: ChatEvent) {
        self.engine.live().publish(&self.session_id, self.turn_id, LiveEvent::Chat(event.clone()));
        let _ = self.events.send(event).await;
    }
}

impl TurnScope for ToolTurn {
    fn session_id(&self) -> &str {
        &self.session_id
    }

    fn emit(&self, event: ChatEvent) -> BoxFuture<'_, ()> {
        Box::pin(self.send(event))
    }

    fn ask_permission(&self, ask: PermissionAsk) -> BoxFuture<'_, PermissionAnswer> {
        Box::pin(async move {
            let (request_id, answer) = self.questions.open_permission();
            let _open = Withdraw { turn: self, request_id, announce: false };
            self.send(ChatEvent::PermissionRequest(PermissionRequest {
                request_id,
                tool_call_id: ask.tool_call_id,
                tool: ask.tool,
                title: ask.title,
                kind: ask.kind,
            }))
            .await;
            tokio::select! {
                a = answer => a.unwrap_or(PermissionAnswer::Cancelled),
                () = self.cancel.cancelled() => PermissionAnswer::Cancelled,
            }
        })
    }

    fn ask(&self, tool_call_id: Option<String>, title: String, form: QuestionForm) -> BoxFuture<'_, QuestionAnswer> {
        Box::pin(async move {
            let (request_id, answer) = self.questions.open_question();
            let _open = Withdraw { turn: self, request_id, announce: true };
            self.send(ChatEvent::Question(Question { request_id, tool_call_id, title, form })).await;
            tokio::select! {
                a = answer => a.unwrap_or(QuestionAnswer::Declined),
                () = self.cancel.cancelled() => QuestionAnswer::Declined,
            }
        })
    }
}

/// Forgets a question when its asker stops waiting; one nobody answered is withdrawn from
/// the front ends (`announce`), so their dialogs close.
struct Withdraw<'a> {
    turn: &'a ToolTurn,
    request_id: u64,
    announce: bool,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        if self.turn.questions.forget(self.request_id) && self.announce {
            let event = ChatEvent::QuestionWithdrawn { request_id: self.request_id };
            self.turn.engine.live().publish(&self.turn.session_id, self.turn.turn_id, LiveEvent::Chat(event.clone()));
            // Best effort: a full event buffer means a stalled front end, which will see the
            // question's tool call end anyway.
            let _ = self.turn.events.try_send(event);
        }
    }
}
