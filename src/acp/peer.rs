//! A full-duplex JSON-RPC peer over one byte stream.
//!
//! One reader loop takes lines in order; each request runs as its own task so a long
//! `session/prompt` never blocks `session/cancel`, another session, or the answers to our
//! own requests. One writer task owns the output: nothing else may write to it, which is what
//! keeps stdout a clean protocol channel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::envelope::{self, Frame};
use super::error::RpcError;
use super::framing::{self, Line};
use super::message::{Incoming, classify, classify_raw};

/// Outgoing messages waiting for the writer. Bounded so a client that stops reading slows
/// the agent down instead of growing memory without limit; 1024 lines absorbs any burst of
/// streamed chunks.
const OUTGOING_CAPACITY: usize = 1024;

/// Requests (and batches) running at once, `session/prompt` aside. When this many run, the
/// reader stops reading until one ends, so a client firing requests faster than they are
/// answered slows down instead of growing memory by one task per request. Prompts are not
/// counted: they may wait for the client's own answers (permissions, fs), which only the
/// reader can deliver; one turn per session bounds them.
const MAX_REQUESTS_IN_FLIGHT: usize = 256;

/// Methods that may wait for the client's answers while they run (see
/// [`MAX_REQUESTS_IN_FLIGHT`]).
const WAITS_FOR_CLIENT: &[&str] = &["session/prompt"];

/// How long in-flight requests get to finish (and save their work) after the input closes.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Lines already queued are written together, up to this many bytes per write: a burst (a
/// `session/load` replay, fast streaming) costs one write per batch instead of two per line.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// A notification as it goes on the wire, serialised from the caller's params directly.
#[derive(Serialize)]
struct OutNotification<'a, P> {
    jsonrpc: &'static str,
    method: &'a str,
    params: P,
}

/// A request of ours as it goes on the wire.
#[derive(Serialize)]
struct OutRequest<'a, P> {
    jsonrpc: &'static str,
    id: i64,
    method: &'a str,
    params: P,
}

/// What an incoming request may use while it runs.
#[derive(Clone)]
pub struct RequestContext {
    /// Fired by `$/cancel_request` for this request, or when the connection closes.
    pub cancel: CancellationToken,
    /// Fired when the connection's input has ended (the client hung up); `cancel` fires
    /// then too. Tells a hang-up apart from `$/cancel_request`.
    pub closing: CancellationToken,
    /// The connection, for notifications and requests back to the client.
    pub peer: Peer,
    /// Notifications to send right after the response (e.g. the command list after
    /// `session/new`, which must follow the response that names the session).
    after: Arc<Mutex<Vec<Value>>>,
}

impl RequestContext {
    /// Queues a notification to be sent right after this request's response.
    pub fn notify_after_response(&self, method: &str, params: impl Serialize) {
        match serde_json::to_value(params) {
            Ok(params) => lock(&self.after).push(json!({"jsonrpc": "2.0", "method": method, "params": params})),
            Err(e) => tracing::warn!(error = %e, method, "notification dropped: cannot serialize"),
        }
    }
}

/// A request's answer: the peer, its id, the result, and notifications to follow it.
type Answer = (Peer, Value, Result<Value, RpcError>, Vec<Value>);

/// The application side of a connection.
///
/// Both methods are called from the reader loop, in the order messages arrived. They may do
/// quick synchronous bookkeeping (so a `session/cancel` that follows a `session/prompt` on
/// the wire is seen after the prompt was registered); slow work belongs in the returned
/// future, which runs as its own task.
pub trait Handler: Send + Sync + 'static {
    /// Handles a request; the future's output becomes the response.
    fn handle_request(
        self: Arc<Self>,
        method: &str,
        params: Value,
        cx: RequestContext,
    ) -> BoxFuture<'static, Result<Value, RpcError>>;

    /// Handles a notification. Unknown notifications must be ignored.
    fn handle_notification(self: Arc<Self>, method: &str, params: Value);
}

/// The sending half of a connection: notifications, and requests whose answers come back
/// through the reader loop. Cheap to clone.
#[derive(Clone)]
pub struct Peer {
    inner: Arc<PeerInner>,
}

