//! The engine's [`Host`] for a turn started over the socket: the prompting client's editor.
//!
//! A host call becomes a [`TurnItem::HostCall`] pushed to the `turn.send` subscriber; the
//! client runs it against its editor and answers with `turn.host_reply`, which
//! [`HostCalls::reply`] hands to the waiting call. When the subscriber is gone (window closed)
//! calls fail with a clear message, and the capabilities turn off so the tools work locally.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::daemon::protocol::{HostCaps, HostOp, HostValue, TurnItem};
use crate::engine::tools::{CommandRequest, Host, TerminalRun};

/// How long a file read or write through the editor may take.
const FS_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Extra time a command gets beyond its own timeout (the editor kills it, then answers).
const RUN_REPLY_GRACE: Duration = Duration::from_secs(10);

/// How long a cancelled command's reply is awaited after asking the client to stop it.
const CANCEL_REPLY_GRACE: Duration = Duration::from_secs(5);

type Reply = Result<HostValue, String>;

/// Host calls waiting for their `turn.host_reply`, daemon-wide (ids are unique per daemon).
#[derive(Default)]
pub struct HostCalls {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
}

impl HostCalls {
    fn open(self: &Arc<Self>) -> (Waiting, oneshot::Receiver<Reply>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id, tx);
        (Waiting { calls: self.clone(), id }, rx)
    }

    /// Hands a reply to its call; false if no call with that id waits.
    pub fn reply(&self, id: u64, result: Reply) -> bool {
        match self.lock().remove(&id) {
            Some(tx) => tx.send(result).is_ok(),
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Reply>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A registered call; unregisters when dropped (answered, timed out or abandoned).
struct Waiting {
    calls: Arc<HostCalls>,
    id: u64,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.calls.lock().remove(&self.id);
    }
}

/// The prompting client's editor, as one turn's tools see it.
pub struct RemoteHost {
    caps: HostCaps,
    calls: Arc<HostCalls>,
    /// To the turn's pump, which forwards to the subscriber.
    items: mpsc::Sender<TurnItem>,
    /// Fired by the pump when the subscriber is gone.
    detached: CancellationToken,
}

impl RemoteHost {
    pub fn new(
        caps: HostCaps,
        calls: Arc<HostCalls>,
        items: mpsc::Sender<TurnItem>,
        detached: CancellationToken,
    ) -> Self {
        RemoteHost { caps, calls, items, detached }
    }

    fn attached(&self) -> bool {
        !self.detached.is_cancelled()
    }

    async fn call(&self, op: HostOp, what: &str, limit: Duration, cancel: Option<&CancellationToken>) -> Reply {
        let gone = || {
            format!(
                "the editor window that started this prompt has disconnected, so it could not {what}; prompt again from an open window"
            )
        };
        if !self.attached() {
            return Err(gone());
        }
        let (waiting, mut reply) = self.calls.open();
        let call_id = waiting.id;
        if self.items.send(TurnItem::HostCall { call_id, op }).await.is_err() {
            return Err(gone());
        }
        let never = CancellationToken::new();
        let cancel = cancel.unwrap_or(&never);
        tokio::select! {
            r = &mut reply => r.unwrap_or_else(|_| Err(gone())),
            () = self.detached.cancelled() => Err(gone()),
            () = tokio::time::sleep(limit) => Err(format!("the editor did not {what} within {}s; check the editor, then try again", limit.as_secs())),
            () = cancel.cancelled() => {
                // Let the client stop the command and report what it printed.
                let _ = self.items.send(TurnItem::HostCancel { call_id }).await;
                match tokio::time::timeout(CANCEL_REPLY_GRACE, reply).await {
                    Ok(Ok(r)) => r,
                    _ => Err("cancelled by the user".to_string()),
                }
            }
        }
    }
}

impl Host for RemoteHost {
    fn can_read(&self) -> bool {
        self.caps.can_read && self.attached()
    }

    fn can_write(&self) -> bool {
        self.caps.can_write && self.attached()
    }

    fn can_run(&self) -> bool {
        self.caps.can_run && self.attached()
    }

    fn read_text_file(
        &self,
        path: PathBuf,
        line: Option<u32>,
        limit: Option<u32>,
    ) -> BoxFuture<'_, Result<String, String>> {
        async move {
            match self.call(HostOp::ReadTextFile { path, line, limit }, "read the file", FS_CALL_TIMEOUT, None).await? {
                HostValue::Text(text) => Ok(text),
                other => Err(format!("the client answered a file read with {other:?}; this is a bug in the client")),
            }
        }
        .boxed()
    }

    fn write_text_file(&self, path: PathBuf, content: String) -> BoxFuture<'_, Result<(), String>> {
        async move {
            match self.call(HostOp::WriteTextFile { path, content }, "write the file", FS_CALL_TIMEOUT, None).await? {
                HostValue::Written => Ok(()),
                other => Err(format!("the client answered a file write with {other:?}; this is a bug in the client")),
            }
        }
        .boxed()
    }

    fn run_command(
        &self,
        request: CommandRequest,
        cancel: CancellationToken,
    ) -> BoxFuture<'_, Result<TerminalRun, String>> {
        async move {
            let limit = request.timeout.saturating_add(RUN_REPLY_GRACE);
            match self.call(HostOp::run(&request), "run the command", limit, Some(&cancel)).await? {
                HostValue::Ran(run) => Ok(run.into()),
                other => Err(format!("the client answered a command with {other:?}; this is a bug in the client")),
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(caps: HostCaps) -> (RemoteHost, mpsc::Receiver<TurnItem>, Arc<HostCalls>, CancellationToken) {
        let calls = Arc::new(HostCalls::default());
        let (tx, rx) = mpsc::channel(4);
        let detached = CancellationToken::new();
        (RemoteHost::new(caps, calls.clone(), tx, detached.clone()), rx, calls, detached)
    }

    const ALL: HostCaps = HostCaps { can_read: true, can_write: true, can_run: true };

    #[tokio::test]
    async fn a_call_is_pushed_and_answered_by_its_reply() {
        let (host, mut items, calls, _) = host(ALL);
        let answer = async {
            let Some(TurnItem::HostCall { call_id, op: HostOp::ReadTextFile { path, .. } }) = items.recv().await else {
                panic!()
            };
            assert_eq!(path, PathBuf::from("/p/a"));
            assert!(calls.reply(call_id, Ok(HostValue::Text("body".into()))));
            assert!(!calls.reply(call_id, Ok(HostValue::Written)), "a second reply finds nobody");
        };
        let (read, ()) = tokio::join!(host.read_text_file("/p/a".into(), None, None), answer);
        assert_eq!(read.unwrap(), "body");
        assert!(calls.lock().is_empty());
    }

    #[tokio::test]
    async fn a_detached_subscriber_fails_calls_and_turns_capabilities_off() {
        let (host, mut items, calls, detached) = host(ALL);
        let detach = async {
            assert!(matches!(items.recv().await, Some(TurnItem::HostCall { .. })));
            detached.cancel();
        };
        let (write, ()) = tokio::join!(host.write_text_file("/p/a".into(), "x".into()), detach);
        assert!(write.unwrap_err().contains("disconnected"));
        assert!(!host.can_read() && !host.can_write() && !host.can_run());
        assert!(calls.lock().is_empty(), "the abandoned call is forgotten");
        assert!(host.read_text_file("/p/a".into(), None, None).await.unwrap_err().contains("disconnected"));
    }

    #[tokio::test]
    async fn a_cancelled_command_asks_the_client_to_stop_it() {
        let (host, mut items, calls, _) = host(HostCaps { can_run: true, ..Default::default() });
        let cancel = CancellationToken::new();
        let request = crate::daemon::protocol::command_request("sleep 9".into(), "/".into(), 60_000, 100);
        let client = async {
            let Some(TurnItem::HostCall { call_id, .. }) = items.recv().await else { panic!() };
            cancel.cancel();
            assert_eq!(items.recv().await, Some(TurnItem::HostCancel { call_id }));
            let run = crate::daemon::protocol::RunDto {
                terminal_id: "t".into(),
                output: "partial".into(),
                truncated: false,
                exit_code: None,
                signal: Some("TERM".into()),
            };
            calls.reply(call_id, Ok(HostValue::Ran(run)));
        };
        let (run, ()) = tokio::join!(host.run_command(request, cancel.clone()), client);
        assert_eq!(run.unwrap().output, "partial");
    }
}
