//! [`EngineApi`]: the engine's face as a trait, so a front end can drive an engine in this
//! process ([`Engine`]) or one in the daemon (`daemon::RemoteEngine`) with the same code.

use std::path::PathBuf;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{broadcast, mpsc};

use super::live::SessionEvent;
use super::mcp::McpServerConfig;
use super::tools::{Host, PlanEntry};
use super::{
    ChatEvent, ContentPart, Engine, EngineError, ListQuery, Mode, PermissionAnswer, SessionPage, SessionRecord,
    StoredMessage,
};

/// A running turn as its starter sees it.
pub struct TurnStream {
    /// Identifies the turn's events in [`EngineApi::subscribe`] streams.
    pub turn: u64,
    /// The turn's events, ending with `Complete` or `Error`.
    pub events: mpsc::Receiver<ChatEvent>,
}

/// Everything a front end can ask of an engine.
pub trait EngineApi: Send + Sync + 'static {
    /// Creates a session rooted at `cwd`, with the editor's MCP servers.
    fn create_session(
        &self,
        cwd: PathBuf,
        dirs: Vec<PathBuf>,
        mcp: Vec<McpServerConfig>,
    ) -> BoxFuture<'_, Result<SessionRecord, EngineError>>;
    /// Opens a stored session (load, resume), re-rooted at `cwd`.
    fn open_session(
        &self,
        id: String,
        cwd: PathBuf,
        dirs: Vec<PathBuf>,
        mcp: Vec<McpServerConfig>,
    ) -> BoxFuture<'_, Result<SessionRecord, EngineError>>;
    /// Closes a session here: cancels its turn, stops its MCP servers.
    fn close_session(&self, id: String) -> BoxFuture<'_, Result<(), EngineError>>;
    fn session(&self, id: String) -> BoxFuture<'_, Result<SessionRecord, EngineError>>;
    fn list_sessions(&self, query: ListQuery) -> BoxFuture<'_, Result<SessionPage, EngineError>>;
    fn history(&self, id: String) -> BoxFuture<'_, Result<Vec<StoredMessage>, EngineError>>;
    fn plan(&self, id: String) -> BoxFuture<'_, Result<Option<Vec<PlanEntry>>, EngineError>>;
    fn set_mode(&self, id: String, mode: String) -> BoxFuture<'_, Result<Mode, EngineError>>;
    fn set_model(&self, id: String, model: String) -> BoxFuture<'_, Result<SessionRecord, EngineError>>;
    /// Models to offer for a session whose current model is `current`.
    fn model_options(&self, current: String) -> BoxFuture<'_, Vec<String>>;
    /// Starts a turn; the user's message is stored before this returns. `host` is the
    /// editor that owns the prompt (fs, terminals).
    fn send_message(
        &self,
        id: String,
        content: Vec<ContentPart>,
        host: Arc<dyn Host>,
    ) -> BoxFuture<'_, Result<TurnStream, EngineError>>;
    /// Cancels the session's running turn; false if none ran.
    fn cancel(&self, id: String) -> BoxFuture<'_, bool>;
    /// Answers a permission question of a turn.
    fn answer_permission(&self, id: String, request_id: u64, answer: PermissionAnswer) -> BoxFuture<'_, bool>;
    /// Every event of the session from now on, whoever started the turn.
    fn subscribe(&self, id: String) -> BoxFuture<'_, Result<broadcast::Receiver<SessionEvent>, EngineError>>;
}

impl EngineApi for Engine {
    fn create_session(
        &self,
        cwd: PathBuf,
        dirs: Vec<PathBuf>,
        mcp: Vec<McpServerConfig>,
    ) -> BoxFuture<'_, Result<SessionRecord, EngineError>> {
        async move {
            let record = Engine::create_session(self, cwd, dirs).await?;
            self.set_mcp_servers(&record, mcp);
            Ok(record)
        }
        .boxed()
    }

    fn open_session(
        &self,
        id: String,
        cwd: PathBuf,
        dirs: Vec<PathBuf>,
        mcp: Vec<McpServerConfig>,
    ) -> BoxFuture<'_, Result<SessionRecord, EngineError>> {
        async move {
            let record = Engine::open_session(self, &id, cwd, dirs).await?;
            self.set_mcp_servers(&record, mcp);
            Ok(record)
        }
        .boxed()
    }

    fn close_session(&self, id: String) -> BoxFuture<'_, Result<(), EngineError>> {
        async move {
            Engine::session(self, &id).await?;
            Engine::close_session(self, &id);
            Ok(())
        }
        .boxed()
    }

    fn session(&self, id: String) -> BoxFuture<'_, Result<SessionRecord, EngineError>> {
        async move { Engine::session(self, &id).await }.boxed()
    }

    fn list_sessions(&self, query: ListQuery) -> BoxFuture<'_, Result<SessionPage, EngineError>> {
        Engine::list_sessions(self, query).boxed()
    }

    fn history(&self, id: String) -> BoxFuture<'_, Result<Vec<StoredMessage>, EngineError>> {
        async move { Engine::history(self, &id).await }.boxed()
    }

    fn plan(&self, id: String) -> BoxFuture<'_, Result<Option<Vec<PlanEntry>>, EngineError>> {
        async move { Engine::plan(self, &id).await }.boxed()
    }

    fn set_mode(&self, id: String, mode: String) -> BoxFuture<'_, Result<Mode, EngineError>> {
        async move { Engine::set_mode(self, &id, &mode).await }.boxed()
    }

    fn set_model(&self, id: String, model: String) -> BoxFuture<'_, Result<SessionRecord, EngineError>> {
        async move { Engine::set_model(self, &id, &model).await }.boxed()
    }

    fn model_options(&self, current: String) -> BoxFuture<'_, Vec<String>> {
        futures::future::ready(Engine::model_options(self, &current)).boxed()
    }

    fn send_message(
        &self,
        id: String,
        content: Vec<ContentPart>,
        host: Arc<dyn Host>,
    ) -> BoxFuture<'_, Result<TurnStream, EngineError>> {
        async move {
            let claim = self.claim_turn(&id)?;
            let turn = claim.turn_id();
            let events = self.run_turn(claim, content, host).await?;
            Ok(TurnStream { turn, events })
        }
        .boxed()
    }

    fn cancel(&self, id: String) -> BoxFuture<'_, bool> {
        futures::future::ready(Engine::cancel(self, &id)).boxed()
    }

    fn answer_permission(&self, id: String, request_id: u64, answer: PermissionAnswer) -> BoxFuture<'_, bool> {
        futures::future::ready(Engine::answer_permission(self, &id, request_id, answer)).boxed()
    }

    fn subscribe(&self, id: String) -> BoxFuture<'_, Result<broadcast::Receiver<SessionEvent>, EngineError>> {
        futures::future::ready(Ok(self.live().subscribe(&id))).boxed()
    }
}