struct PeerInner {
    out: mpsc::Sender<String>,
    pending: Mutex<HashMap<i64, oneshot::Sender<Result<Value, RpcError>>>>,
    next_id: AtomicI64,
    closed: CancellationToken,
}

impl Peer {
    fn new(out: mpsc::Sender<String>) -> Self {
        Peer {
            inner: Arc::new(PeerInner {
                out,
                pending: Mutex::new(HashMap::new()),
                next_id: AtomicI64::new(0),
                closed: CancellationToken::new(),
            }),
        }
    }

    /// Sends a notification. Fails only when the connection is gone.
    pub async fn notify(&self, method: &str, params: impl Serialize) -> Result<(), RpcError> {
        // Serialised straight to the line: no `Value` tree per streamed chunk or replayed update.
        let line =
            serde_json::to_string(&OutNotification { jsonrpc: "2.0", method, params }).map_err(RpcError::internal)?;
        self.send_line(line).await
    }

    /// Sends a request and waits for the client's answer.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future forgets the pending request and tells the client
    /// with `$/cancel_request` (so it can close a permission dialog nobody waits for, or stop
    /// a `terminal/wait_for_exit`); a late answer is ignored.
    pub async fn request(&self, method: &str, params: impl Serialize) -> Result<Value, RpcError> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let line =
            serde_json::to_string(&OutRequest { jsonrpc: "2.0", id, method, params }).map_err(RpcError::internal)?;
        let (tx, rx) = oneshot::channel();
        self.pending().insert(id, tx);
        let guard = PendingGuard { peer: self, id };
        self.send_line(line).await?;
        let answer = tokio::select! {
            answer = rx => answer.unwrap_or_else(|_| Err(connection_closed())),
            () = self.inner.closed.cancelled() => Err(connection_closed()),
        };
        drop(guard);
        answer
    }

    /// Resolves when the connection has closed.
    pub async fn closed(&self) {
        self.inner.closed.cancelled().await;
    }

    /// True once the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.is_cancelled()
    }

    async fn send(&self, message: Value) -> Result<(), RpcError> {
        self.send_line(serde_json::to_string(&message).map_err(RpcError::internal)?).await
    }

    async fn send_line(&self, line: String) -> Result<(), RpcError> {
        self.inner.out.send(line).await.map_err(|_| connection_closed())
    }

    async fn respond(&self, id: Value, result: Result<Value, RpcError>) {
        let message = match result {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": error}),
        };
        if self.send(message).await.is_err() {
            tracing::debug!("response dropped: connection closed");
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<i64, oneshot::Sender<Result<Value, RpcError>>>> {
        self.inner.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn complete(&self, id: &Value, result: Result<Value, RpcError>) {
        let Some(tx) = id.as_i64().and_then(|id| self.pending().remove(&id)) else {
            tracing::warn!(%id, "answer to a request we did not send (or already gave up on)");
            return;
        };
        let _ = tx.send(result);
    }
}

/// Removes a pending request when its future is dropped; if it was still unanswered, the
/// request is withdrawn with `$/cancel_request` (PROTOCOL.md §13.2: the agent MAY cancel its
/// own outstanding requests).
struct PendingGuard<'a> {
    peer: &'a Peer,
    id: i64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let unanswered = self.peer.pending().remove(&self.id).is_some();
        if unanswered && !self.peer.is_closed() {
            let note = json!({"jsonrpc": "2.0", "method": "$/cancel_request", "params": {"requestId": self.id}});
            // `Drop` cannot wait: when the output queue is full the client just keeps an
            // orphaned request, as it would without this notification.
            if let Err(e) = self.peer.inner.out.try_send(note.to_string()) {
                tracing::debug!(id = self.id, error = %e, "$/cancel_request for an abandoned request not sent");
            }
        }
    }
}

fn connection_closed() -> RpcError {
    RpcError::internal("the client connection is closed")
}

