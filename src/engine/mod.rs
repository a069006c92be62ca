//! The agent engine: sessions, history, providers and the turn loop. Knows nothing of ACP.
//!
//! Its face is [`EngineApi`], implemented by [`Engine`] (and by the daemon's `RemoteEngine`):
//! open sessions, then `send_message(session, content, host)` returns a bounded channel of
//! [`ChatEvent`]s that ends with `Complete` or `Error`; `cancel(session)` stops the running
//! turn. Front ends (the ACP bridge, the CLI, the daemon's server) render those events and
//! use nothing else; the store is not part of the face.

pub mod api;
mod backstop;
pub mod commands;
mod compact;
pub mod config;
pub mod content;
pub mod data_dir;
pub mod event;
pub mod extension;
mod history_cache;
mod instructions;
pub mod live;
pub mod liveness;
pub mod lsp;
pub mod mcp;
pub mod open_session;
pub mod opening;
pub mod permission;
pub mod provider;
pub mod provider_kind;
mod provider_messages;
mod providers;
#[cfg(test)]
mod review_tests;
pub mod secret_env;
mod secrets;
pub mod session;
mod session_mcp;
pub mod singleton;
pub mod store;
mod title;
mod tool_call;
pub mod tool_view;
pub mod tools;
mod turn;
mod turn_context;
pub mod turn_scope;
pub mod wal;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex as AsyncMutex, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use api::{EngineApi, EngineStatus, TurnStream};
pub use config::EngineConfig;
pub use content::{ContentPart, Role, Usage};
pub use event::{
    ChatEvent, ErrorKind, PermissionAnswer, PermissionRequest, Question, QuestionAnswer, QuestionForm, StepChoice,
    StopReason, ToolCallChange, ToolCallStart, ToolCallStatus,
};
pub use live::{LiveEvent, SessionEvent};
pub use providers::{ProviderSpec, ProviderTest};
pub use session::Mode;
pub use store::{AgentProfile, ListQuery, SessionPage, SessionRecord, StoredMessage};

use open_session::{ClaimError, OpenSessions, TurnClaim};
use permission::Policy;
use secret_env::EnvAllow;
use store::{NewMessage, NewSession, SessionPatch, SessionStore, StoreError};
use tools::redact::Redactor;
use tools::registry::ToolRegistry;
use tools::{Host, NoHost};

/// Events buffered per turn. A slow front end makes the turn wait (backpressure) rather than
/// grow memory; 256 events is several hundred milliseconds of fast streaming.
pub const EVENT_CAPACITY: usize = 256;

/// How long shutdown waits for running turns to save what they have.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("session {0} does not exist; list sessions to find a valid id")]
    NotFound(String),
    #[error("session {0} is not open; load or resume it first")]
    NotOpen(String),
    #[error("session {0} is already running a turn; wait for it to finish or cancel it")]
    Busy(String),
    #[error("unknown mode \"{0}\"; valid modes: ask, accept-edits, plan, yolo")]
    UnknownMode(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Config(String),
    #[error("no stored provider named {0:?}; list them with `ratchet provider list`")]
    ProviderNotFound(String),
    /// A provider entry that cannot be stored; the message says what to change.
    #[error("{0}")]
    InvalidProvider(String),
    /// The engine cannot be reached right now (its daemon stopped and is being waited for);
    /// retryable. The message says what to run.
    #[error("{0}")]
    Unavailable(String),
}

