//! A session's MCP servers: the editor's, plus the project's `.ratchet/mcp.json` once the user
//! allowed them. Split from `engine/mod.rs`; the state itself lives in `open_session`.

use std::sync::Arc;

use super::mcp::{self, McpServerConfig, McpSession};
use super::{Engine, SessionRecord};

impl Engine {
    /// Sets the MCP servers a session's tools come from: the editor's `servers` plus, once the
    /// user allowed them, the project's `.ratchet/mcp.json`. They start on the next turn.
    pub fn set_mcp_servers(&self, session: &SessionRecord, servers: Vec<McpServerConfig>) {
        // A session closed meanwhile has no state to keep them in; none of them started.
        let Some(state) = self.inner.open.get(&session.id) else { return };
        if let Some(old) = state.set_mcp(|project| self.mcp_session(session, servers, project)) {
            self.stop_mcp(old);
        }
    }

    /// Stops a session's old MCP servers in the background (shutdown waits for it).
    pub(super) fn stop_mcp(&self, old: Arc<McpSession>) {
        self.inner.turns.spawn(async move { old.shutdown().await });
    }

    /// The editor's `servers`, plus the project's when `with_project` (the user allowed them).
    pub(super) fn mcp_session(
        &self,
        session: &SessionRecord,
        mut servers: Vec<McpServerConfig>,
        with_project: bool,
    ) -> McpSession {
        if with_project {
            for p in self.project_servers(session) {
                if !servers.iter().any(|s| s.name() == p.name()) {
                    servers.push(p);
                }
            }
        }
        McpSession::new(servers).with_cwd(session.cwd.clone())
    }

    /// The project's `.ratchet/mcp.json` servers (a broken file is logged and ignored).
    pub(super) fn project_servers(&self, session: &SessionRecord) -> Vec<McpServerConfig> {
        mcp::project_servers(&session.cwd).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "ignoring the project's MCP configuration");
            Vec::new()
        })
    }

    /// Project servers the user has not yet been asked about in this session.
    pub(super) fn unapproved_project_servers(&self, session: &SessionRecord) -> Vec<McpServerConfig> {
        if self.inner.open.get(&session.id).is_some_and(|s| s.project_servers_decided()) {
            return Vec::new();
        }
        self.project_servers(session)
    }

    /// Records the user's answer about the project's servers; when allowed, the session's
    /// servers are rebuilt with them.
    pub(super) fn decide_project_servers(&self, session: &SessionRecord, allowed: bool) {
        let Some(state) = self.inner.open.get(&session.id) else { return };
        if let Some(old) = state.decide_project_servers(allowed, |editor| self.mcp_session(session, editor, true)) {
            self.stop_mcp(old);
        }
    }

    #[cfg(test)]
    pub(super) fn has_mcp(&self, id: &str) -> bool {
        self.inner.open.get(id).is_some_and(|s| s.has_mcp())
    }
}