/// Serves one connection until the input ends. `make_handler` receives the [`Peer`] so the
/// handler can talk back. In-flight requests are cancelled when the input ends and get a
/// short time to finish, so running turns are saved.
pub async fn serve<R, W, H>(reader: R, writer: W, make_handler: impl FnOnce(Peer) -> Arc<H>) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
    H: Handler,
{
    let (tx, rx) = mpsc::channel(OUTGOING_CAPACITY);
    let peer = Peer::new(tx);
    let writer_task = tokio::spawn(write_loop(writer, rx, peer.inner.closed.clone()));
    let handler = make_handler(peer.clone());
    let conn = Connection {
        peer: peer.clone(),
        handler,
        tracker: TaskTracker::new(),
        in_flight: Arc::new(Mutex::new(HashMap::new())),
        closing: CancellationToken::new(),
        request_slots: Arc::new(tokio::sync::Semaphore::new(MAX_REQUESTS_IN_FLIGHT)),
    };
    let result = conn.read_loop(reader).await;
    conn.closing.cancel();
    conn.tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, conn.tracker.wait()).await.is_err() {
        tracing::warn!("requests still running {DRAIN_TIMEOUT:?} after the input closed");
    }
    peer.inner.closed.cancel();
    drop(conn);
    drop(peer);
    let _ = writer_task.await;
    result
}

struct Connection<H> {
    peer: Peer,
    handler: Arc<H>,
    tracker: TaskTracker,
    /// Tokens of running requests by id (the id's JSON text), for `$/cancel_request`.
    in_flight: Arc<Mutex<HashMap<String, CancellationToken>>>,
    /// Fired when the input has ended.
    closing: CancellationToken,
    /// Permits for requests in flight ([`MAX_REQUESTS_IN_FLIGHT`]).
    request_slots: Arc<tokio::sync::Semaphore>,
}

