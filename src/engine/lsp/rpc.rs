//! JSON-RPC over one language server's pipes, with requests both ways: ours (`initialize`,
//! `shutdown`) wait for their answer; the server's (`workspace/configuration`,
//! `client/registerCapability`, ...) are answered by an [`Incoming`] handler, and so are its
//! notifications (`textDocument/publishDiagnostics`).
//!
//! One reader task and one writer task per connection, both on the caller's tracker. The
//! reader never waits on the writer (its answers are queued with `try_send`), so a server that
//! stops reading cannot deadlock us against its own full output pipe. When the server's
//! output ends, [`Connection::closed`] fires and every waiting request fails.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lsp_types::notification::Notification;
use lsp_types::request::Request;
use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::framing::{read_message, write_message};
use super::lock;

/// Messages queued for the server. Ours are a handful per edit and answers to its requests
/// are few; 64 absorbs a burst of `workspace/configuration` questions at start-up.
const OUTGOING_CAPACITY: usize = 64;

/// JSON-RPC's "method not found".
pub const METHOD_NOT_FOUND: i64 = -32601;

/// What the client does with the server's own messages.
pub trait Incoming: Send + Sync + 'static {
    /// Answers a request: its result, or an error code and message.
    fn request(&self, method: &str, params: Value) -> Result<Value, (i64, String)>;
    /// Takes a notification.
    fn notification(&self, method: &str, params: Value);
}

type Pending = Arc<Mutex<HashMap<i64, oneshot::Sender<Result<Value, String>>>>>;

/// One connection to a server.
pub struct Connection {
    /// The server's name, for logs and errors.
    name: String,
    outgoing: mpsc::Sender<Vec<u8>>,
    pending: Pending,
    next_id: AtomicI64,
    closed: CancellationToken,
}

