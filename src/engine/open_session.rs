//! What one session owns while it is open in this process, in one place: its running turn,
//! its MCP servers and its open permission questions.
//!
//! [`OpenSessions`](super::session::OpenSessions) maps session ids to a [`SessionState`];
//! opening a session makes one, closing it drops it. A session closed while its turn runs
//! keeps its state (marked closed) until the turn has saved its work, so reopening it finds
//! the same state, still busy, and cannot start a second turn that would interleave its
//! messages with the first one's last writes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use super::mcp::{McpServerConfig, McpSession};
use super::permission::PendingPermissions;
use super::session::ClaimError;

/// One open session's state. Its registry's lock is held around the open flag and the
/// running turn, so those change together with the map; the state's own lock keeps its
/// parts consistent for callers that hold only an `Arc` of it.
pub struct SessionState {
    parts: Mutex<Parts>,
    /// Its turn's open permission questions (apart: answering one needs nothing else).
    questions: PendingPermissions,
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
        SessionState { parts: Mutex::new(parts), questions: PendingPermissions::default() }
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
