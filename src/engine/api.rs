//! [`EngineApi`]: the engine's whole face as a trait, so a front end can drive an engine in
//! this process ([`Engine`]) or one in the daemon (`daemon::RemoteEngine`) with the same code.
//! The store is not part of it: front ends ask the engine, never SQLite.

use std::path::PathBuf;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{broadcast, mpsc};

use super::live::SessionEvent;
use super::mcp::McpServerConfig;
use super::store::ProviderRecord;
use super::tools::{Host, PlanEntry};
use super::{
    ChatEvent, ChildSpec, ContentPart, Engine, EngineError, ListQuery, Mode, PermissionAnswer, ProviderSpec,
    ProviderTest, QuestionAnswer, SessionPage, SessionRecord, StoredMessage,
};

/// A running turn as its starter sees it.
pub struct TurnStream {
    /// Identifies the turn's events in [`EngineApi::subscribe`] streams.
    pub turn: u64,
    /// The turn's events, ending with `Complete` or `Error`.
    pub events: mpsc::Receiver<ChatEvent>,
}

/// How much an engine holds and runs now (what the daemon's health reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineStatus {
    /// Sessions in the store.
    pub sessions: u64,
    /// Turns running now.
    pub running_turns: usize,
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
    /// Creates and opens a session started by `parent` (see [`Engine::create_child_session`]).
    fn create_child_session(
        &self,
        parent: String,
        spec: ChildSpec,
    ) -> BoxFuture<'_, Result<SessionRecord, EngineError>>;
    /// Closes a session here: cancels its turn, stops its MCP servers.
    fn close_session(&self, id: String) -> BoxFuture<'_, Result<(), EngineError>>;
    /// Cancels the session's turn and closes it here, whoever had it open; it stays in the
    /// store. True if a turn was running.
    fn kill_session(&self, id: String) -> BoxFuture<'_, Result<bool, EngineError>>;
    /// Kills the session, then deletes it and its history from the store.
    fn delete_session(&self, id: String) -> BoxFuture<'_, Result<(), EngineError>>;
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
    /// Answers a [`Question`](super::Question) of a turn.
    fn answer_question(&self, id: String, request_id: u64, answer: QuestionAnswer) -> BoxFuture<'_, bool>;
    /// Every event of the session from now on, whoever started the turn.
    fn subscribe(&self, id: String) -> BoxFuture<'_, Result<broadcast::Receiver<SessionEvent>, EngineError>>;
    /// How many sessions the store holds and how many turns run now.
    fn status(&self) -> BoxFuture<'_, Result<EngineStatus, EngineError>>;
    /// Every stored provider entry, by name.
    fn list_providers(&self) -> BoxFuture<'_, Result<Vec<ProviderRecord>, EngineError>>;
    /// Validates and stores an entry (not as the default).
    fn add_provider(&self, spec: ProviderSpec) -> BoxFuture<'_, Result<ProviderRecord, EngineError>>;
    /// Removes an entry; returns it as it was.
    fn remove_provider(&self, name: String) -> BoxFuture<'_, Result<ProviderRecord, EngineError>>;
    /// Makes an entry the default; the engine's next turns use it.
    fn set_default_provider(&self, name: String) -> BoxFuture<'_, Result<ProviderRecord, EngineError>>;
    /// Sends one tiny request through the entry's provider, with the engine's environment.
    fn test_provider(&self, name: String) -> BoxFuture<'_, Result<ProviderTest, EngineError>>;
    /// Ends this front end's use of the engine: one in this process cancels its turns and
    /// waits (briefly) until they saved; the daemon's keeps running, and only the calls on
    /// their way (cancels, host replies) get a moment to reach it.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
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

    fn create_child_session(
        &self,
        parent: String,
        spec: ChildSpec,
    ) -> BoxFuture<'_, Result<SessionRecord, EngineError>> {
        async move { Engine::create_child_session(self, &parent, spec).await }.boxed()
    }

    fn close_session(&self, id: String) -> BoxFuture<'_, Result<(), EngineError>> {
        async move {
            Engine::session(self, &id).await?;
            Engine::close_session(self, &id);
            Ok(())
        }
        .boxed()
    }

    fn kill_session(&self, id: String) -> BoxFuture<'_, Result<bool, EngineError>> {
        async move {
            Engine::session(self, &id).await?;
            let cancelled = Engine::cancel(self, &id);
            Engine::close_session(self, &id);
            Ok(cancelled)
        }
        .boxed()
    }

    fn delete_session(&self, id: String) -> BoxFuture<'_, Result<(), EngineError>> {
        async move {
            EngineApi::kill_session(self, id.clone()).await?;
            self.store().delete_session(&id).await?;
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

    fn answer_question(&self, id: String, request_id: u64, answer: QuestionAnswer) -> BoxFuture<'_, bool> {
        futures::future::ready(Engine::answer_question(self, &id, request_id, answer)).boxed()
    }

    fn subscribe(&self, id: String) -> BoxFuture<'_, Result<broadcast::Receiver<SessionEvent>, EngineError>> {
        futures::future::ready(Ok(self.live().subscribe(&id))).boxed()
    }

    fn status(&self) -> BoxFuture<'_, Result<EngineStatus, EngineError>> {
        async move {
            let sessions = self.store().session_count().await?;
            Ok(EngineStatus { sessions, running_turns: self.running_turns() })
        }
        .boxed()
    }

    fn list_providers(&self) -> BoxFuture<'_, Result<Vec<ProviderRecord>, EngineError>> {
        Engine::list_providers(self).boxed()
    }

    fn add_provider(&self, spec: ProviderSpec) -> BoxFuture<'_, Result<ProviderRecord, EngineError>> {
        Engine::add_provider(self, spec).boxed()
    }

    fn remove_provider(&self, name: String) -> BoxFuture<'_, Result<ProviderRecord, EngineError>> {
        async move { Engine::remove_provider(self, &name).await }.boxed()
    }

    fn set_default_provider(&self, name: String) -> BoxFuture<'_, Result<ProviderRecord, EngineError>> {
        async move { Engine::set_default_provider(self, &name).await }.boxed()
    }

    fn test_provider(&self, name: String) -> BoxFuture<'_, Result<ProviderTest, EngineError>> {
        async move { Engine::test_provider(self, &name).await }.boxed()
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Engine::shutdown(self).boxed()
    }
}