impl Connection {
    /// Starts the reader and writer tasks on `tasks`. They stop when the server's output
    /// ends, or when `stop` is cancelled.
    pub fn start<R, W>(
        name: &str,
        reader: R,
        writer: W,
        handler: Arc<dyn Incoming>,
        tasks: &TaskTracker,
        stop: &CancellationToken,
    ) -> Connection
    where
        R: AsyncBufRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (outgoing, queue) = mpsc::channel(OUTGOING_CAPACITY);
        let pending: Pending = Arc::default();
        let closed = stop.child_token();
        tasks.spawn(write_loop(name.to_string(), writer, queue, closed.clone()));
        let reads = ReadLoop {
            name: name.to_string(),
            handler,
            pending: pending.clone(),
            answers: outgoing.clone(),
            closed: closed.clone(),
        };
        tasks.spawn(reads.run(reader));
        Connection { name: name.to_string(), outgoing, pending, next_id: AtomicI64::new(1), closed }
    }

    /// Fires when the connection is gone (the server exited or broke the protocol).
    pub fn closed(&self) -> &CancellationToken {
        &self.closed
    }

    /// Sends a request and waits at most `timeout` for its result.
    pub async fn request<R: Request>(&self, params: R::Params, timeout: Duration) -> Result<R::Result, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let message = json!({"jsonrpc": "2.0", "id": id, "method": R::METHOD, "params": params});
        let answer = async {
            self.send(message).await?;
            rx.await.map_err(|_| format!("{} exited before answering {}", self.name, R::METHOD))?
        };
        let result = tokio::select! {
            r = tokio::time::timeout(timeout, answer) => r.unwrap_or_else(|_| {
                Err(format!("{} did not answer {} within {timeout:?}", self.name, R::METHOD))
            }),
            () = self.closed.cancelled() => Err(format!("{} exited before answering {}", self.name, R::METHOD)),
        };
        lock(&self.pending).remove(&id);
        let value = result?;
        serde_json::from_value(value)
            .map_err(|e| format!("{} answered {} with an unexpected shape: {e}", self.name, R::METHOD))
    }

    /// Sends a notification.
    pub async fn notify<N: Notification>(&self, params: N::Params) -> Result<(), String> {
        self.send(json!({"jsonrpc": "2.0", "method": N::METHOD, "params": params})).await
    }

    async fn send(&self, message: Value) -> Result<(), String> {
        let body = serde_json::to_vec(&message).map_err(|e| format!("cannot encode a message: {e}"))?;
        tokio::select! {
            r = self.outgoing.send(body) => r.map_err(|_| format!("{} is no longer running", self.name)),
            () = self.closed.cancelled() => Err(format!("{} is no longer running", self.name)),
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    name: String,
    mut writer: W,
    mut queue: mpsc::Receiver<Vec<u8>>,
    closed: CancellationToken,
) {
    loop {
        let body = tokio::select! {
            b = queue.recv() => b,
            () = closed.cancelled() => None,
        };
        let Some(body) = body else { break };
        if let Err(e) = write_message(&mut writer, &body).await {
            tracing::debug!(server = %name, error = %e, "cannot write to the language server");
            break;
        }
    }
    // Dropping the writer closes the server's stdin, which tells it to exit.
    closed.cancel();
}

/// The reader task's state.
struct ReadLoop {
    name: String,
    handler: Arc<dyn Incoming>,
    pending: Pending,
    answers: mpsc::Sender<Vec<u8>>,
    closed: CancellationToken,
}

impl ReadLoop {
    async fn run<R: AsyncBufRead + Unpin>(self, mut reader: R) {
        loop {
            let read = tokio::select! {
                r = read_message(&mut reader) => r,
                () = self.closed.cancelled() => break,
            };
            match read {
                Ok(Some(body)) => self.dispatch(&body),
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(server = %self.name, error = %e, "the language server broke the protocol; dropping it");
                    break;
                }
            }
        }
        self.closed.cancel();
        // Waiting requests fail now rather than at their timeout.
        lock(&self.pending).clear();
    }

    fn dispatch(&self, body: &[u8]) {
        let Ok(mut message) = serde_json::from_slice::<Value>(body) else {
            tracing::debug!(server = %self.name, "the language server sent a message that is not JSON; ignored");
            return;
        };
        let method = message.get("method").and_then(Value::as_str).map(str::to_string);
        let id = message.get_mut("id").map(Value::take).filter(|id| !id.is_null());
        let params = message.get_mut("params").map(Value::take).unwrap_or(Value::Null);
        match (method, id) {
            (Some(method), Some(id)) => {
                let reply = match self.handler.request(&method, params) {
                    Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                    Err((code, text)) => json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": text}}),
                };
                let body = serde_json::to_vec(&reply).unwrap_or_default();
                if self.answers.try_send(body).is_err() {
                    tracing::warn!(server = %self.name, %method, "cannot answer the language server now (its input is full)");
                }
            }
            (Some(method), None) => self.handler.notification(&method, params),
            (None, Some(id)) => {
                let Some(id) = id.as_i64() else { return };
                let Some(waiter) = lock(&self.pending).remove(&id) else { return };
                let answer = match message.get_mut("error") {
                    Some(error) => Err(format!(
                        "{} answered with an error: {}",
                        self.name,
                        error.get("message").and_then(Value::as_str).unwrap_or("no message")
                    )),
                    None => Ok(message.get_mut("result").map(Value::take).unwrap_or(Value::Null)),
                };
                let _ = waiter.send(answer);
            }
            (None, None) => {
                tracing::debug!(server = %self.name, "a message that is neither request nor answer; ignored")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lsp_types::request::Shutdown;
    use tokio::io::{AsyncWriteExt, BufReader};

    /// Records notifications; answers `ping` requests.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Incoming for Recorder {
        fn request(&self, method: &str, params: Value) -> Result<Value, (i64, String)> {
            match method {
                "ping" => Ok(json!({"pong": params})),
                _ => Err((METHOD_NOT_FOUND, format!("no {method}"))),
            }
        }
        fn notification(&self, method: &str, _: Value) {
            lock(&self.0).push(method.to_string());
        }
    }

    /// A connection to a fake server, and the fake server's ends of the pipes.
    fn connect() -> (Connection, Arc<Recorder>, BufReader<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (ours_in, server_out) = tokio::io::duplex(1 << 16);
        let (server_in, ours_out) = tokio::io::duplex(1 << 16);
        let recorder = Arc::new(Recorder::default());
        let tasks = TaskTracker::new();
        let conn = Connection::start(
            "fake",
            BufReader::new(ours_in),
            ours_out,
            recorder.clone(),
            &tasks,
            &CancellationToken::new(),
        );
        (conn, recorder, BufReader::new(server_in), server_out)
    }

    async fn next(reader: &mut BufReader<tokio::io::DuplexStream>) -> Value {
        serde_json::from_slice(&read_message(reader).await.unwrap().unwrap()).unwrap()
    }

    #[tokio::test]
    async fn requests_both_ways_and_notifications() {
        let (conn, recorder, mut server_in, mut server_out) = connect();
        // The server asks us something, and notifies.
        for m in [
            json!({"jsonrpc": "2.0", "id": "s1", "method": "ping", "params": 7}),
            json!({"jsonrpc": "2.0", "id": 9, "method": "nope"}),
            json!({"jsonrpc": "2.0", "method": "window/logMessage", "params": {}}),
        ] {
            write_message(&mut server_out, &serde_json::to_vec(&m).unwrap()).await.unwrap();
        }
        assert_eq!(next(&mut server_in).await, json!({"jsonrpc": "2.0", "id": "s1", "result": {"pong": 7}}));
        let refused = next(&mut server_in).await;
        assert_eq!((refused["id"].clone(), refused["error"]["code"].clone()), (json!(9), json!(METHOD_NOT_FOUND)));

        // We ask; the server answers.
        let asking = tokio::spawn(async move {
            let r = conn.request::<Shutdown>((), Duration::from_secs(5)).await;
            (conn, r)
        });
        let request = next(&mut server_in).await;
        assert_eq!(request["method"], "shutdown");
        let answer = json!({"jsonrpc": "2.0", "id": request["id"], "result": null});
        write_message(&mut server_out, &serde_json::to_vec(&answer).unwrap()).await.unwrap();
        let (conn, result) = asking.await.unwrap();
        assert_eq!(result, Ok(()));
        assert_eq!(*lock(&recorder.0), ["window/logMessage"]);

        // The server goes away: waiting requests fail at once, the connection says so.
        let asking = tokio::spawn(async move { conn.request::<Shutdown>((), Duration::from_secs(30)).await });
        let _ = next(&mut server_in).await;
        server_out.shutdown().await.unwrap();
        drop(server_out);
        let err = tokio::time::timeout(Duration::from_secs(5), asking).await.unwrap().unwrap().unwrap_err();
        assert!(err.contains("exited before answering shutdown"), "{err}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let (conn, _recorder, _server_in, _server_out) = connect();
        let err = conn.request::<Shutdown>((), Duration::from_millis(50)).await.unwrap_err();
        assert!(err.contains("did not answer shutdown within"), "{err}");
    }
}
