//! [`RemoteEngine`]: the daemon's engine as an [`EngineApi`], so the ACP bridge (and the CLI)
//! drive it exactly as they drive an in-process [`Engine`](crate::engine::Engine).
//!
//! A turn is a `turn.send` subscription. Its pump turns items back into the [`TurnStream`]'s
//! events and runs the daemon's host calls against this process's editor ([`Host`]), answering
//! each with `turn.host_reply`. Dropping the stream's receiver drops the subscription: the
//! daemon then treats the turn as detached (it keeps running there).
//!
//! Every call goes through the [`Link`], which waits for a lost daemon to come back (see
//! `link.rs`); the sessions opened here are remembered there, and live-event forwarders
//! subscribe again on each new connection, so the front end never notices beyond the turns
//! that failed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use jsonrpsee::core::client::{Subscription, SubscriptionClientT, SubscriptionCloseReason};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::link::{Link, WhenLost};
use super::{Client, ClientError, Json, rpc_error};
use crate::daemon::protocol::{
    self, AnswerParams, ChildParams, CreateParams, Health, HostCaps, HostOp, HostReplyParams, HostValue, IdParams,
    ModelOptionsParams, NameParams, OpenParams, QuestionAnswerParams, SendParams, SetParams, TurnItem, method,
};
use crate::engine::mcp::McpServerConfig;
use crate::engine::store::ProviderRecord;
use crate::engine::tools::{Host, PlanEntry};
use crate::engine::{
    ChatEvent, ChildSpec, ContentPart, EVENT_CAPACITY, EngineApi, EngineError, EngineStatus, ErrorKind, ListQuery,
    Mode, PermissionAnswer, ProviderSpec, ProviderTest, QuestionAnswer, SessionEvent, SessionPage, SessionRecord,
    StoredMessage, TurnStream,
};

/// Live events buffered per session subscriber; as in the engine, a slow one skips ahead.
const LIVE_CAPACITY: usize = 1024;

/// How long [`EngineApi::shutdown`] lets calls on their way (cancels, host replies, a
/// session's close) reach the daemon before the front end exits.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How long the daemon may take to confirm a started turn.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What a prompt cut short by a lost daemon may do next.
const SEND_AGAIN: &str = "what it acknowledged is saved in the session's history; ratchet is reconnecting to the \
                          daemon: send the prompt again (run `ratchet daemon start -b` if it does not come back)";

/// The daemon's engine over a [`Client`]. Cheap to clone.
#[derive(Clone)]
pub struct RemoteEngine {
    inner: Arc<Inner>,
}

struct Inner {
    link: Arc<Link>,
    /// Turn pumps, live-event forwarders and the link's supervisor.
    tasks: TaskTracker,
}

impl RemoteEngine {
    pub(super) fn new(client: Client, when_lost: WhenLost) -> Self {
        let link = Arc::new(Link::new(client, when_lost));
        let tasks = TaskTracker::new();
        if link.reconnects() {
            tasks.spawn(link.clone().supervise());
        }
        RemoteEngine { inner: Arc::new(Inner { link, tasks }) }
    }

    /// The daemon's socket, for messages.
    pub fn socket(&self) -> &std::path::Path {
        self.inner.link.socket()
    }

    /// Stops reconnecting and following sessions, then waits (at most `grace`) for running
    /// pumps, e.g. so cancels reach the daemon before exit.
    pub async fn close(&self, grace: Duration) {
        self.inner.link.close();
        self.inner.tasks.close();
        let _ = tokio::time::timeout(grace, self.inner.tasks.wait()).await;
    }

    async fn call<R: DeserializeOwned>(
        &self,
        name: &str,
        params: impl Serialize + Clone + Send,
    ) -> Result<R, EngineError> {
        let (answer, _) = self
            .on_link(|client| {
                let params = params.clone();
                async move { client.call(name, params).await }
            })
            .await?;
        Ok(answer)
    }

