//! What running a turn's tool calls needs of the turn: its engine, session, claim (the
//! cancel token and turn id), editor, and where its events go. Apart from `turn`, so the
//! tool runner does not depend on the step loop that calls it.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::Engine;
use super::event::ChatEvent;
use super::live::LiveEvent;
use super::open_session::TurnClaim;
use super::store::SessionRecord;
use super::tools::Host;

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
}