/// The agent engine. Cheap to clone; all clones share one store and one set of sessions.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    config: EngineConfig,
    store: SessionStore,
    /// The sessions open here, each with what it owns while open (an `open_session::SessionState`).
    open: OpenSessions,
    /// The provider turns use, resolved on first use (resolution may probe Ollama) and again
    /// when the default stored entry changes.
    provider: AsyncMutex<Option<providers::CachedProvider>>,
    /// Every running turn; shutdown waits for them.
    turns: TaskTracker,
    /// Parent of every turn's token.
    shutdown: CancellationToken,
    /// Allow/deny rules from the config file.
    policy: Policy,
    /// Secret values to keep out of tool output.
    redactor: Arc<Redactor>,
    /// Path globs no tool may touch.
    deny_paths: Vec<String>,
    /// Variables that look secret which commands may still have (`[shell] env_allow`).
    env_allow: EnvAllow,
    /// Every session's events, for watchers other than the turn's starter. Apart from `open`:
    /// a watcher may follow a session that is not open here (see `live::LiveHub`).
    live: live::LiveHub,
    /// Language servers, shared by every session (`[lsp]`).
    lsp: lsp::Lsp,
    /// What the layer above added (tools, commands, a look at each turn); set once.
    extension: std::sync::OnceLock<Arc<dyn extension::Extension>>,
    /// Instruction files as last read, for the system prompt of every turn.
    instruction_files: instructions::InstructionCache,
}

/// How a child session is made ([`Engine::create_child_session`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChildSpec {
    pub title: Option<String>,
    /// A stored provider entry the child keeps; `None` follows the default.
    pub provider: Option<String>,
    /// The model; `None` is the entry's (or the default provider's) model.
    pub model: Option<String>,
    /// The named agent the child plays (role prompt, tools, cap).
    #[serde(default)]
    pub agent: Option<store::AgentProfile>,
}

/// A session as front ends see it.
pub type SessionInfo = SessionRecord;

impl Engine {
    /// Opens the store under `config.home` and returns a ready engine.
    pub async fn open(config: EngineConfig) -> Result<Engine, EngineError> {
        let policy = Policy::new(&config.file.permissions).map_err(EngineError::Config)?;
        let home = dirs::home_dir().unwrap_or_default();
        let mut deny_paths = tools::sandbox::default_deny_globs(&home);
        deny_paths.extend(config.file.permissions.deny_paths.iter().cloned());
        let store = SessionStore::open(&config.db_path()).await?;
        let stored_key_vars: Vec<String> = store.providers().await?.into_iter().filter_map(|p| p.api_key_env).collect();
        let env_allow = EnvAllow::new(&config.file.shell.env_allow).map_err(EngineError::Config)?;
        let redactor = Arc::new(secrets::redactor(&config, &stored_key_vars, &env_allow));
        // PATH as ratchet started: the default servers are the ones installed then.
        let lsp = lsp::Lsp::new(&config.file.lsp, std::env::var_os("PATH").as_deref()).map_err(EngineError::Config)?;
        Ok(Engine {
            inner: Arc::new(Inner {
                config,
                store,
                open: OpenSessions::default(),
                provider: AsyncMutex::new(None),
                turns: TaskTracker::new(),
                shutdown: CancellationToken::new(),
                policy,
                redactor,
                deny_paths,
                env_allow,
                live: Default::default(),
                lsp,
                extension: Default::default(),
                instruction_files: Default::default(),
            }),
        })
    }

    /// Installs the layer above (once, before the first turn). False if one was installed.
    pub fn set_extension(&self, extension: Arc<dyn extension::Extension>) -> bool {
        self.inner.extension.set(extension).is_ok()
    }

    fn extension(&self) -> Option<&Arc<dyn extension::Extension>> {
        self.inner.extension.get()
    }

