//! Sessions that are open in this process, and the one-turn-at-a-time rule.
//!
//! The store holds every session ever made; this registry holds the ones a front end has
//! opened (new, load, resume), each with its [`SessionState`] (its running turn, among
//! other things), under one lock.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::event::PermissionAnswer;
use super::mcp::McpSession;
use super::open_session::SessionState;

/// A permission mode: how much the agent may do without asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Ask before writes and commands (the default).
    Ask,
    /// File edits are allowed; commands still ask.
    AcceptEdits,
    /// Read-only: the model proposes a plan.
    Plan,
    /// Never ask.
    Yolo,
}

impl Mode {
    /// Every mode, in the order editors should list them.
    pub const ALL: [Mode; 4] = [Mode::Ask, Mode::AcceptEdits, Mode::Plan, Mode::Yolo];

    /// The id used in the store and on the wire.
    pub fn id(self) -> &'static str {
        match self {
            Mode::Ask => "ask",
            Mode::AcceptEdits => "accept-edits",
            Mode::Plan => "plan",
            Mode::Yolo => "yolo",
        }
    }

    /// A short human name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Ask => "Ask",
            Mode::AcceptEdits => "Accept edits",
            Mode::Plan => "Plan",
            Mode::Yolo => "Yolo",
        }
    }

    /// One line on what the mode does.
    pub fn description(self) -> &'static str {
        match self {
            Mode::Ask => "Ask before editing files or running commands",
            Mode::AcceptEdits => "Edit files without asking; ask before running commands",
            Mode::Plan => "Read-only: look around and propose a plan",
            Mode::Yolo => "Never ask: edit files and run commands freely",
        }
    }

    /// Parses an id.
    pub fn parse(id: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.id() == id)
    }
}

/// The sessions open in this process, each with its [`SessionState`].
#[derive(Default, Clone)]
pub struct OpenSessions {
    inner: Arc<Mutex<HashMap<String, Arc<SessionState>>>>,
    next_turn: Arc<AtomicU64>,
    /// The last permission question's id; ids are unique in the process.
    next_question: Arc<AtomicU64>,
}

/// Why a turn could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimError {
    NotOpen,
    Busy,
}

impl OpenSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<SessionState>>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks a session open (idempotent).
    pub fn open(&self, id: &str) {
        match self.lock().entry(id.to_string()) {
            Entry::Occupied(state) => state.get().reopen(),
            Entry::Vacant(slot) => {
                slot.insert(Arc::new(SessionState::opened()));
            }
        }
    }

    /// True if the session is open here.
    pub fn is_open(&self, id: &str) -> bool {
        self.lock().get(id).is_some_and(|s| s.is_open())
    }

    /// The ids of the open sessions, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.lock().iter().filter(|(_, s)| s.is_open()).map(|(id, _)| id.clone()).collect();
        ids.sort();
        ids
    }

    /// A token fired when the session's running turn ends; `None` if none runs.
    pub fn turn_done(&self, id: &str) -> Option<CancellationToken> {
        self.lock().get(id)?.turn_done()
    }

    /// Closes a session, cancelling its running turn; returns its MCP servers, to be stopped.
    /// Its state goes now, or when that turn ends (see `TurnClaim::drop`).
    pub fn close(&self, id: &str) -> Option<Arc<McpSession>> {
        let mut map = self.lock();
        let state = map.get(id)?;
        let mcp = state.close();
        if !state.is_running() {
            map.remove(id);
        }
        mcp
    }

    /// The state of a session known here (open, or closed with its turn still running).
    pub(super) fn get(&self, id: &str) -> Option<Arc<SessionState>> {
        self.lock().get(id).cloned()
    }

    /// Every session's state.
    pub(super) fn states(&self) -> Vec<Arc<SessionState>> {
        self.lock().values().cloned().collect()
    }

    /// Claims the session for a new turn. The claim ends when the returned guard drops.
    pub fn claim(&self, id: &str, parent: &CancellationToken) -> Result<TurnClaim, ClaimError> {
        let map = self.lock();
        let state = map.get(id).ok_or(ClaimError::NotOpen)?;
        let (turn, token, done) = state.start_turn(parent, &self.next_turn)?;
        Ok(TurnClaim { sessions: self.clone(), state: state.clone(), id: id.to_string(), turn, token, done })
    }

    /// Cancels the running turn of a session, if any. A cancel with no turn running does
    /// nothing, so it can never leak into the next turn.
    pub fn cancel(&self, id: &str) -> bool {
        self.lock().get(id).is_some_and(|s| s.cancel())
    }

    /// Answers a permission question of the session's turn. False if that question is not
    /// open (answered already, timed out, or not this session's).
    pub fn answer(&self, id: &str, request_id: u64, answer: PermissionAnswer) -> bool {
        self.get(id).is_some_and(|s| s.questions().answer(request_id, answer))
    }

    /// Number of turns running now (including those of sessions closed meanwhile).
    pub fn running(&self) -> usize {
        self.lock().values().filter(|s| s.is_running()).count()
    }
}

