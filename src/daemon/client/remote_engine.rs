//! [`RemoteEngine`]: the daemon's engine as an [`EngineApi`], so the ACP bridge (and the CLI)
//! drive it exactly as they drive an in-process [`Engine`](crate::engine::Engine).
//!
//! A turn is a `turn.send` subscription. Its pump turns items back into the [`TurnStream`]'s
//! events and runs the daemon's host calls against this process's editor ([`Host`]), answering
//! each with `turn.host_reply`. Dropping the stream's receiver drops the subscription: the
//! daemon then treats the turn as detached (it keeps running there).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use jsonrpsee::core::client::{Subscription, SubscriptionClientT};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Client, ClientError, Json, rpc_error};
use crate::daemon::protocol::{
    self, AnswerParams, CreateParams, HostCaps, HostOp, HostReplyParams, HostValue, IdParams, ModelOptionsParams,
    OpenParams, SendParams, SetParams, TurnItem, method,
};
use crate::engine::mcp::McpServerConfig;
use crate::engine::tools::{Host, PlanEntry};
use crate::engine::{
    ChatEvent, ContentPart, EVENT_CAPACITY, EngineApi, EngineError, ErrorKind, ListQuery, Mode, PermissionAnswer,
    SessionEvent, SessionPage, SessionRecord, StoredMessage, TurnStream,
};

/// Live events buffered per session subscriber; as in the engine, a slow one skips ahead.
const LIVE_CAPACITY: usize = 1024;

/// How long the daemon may take to confirm a started turn.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The daemon's engine over a [`Client`]. Cheap to clone.
#[derive(Clone)]
pub struct RemoteEngine {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    /// Turn pumps and live-event forwarders.
    tasks: TaskTracker,
}

impl RemoteEngine {
    pub(super) fn new(client: Client) -> Self {
        RemoteEngine { inner: Arc::new(Inner { client, tasks: TaskTracker::new() }) }
    }

    /// The connection, for the daemon-only calls (health, kill, delete).
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Waits (at most `grace`) for running pumps, e.g. so cancels reach the daemon before exit.
    pub async fn close(&self, grace: Duration) {
        self.inner.tasks.close();
        let _ = tokio::time::timeout(grace, self.inner.tasks.wait()).await;
    }

    async fn call<R: DeserializeOwned>(&self, name: &str, params: impl Serialize + Send) -> Result<R, EngineError> {
        self.inner.client.call(name, params).await.map_err(engine_error)
    }

    async fn start_turn(
        &self,
        id: String,
        content: Vec<ContentPart>,
        host: Arc<dyn Host>,
    ) -> Result<TurnStream, EngineError> {
        let caps = HostCaps { can_read: host.can_read(), can_write: host.can_write(), can_run: host.can_run() };
        let params = SendParams { id, content, host: caps };
        let rpc = &self.inner.client.rpc;
        let mut sub: Subscription<TurnItem> = rpc
            .subscribe(method::SEND, Json(params), method::SEND_UNSUBSCRIBE)
            .await
            .map_err(|e| engine_error(rpc_error(method::SEND, e)))?;
        let turn = match tokio::time::timeout(START_TIMEOUT, sub.next()).await {
            Ok(Some(Ok(TurnItem::Started { turn }))) => turn,
            other => {
                return Err(EngineError::Config(format!(
                    "the daemon did not confirm the turn ({other:?}); check `ratchet daemon status`"
                )));
            }
        };
        let (tx, rx) = mpsc::channel(EVENT_CAPACITY);
        let pump = TurnPump { client: self.inner.client.clone(), host, calls: JoinSet::new(), cancels: HashMap::new() };
        self.inner.tasks.spawn(pump.run(sub, tx));
        Ok(TurnStream { turn, events: rx })
    }

    async fn watch(&self, id: String) -> Result<broadcast::Receiver<SessionEvent>, EngineError> {
        let rpc = &self.inner.client.rpc;
        let mut sub: Subscription<SessionEvent> = rpc
            .subscribe(method::SUBSCRIBE, Json(IdParams { id }), method::SUBSCRIBE_UNSUBSCRIBE)
            .await
            .map_err(|e| engine_error(rpc_error(method::SUBSCRIBE, e)))?;
        let (tx, rx) = broadcast::channel(LIVE_CAPACITY);
        self.inner.tasks.spawn(async move {
            loop {
                let item = tokio::select! {
                    item = sub.next() => item,
                    // Every receiver is gone: drop the subscription.
                    () = tx.closed() => return,
                };
                match item {
                    Some(Ok(event)) => {
                        let _ = tx.send(event);
                    }
                    Some(Err(e)) => tracing::warn!(error = %e, "skipping a live event that does not parse"),
                    None => return,
                }
            }
        });
        Ok(rx)
    }
}

/// A client error as the engine error the bridge understands.
fn engine_error(e: ClientError) -> EngineError {
    match e {
        ClientError::Engine(e) => e,
        other => EngineError::Config(other.to_string()),
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
                    let message = "lost the connection to the ratchet daemon during the turn; it goes on in the daemon: \
                                   reopen the session to see its result, and check `ratchet daemon status`";
                    let _ = tx.send(ChatEvent::Error { kind: ErrorKind::Internal, message: message.to_string() }).await;
                    break;
                }
            }
        }
        // Host calls still running get their replies out before the pump ends.
        while self.calls.join_next().await.is_some() {}
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
        self.call(method::CREATE, CreateParams { cwd, dirs, mcp }).boxed()
    }

    fn open_session(
        &self,
        id: String,
        cwd: PathBuf,
        dirs: Vec<PathBuf>,
        mcp: Vec<McpServerConfig>,
    ) -> BoxFuture<'_, Result<SessionRecord, EngineError>> {
        self.call(method::OPEN, OpenParams { id, cwd, dirs, mcp }).boxed()
    }

    fn close_session(&self, id: String) -> BoxFuture<'_, Result<(), EngineError>> {
        self.call(method::CLOSE, IdParams { id }).boxed()
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

    fn subscribe(&self, id: String) -> BoxFuture<'_, Result<broadcast::Receiver<SessionEvent>, EngineError>> {
        self.watch(id).boxed()
    }
}