    /// The layer above's slash commands (for `/help`).
    fn extension_commands(&self) -> Vec<commands::CommandInfo> {
        self.extension().map(|e| e.commands()).unwrap_or_default()
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The underlying store, for the engine's own parts only: front ends use the face
    /// ([`EngineApi`]), which has all they need.
    pub(crate) fn store(&self) -> &SessionStore {
        &self.inner.store
    }

    /// Creates a session rooted at `cwd` and opens it.
    pub async fn create_session(
        &self,
        cwd: PathBuf,
        additional_dirs: Vec<PathBuf>,
    ) -> Result<SessionInfo, EngineError> {
        let (provider, model) = match self.provider_choice().await {
            Ok(choice) => (choice.label().to_string(), choice.model),
            // No provider yet: the session still opens; the first prompt reports how to set one.
            Err(_) => ("none".to_string(), String::new()),
        };
        let record = self
            .inner
            .store
            .create_session(NewSession {
                id: None,
                cwd,
                additional_dirs,
                provider,
                model,
                mode: Mode::Ask,
                parent_id: None,
                provider_pinned: false,
                agent: None,
            })
            .await?;
        self.inner.open.open(&record.id);
        self.notify(extension::SessionNotice::Started { session: record.clone(), resumed: false });
        Ok(record)
    }

    /// Creates and opens a session started by `parent` (a fleet worker): same cwd,
    /// directories and mode (plan mode becomes ask: the worker carries out an approved step,
    /// and still asks before every write or command). With `spec.provider` it keeps that
    /// stored entry (and `spec.model`, else the entry's model) whatever the default.
    pub async fn create_child_session(&self, parent: &str, spec: ChildSpec) -> Result<SessionInfo, EngineError> {
        let parent = self.session(parent).await?;
        let mode = if parent.mode == Mode::Plan { Mode::Ask } else { parent.mode };
        let (provider, model, provider_pinned) = match &spec.provider {
            Some(name) => {
                let entry = self
                    .inner
                    .store
                    .provider(name)
                    .await?
                    .ok_or_else(|| EngineError::ProviderNotFound(name.clone()))?;
                (entry.name, spec.model.clone().unwrap_or(entry.model), true)
            }
            None => match self.provider_choice().await {
                Ok(c) => (c.label().to_string(), spec.model.clone().unwrap_or(c.model), false),
                Err(_) => ("none".to_string(), spec.model.clone().unwrap_or_default(), false),
            },
        };
        let mut record = self
            .inner
            .store
            .create_session(NewSession {
                id: None,
                cwd: parent.cwd.clone(),
                additional_dirs: parent.additional_dirs.clone(),
                provider,
                model,
                mode,
                parent_id: Some(parent.id.clone()),
                provider_pinned,
                agent: spec.agent.clone(),
            })
            .await?;
        if let Some(title) = spec.title {
            let patch = SessionPatch { title: Some(title), ..Default::default() };
            record = self.inner.store.update_session(&record.id, patch).await?;
        }
        self.inner.open.open(&record.id);
        self.notify(extension::SessionNotice::Started { session: record.clone(), resumed: false });
        Ok(record)
    }

    /// Opens an existing session (for load and resume), re-rooting it at `cwd`.
    pub async fn open_session(
        &self,
        id: &str,
        cwd: PathBuf,
        additional_dirs: Vec<PathBuf>,
    ) -> Result<SessionInfo, EngineError> {
        let record = self.session(id).await?;
        let record = if record.cwd != cwd || record.additional_dirs != additional_dirs {
            let patch = SessionPatch { cwd: Some(cwd), additional_dirs: Some(additional_dirs), ..Default::default() };
            self.inner.store.update_session(id, patch).await?
        } else {
            record
        };
        self.inner.open.open(id);
        self.notify(extension::SessionNotice::Started { session: record.clone(), resumed: true });
        Ok(record)
    }

    /// Closes a session here, cancelling its running turn and stopping its MCP servers. It
    /// stays in the store.
    pub fn close_session(&self, id: &str) {
        let was_open = self.inner.open.is_open(id);
        if let Some(old) = self.inner.open.close(id) {
            self.stop_mcp(old);
        }
        if was_open && self.extension().is_some() {
            // The extension hears of it with the session's record, read beside the close.
            let engine = self.clone();
            let id = id.to_string();
            self.inner.turns.spawn(async move {
                match engine.session(&id).await {
                    Ok(session) => engine.notify(extension::SessionNotice::Ended { session }),
                    Err(e) => tracing::debug!(error = %e, "a closed session's record cannot be read"),
                }
            });
        }
    }

    /// Tells the layer above (if any) what happened to a session.
    fn notify(&self, notice: extension::SessionNotice) {
        if let Some(extension) = self.extension() {
            extension.session_event(notice);
        }
    }

    /// Reads one session.
    pub async fn session(&self, id: &str) -> Result<SessionInfo, EngineError> {
        self.inner.store.get_session(id).await?.ok_or_else(|| EngineError::NotFound(id.to_string()))
    }

    /// A session's stored messages in order: from memory while it is open here (only the
    /// messages stored since the last read come from the store), else from the store.
    pub(crate) async fn messages(&self, id: &str) -> Result<Arc<Vec<StoredMessage>>, StoreError> {
        let Some(state) = self.inner.open.get(id) else { return Ok(Arc::new(self.inner.store.messages(id).await?)) };
        let newer = self.inner.store.messages_after(id, state.history().last_seq()).await?;
        Ok(state.history().extend(newer))
    }

    /// Lists sessions, newest first.
    pub async fn list_sessions(&self, query: ListQuery) -> Result<SessionPage, EngineError> {
        Ok(self.inner.store.list_sessions(query).await?)
    }

    /// The stored conversation of a session, in order.
    pub async fn history(&self, id: &str) -> Result<Vec<StoredMessage>, EngineError> {
        self.session(id).await?;
        Ok(self.inner.store.messages(id).await?)
    }

    /// The session's last published plan, if any.
    pub async fn plan(&self, id: &str) -> Result<Option<Vec<tools::PlanEntry>>, EngineError> {
        let Some(value) = self.inner.store.plan(id).await? else { return Ok(None) };
        match serde_json::from_value(value) {
            Ok(entries) => Ok(Some(entries)),
            Err(e) => {
                tracing::warn!(error = %e, session = id, "ignoring a stored plan that does not parse");
                Ok(None)
            }
        }
    }

    /// Sets a session's permission mode.
    pub async fn set_mode(&self, id: &str, mode: &str) -> Result<Mode, EngineError> {
        let mode = Mode::parse(mode).ok_or_else(|| EngineError::UnknownMode(mode.to_string()))?;
        let patch = SessionPatch { mode: Some(mode), ..Default::default() };
        self.patch(id, patch).await?;
        Ok(mode)
    }

    /// Sets the model a session uses from its next model call on (with the current provider).
    pub async fn set_model(&self, id: &str, model: &str) -> Result<SessionInfo, EngineError> {
        let patch = SessionPatch {
            model: Some(model.to_string()),
            provider: self.provider_choice().await.ok().map(|c| c.label().to_string()),
            ..Default::default()
        };
        self.patch(id, patch).await
    }

    async fn patch(&self, id: &str, patch: SessionPatch) -> Result<SessionInfo, EngineError> {
        match self.inner.store.update_session(id, patch).await {
            Err(StoreError::NotFound(_)) => Err(EngineError::NotFound(id.to_string())),
            other => Ok(other?),
        }
    }

    /// Model names to offer for a session: its current model first, then the configured ones.
    pub fn model_options(&self, current: &str) -> Vec<String> {
        let mut models = Vec::new();
        let candidates = std::iter::once(current)
            .chain(self.inner.config.file.model.as_deref())
            .chain(self.inner.config.env.ratchet_model.as_deref())
            .chain(self.inner.config.file.models.iter().map(String::as_str));
        for m in candidates {
            if !m.is_empty() && !models.iter().any(|x| x == m) {
                models.push(m.to_string());
            }
        }
        models
    }

    /// Starts a turn: stores the user's message (durably, before this returns) and streams
    /// the answer as events. Fails at once if the session is not open or already busy.
    pub async fn send_message(
        &self,
        session_id: &str,
        content: Vec<ContentPart>,
    ) -> Result<mpsc::Receiver<ChatEvent>, EngineError> {
        let claim = self.claim_turn(session_id)?;
        self.run_turn(claim, content, Arc::new(NoHost)).await
    }

    /// Claims a session for a turn without blocking; pair with [`Engine::run_turn`]. Front
    /// ends use the split form so a cancel that arrives right after the prompt is not lost.
    pub fn claim_turn(&self, session_id: &str) -> Result<TurnClaim, EngineError> {
        self.inner.open.claim(session_id, &self.inner.shutdown).map_err(|e| match e {
            ClaimError::NotOpen => EngineError::NotOpen(session_id.to_string()),
            ClaimError::Busy => EngineError::Busy(session_id.to_string()),
        })
    }

    /// Runs a claimed turn; see [`Engine::send_message`]. `host` is the editor that owns the
    /// prompt: tools read and write files and run commands through it when it can.
    pub async fn run_turn(
        &self,
        claim: TurnClaim,
        content: Vec<ContentPart>,
        host: Arc<dyn Host>,
    ) -> Result<mpsc::Receiver<ChatEvent>, EngineError> {
        let session = self.session(claim.session_id()).await?;
        let first_prompt = session.title.is_none();
        let (stored, action) = self.prepare(&session, content.clone()).await?;
        self.inner.store.append_message(&session.id, NewMessage::user(stored.clone())).await?;
        self.inner.live.publish(&session.id, claim.turn_id(), live::LiveEvent::UserMessage(stored));
        let (tx, rx) = mpsc::channel(EVENT_CAPACITY);
        let backstop = backstop::Backstop {
            engine: self.clone(),
            session_id: session.id.clone(),
            turn_id: claim.turn_id(),
            events: tx.clone(),
        };
        let pause = extension::PauseGate::default();
        let watch = self.extension().map(|e| {
            e.watch_turn(extension::TurnInfo {
                session: session.clone(),
                turn: claim.turn_id(),
                cancel: claim.token().clone(),
                pause: pause.clone(),
            })
        });
        let turn = turn::Turn {
            cx: turn_context::TurnContext { engine: self.clone(), session, claim, events: tx, host },
            first_prompt,
            prompt: content,
            action,
            pause,
        };
        let span = tracing::info_span!("turn", session = %turn.cx.session.id);
        let run = async move {
            // Kept until the turn has ended and saved its work.
            let _watched = match watch {
                Some(w) => w.await,
                None => None,
            };
            backstop.run(turn.run()).await
        };
        self.inner.turns.spawn(tracing::Instrument::instrument(run, span));
        Ok(rx)
    }

    /// Turns a slash command into what to store and what to do; other prompts go to the model.
    async fn prepare(
        &self,
        session: &SessionRecord,
        content: Vec<ContentPart>,
    ) -> Result<(Vec<ContentPart>, turn::Action), EngineError> {
        use commands::Command;
        Ok(match commands::parse(&content) {
            None if let Some(run) = self.extension_turn_command(session, &content) => {
                (content, turn::Action::Extension(run))
            }
            None => match self.extension_command(session, &content) {
                Some(reply) => {
                    let reply = reply.await;
                    (content, turn::Action::Reply(reply))
                }
                None => (content, turn::Action::Model),
            },
            Some(Command::Review) => match commands::review_prompt(&session.cwd).await {
                Ok(prompt) => (vec![ContentPart::text(format!("/review\n\n{prompt}"))], turn::Action::Model),
                Err(reply) => (content, turn::Action::Reply(reply)),
            },
            Some(Command::Plan(goal)) => {
                self.set_mode(&session.id, Mode::Plan.id()).await?;
                (vec![ContentPart::text(commands::plan_prompt(&goal))], turn::Action::ModelAfterModeChange)
            }
            Some(local) => (content, turn::Action::Local(local)),
        })
    }

    /// The layer above's answer to a `/command` it knows, if the prompt is one.
    fn extension_command(
        &self,
        session: &SessionRecord,
        content: &[ContentPart],
    ) -> Option<futures::future::BoxFuture<'static, String>> {
        let ContentPart::Text { text } = content.first()? else { return None };
        let rest = text.trim_start().strip_prefix('/')?;
        let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        self.extension()?.command(session, name.trim(), args.trim())
    }