    /// Runs `op` on the current connection (and says which); if it failed because that
    /// connection had closed before anyone noticed (the daemon just died), once more on the
    /// next one. The dead daemon had not run it, unless it died in the middle of it.
    async fn on_link<T, Op, Fut>(&self, op: Op) -> Result<(T, u64), EngineError>
    where
        Op: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let link = &self.inner.link;
        let (client, generation) = link.current().await?;
        match op(client).await {
            Err(ClientError::Disconnected(why)) if link.reconnects() => {
                tracing::debug!(why, "the daemon's connection had closed; trying the next one");
                let (client, generation) = link.current_from(generation + 1).await?;
                op(client).await.map(|t| (t, generation)).map_err(|e| link.engine_error(e))
            }
            other => other.map(|t| (t, generation)).map_err(|e| link.engine_error(e)),
        }
    }

    /// Opens (or creates) a session and remembers `reopen` (with the session's id), to open
    /// it again after a reconnect.
    async fn open(
        &self,
        name: &str,
        params: impl Serialize + Clone + Send,
        reopen: OpenParams,
    ) -> Result<SessionRecord, EngineError> {
        let record: SessionRecord = self.call(name, params).await?;
        self.inner.link.remember(OpenParams { id: record.id.clone(), ..reopen });
        Ok(record)
    }

    async fn start_turn(
        &self,
        id: String,
        content: Vec<ContentPart>,
        host: Arc<dyn Host>,
    ) -> Result<TurnStream, EngineError> {
        let caps = HostCaps { can_read: host.can_read(), can_write: host.can_write(), can_run: host.can_run() };
        let params = SendParams { id, content, host: caps };
        // At most once, unlike `on_link`: a daemon that died after it got the request may have
        // stored the prompt already, and the next daemon would store (and run) it twice. The
        // prompt fails as retryable instead; the user sends it again. So that this happens only
        // when the daemon dies in the moment between the two, the connection is first proven
        // alive by an idempotent call that `on_link` may repeat on the next one: a daemon killed
        // just before the prompt (its connection closed, nobody has noticed yet) is waited for.
        let link = &self.inner.link;
        let (client, _) = self
            .on_link(|client| {
                let probe = IdParams { id: params.id.clone() };
                // Only that it answered matters: `turn.send` gives the session's own errors.
                async move {
                    match client.call::<serde::de::IgnoredAny>(method::GET, probe).await {
                        Err(e @ (ClientError::Disconnected(_) | ClientError::NotRunning(_))) => Err(e),
                        Ok(_) | Err(_) => Ok(client),
                    }
                }
            })
            .await?;
        let mut sub: Subscription<TurnItem> = client
            .rpc
            .subscribe(method::SEND, Json(params), method::SEND_UNSUBSCRIBE)
            .await
            .map_err(|e| link.engine_error(rpc_error(method::SEND, e)))?;
        let turn = match tokio::time::timeout(START_TIMEOUT, sub.next()).await {
            Ok(Some(Ok(TurnItem::Started { turn }))) => turn,
            Ok(None) => {
                return Err(EngineError::Unavailable(format!(
                    "the ratchet daemon stopped before it started the turn; {SEND_AGAIN}"
                )));
            }
            other => {
                return Err(EngineError::Config(format!(
                    "the daemon did not confirm the turn ({other:?}); check `ratchet daemon status`"
                )));
            }
        };
        let (tx, rx) = mpsc::channel(EVENT_CAPACITY);
        let pump = TurnPump { client, host, calls: JoinSet::new(), cancels: HashMap::new() };
        self.inner.tasks.spawn(pump.run(sub, tx));
        Ok(TurnStream { turn, events: rx })
    }

    async fn watch(&self, id: String) -> Result<broadcast::Receiver<SessionEvent>, EngineError> {
        let (sub, generation) = self.on_link(|client| subscribe_live(client, id.clone())).await?;
        let (tx, rx) = broadcast::channel(LIVE_CAPACITY);
        self.inner.tasks.spawn(forward_live(self.inner.link.clone(), id, sub, generation, tx));
        Ok(rx)
    }
}

