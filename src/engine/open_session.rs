//! What one session owns while it is open in this process, in one place: its running turn,
//! its MCP servers and its open permission questions.
//!
//! [`OpenSessions`] maps session ids to a [`SessionState`] under one lock (the store holds
//! every session ever made; this registry the ones a front end has opened: new, load,
//! resume);
//! opening a session makes one, closing it drops it. A session closed while its turn runs
//! keeps its state (marked closed) until the turn has saved its work, so reopening it finds
//! the same state, still busy, and cannot start a second turn that would interleave its
//! messages with the first one's last writes.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::event::{PermissionAnswer, QuestionAnswer};
use super::history_cache::HistoryCache;
use super::mcp::{McpServerConfig, McpSession};

/// The sessions open in this process, each with its [`SessionState`].
#[derive(Default, Clone)]
pub struct OpenSessions {
    inner: Arc<Mutex<HashMap<String, Arc<SessionState>>>>,
    next_turn: Arc<AtomicU64>,
    /// The last permission question's id; ids are unique in the process.
    next_question: Arc<AtomicU64>,
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

    /// Answers another question of the session's turn (a plan approval, a question of the
    /// model's). False if that question is not open.
    pub fn answer_question(&self, id: &str, request_id: u64, answer: QuestionAnswer) -> bool {
        self.get(id).is_some_and(|s| s.questions().answer_question(request_id, answer))
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

    /// Where this turn's questions wait, for the turn's tools to ask through.
    pub(super) fn questions(&self) -> TurnQuestions {
        TurnQuestions { sessions: self.sessions.clone(), state: self.state.clone() }
    }
}

/// A handle on one turn's open questions that outlives borrows of the claim (tools hold it).
#[derive(Clone)]
pub(super) struct TurnQuestions {
    sessions: OpenSessions,
    state: Arc<SessionState>,
}

impl TurnQuestions {
    /// Puts a permission question; the receiver gets the answer.
    pub(super) fn open_permission(&self) -> (u64, oneshot::Receiver<PermissionAnswer>) {
        let id = self.sessions.next_question.fetch_add(1, Ordering::Relaxed) + 1;
        (id, self.state.questions().open(id))
    }

    /// Puts another question; the receiver gets the answer.
    pub(super) fn open_question(&self) -> (u64, oneshot::Receiver<QuestionAnswer>) {
        let id = self.sessions.next_question.fetch_add(1, Ordering::Relaxed) + 1;
        (id, self.state.questions().open_question(id))
    }

    /// Forgets a question; true if it was still open (nobody answered it).
    pub(super) fn forget(&self, id: u64) -> bool {
        self.state.questions().forget(id)
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

/// Why a turn could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimError {
    NotOpen,
    Busy,
}

/// One open session's state. Its registry's lock is held around the open flag and the
/// running turn, so those change together with the map; the state's own lock keeps its
/// parts consistent for callers that hold only an `Arc` of it.
pub struct SessionState {
    parts: Mutex<Parts>,
    /// Its turn's open permission questions (apart: answering one needs nothing else).
    questions: PendingPermissions,
    /// Its stored history as read so far (apart: a turn's steps read it between locks).
    history: HistoryCache,
}

struct Parts {
    /// False once closed; the state then lives only until its running turn ends.
    open: bool,
    running: Option<Running>,
    /// Its MCP servers (started on first use); taken away, to be stopped, when it closes.
    mcp: Option<Arc<McpSession>>,
    /// Whether the user let it start its project's `.ratchet/mcp.json` servers (they run
    /// commands chosen by whoever wrote the repository, so they are asked for first); `None`
    /// until asked. Forgotten when it closes.
    project_servers: Option<bool>,
}

/// The running turn of a session.
struct Running {
    turn: u64,
    token: CancellationToken,
    /// Fired when the turn's claim is released.
    done: CancellationToken,
}

impl SessionState {
    /// The state of a session just opened.
    pub(super) fn opened() -> SessionState {
        let parts = Parts { open: true, running: None, mcp: None, project_servers: None };
        SessionState {
            parts: Mutex::new(parts),
            questions: PendingPermissions::default(),
            history: HistoryCache::default(),
        }
    }

    /// Its history as read so far (see `history_cache`).
    pub(super) fn history(&self) -> &HistoryCache {
        &self.history
    }

    fn lock(&self) -> MutexGuard<'_, Parts> {
        self.parts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens it again (idempotent); a turn of the closed session may still be running.
    pub(super) fn reopen(&self) {
        self.lock().open = true;
    }

    /// Its open permission questions.
    pub(super) fn questions(&self) -> &PendingPermissions {
        &self.questions
    }

    pub(super) fn is_open(&self) -> bool {
        self.lock().open
    }

    /// True while a turn runs (also when the session was closed meanwhile).
    pub(super) fn is_running(&self) -> bool {
        self.lock().running.is_some()
    }

    /// A token fired when the running turn ends; `None` if none runs.
    pub(super) fn turn_done(&self) -> Option<CancellationToken> {
        self.lock().running.as_ref().map(|r| r.done.clone())
    }

    /// Marks the session closed, cancelling its running turn and forgetting the project-MCP
    /// decision. Returns its MCP servers, to be stopped. The state itself must stay while a
    /// turn runs ([`SessionState::is_running`]).
    pub(super) fn close(&self) -> Option<Arc<McpSession>> {
        let mut parts = self.lock();
        parts.open = false;
        if let Some(running) = &parts.running {
            running.token.cancel();
        }
        parts.project_servers = None;
        parts.mcp.take()
    }

