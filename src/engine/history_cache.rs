//! A session's stored history, kept in memory while the session is open.
//!
//! Every step of a turn sends the model the whole conversation. Reading and decoding it from
//! SQLite each time costs more than everything else a step does once the history has a few
//! hundred messages, so an open session keeps what it read; each later read asks the store
//! only for the messages after the last one it has. The store stays the truth: messages are
//! only ever appended (each the session's next `seq`, also by other processes on the same
//! data directory), never changed, so "everything after the last `seq` I have" is exact.

use std::sync::{Arc, Mutex};

use super::store::StoredMessage;

/// The messages read so far, in `seq` order.
#[derive(Default)]
pub(super) struct HistoryCache {
    messages: Mutex<Arc<Vec<StoredMessage>>>,
}

impl HistoryCache {
    /// The `seq` after which the store has to be asked (-1: nothing cached yet).
    pub fn last_seq(&self) -> i64 {
        self.lock().last().map_or(-1, |m| m.seq)
    }

    /// Adds `newer` (read from the store after [`HistoryCache::last_seq`]) and returns the
    /// whole history. Messages another reader added meanwhile are not added twice.
    pub fn extend(&self, newer: Vec<StoredMessage>) -> Arc<Vec<StoredMessage>> {
        let mut messages = self.lock();
        let last = messages.last().map_or(-1, |m| m.seq);
        let newer: Vec<_> = newer.into_iter().filter(|m| m.seq > last).collect();
        if !newer.is_empty() {
            // Copies the list only while an earlier snapshot is still in use.
            Arc::make_mut(&mut messages).extend(newer);
        }
        messages.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Arc<Vec<StoredMessage>>> {
        self.messages.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::content::{ContentPart, Role};
    use crate::engine::store::MessageStatus;

    fn message(seq: i64) -> StoredMessage {
        StoredMessage {
            seq,
            role: Role::User,
            content: vec![ContentPart::text(format!("m{seq}"))],
            tool_calls: vec![],
            tool_results: vec![],
            usage: None,
            status: MessageStatus::Complete,
            created_at: 0,
        }
    }

    #[test]
    fn messages_are_added_once_and_in_order() {
        let cache = HistoryCache::default();
        assert_eq!(cache.last_seq(), -1);
        let held = cache.extend(vec![message(0), message(1)]);
        // A reader that raced with this one brings 1 again: it is not added twice.
        let now = cache.extend(vec![message(1), message(2)]);
        assert_eq!(now.iter().map(|m| m.seq).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(held.len(), 2, "an earlier snapshot does not change");
        assert_eq!(cache.last_seq(), 2);
        assert_eq!(cache.extend(vec![]).len(), 3);
    }
}
