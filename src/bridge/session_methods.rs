//! Session lifecycle and configuration requests: new, load, resume, list, close, set_mode,
//! set_config_option and the legacy set_model.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::{AcpAgent, from_acp, to_acp, to_value};
use crate::acp::schema::{
    AvailableCommandsUpdate, CloseSessionRequest, CloseSessionResponse, ConfigOptionUpdate, CurrentModeUpdate,
    ListSessionsRequest, ListSessionsResponse, LoadSessionRequest, LoadSessionResponse, McpServer, NewSessionRequest,
    NewSessionResponse, ResumeSessionRequest, ResumeSessionResponse, SessionConfigOption, SessionModeState,
    SessionNotification, SessionUpdate, SetSessionConfigOptionRequest, SetSessionConfigOptionResponse,
    SetSessionModeRequest, SetSessionModeResponse,
};
use crate::acp::{RequestContext, RpcError};
use crate::engine::{ListQuery, SessionRecord};

/// Sessions per `session/list` page.
pub const LIST_PAGE_SIZE: usize = 50;

/// Legacy `session/set_model` params (removed from the schema; Gemini CLI-era clients send it).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetModelRequest {
    session_id: String,
    model_id: String,
}

impl AcpAgent {
    pub(super) async fn new_session(
        self: &Arc<Self>,
        req: NewSessionRequest,
        cx: &RequestContext,
    ) -> Result<Value, RpcError> {
        let cwd = from_acp::session_root(&req.cwd).await?;
        let dirs = from_acp::absolute_dirs(req.additional_directories)?;
        let record = self.engine.create_session(cwd, dirs, from_acp::mcp_servers(req.mcp_servers)).await?;
        self.announce_commands(&record.id, cx);
        self.watch(&record.id).await;
        let (modes, options) = self.session_state(&record).await;
        to_value(NewSessionResponse::new(record.id.clone()).modes(modes).config_options(options))
    }

    pub(super) async fn load_session(
        self: &Arc<Self>,
        req: LoadSessionRequest,
        cx: &RequestContext,
    ) -> Result<Value, RpcError> {
        let record =
            self.open(req.session_id.0.as_ref(), &req.cwd, req.additional_directories, req.mcp_servers).await?;
        // Replay the whole conversation before answering, as the spec requires.
        let history = self.engine.history(record.id.clone()).await?;
        for update in to_acp::replay_history(&history) {
            self.send_update(&record.id, update).await;
        }
        if let Some(plan) = self.engine.plan(record.id.clone()).await? {
            for update in to_acp::updates(&crate::engine::ChatEvent::Plan(plan)) {
                self.send_update(&record.id, update).await;
            }
        }
        self.announce_commands(&record.id, cx);
        self.watch(&record.id).await;
        let (modes, options) = self.session_state(&record).await;
        to_value(LoadSessionResponse::new().modes(modes).config_options(options))
    }

    pub(super) async fn resume_session(
        self: &Arc<Self>,
        req: ResumeSessionRequest,
        cx: &RequestContext,
    ) -> Result<Value, RpcError> {
        let record =
            self.open(req.session_id.0.as_ref(), &req.cwd, req.additional_directories, req.mcp_servers).await?;
        self.announce_commands(&record.id, cx);
        self.watch(&record.id).await;
        let (modes, options) = self.session_state(&record).await;
        to_value(ResumeSessionResponse::new().modes(modes).config_options(options))
    }

    /// Opens a stored session for load or resume. Refused while this connection runs a
    /// prompt in it: a replay would interleave a second copy of the conversation with the
    /// live turn in the editor, and re-rooting would swap the MCP servers under the turn.
    async fn open(
        &self,
        id: &str,
        cwd: &std::path::Path,
        dirs: Vec<std::path::PathBuf>,
        mcp: Vec<McpServer>,
    ) -> Result<SessionRecord, RpcError> {
        if self.prompts.is_running(id) {
            return Err(crate::engine::EngineError::Busy(id.to_string()).into());
        }
        let cwd = from_acp::session_root(cwd).await?;
        let dirs = from_acp::absolute_dirs(dirs)?;
        Ok(self.engine.open_session(id.to_string(), cwd, dirs, from_acp::mcp_servers(mcp)).await?)
    }