/// The right to run one turn on one session. Dropping it frees the session.
pub struct TurnClaim {
    sessions: OpenSessions,
    /// Kept in the registry while this claim lives, even if the session is closed.
    state: Arc<SessionState>,
    id: String,
    turn: u64,
    token: CancellationToken,
    done: CancellationToken,
}

impl TurnClaim {
    /// The session this turn runs in.
    pub fn session_id(&self) -> &str {
        &self.id
    }

    /// This turn's id, unique in the process.
    pub fn turn_id(&self) -> u64 {
        self.turn
    }

    /// Fired when the turn is cancelled.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Puts a permission question in this turn's session; the receiver gets the answer.
    pub fn open_question(&self) -> (u64, oneshot::Receiver<PermissionAnswer>) {
        let id = self.sessions.next_question.fetch_add(1, Ordering::Relaxed) + 1;
        (id, self.state.questions().open(id))
    }

    /// Forgets a question (the turn stopped waiting).
    pub fn forget_question(&self, id: u64) {
        self.state.questions().forget(id);
    }
}

impl Drop for TurnClaim {
    fn drop(&mut self) {
        let mut map = self.sessions.lock();
        if self.state.end_turn(self.turn) && map.get(&self.id).is_some_and(|s| Arc::ptr_eq(s, &self.state)) {
            map.remove(&self.id);
        }
        drop(map);
        self.done.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_turn_at_a_time_and_release_on_drop() {
        let s = OpenSessions::default();
        let root = CancellationToken::new();
        assert_eq!(s.claim("a", &root).err(), Some(ClaimError::NotOpen));
        s.open("a");
        let claim = s.claim("a", &root).unwrap();
        assert_eq!(s.claim("a", &root).err(), Some(ClaimError::Busy));
        drop(claim);
        assert!(s.claim("a", &root).is_ok());
    }

    #[test]
    fn stale_cancel_does_not_touch_the_next_turn() {
        let s = OpenSessions::default();
        let root = CancellationToken::new();
        s.open("a");
        assert!(!s.cancel("a"));
        let claim = s.claim("a", &root).unwrap();
        assert!(!claim.token().is_cancelled());
        assert!(s.cancel("a"));
        assert!(claim.token().is_cancelled());
    }

    #[test]
    fn open_ids_and_the_end_of_a_turn_are_visible() {
        let s = OpenSessions::default();
        let root = CancellationToken::new();
        s.open("b");
        s.open("a");
        assert_eq!(s.ids(), ["a", "b"]);
        assert!(s.turn_done("a").is_none(), "no turn runs");
        let claim = s.claim("a", &root).unwrap();
        let done = s.turn_done("a").unwrap();
        assert!(!done.is_cancelled());
        drop(claim);
        assert!(done.is_cancelled());
        s.close("b");
        assert_eq!(s.ids(), ["a"]);
    }

    #[test]
    fn a_reopened_session_stays_busy_until_the_closed_turn_ends() {
        let s = OpenSessions::default();
        let root = CancellationToken::new();
        s.open("a");
        let old = s.claim("a", &root).unwrap();
        s.close("a");
        assert!(old.token().is_cancelled(), "closing cancels the turn");
        // The editor loads the session again while the cancelled turn still saves its work.
        s.open("a");
        assert_eq!(s.claim("a", &root).err(), Some(ClaimError::Busy), "two turns would interleave");
        let done = s.turn_done("a").expect("the old turn is still running");
        drop(old);
        assert!(done.is_cancelled());
        assert!(s.claim("a", &root).is_ok());
    }

    #[test]
    fn a_closed_session_that_is_not_reopened_is_forgotten_when_its_turn_ends() {
        let s = OpenSessions::default();
        let root = CancellationToken::new();
        s.open("a");
        let old = s.claim("a", &root).unwrap();
        s.close("a");
        assert!(s.ids().is_empty());
        assert_eq!(s.running(), 1, "the closed session's turn still runs");
        drop(old);
        assert_eq!(s.running(), 0);
        assert_eq!(s.claim("a", &root).err(), Some(ClaimError::NotOpen));
        assert!(s.lock().is_empty(), "nothing left behind");
    }

    #[test]
    fn answers_go_to_the_right_question_once() {
        let pending = OpenSessions::default();
        pending.open("s1");
        pending.open("s2");
        let claim = pending.claim("s1", &CancellationToken::new()).unwrap();
        let (id, mut rx) = claim.open_question();
        assert!(!pending.answer("s2", id, PermissionAnswer::AllowOnce));
        assert!(pending.answer("s1", id, PermissionAnswer::RejectOnce));
        assert_eq!(rx.try_recv().unwrap(), PermissionAnswer::RejectOnce);
        assert!(!pending.answer("s1", id, PermissionAnswer::AllowOnce));
    }

    #[test]
    fn modes_round_trip() {
        for m in Mode::ALL {
            assert_eq!(Mode::parse(m.id()), Some(m));
        }
        assert_eq!(Mode::parse("bogus"), None);
    }
}