async fn subscribe_live(client: Client, id: String) -> Result<Subscription<SessionEvent>, ClientError> {
    let params = Json(IdParams { id });
    client
        .rpc
        .subscribe(method::SUBSCRIBE, params, method::SUBSCRIBE_UNSUBSCRIBE)
        .await
        .map_err(|e| rpc_error(method::SUBSCRIBE, e))
}

/// Forwards a session's live events until every receiver is gone, subscribing again on each
/// new connection (the daemon came back), so watchers outlive the daemon.
async fn forward_live(
    link: Arc<Link>,
    id: String,
    mut sub: Subscription<SessionEvent>,
    mut generation: u64,
    tx: broadcast::Sender<SessionEvent>,
) {
    loop {
        loop {
            let item = tokio::select! {
                item = sub.next() => item,
                // Every receiver is gone: drop the subscription.
                () = tx.closed() => return,
                () = link.stopped().cancelled() => return,
            };
            match item {
                Some(Ok(event)) => {
                    let _ = tx.send(event);
                }
                Some(Err(e)) => tracing::warn!(error = %e, "skipping a live event that does not parse"),
                None => break,
            }
        }
        // Fell behind on a live connection: follow again on it; else wait for the next one.
        let mut lagged = matches!(sub.close_reason(), Some(SubscriptionCloseReason::Lagged));
        loop {
            let next = if std::mem::take(&mut lagged) {
                tracing::warn!(session = %id, "fell behind a session's live events; following it again");
                match link.current().await {
                    Ok(next) => Some(next),
                    Err(_) => continue,
                }
            } else {
                tokio::select! {
                    next = link.next_after(generation) => next,
                    () = tx.closed() => return,
                }
            };
            let Some((client, g)) = next else { return };
            generation = g;
            match subscribe_live(client, id.clone()).await {
                Ok(s) => {
                    sub = s;
                    break;
                }
                Err(e) => tracing::warn!(error = %e, session = %id, "cannot follow the session again"),
            }
        }
    }
}

/// Forwards one turn's items: events to the front end, host calls to the editor.
struct TurnPump {
    client: Client,
    host: Arc<dyn Host>,
    /// Host calls running now; each yields its id when done.
    calls: JoinSet<u64>,
    /// Tokens that stop running commands, by call id.
    cancels: HashMap<u64, CancellationToken>,
}

impl TurnPump {
    async fn run(mut self, mut sub: Subscription<TurnItem>, tx: mpsc::Sender<ChatEvent>) {
        loop {
            let item = tokio::select! {
                item = sub.next() => item,
                Some(done) = self.calls.join_next(), if !self.calls.is_empty() => {
                    if let Ok(id) = done {
                        self.cancels.remove(&id);
                    }
                    continue;
                }
            };
            match item {
                Some(Ok(TurnItem::Event(event))) => {
                    let last = matches!(event, ChatEvent::Complete { .. } | ChatEvent::Error { .. });
                    // The front end stopped listening: dropping the subscription detaches the turn.
                    if tx.send(event).await.is_err() || last {
                        break;
                    }
                }
                Some(Ok(TurnItem::HostCall { call_id, op })) => {
                    let cancel = CancellationToken::new();
                    self.cancels.insert(call_id, cancel.clone());
                    self.calls.spawn(host_call(self.client.clone(), self.host.clone(), call_id, op, cancel));
                }
                Some(Ok(TurnItem::HostCancel { call_id })) => {
                    if let Some(cancel) = self.cancels.remove(&call_id) {
                        cancel.cancel();
                    }
                }
                Some(Ok(TurnItem::Started { .. })) => {}
                Some(Err(e)) => tracing::warn!(error = %e, "skipping a turn item that does not parse"),
                None => {
                    let _ = tx.send(ended_early(sub.close_reason())).await;
                    break;
                }
            }
        }
        // Host calls still running get their replies out before the pump ends.
        while self.calls.join_next().await.is_some() {}
    }
}

