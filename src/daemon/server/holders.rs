//! Which connections have which sessions open, and closing the sessions a connection leaves
//! behind when it ends without `session.close` (a window closed, a client crashed).
//!
//! A session closes when its last holder lets go: by `session.close`, or by disconnecting.
//! Closing on disconnect never cancels a turn: it waits until the session's running turn (a
//! detached prompt) has finished and been saved, then closes the session (stopping its MCP
//! servers) unless another connection opened it meanwhile. While the daemon is stopping,
//! nothing is closed here: the reload checkpoint lists the open sessions, and the engine's
//! shutdown stops every MCP server anyway.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use jsonrpsee::ConnectionId;

use super::State;

/// Holders of open sessions, and the connections still up.
#[derive(Default)]
pub(super) struct Holders {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_session: HashMap<String, HashSet<ConnectionId>>,
    live: HashSet<ConnectionId>,
}

impl Holders {
    /// A new connection: its holds count until [`Holders::disconnect`].
    pub(super) fn connect(&self, conn: ConnectionId) {
        self.lock().live.insert(conn);
    }

    /// Records that `conn` has `session` open. False if `conn` has already disconnected (a
    /// request that finished after its connection ended): then nothing is recorded.
    pub(super) fn hold(&self, session: &str, conn: ConnectionId) -> bool {
        let mut inner = self.lock();
        if !inner.live.contains(&conn) {
            return false;
        }
        inner.by_session.entry(session.to_string()).or_default().insert(conn);
        true
    }

    /// Drops `conn`'s hold; true if nobody else holds the session (so it may close).
    pub(super) fn release(&self, session: &str, conn: ConnectionId) -> bool {
        let mut inner = self.lock();
        let Some(holders) = inner.by_session.get_mut(session) else { return true };
        holders.remove(&conn);
        if holders.is_empty() {
            inner.by_session.remove(session);
            return true;
        }
        false
    }

    /// Forgets every hold on the session (it was killed or deleted).
    pub(super) fn forget(&self, session: &str) {
        self.lock().by_session.remove(session);
    }

    /// True if some connection has the session open.
    pub(super) fn is_held(&self, session: &str) -> bool {
        self.lock().by_session.contains_key(session)
    }

    /// Ends `conn`: drops all its holds and returns the sessions nobody holds any more.
    pub(super) fn disconnect(&self, conn: ConnectionId) -> Vec<String> {
        let mut inner = self.lock();
        inner.live.remove(&conn);
        let mut orphans = Vec::new();
        inner.by_session.retain(|session, holders| {
            if !holders.remove(&conn) || !holders.is_empty() {
                return true;
            }
            orphans.push(session.clone());
            false
        });
        orphans.sort();
        orphans
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A connection ended: close what only it had open (see the module docs).
pub(super) fn disconnected(s: &Arc<State>, conn: ConnectionId) {
    let orphans = s.holders.disconnect(conn);
    let stopping = s.stopping.is_cancelled() || s.control.shutdown.is_cancelled() || s.control.reload.is_cancelled();
    if orphans.is_empty() || stopping {
        return;
    }
    tracing::debug!(conn = conn.0, sessions = ?orphans, "a control connection ended; closing the sessions only it had open");
    close_when_idle(s, orphans);
}

/// Closes each session once its running turn (if any) has ended, unless someone holds it by
/// then. The waits run on the server's tracker and stop when the server stops.
pub(super) fn close_when_idle(s: &Arc<State>, sessions: Vec<String>) {
    for id in sessions {
        let s2 = s.clone();
        s.tasks.spawn(async move {
            tokio::select! {
                () = s2.engine.turn_idle(&id) => {}
                () = s2.stopping.cancelled() => return,
            }
            if s2.holders.is_held(&id) {
                return;
            }
            tracing::info!(session = %id, "closing a session whose window went away");
            s2.engine.close_session(&id);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_closes_only_when_its_last_holder_lets_go() {
        let h = Holders::default();
        let (a, b) = (ConnectionId(1), ConnectionId(2));
        h.connect(a);
        h.connect(b);
        assert!(h.hold("s", a));
        assert!(h.hold("s", b));
        assert!(h.hold("s", a));
        assert!(!h.release("s", a), "b still has it open");
        assert!(h.release("s", b));
        assert!(h.release("s", b), "an untracked session (opened before a reload) may close");
        h.hold("t", a);
        h.forget("t");
        assert!(h.release("t", b));
    }

    #[test]
    fn a_disconnect_returns_the_sessions_only_that_connection_held() {
        let h = Holders::default();
        let (a, b) = (ConnectionId(1), ConnectionId(2));
        h.connect(a);
        h.connect(b);
        h.hold("only-a", a);
        h.hold("shared", a);
        h.hold("shared", b);
        h.hold("only-b", b);
        assert_eq!(h.disconnect(a), ["only-a"]);
        assert!(h.is_held("shared") && h.is_held("only-b") && !h.is_held("only-a"));
        assert!(!h.hold("late", a), "a gone connection holds nothing");
        assert!(!h.is_held("late"));
        assert_eq!(h.disconnect(b), ["only-b", "shared"]);
        assert!(h.disconnect(b).is_empty());
    }
}
