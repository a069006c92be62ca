//! What a panic in a turn or a tool becomes: an error the user sees, never a turn that
//! goes silent.

use tokio::sync::mpsc;

use super::Engine;
use super::event::{ChatEvent, ErrorKind};

/// Ends a turn with an `Error` event if it panics, so its front end and watchers always get a
/// final event (the claim is released as the panicking turn unwinds).
pub(super) struct Backstop {
    pub engine: Engine,
    pub session_id: String,
    pub turn_id: u64,
    pub events: mpsc::Sender<ChatEvent>,
}

impl Backstop {
    pub async fn run(self, turn: impl std::future::Future<Output = ()>) {
        use futures::FutureExt;
        let Err(panic) = std::panic::AssertUnwindSafe(turn).catch_unwind().await else { return };
        let what = self.engine.redactor().redact(&panic_message(panic.as_ref()));
        tracing::error!(session = %self.session_id, panic = %what, "a turn panicked");
        let event = ChatEvent::Error {
            kind: ErrorKind::Internal,
            message: format!(
                "the turn stopped on an internal error ({what}); what was saved before it is kept; \
                 this is a bug in ratchet: please report it, then send the prompt again"
            ),
        };
        let live = super::live::LiveEvent::Chat(event.clone());
        self.engine.live().publish(&self.session_id, self.turn_id, live);
        let _ = self.events.send(event).await;
    }
}

/// The message of a caught panic.
pub(super) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}