    pub(super) async fn list_sessions(&self, req: ListSessionsRequest) -> Result<Value, RpcError> {
        // Sessions store their `cwd` normalized, so the filter is too (`/a/b/` finds `/a/b`).
        let cwd = req.cwd.as_deref().map(from_acp::normalize);
        let query = ListQuery { cwd, cursor: req.cursor, limit: LIST_PAGE_SIZE, top_level: false };
        let page = self.engine.list_sessions(query).await?;
        let sessions = page.sessions.iter().map(to_acp::session_info).collect();
        to_value(ListSessionsResponse::new(sessions).next_cursor(page.next_cursor))
    }

    pub(super) async fn close_session(&self, req: CloseSessionRequest) -> Result<Value, RpcError> {
        let id = req.session_id.0.to_string();
        self.unwatch(&id);
        self.engine.close_session(id).await?;
        to_value(CloseSessionResponse::new())
    }

    pub(super) async fn set_mode(&self, req: SetSessionModeRequest) -> Result<Value, RpcError> {
        let id = req.session_id.0.as_ref();
        self.apply_mode(id, req.mode_id.0.as_ref()).await?;
        to_value(SetSessionModeResponse::new())
    }

    pub(super) async fn set_config_option(&self, req: SetSessionConfigOptionRequest) -> Result<Value, RpcError> {
        let id = req.session_id.0.as_ref();
        let Some(value) = req.value.as_value_id().map(|v| v.0.to_string()) else {
            return Err(RpcError::invalid_params(format!(
                "config option \"{}\" takes a value id, not a boolean",
                req.config_id.0
            )));
        };
        match req.config_id.0.as_ref() {
            "mode" => self.apply_mode(id, &value).await?,
            "model" => self.apply_model(id, &value).await?,
            other => {
                return Err(RpcError::invalid_params(format!(
                    "unknown config option \"{other}\"; this agent has \"mode\" and \"model\""
                )));
            }
        };
        let record = self.engine.session(id.to_string()).await?;
        to_value(SetSessionConfigOptionResponse::new(self.session_state(&record).await.1))
    }

    pub(super) async fn set_model_legacy(&self, req: SetModelRequest) -> Result<Value, RpcError> {
        self.apply_model(&req.session_id, &req.model_id).await?;
        Ok(json!({}))
    }

    async fn apply_mode(&self, id: &str, mode: &str) -> Result<(), RpcError> {
        let mode = self.engine.set_mode(id.to_string(), mode.to_string()).await?;
        self.send_update(id, SessionUpdate::CurrentModeUpdate(CurrentModeUpdate::new(mode.id()))).await;
        self.send_config_update(id).await
    }

    async fn apply_model(&self, id: &str, model: &str) -> Result<(), RpcError> {
        if model.trim().is_empty() {
            return Err(RpcError::invalid_params("model name must not be empty"));
        }
        self.engine.set_model(id.to_string(), model.trim().to_string()).await?;
        self.send_config_update(id).await
    }

    async fn send_config_update(&self, id: &str) -> Result<(), RpcError> {
        let record = self.engine.session(id.to_string()).await?;
        let options = self.session_state(&record).await.1;
        self.send_update(id, SessionUpdate::ConfigOptionUpdate(ConfigOptionUpdate::new(options))).await;
        Ok(())
    }

    /// The mode state and config options of a session.
    pub(super) async fn session_state(&self, record: &SessionRecord) -> (SessionModeState, Vec<SessionConfigOption>) {
        let mode = record.mode;
        let mut models = self.engine.model_options(record.model.clone()).await;
        let current = if record.model.is_empty() {
            models.first().cloned().unwrap_or_else(|| "default".to_string())
        } else {
            record.model.clone()
        };
        if models.is_empty() {
            models.push(current.clone());
        }
        (to_acp::mode_state(mode), to_acp::config_options(mode, &current, &models))
    }

    /// Queues the slash-command list, sent right after the response that opens the session.
    fn announce_commands(&self, session_id: &str, cx: &RequestContext) {
        let update = SessionUpdate::AvailableCommandsUpdate(AvailableCommandsUpdate::new(to_acp::commands()));
        cx.notify_after_response("session/update", SessionNotification::new(session_id.to_string(), update));
    }

    /// Sends one `session/update`. A closed connection only loses the update.
    pub(super) async fn send_update(&self, session_id: &str, update: SessionUpdate) {
        let note = SessionNotification::new(session_id.to_string(), update);
        if let Err(e) = self.peer.notify("session/update", note).await {
            tracing::debug!(error = %e, "session/update not delivered");
        }
    }
}
