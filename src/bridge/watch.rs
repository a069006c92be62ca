//! Prompts this connection runs, and sessions it watches for other people's turns.
//!
//! [`Prompts`] records a prompt the moment it arrives (before the engine knows of it), so
//! `session/cancel` is never lost to a race, and remembers the ids of this connection's own
//! turns. [`AcpAgent::watch`] subscribes to a session's live events and forwards the turns
//! some other front end started (another editor window on the daemon) as `session/update`s.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast::error::RecvError;

use super::{AcpAgent, to_acp};
use crate::acp::schema::{ContentChunk, SessionUpdate};
use crate::engine::{ChatEvent, LiveEvent};

/// This connection's prompts, by session.
#[derive(Default)]
pub struct Prompts {
    inner: Mutex<PromptsInner>,
}

#[derive(Default)]
pub(super) struct PromptsInner {
    /// Sessions with a prompt in flight here.
    running: HashMap<String, PromptState>,
    /// Turns started by this connection (their live events are not forwarded back).
    own_turns: HashSet<u64>,
}

/// What happened to a running prompt that its turn's events do not say.
#[derive(Default)]
struct PromptState {
    /// A `session/cancel` came for it.
    cancel_requested: bool,
    /// The editor answered a permission question with an error; the turn stopped for that
    /// reason, not because the user cancelled.
    client_failure: Option<String>,
}

/// Ends the prompt's registration when dropped.
pub struct PromptSlot {
    prompts: Arc<AcpAgent>,
    session: String,
}

impl Drop for PromptSlot {
    fn drop(&mut self) {
        self.prompts.prompts.lock().running.remove(&self.session);
    }
}

impl Prompts {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, PromptsInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The turn id the engine gave our prompt.
    pub fn started(&self, session: &str, turn: u64) {
        let _ = session;
        self.lock().own_turns.insert(turn);
    }

    /// Marks the session's prompt cancelled; false if none runs here.
    pub fn request_cancel(&self, session: &str) -> bool {
        match self.lock().running.get_mut(session) {
            Some(state) => {
                state.cancel_requested = true;
                true
            }
            None => false,
        }
    }

    /// True if a cancel came for the session's prompt.
    pub fn cancel_requested(&self, session: &str) -> bool {
        self.lock().running.get(session).is_some_and(|s| s.cancel_requested)
    }

    /// True if a prompt runs in the session on this connection.
    pub fn is_running(&self, session: &str) -> bool {
        self.lock().running.contains_key(session)
    }

    /// Records that the editor failed a request the session's prompt depended on.
    pub fn client_failed(&self, session: &str, why: String) {
        if let Some(state) = self.lock().running.get_mut(session) {
            state.client_failure.get_or_insert(why);
        }
    }

    /// Why the editor failed the session's prompt, if it did.
    pub fn client_failure(&self, session: &str) -> Option<String> {
        self.lock().running.get(session).and_then(|s| s.client_failure.clone())
    }

    /// True if the event belongs to a prompt of this connection.
    fn is_own(&self, session: &str, turn: u64) -> bool {
        let inner = self.lock();
        inner.own_turns.contains(&turn) || inner.running.contains_key(session)
    }
}

impl AcpAgent {
    /// Registers a prompt for `session`; `None` if one is already running here.
    pub(super) fn begin_prompt(self: &Arc<Self>, session: &str) -> Option<PromptSlot> {
        let mut inner = self.prompts.lock();
        if inner.running.contains_key(session) {
            return None;
        }
        inner.running.insert(session.to_string(), PromptState::default());
        Some(PromptSlot { prompts: self.clone(), session: session.to_string() })
    }

    /// Starts forwarding other front ends' turns in `session` (once per session).
    pub(super) async fn watch(self: &Arc<Self>, session: &str) {
        if self.watchers().contains_key(session) {
            return;
        }
        let mut rx = match self.engine.subscribe(session.to_string()).await {
            Ok(rx) => rx,
            Err(e) => {
                tracing::warn!(error = %e, session, "cannot follow the session's live events");
                return;
            }
        };
        let this = Arc::downgrade(self);
        let id = session.to_string();
        let task = tokio::spawn(async move {
            loop {
                let event = match rx.recv().await {
                    Ok(e) => e,
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "a watched session produced events faster than they were sent");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                let Some(this) = this.upgrade() else { return };
                if this.prompts.is_own(&id, event.turn) {
                    continue;
                }
                for update in live_updates(&event.event) {
                    this.send_update(&id, update).await;
                }
            }
        });
        self.watchers().insert(session.to_string(), task.abort_handle());
    }

    /// Stops forwarding a session's live events.
    pub(super) fn unwatch(&self, session: &str) {
        if let Some(task) = self.watchers().remove(session) {
            task.abort();
        }
    }

    fn watchers(&self) -> std::sync::MutexGuard<'_, HashMap<String, tokio::task::AbortHandle>> {
        self.watchers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A watched event as updates: the other user's prompt as `user_message_chunk`s, the turn's
/// output as usual. Permission questions stay with the window that prompted.
fn live_updates(event: &LiveEvent) -> Vec<SessionUpdate> {
    match event {
        LiveEvent::UserMessage(parts) => {
            parts.iter().map(|p| SessionUpdate::UserMessageChunk(ContentChunk::new(to_acp::content_block(p)))).collect()
        }
        LiveEvent::Chat(ChatEvent::PermissionRequest(_)) => Vec::new(),
        LiveEvent::Chat(event) => to_acp::updates(event),
    }
}