impl<H: Handler> Connection<H> {
    async fn read_loop<R: AsyncRead + Unpin>(&self, reader: R) -> std::io::Result<()> {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            let line = tokio::select! {
                line = framing::read_line(&mut reader, &mut buf, framing::MAX_LINE_BYTES) => line?,
                () = self.peer.inner.closed.cancelled() => return Ok(()),
            };
            match line {
                None => return Ok(()),
                Some(Line::Text(text)) => self.on_line(&text).await,
                Some(Line::TooLong) => {
                    let e = format!("message longer than {} bytes", framing::MAX_LINE_BYTES);
                    self.peer.respond(Value::Null, Err(RpcError::parse_error(e))).await;
                }
                Some(Line::NotUtf8) => {
                    let e = RpcError::parse_error("message is not valid UTF-8");
                    self.peer.respond(Value::Null, Err(e)).await;
                }
            }
        }
    }

    async fn on_line(&self, text: &str) {
        if text.trim().is_empty() {
            return;
        }
        // No `Value` is built before the budget check (see `envelope`).
        let message = match envelope::split(text) {
            Ok(Frame::Single(message)) => classify(message),
            Ok(Frame::Batch(items)) => return self.on_batch(items).await,
            Err(e) => {
                tracing::debug!(error = %e, "unreadable line from the client");
                return self.peer.respond(Value::Null, Err(e)).await;
            }
        };
        let counted =
            !matches!(&message, Ok(Incoming::Request { method, .. }) if WAITS_FOR_CLIENT.contains(&method.as_str()));
        if let Some(answer) = self.on_message(message) {
            let slot = if counted { self.request_slot().await } else { None };
            self.tracker.spawn(async move {
                let _slot = slot;
                let (peer, id, result, after) = answer.await;
                peer.respond(id, result).await;
                for message in after {
                    let _ = peer.send(message).await;
                }
            });
        }
    }

    /// A batch is answered with one array holding the answers of its requests.
    async fn on_batch(&self, items: Vec<&RawValue>) {
        if items.is_empty() {
            let e = RpcError::invalid_request("empty batch");
            self.peer.respond(Value::Null, Err(e)).await;
            return;
        }
        let answers: Vec<_> = items.into_iter().filter_map(|m| self.on_message(classify_raw(m))).collect();
        if answers.is_empty() {
            return;
        }
        let peer = self.peer.clone();
        let slot = self.request_slot().await;
        self.tracker.spawn(async move {
            let _slot = slot;
            let mut follow_ups = Vec::new();
            let replies: Vec<Value> = futures::future::join_all(answers)
                .await
                .into_iter()
                .map(|(_, id, result, after)| {
                    follow_ups.extend(after);
                    match result {
                        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                        Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": error}),
                    }
                })
                .collect();
            let _ = peer.send(Value::Array(replies)).await;
            for message in follow_ups {
                let _ = peer.send(message).await;
            }
        });
    }

    /// A slot for one more request in flight, waiting while [`MAX_REQUESTS_IN_FLIGHT`] run
    /// (`None` only if the semaphore was closed, which it never is).
    async fn request_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.request_slots.clone().acquire_owned().await.ok()
    }

    /// Dispatches one classified message. Returns the future of its answer when it needs one.
    fn on_message(&self, message: Result<Incoming, (Value, RpcError)>) -> Option<BoxFuture<'static, Answer>> {
        let peer = self.peer.clone();
        match message {
            Err((id, error)) => Some(Box::pin(async move { (peer, id, Err(error), Vec::new()) })),
            Ok(Incoming::Response { id, result }) => {
                self.peer.complete(&id, result);
                None
            }
            Ok(Incoming::Notification { method, params }) => {
                self.on_notification(&method, params);
                None
            }
            Ok(Incoming::Refused { method, error }) => {
                tracing::warn!(method, %error, "notification dropped");
                None
            }
            Ok(Incoming::Request { id, method, params }) => Some(self.on_request(id, &method, params)),
        }
    }

    fn on_notification(&self, method: &str, params: Value) {
        if method == "$/cancel_request" {
            let key = params.get("requestId").map(Value::to_string);
            let token = key.and_then(|k| lock(&self.in_flight).get(&k).cloned());
            match token {
                Some(token) => token.cancel(),
                None => tracing::debug!("$/cancel_request for a request that is not running"),
            }
            return;
        }
        self.handler.clone().handle_notification(method, params);
    }

    fn on_request(&self, id: Value, method: &str, params: Value) -> BoxFuture<'static, Answer> {
        let key = id.to_string();
        let cancel = self.closing.child_token();
        lock(&self.in_flight).insert(key.clone(), cancel.clone());
        let after = Arc::new(Mutex::new(Vec::new()));
        let cx =
            RequestContext { cancel, closing: self.closing.clone(), peer: self.peer.clone(), after: after.clone() };
        let work = self.handler.clone().handle_request(method, params, cx);
        let peer = self.peer.clone();
        let in_flight = self.in_flight.clone();
        Box::pin(async move {
            let result = work.await;
            lock(&in_flight).remove(&key);
            let after = if result.is_ok() { std::mem::take(&mut *lock(&after)) } else { Vec::new() };
            (peer, id, result, after)
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn write_loop<W: AsyncWrite + Unpin>(mut writer: W, mut rx: mpsc::Receiver<String>, closed: CancellationToken) {
    loop {
        let line = tokio::select! {
            biased;
            line = rx.recv() => line,
            // Closed while some `Peer` clone still lives: write what is queued, then stop.
            () = closed.cancelled() => rx.try_recv().ok(),
        };
        let Some(line) = line else { break };
        let mut batch = line.into_bytes();
        batch.push(b'\n');
        while batch.len() < WRITE_BATCH_BYTES
            && let Ok(next) = rx.try_recv()
        {
            batch.extend_from_slice(next.as_bytes());
            batch.push(b'\n');
        }
        let write = async {
            writer.write_all(&batch).await?;
            // Flush only when nothing else is queued: one syscall per burst, not per chunk.
            if rx.is_empty() {
                writer.flush().await?;
            }
            std::io::Result::Ok(())
        };
        if let Err(e) = write.await {
            tracing::warn!(error = %e, "cannot write to the client; closing the connection");
            closed.cancel();
            return;
        }
    }
    let _ = writer.flush().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    /// Lines queued faster than they are written go out in batches, each still one line, in
    /// order, none lost (more than one batch's worth, and the output pipe smaller than that).
    #[tokio::test]
    async fn queued_lines_are_written_in_order_in_batches() {
        let (tx, rx) = mpsc::channel(OUTGOING_CAPACITY);
        let (agent_out, client_in) = tokio::io::duplex(4096);
        let closed = CancellationToken::new();
        let writer = tokio::spawn(write_loop(agent_out, rx, closed.clone()));
        let line = "x".repeat(100);
        let count = 1000;
        let sender = tokio::spawn(async move {
            for i in 0..count {
                tx.send(format!("{i} {line}")).await.unwrap();
            }
        });
        let mut lines = BufReader::new(client_in).lines();
        for i in 0..count {
            let got = lines.next_line().await.unwrap().unwrap();
            assert!(got.starts_with(&format!("{i} x")), "line {i}: {got}");
        }
        sender.await.unwrap();
        writer.await.unwrap();
    }

    /// `ask` sends `question` to the client and gives up after 100 ms; `ask_and_wait` waits.
    struct Asker;

    impl Handler for Asker {
        fn handle_request(
            self: Arc<Self>,
            method: &str,
            _params: Value,
            cx: RequestContext,
        ) -> BoxFuture<'static, Result<Value, RpcError>> {
            let patient = method == "ask_and_wait";
            async move {
                let ask = cx.peer.request("question", json!({}));
                if patient {
                    return ask.await;
                }
                match tokio::time::timeout(Duration::from_millis(100), ask).await {
                    Ok(answer) => answer,
                    Err(_) => Ok(json!("gave up")),
                }
            }
            .boxed()
        }

        fn handle_notification(self: Arc<Self>, _method: &str, _params: Value) {}
    }

    struct Client {
        to_agent: tokio::io::DuplexStream,
        from_agent: tokio::io::Lines<BufReader<tokio::io::DuplexStream>>,
    }

    impl Client {
        fn start() -> Client {
            let (client_out, agent_in) = tokio::io::duplex(1 << 16);
            let (agent_out, client_in) = tokio::io::duplex(1 << 16);
            tokio::spawn(serve(agent_in, agent_out, |_| Arc::new(Asker)));
            Client { to_agent: client_out, from_agent: BufReader::new(client_in).lines() }
        }

        async fn send(&mut self, v: Value) {
            self.to_agent.write_all(format!("{v}\n").as_bytes()).await.unwrap();
        }

        async fn next(&mut self) -> Value {
            let line = tokio::time::timeout(Duration::from_secs(5), self.from_agent.next_line()).await;
            serde_json::from_str(&line.expect("timed out").unwrap().expect("eof")).unwrap()
        }
    }

    #[tokio::test]
    async fn an_abandoned_request_is_withdrawn_with_cancel_request() {
        let mut client = Client::start();
        client.send(json!({"jsonrpc": "2.0", "id": "a", "method": "ask", "params": {}})).await;
        let question = client.next().await;
        assert_eq!(question["method"], "question");
        let mut got = [client.next().await, client.next().await];
        got.sort_by_key(|v| v.get("method").is_none());
        assert_eq!(
            got[0],
            json!({"jsonrpc": "2.0", "method": "$/cancel_request", "params": {"requestId": question["id"]}})
        );
        assert_eq!(got[1], json!({"jsonrpc": "2.0", "id": "a", "result": "gave up"}));
        // The late answer is ignored: nothing is sent back for it.
        client.send(json!({"jsonrpc": "2.0", "id": question["id"], "result": {}})).await;
        client.send(json!({"jsonrpc": "2.0", "id": "b", "method": "ask_and_wait", "params": {}})).await;
        let question = client.next().await;
        // An answered request is not withdrawn; a response without `jsonrpc` is an answer.
        client.send(json!({"id": question["id"], "result": "yes"})).await;
        assert_eq!(client.next().await, json!({"jsonrpc": "2.0", "id": "b", "result": "yes"}));
        client.send(json!({"jsonrpc": "2.0", "id": "c", "method": "ask_and_wait", "params": {}})).await;
        let question = client.next().await;
        client.send(json!({"jsonrpc": "2.0", "id": question["id"], "error": {"code": -32601, "message": "no"}})).await;
        let answer = client.next().await;
        assert_eq!(answer["id"], "c", "{answer}");
        assert_eq!(answer["error"]["code"], -32601, "{answer}");
    }
}