    /// The layer above's in-turn command, if the prompt is one it runs that way.
    fn extension_turn_command(
        &self,
        session: &SessionRecord,
        content: &[ContentPart],
    ) -> Option<extension::TurnCommand> {
        let ContentPart::Text { text } = content.first()? else { return None };
        let rest = text.trim_start().strip_prefix('/')?;
        let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        self.extension()?.turn_command(session, name.trim(), args.trim())
    }

    /// Cancels the running turn of a session. Returns false if none was running.
    pub fn cancel(&self, session_id: &str) -> bool {
        self.inner.open.cancel(session_id)
    }

    /// Answers a [`PermissionRequest`]. False if that question is not open (answered
    /// already, timed out, or not this session's).
    pub fn answer_permission(&self, session_id: &str, request_id: u64, answer: PermissionAnswer) -> bool {
        self.inner.open.answer(session_id, request_id, answer)
    }

    /// Answers a [`Question`] of a turn. False if that question is not open.
    pub fn answer_question(&self, session_id: &str, request_id: u64, answer: QuestionAnswer) -> bool {
        self.inner.open.answer_question(session_id, request_id, answer)
    }

    /// The tools a session's turns can use: the built-in ones and its MCP servers'. Also
    /// returns the servers that failed to start just now, so the turn can say so once.
    async fn tools_for(&self, session: &SessionRecord) -> (ToolRegistry, Vec<mcp::McpFailure>) {
        let mut registry = ToolRegistry::builtin(self.lsp());
        for tool in self.extension().map(|e| e.tools(session)).unwrap_or_default() {
            if !registry.add(tool.clone()) {
                tracing::warn!(tool = %tool.spec().name, "an added tool's name is taken; skipped");
            }
        }
        // A session closed meanwhile (its turn is cancelled) gets no servers: nothing would
        // stop them.
        let state = self.inner.open.get(&session.id);
        let Some(mcp) = state.and_then(|s| s.mcp(|project| self.mcp_session(session, Vec::new(), project))) else {
            return (registry, Vec::new());
        };
        let failures = mcp.start().await;
        for tool in mcp.tools().await {
            if !registry.add(tool.clone()) {
                tracing::warn!(tool = %tool.spec().name, "MCP tool name clashes with another tool; skipped");
            }
        }
        (registry, failures)
    }