/// The last event of a turn whose subscription ended before the turn did.
fn ended_early(reason: Option<SubscriptionCloseReason>) -> ChatEvent {
    match reason {
        // The daemon is fine; this process fell behind, and the daemon detached the turn.
        Some(SubscriptionCloseReason::Lagged) => ChatEvent::Error {
            kind: ErrorKind::Internal,
            message: "this window fell behind the turn's events, so the daemon detached it; the turn goes on \
                      there: reopen the session to see its result"
                .to_string(),
        },
        _ => ChatEvent::Error {
            kind: ErrorKind::Unavailable,
            message: format!("the ratchet daemon stopped during the turn; {SEND_AGAIN}"),
        },
    }
}

/// Runs one host call against the editor and sends the result back.
async fn host_call(client: Client, host: Arc<dyn Host>, call_id: u64, op: HostOp, cancel: CancellationToken) -> u64 {
    let result = match op {
        HostOp::ReadTextFile { path, line, limit } => host.read_text_file(path, line, limit).await.map(HostValue::Text),
        HostOp::WriteTextFile { path, content } => {
            host.write_text_file(path, content).await.map(|()| HostValue::Written)
        }
        HostOp::RunCommand { command, cwd, timeout_ms, output_limit } => {
            let request = protocol::command_request(command, cwd, timeout_ms, output_limit);
            host.run_command(request, cancel).await.map(|run| HostValue::Ran(run.into()))
        }
    };
    if let Err(e) = client.call::<()>(method::HOST_REPLY, HostReplyParams { call_id, result }).await {
        tracing::debug!(error = %e, call_id, "the daemon did not take a host reply");
    }
    call_id
}

