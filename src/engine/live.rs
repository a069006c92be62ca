//! Live session events for everyone watching a session, not only the one who prompted.
//!
//! Each turn publishes the user's message and every [`ChatEvent`] here, tagged with the
//! turn's id; a front end that opened the same session elsewhere (another editor window on
//! the daemon) subscribes and shows the turns it did not start. Slow subscribers lose old
//! events rather than slowing the turn down (a broadcast channel's lag).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::broadcast;

use super::content::ContentPart;
use super::event::ChatEvent;

/// Events buffered per session for subscribers; past this a slow subscriber skips ahead.
/// 256 covers a burst of streamed chunks between two reads; the buffer is allocated up front
/// for every watched session, so it is kept small.
const LIVE_CAPACITY: usize = 256;

/// What happened in a session.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveEvent {
    /// A user sent this prompt (starts a turn).
    UserMessage(Vec<ContentPart>),
    /// Something the turn reported.
    Chat(ChatEvent),
}

/// A session event with the id of the turn it belongs to.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SessionEvent {
    pub turn: u64,
    pub event: LiveEvent,
}

/// Broadcast channels by session id.
///
/// Not part of a session's `SessionState`: a channel lives as long as its watchers, not as
/// long as the session is open here. Watching needs no open session (`ratchet attach`
/// follows a daemon's session that no window may have open yet, and must see the turns of
/// whoever opens it later), and a watcher keeps following across a close and a reopen. A
/// channel is made on subscribe and dropped once its watchers are gone (see `subscribe`).
#[derive(Default)]
pub struct LiveHub {
    channels: Mutex<HashMap<String, broadcast::Sender<SessionEvent>>>,
}

impl LiveHub {
    /// Publishes an event; free when nobody listens.
    pub fn publish(&self, session: &str, turn: u64, event: LiveEvent) {
        let mut channels = self.lock();
        // A send error means every subscriber is gone.
        if let Some(tx) = channels.get(session)
            && tx.send(SessionEvent { turn, event }).is_err()
        {
            channels.remove(session);
        }
    }

    /// Subscribes to a session's events from now on.
    pub fn subscribe(&self, session: &str) -> broadcast::Receiver<SessionEvent> {
        let mut channels = self.lock();
        // Channels whose watchers all left would otherwise stay until the session's next
        // event, which may never come: drop them here, where new ones are made.
        channels.retain(|_, tx| tx.receiver_count() > 0);
        channels.entry(session.to_string()).or_insert_with(|| broadcast::channel(LIVE_CAPACITY).0).subscribe()
    }

    /// Number of sessions with a channel (for tests and diagnostics).
    pub fn channels(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<SessionEvent>>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_get_events_in_order_and_publish_without_them_is_free() {
        let hub = LiveHub::default();
        hub.publish("s", 1, LiveEvent::Chat(ChatEvent::TextDelta("lost".into())));
        let mut rx = hub.subscribe("s");
        hub.publish("s", 2, LiveEvent::UserMessage(vec![ContentPart::text("hi")]));
        hub.publish("s", 2, LiveEvent::Chat(ChatEvent::TextDelta("a".into())));
        hub.publish("other", 3, LiveEvent::Chat(ChatEvent::TextDelta("x".into())));
        assert_eq!(rx.try_recv().unwrap().event, LiveEvent::UserMessage(vec![ContentPart::text("hi")]));
        assert_eq!(
            rx.try_recv().unwrap(),
            SessionEvent { turn: 2, event: LiveEvent::Chat(ChatEvent::TextDelta("a".into())) }
        );
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn channels_without_watchers_are_dropped() {
        let hub = LiveHub::default();
        for i in 0..100 {
            drop(hub.subscribe(&format!("s{i}")));
        }
        let _kept = hub.subscribe("last");
        assert_eq!(hub.channels(), 1, "only the watched session keeps a channel");
    }
}