    fn instruction_files(&self) -> &instructions::InstructionCache {
        &self.inner.instruction_files
    }

    fn live(&self) -> &live::LiveHub {
        &self.inner.live
    }

    fn lsp(&self) -> &lsp::Lsp {
        &self.inner.lsp
    }

    fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    fn deny_paths(&self) -> &[String] {
        &self.inner.deny_paths
    }

    /// Number of turns running now.
    pub fn running_turns(&self) -> usize {
        self.inner.open.running()
    }

    /// The sessions open in this engine, sorted.
    pub fn open_session_ids(&self) -> Vec<String> {
        self.inner.open.ids()
    }

    /// Resolves once the session runs no turn (at once if none runs). A turn of a session
    /// closed meanwhile counts until it has saved its work.
    pub async fn turn_idle(&self, id: &str) {
        while let Some(done) = self.inner.open.turn_done(id) {
            done.cancelled().await;
        }
    }

    /// Cancels every running turn and waits (briefly) until each has saved its work.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        for m in self.inner.open.states().iter().filter_map(|s| s.take_mcp()) {
            self.stop_mcp(m);
        }
        self.inner.turns.close();
        if tokio::time::timeout(SHUTDOWN_GRACE, self.inner.turns.wait()).await.is_err() {
            tracing::warn!("turns still running {SHUTDOWN_GRACE:?} after shutdown began");
        }
        if let Some(extension) = self.extension() {
            extension.shutdown().await;
        }
        self.inner.lsp.shutdown().await;
        self.inner.store.checkpoint_on_shutdown().await;
    }
}