impl EngineApi for RemoteEngine {
    fn create_session(
        &self,
        cwd: PathBuf,
        dirs: Vec<PathBuf>,
        mcp: Vec<McpServerConfig>,
    ) -> BoxFuture<'_, Result<SessionRecord, EngineError>> {
        let reopen = OpenParams { id: String::new(), cwd: cwd.clone(), dirs: dirs.clone(), mcp: mcp.clone() };
        self.open(method::CREATE, CreateParams { cwd, dirs, mcp }, reopen).boxed()
    }

    fn create_child_session(
        &self,
        parent: String,
        spec: ChildSpec,
    ) -> BoxFuture<'_, Result<SessionRecord, EngineError>> {
        self.call(method::CREATE_CHILD, ChildParams { parent, spec }).boxed()
    }

    fn open_session(
        &self,
        id: String,
        cwd: PathBuf,
        dirs: Vec<PathBuf>,
        mcp: Vec<McpServerConfig>,
    ) -> BoxFuture<'_, Result<SessionRecord, EngineError>> {
        let params = OpenParams { id, cwd, dirs, mcp };
        self.open(method::OPEN, params.clone(), params).boxed()
    }

    fn close_session(&self, id: String) -> BoxFuture<'_, Result<(), EngineError>> {
        async move {
            self.inner.link.forget(&id);
            self.call(method::CLOSE, IdParams { id }).await
        }
        .boxed()
    }

    fn kill_session(&self, id: String) -> BoxFuture<'_, Result<bool, EngineError>> {
        async move {
            self.inner.link.forget(&id);
            self.call(method::KILL, IdParams { id }).await
        }
        .boxed()
    }

    fn delete_session(&self, id: String) -> BoxFuture<'_, Result<(), EngineError>> {
        async move {
            self.inner.link.forget(&id);
            self.call(method::DELETE, IdParams { id }).await
        }
        .boxed()
    }

    fn session(&self, id: String) -> BoxFuture<'_, Result<SessionRecord, EngineError>> {
        self.call(method::GET, IdParams { id }).boxed()
    }

    fn list_sessions(&self, query: ListQuery) -> BoxFuture<'_, Result<SessionPage, EngineError>> {
        self.call(method::LIST, query).boxed()
    }

    fn history(&self, id: String) -> BoxFuture<'_, Result<Vec<StoredMessage>, EngineError>> {
        self.call(method::HISTORY, IdParams { id }).boxed()
    }

    fn plan(&self, id: String) -> BoxFuture<'_, Result<Option<Vec<PlanEntry>>, EngineError>> {
        self.call(method::PLAN, IdParams { id }).boxed()
    }

    fn set_mode(&self, id: String, mode: String) -> BoxFuture<'_, Result<Mode, EngineError>> {
        self.call(method::SET_MODE, SetParams { id, value: mode }).boxed()
    }

    fn set_model(&self, id: String, model: String) -> BoxFuture<'_, Result<SessionRecord, EngineError>> {
        self.call(method::SET_MODEL, SetParams { id, value: model }).boxed()
    }

    fn model_options(&self, current: String) -> BoxFuture<'_, Vec<String>> {
        async move {
            match self.call(method::MODEL_OPTIONS, ModelOptionsParams { current: current.clone() }).await {
                Ok(models) => models,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the daemon's model list; offering the current model only");
                    if current.is_empty() { Vec::new() } else { vec![current] }
                }
            }
        }
        .boxed()
    }

    fn send_message(
        &self,
        id: String,
        content: Vec<ContentPart>,
        host: Arc<dyn Host>,
    ) -> BoxFuture<'_, Result<TurnStream, EngineError>> {
        self.start_turn(id, content, host).boxed()
    }

    fn cancel(&self, id: String) -> BoxFuture<'_, bool> {
        async move {
            self.call(method::CANCEL, IdParams { id }).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot forward a cancel to the daemon");
                false
            })
        }
        .boxed()
    }

    fn answer_permission(&self, id: String, request_id: u64, answer: PermissionAnswer) -> BoxFuture<'_, bool> {
        async move {
            self.call(method::ANSWER_PERMISSION, AnswerParams { id, request_id, answer }).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot forward a permission answer to the daemon");
                false
            })
        }
        .boxed()
    }

    fn answer_question(&self, id: String, request_id: u64, answer: QuestionAnswer) -> BoxFuture<'_, bool> {
        async move {
            let params = QuestionAnswerParams { id, request_id, answer };
            self.call(method::ANSWER_QUESTION, params).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot forward an answer to the daemon");
                false
            })
        }
        .boxed()
    }

    fn subscribe(&self, id: String) -> BoxFuture<'_, Result<broadcast::Receiver<SessionEvent>, EngineError>> {
        self.watch(id).boxed()
    }

    fn status(&self) -> BoxFuture<'_, Result<EngineStatus, EngineError>> {
        async move {
            let health: Health = self.call(method::HEALTH, ()).await?;
            Ok(EngineStatus { sessions: health.sessions, running_turns: health.running_turns })
        }
        .boxed()
    }

    fn list_providers(&self) -> BoxFuture<'_, Result<Vec<ProviderRecord>, EngineError>> {
        self.call(method::PROVIDER_LIST, ()).boxed()
    }

    fn add_provider(&self, spec: ProviderSpec) -> BoxFuture<'_, Result<ProviderRecord, EngineError>> {
        self.call(method::PROVIDER_ADD, spec).boxed()
    }

    fn remove_provider(&self, name: String) -> BoxFuture<'_, Result<ProviderRecord, EngineError>> {
        self.call(method::PROVIDER_REMOVE, NameParams { name }).boxed()
    }

    fn set_default_provider(&self, name: String) -> BoxFuture<'_, Result<ProviderRecord, EngineError>> {
        self.call(method::PROVIDER_DEFAULT, NameParams { name }).boxed()
    }

    fn test_provider(&self, name: String) -> BoxFuture<'_, Result<ProviderTest, EngineError>> {
        self.call(method::PROVIDER_TEST, NameParams { name }).boxed()
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        self.close(SHUTDOWN_GRACE).boxed()
    }
}