    /// Starts a turn (its id from `next_turn`, its token a child of `parent`); fails if the
    /// session is closed or busy. Returns the turn's id, token and done signal.
    pub(super) fn start_turn(
        &self,
        parent: &CancellationToken,
        next_turn: &AtomicU64,
    ) -> Result<(u64, CancellationToken, CancellationToken), ClaimError> {
        let mut parts = self.lock();
        if !parts.open {
            return Err(ClaimError::NotOpen);
        }
        if parts.running.is_some() {
            return Err(ClaimError::Busy);
        }
        let token = parent.child_token();
        let done = CancellationToken::new();
        let turn = next_turn.fetch_add(1, Ordering::Relaxed);
        parts.running = Some(Running { turn, token: token.clone(), done: done.clone() });
        Ok((turn, token, done))
    }

    /// Cancels the running turn of an open session. A cancel with no turn running does
    /// nothing, so it can never leak into the next turn.
    pub(super) fn cancel(&self) -> bool {
        match &*self.lock() {
            Parts { open: true, running: Some(running), .. } => {
                running.token.cancel();
                true
            }
            _ => false,
        }
    }

    /// Turn `turn` ended. True if that leaves a closed session with nothing running: its
    /// state is no longer needed.
    pub(super) fn end_turn(&self, turn: u64) -> bool {
        let mut parts = self.lock();
        if parts.running.as_ref().is_some_and(|r| r.turn == turn) {
            parts.running = None;
            return !parts.open;
        }
        false
    }

    /// Its MCP servers, made by `make(project servers allowed)` on first use. `None` once
    /// closed: a turn of a closed session must not start servers nothing would stop (checked
    /// under the lock `close` takes them away under).
    pub(super) fn mcp(&self, make: impl FnOnce(bool) -> McpSession) -> Option<Arc<McpSession>> {
        let mut parts = self.lock();
        if !parts.open {
            return None;
        }
        let project = parts.project_servers == Some(true);
        Some(parts.mcp.get_or_insert_with(|| Arc::new(make(project))).clone())
    }

    /// Replaces its MCP servers with `make(project servers allowed)`; returns the old ones,
    /// to be stopped.
    pub(super) fn set_mcp(&self, make: impl FnOnce(bool) -> McpSession) -> Option<Arc<McpSession>> {
        let mut parts = self.lock();
        let project = parts.project_servers == Some(true);
        parts.mcp.replace(Arc::new(make(project)))
    }

    /// Takes its MCP servers away, to be stopped (at shutdown); a later turn makes new ones.
    pub(super) fn take_mcp(&self) -> Option<Arc<McpSession>> {
        self.lock().mcp.take()
    }

    #[cfg(test)]
    pub(super) fn has_mcp(&self) -> bool {
        self.lock().mcp.is_some()
    }

    /// True once the user was asked about the project's servers in this session.
    pub(super) fn project_servers_decided(&self) -> bool {
        self.lock().project_servers.is_some()
    }

    /// Records the user's answer about the project's servers. When allowed, its MCP servers
    /// are rebuilt by `rebuild(the editor's servers)`; the old ones are returned, to be stopped.
    pub(super) fn decide_project_servers(
        &self,
        allowed: bool,
        rebuild: impl FnOnce(Vec<McpServerConfig>) -> McpSession,
    ) -> Option<Arc<McpSession>> {
        let mut parts = self.lock();
        parts.project_servers = Some(allowed);
        if !allowed {
            return None;
        }
        let old = parts.mcp.take();
        let editor = old.as_ref().map(|m| m.configs().to_vec()).unwrap_or_default();
        parts.mcp = Some(Arc::new(rebuild(editor)));
        old
    }
}

/// One session's open questions to the user, by request id. It lives in the session's
/// state, so a question can only be answered through the session it was put in; the ids are
/// unique in the process (`OpenSessions` hands them out).
#[derive(Default)]
pub(super) struct PendingPermissions {
    open: Mutex<HashMap<u64, Waiter>>,
}

/// Who waits for a question's answer, by the kind of answer it takes.
enum Waiter {
    Permission(oneshot::Sender<PermissionAnswer>),
    Question(oneshot::Sender<QuestionAnswer>),
}

impl PendingPermissions {
    /// Registers permission question `id`; the receiver gets the answer.
    pub(super) fn open(&self, id: u64) -> oneshot::Receiver<PermissionAnswer> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id, Waiter::Permission(tx));
        rx
    }

    /// Registers question `id`; the receiver gets the answer.
    pub(super) fn open_question(&self, id: u64) -> oneshot::Receiver<QuestionAnswer> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id, Waiter::Question(tx));
        rx
    }

    /// Answers a permission question. False if it is not open (already answered, never asked
    /// here, or not a permission question).
    pub(super) fn answer(&self, id: u64, answer: PermissionAnswer) -> bool {
        let mut open = self.lock();
        match open.remove(&id) {
            Some(Waiter::Permission(tx)) => tx.send(answer).is_ok(),
            Some(other) => {
                open.insert(id, other);
                false
            }
            None => false,
        }
    }

    /// Answers another question. False if it is not open or is a permission question.
    pub(super) fn answer_question(&self, id: u64, answer: QuestionAnswer) -> bool {
        let mut open = self.lock();
        match open.remove(&id) {
            Some(Waiter::Question(tx)) => tx.send(answer).is_ok(),
            Some(other) => {
                open.insert(id, other);
                false
            }
            None => false,
        }
    }

    /// Forgets a question (the turn stopped waiting); true if it was still open.
    pub(super) fn forget(&self, id: u64) -> bool {
        self.lock().remove(&id).is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Waiter>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
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
}
